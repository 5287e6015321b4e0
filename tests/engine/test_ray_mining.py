"""Hard-negative mining as a batched search over a shared index (``quality.mining.mine`` with ``parallel``): on a
local two-CPU Ray cluster, each retriever's index (BM25, model2vec vectors) is built once in the driver, put in
the object store, and searched by Ray tasks in pieces of queries; the candidates equal the local engine's."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from buildbench.domain_pack import EngineConfig, MiningConfig
from buildbench.engine.parallel import InProcess
from buildbench.evaluation import evaluate
from buildbench.quality.mining import mine

pytest.importorskip("ray", reason="needs buildbench[ray]")


@pytest.fixture(scope="module")
def fomc(fomc_passages):
    rows = [json.loads(line) for line in fomc_passages.open()]
    corpus = pa.table({"id": [r["_id"] for r in rows], "title": [r.get("title", "") for r in rows],
                       "text": [r["text"] for r in rows]})
    # A query per fifth passage: its first 12 words (the passage is its positive).
    picked = rows[::5]
    queries = pa.table({"id": [f"q{i}" for i in range(len(picked))],
                        "text": [" ".join(r["text"].split()[:12]) for r in picked]})
    positives = {f"q{i}": [r["_id"]] for i, r in enumerate(picked)}
    return corpus, queries, positives


def test_mining_on_ray_tasks_equals_in_process(ray_cluster, fomc, monkeypatch):
    from buildbench.engine.ray_executor import RayExecutor

    monkeypatch.setattr(evaluate, "MIN_QUERY_PIECE", 16)  # several pieces per retriever on this small set
    corpus, queries, positives = fomc
    cfg = MiningConfig(retrievers=["bm25", "static"], score_models=["static"], depth=20)
    local = mine(corpus, queries, positives, cfg, parallel=InProcess())
    executor = RayExecutor(EngineConfig(kind="ray", workers=2))
    par = executor.parallel()
    on_ray = mine(corpus, queries, positives, cfg, parallel=par)
    executor.close()
    assert queries.num_rows > 150 and len(local) > 10 * queries.num_rows
    assert on_ray == local
    # 178 queries in pieces of 45 (about two per worker): 4 Ray tasks per retriever, 8 in all
    assert par.tasks == 8
    # the search is real: a query's own passage is not a candidate, and BM25 and static both pooled
    assert not any(c.passage_id in positives[c.query_id] for c in on_ray)
    assert {"bm25", "static"} <= {name for c in on_ray for name in c.found_by}
