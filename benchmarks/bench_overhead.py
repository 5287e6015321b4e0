"""Pipeline overhead: a build's wall time against the pure model time of the same work.

    python benchmarks/bench_overhead.py [--docs ../shared/data/fomc/passages.jsonl] [--max-docs 60]
        [--max-queries 40]

1. Builds a finance task from nothing (no cache) up to ``filter_queries``, in its own process: ingest, chunking,
   dedup, planning, query writing (Gemma 3 270M through llama.cpp, three drafts a slot) and every query filter.
2. Replays every LLM call the build made, read back from its call cache, through a fresh llama.cpp backend in one
   batch (no cache, no checks, no Arrow, no run directory): the pure LLM time of the same work.
3. Embeds every text the build embedded with each embedding model it used (the round-trip and easiness
   filters), again with no cache: the pure embedding time. The texts are the chunks and the raw queries; the
   build embedded those of them it needed, as counted in its embedding cache (printed).

Prints each time and the ratio build / (LLM + embedding), the overhead of everything else (reading and writing
shards, filters, planning, the Python around the models). The target is at most 1.2x. Model load times are
counted on both sides (the build loads each model once; the replay loads them once too).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

BUILD = """
import sys
from buildbench import pipeline
from buildbench.config import make_config
out, docs, max_docs, max_queries = sys.argv[1:5]
cfg = make_config("finance", out=out, docs=[docs], max_docs=int(max_docs), max_queries=int(max_queries), seed=5)
pipeline.build(cfg, until="filter_queries", progress=False)
"""


def replay_llm(cache: Path) -> tuple[int, float]:
    from buildbench.generators.base import GenerationRequest
    from buildbench.generators.local import LocalBackend

    rows = sqlite3.connect(str(cache)).execute("SELECT request FROM calls ORDER BY rowid").fetchall()
    requests = []
    for (text,) in rows:
        data = json.loads(text)
        data["stop"] = tuple(data.get("stop") or ())
        if data.get("messages"):
            data["messages"] = tuple(tuple(m) for m in data["messages"])
        requests.append(GenerationRequest(**data))
    t0 = time.perf_counter()
    backend = LocalBackend("gemma3-270m")
    for start in range(0, len(requests), 8):  # the batch size CachedLLM hands the local backend
        backend.generate(requests[start:start + 8])
    return len(requests), time.perf_counter() - t0


def replay_embeddings(run: Path) -> tuple[dict[str, int], float]:
    from buildbench.engine.embeddings import EmbeddingCache, get_model, is_asymmetric, model_identity

    stored = EmbeddingCache(run / "cache" / "embeddings").stored()
    chunks = pq.read_table(run / "data" / "chunks")["text"].to_pylist()
    queries = pq.read_table(run / "data" / "raw_queries")["text"].to_pylist()
    counts, seconds = {}, 0.0
    for name in ("minilm", "static", "e5-small", "mpnet"):
        n = stored.get(model_identity(name), 0)
        if not n:
            continue
        counts[name] = n
        texts = (chunks + queries)[:n]
        t0 = time.perf_counter()
        model = get_model(name)
        model(texts, 64, False) if is_asymmetric(name) else model(texts, 64)
        seconds += time.perf_counter() - t0
    return counts, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", default=str(Path(__file__).resolve().parents[2] / "shared/data/fomc/passages.jsonl"))
    ap.add_argument("--max-docs", type=int, default=60)
    ap.add_argument("--max-queries", type=int, default=40)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        subprocess.run([sys.executable, "-c", BUILD, str(run), args.docs, str(args.max_docs), str(args.max_queries)],
                       check=True)
        stages = json.loads((run / "manifest.json").read_text())["stages"]
        build = sum(entry.get("seconds", 0.0) for entry in stages.values())
        calls, llm = replay_llm(run / "cache" / "llm.sqlite")
        embedded, emb = replay_embeddings(run)
    print(f"build up to filter_queries, stage seconds summed: {build:.1f} s "
          f"(generate_queries {stages['generate_queries']['seconds']:.1f} s, "
          f"filter_queries {stages['filter_queries']['seconds']:.1f} s)")
    print(f"pure LLM replay: {calls} calls in {llm:.1f} s; pure embedding: {embedded} in {emb:.1f} s")
    print(f"generate_queries / pure LLM: {stages['generate_queries']['seconds'] / llm:.2f}x")
    print(f"build / (LLM + embedding): {build / (llm + emb):.2f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()
