"""mine_negatives: pool hard-negative candidates from BM25 and dense retrievers; classify each against the
positive's score (TopK-PercPos). The searches run in pieces of queries over each retriever's shared index
(``ctx.parallel``: Ray tasks on the ray engine)."""

from __future__ import annotations

import json
import time
from collections import Counter

import pyarrow as pa

from ..engine.stage import StageContext, StageResult
from ..quality.mining import candidates_table, mine
from .common import embedding_cache, positives

CONFIG_KEYS = ("domain.mining", "domain.language")


def run(ctx: StageContext) -> StageResult:
    pack = ctx.config.domain
    if not pack.mining.enabled:
        return StageResult(outputs={"candidates": candidates_table([])})
    queries = ctx.read("queries")
    negatives = ctx.read("negatives")
    # The corpus the task will have: the chunks plus the LLM-written negatives.
    cols = ["id", "title", "text"]
    corpus = pa.concat_tables([ctx.read("chunks").select(cols), negatives.select(cols)])
    t0 = time.perf_counter()
    cands = mine(corpus, queries.select(["id", "text"]), positives(queries), pack.mining,
                 synthetic=synthetic_by_query(negatives), cache=embedding_cache(ctx), language=pack.language,
                 parallel=ctx.parallel)
    stats = Counter(f"decision.{c.decision}" for c in cands)
    stats["seconds"] = round(time.perf_counter() - t0, 3)
    stats["queries_with_too_close"] = len({c.query_id for c in cands if c.decision == "too_close"})
    return StageResult(outputs={"candidates": candidates_table(cands)}, stats=stats)


def synthetic_by_query(negatives: pa.Table) -> dict[str, list[str]]:
    """Query id -> the LLM-written negatives written for it."""
    out: dict[str, list[str]] = {}
    for pid, meta in zip(negatives["id"].to_pylist(), negatives["metadata"].to_pylist()):
        out.setdefault(json.loads(meta or "{}").get("negative_for", ""), []).append(pid)
    return out
