"""The Ray engine against the local engine on this machine, stage by stage, in one run.

    python benchmarks/bench_engines.py [--docs ../shared/data/fomc/passages.jsonl] [--max-docs 40]
        [--max-queries 16] [--workers 2]

Builds the same small finance task twice from nothing (no shared LLM cache), once per engine, each in its own
process, and prints each stage's wall seconds side by side with the ratio ray / local, then checks that the two
tasks have the same corpus, queries and qrels rows. The query writer makes one draft per slot and the
likelihood judge is off, so the LLM stage is query writing only. Map stages run on a pool of Ray actors; global
stages run in the driver on both engines, so their ratio shows only noise. Ray's own start (``ray.init``) is
counted in the ray build's total, not in any stage.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

BUILD = """
import json, sys
from buildbench import pipeline
from buildbench.config import make_config
out, docs, max_docs, max_queries, engine, workers = sys.argv[1:7]
cfg = make_config("finance", out=out, docs=[docs], max_docs=int(max_docs), max_queries=int(max_queries), seed=5,
                  generator={"drafts": 1}, pack_overrides={"likelihood.enabled": False},
                  engine={"kind": engine, "workers": int(workers)})
pipeline.build(cfg, progress=False)
"""


def build(out: Path, docs: str, max_docs: int, max_queries: int, engine: str, workers: int) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", BUILD, str(out), docs, str(max_docs), str(max_queries), engine,
                    str(workers)], check=True)
    return time.perf_counter() - t0


def stage_seconds(run: Path) -> dict[str, float]:
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    return {name: entry.get("seconds", 0.0) for name, entry in stages.items()}


def task_rows(run: Path) -> dict[str, list[str]]:
    return {name: sorted(json.dumps(r, sort_keys=True, default=str) for r in pq.read_table(run / "task" / name)
                         .to_pylist()) for name in ("corpus", "queries", "qrels")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", default=str(Path(__file__).resolve().parents[2] / "shared/data/fomc/passages.jsonl"))
    ap.add_argument("--max-docs", type=int, default=40)
    ap.add_argument("--max-queries", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs, totals = {}, {}
        for engine in ("local", "ray"):
            runs[engine] = Path(tmp) / engine
            totals[engine] = build(runs[engine], args.docs, args.max_docs, args.max_queries, engine, args.workers)
        local, ray = stage_seconds(runs["local"]), stage_seconds(runs["ray"])
        print(f"{'stage':<20} {'local s':>9} {'ray s':>9} {'ray/local':>10}")
        for name in local:
            ratio = ray[name] / local[name] if local[name] > 0.05 else float("nan")
            print(f"{name:<20} {local[name]:>9.2f} {ray[name]:>9.2f} {ratio:>10.2f}")
        print(f"{'whole build (wall)':<20} {totals['local']:>9.2f} {totals['ray']:>9.2f} "
              f"{totals['ray'] / totals['local']:>10.2f}")
        same = task_rows(runs["local"]) == task_rows(runs["ray"])
        print(f"same corpus, queries and qrels rows: {same}")


if __name__ == "__main__":
    main()
