"""Hard-negative mining's searches on the Ray engine against the local engine, side by side in one run.

    python benchmarks/bench_mining_ray.py [--passages 20000] [--queries 4000] [--workers 2]

A corpus of generated finance-like passages (FOMC passages from ``../shared`` when present, each repeated with
its numbers and a few words changed, so that the index is as large as asked), and queries cut from a sample of
them. ``quality.mining.mine`` runs twice: its searches in this process (the local engine), then as Ray tasks over
the index put once in the object store (``ray.init(num_cpus=workers)``). Prints the wall seconds of each, their
ratio, the number of Ray tasks, and whether the candidates are equal (they must be). The embeddings are cached
after the first run, so both runs time the searches and the pooling, not the embedding.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from buildbench.domain_pack import EngineConfig, MiningConfig
from buildbench.engine.embeddings import EmbeddingCache
from buildbench.engine.parallel import InProcess
from buildbench.quality.mining import mine

FOMC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fomc" / "passages.jsonl"
OWN = ("The committee raised the policy rate by {a} basis points to {b} percent as inflation stayed near {c} "
       "percent and wage growth held at {d} percent in the {e} quarter.")


def corpus(n: int, seed: int = 3) -> pa.Table:
    rng = random.Random(seed)
    base = ([json.loads(line)["text"] for line in FOMC.open()] if FOMC.exists()
            else [OWN.format(a=25, b=4.5, c=3, d=4, e="third")])
    words = sorted({w for t in base for w in t.split()})
    texts = []
    for i in range(n):
        t = re.sub(r"\d+(?:\.\d+)?", lambda m: str(rng.randint(1, 99)), base[i % len(base)])
        toks = t.split()
        for j in rng.sample(range(len(toks)), min(len(toks), 3)):
            toks[j] = rng.choice(words)
        texts.append(" ".join(toks))
    return pa.table({"id": [f"p{i}" for i in range(n)], "title": [""] * n, "text": texts})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=int, default=20000)
    ap.add_argument("--queries", type=int, default=4000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    docs = corpus(args.passages)
    rows = random.Random(1).sample(range(args.passages), args.queries)
    texts = docs["text"].to_pylist()
    queries = pa.table({"id": [f"q{i}" for i in range(len(rows))],
                        "text": [" ".join(texts[r].split()[:12]) for r in rows]})
    positives = {f"q{i}": [f"p{r}"] for i, r in enumerate(rows)}
    cfg = MiningConfig(retrievers=["bm25", "static"], score_models=["static"], depth=20)
    with tempfile.TemporaryDirectory() as tmp:
        cache = EmbeddingCache(Path(tmp) / "emb")
        mine(docs, queries, positives, cfg, cache=cache)  # warm the embedding cache
        t0 = time.perf_counter()
        local = mine(docs, queries, positives, cfg, cache=cache, parallel=InProcess())
        t_local = time.perf_counter() - t0
        import ray

        from buildbench.engine.ray_executor import RayExecutor

        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
        executor = RayExecutor(EngineConfig(kind="ray", workers=args.workers))
        par = executor.parallel()
        t0 = time.perf_counter()
        on_ray = mine(docs, queries, positives, cfg, cache=cache, parallel=par)
        t_ray = time.perf_counter() - t0
        executor.close()
        ray.shutdown()
    print(f"{args.passages} passages, {args.queries} queries, retrievers bm25 + static, depth 20")
    print(f"local: {t_local:.2f} s   ray ({args.workers} workers, {par.tasks} tasks): {t_ray:.2f} s   "
          f"ray / local: {t_ray / t_local:.2f}x   candidates equal: {on_ray == local} ({len(local)})")


if __name__ == "__main__":
    main()
