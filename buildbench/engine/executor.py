"""Where a map stage's shards run: in this process (``LocalExecutor``) or on a Ray cluster (``engine.ray``).

The runner picks the shards still to do; an executor runs each through ``run_shard`` and hands the runner a
``ShardOutcome`` per finished shard. Whoever runs a shard writes its files into the run directory itself, each
atomically and the output shard last, so a shard on disk is complete and a missing one is redone on resume.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Protocol, Sequence

import pyarrow.parquet as pq

from ..records import Drop, to_table
from .parallel import InProcess, Parallel
from .rundir import RunDir, atomic_write_json
from .stage import Stage, StageContext, drops_dataset


@dataclass(frozen=True)
class ShardTask:
    """One input shard of a map stage to turn into the output shard of the same index."""

    index: int
    source: str  # the input shard's path
    rows: int


@dataclass(frozen=True)
class ShardOutcome:
    """What running one shard did: its counters (the stage's ``ctx.stats`` increments), rows and time."""

    index: int
    rows_in: int
    rows_out: int
    stats: dict[str, float]
    seconds: float
    worker: str  # "local", or the Ray worker's name


def stats_path(rundir: RunDir, dataset: str, index: int) -> Path:
    """Per-shard stats persist beside the shard so resumed runs still report whole-stage totals; under
    ``_stats`` so readers of the dataset folder (pyarrow, pandas, datasets) skip them."""
    return rundir.dataset_dir(dataset) / "_stats" / f"part-{index:05d}.json"


def filters_path(rundir: RunDir, dataset: str, index: int) -> Path:
    """Per-shard filter stats, beside the shard like its stats."""
    return rundir.dataset_dir(dataset) / "_filters" / f"part-{index:05d}.json"


def run_shard(st: Stage, task: ShardTask, ctx: StageContext, worker: str = "local") -> ShardOutcome:
    """Run a map stage on one input shard and write its drops, stats, filter stats and then its output shard."""
    t0 = time.perf_counter()
    out, i = st.outputs[0], task.index
    table = pq.read_table(task.source)
    before = Counter(ctx.stats)
    ctx.filters = []
    result, drops = st.fn(table, ctx)
    shard_stats = dict(Counter(ctx.stats) - before)
    ctx.rundir.write_shard(drops_dataset(st.name), i, to_table(drops, Drop))
    atomic_write_json(stats_path(ctx.rundir, out, i), shard_stats)
    atomic_write_json(filters_path(ctx.rundir, out, i), [f.to_json() for f in ctx.filters])
    ctx.rundir.write_shard(out, i, result)  # last: its presence is what marks the shard done
    return ShardOutcome(index=i, rows_in=table.num_rows, rows_out=result.num_rows, stats=shard_stats,
                        seconds=time.perf_counter() - t0, worker=worker)


ShardDone = Callable[[ShardOutcome], None]


class Executor(Protocol):
    """Runs a map stage's pending shards. When ``run_map`` returns, every task has its files on disk, ``done``
    was called once per task (in completion order) and ``ctx.stats`` holds the counters of all of them."""

    kind: str

    def pool_size(self, tasks: int, st: Optional[Stage] = None) -> int:
        """How many workers would run ``tasks`` shards of ``st`` (for progress and the manifest)."""
        ...

    def run_map(self, st: Stage, tasks: Sequence[ShardTask], ctx: StageContext, done: ShardDone) -> None: ...

    def parallel(self) -> Parallel:
        """Where a global stage's data-parallel pieces run (``ctx.parallel``, see ``engine.parallel``)."""
        ...

    def close(self) -> None: ...


class LocalExecutor:
    """One shard after another in this process, sharing the runner's services (models stay loaded)."""

    kind = "local"

    def pool_size(self, tasks: int, st: Optional[Stage] = None) -> int:
        return min(1, tasks)

    def run_map(self, st: Stage, tasks: Sequence[ShardTask], ctx: StageContext, done: ShardDone) -> None:
        for task in tasks:
            done(run_shard(st, task, ctx))

    def parallel(self) -> Parallel:
        return InProcess()

    def close(self) -> None:
        pass
