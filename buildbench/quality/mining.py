"""Positive-aware hard-negative mining over a pool of several retrievers.

Naive mining takes the top-ranked non-positive documents as negatives, and on a corpus like FOMC statements,
where one paragraph is repeated almost word for word from meeting to meeting, those are often unlabelled
positives: training or scoring against them punishes the right answer. NV-Retriever's TopK-PercPos rule
keeps a candidate as a negative only when its score is below ``max_ratio`` (95%) of the positive's. The
candidates above that line are not thrown away: they are the likeliest false negatives, so they go to the
judge, and the qrels repair (``quality.repair``) can add them to the qrels.

The pool is the union of each retriever's top ``depth``: BM25 finds lexical look-alikes, dense models find
paraphrases, and a candidate found by several is more suspect. All candidates are then scored by one model
(the mean cosine of ``score_models``) so the ratio to the positive compares like with like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import numpy as np
import pyarrow as pa

from ..domain_pack import MiningConfig
from ..engine.parallel import Parallel

# What mining decided for a candidate.
NEGATIVE = "negative"  # a hard negative: below max_ratio of the positive's score, within per_query
TOO_CLOSE = "too_close"  # at or above max_ratio of the positive's score: a suspected positive
SKIPPED_TOP = "skipped_top"  # among the skip_top best-scored candidates
POOL = "pool"  # a safe candidate beyond per_query (used to fill reranking lists)
SYNTHETIC = "synthetic"  # an LLM-written negative for this query


@dataclass
class Candidate:
    query_id: str
    passage_id: str
    score: float  # mean cosine of query and candidate under the score models
    positive_score: float  # best cosine of the query and one of its positives
    rank: int  # 1-based rank among the query's candidates by score
    decision: str
    found_by: list[str] = field(default_factory=list)  # retrievers (or "llm") that put it in the pool

    @property
    def ratio(self) -> float:
        return self.score / self.positive_score if self.positive_score > 0 else float("inf")


CANDIDATE_SCHEMA = pa.schema([
    ("query_id", pa.string()), ("passage_id", pa.string()), ("score", pa.float64()),
    ("positive_score", pa.float64()), ("ratio", pa.float64()), ("rank", pa.int32()), ("decision", pa.string()),
    ("found_by", pa.list_(pa.string())),
])


def candidates_table(candidates: Sequence[Candidate]) -> pa.Table:
    rows = [{"query_id": c.query_id, "passage_id": c.passage_id, "score": c.score,
             "positive_score": c.positive_score, "ratio": min(c.ratio, 1e9), "rank": c.rank,
             "decision": c.decision, "found_by": c.found_by} for c in candidates]
    return pa.Table.from_pylist(rows, schema=CANDIDATE_SCHEMA)


def candidates_from_table(table: pa.Table) -> list[Candidate]:
    return [Candidate(r["query_id"], r["passage_id"], r["score"], r["positive_score"], r["rank"], r["decision"],
                      r["found_by"]) for r in table.to_pylist()]


def mine(
    corpus: pa.Table,
    queries: pa.Table,
    positives: Mapping[str, Sequence[str]],
    cfg: Optional[MiningConfig] = None,
    synthetic: Optional[Mapping[str, Sequence[str]]] = None,
    cache=None,
    language: str = "en",
    parallel: Optional[Parallel] = None,
) -> list[Candidate]:
    """Pooled, scored and classified candidates of every query.

    corpus: id, title, text (may include LLM-written negatives; they enter a query's pool only through
        ``synthetic``, never as another query's candidate, because each was written for one query).
    positives: query id -> its relevant corpus ids.
    synthetic: query id -> ids of the LLM-written negatives for it.
    parallel: where each retriever's search runs, in pieces of queries over its shared index (``ctx.parallel``:
        Ray tasks on the ray engine); pooling and scoring stay here, so both engines mine the same candidates.
    """
    from ..engine.embeddings import embed
    from ..evaluation.evaluate import document_texts, search

    cfg = cfg or MiningConfig()
    synthetic = synthetic or {}
    written = {p for ps in synthetic.values() for p in ps}
    qids, qtexts = queries.column("id").to_pylist(), queries.column("text").to_pylist()
    if not qids:
        return []
    found: list[dict[str, list[str]]] = [{} for _ in qids]
    collected = corpus.filter(pa.array([i not in written for i in corpus.column("id").to_pylist()]))
    depth = min(cfg.depth, collected.num_rows)
    for name in cfg.retrievers:
        hits = search(name, collected, queries, k=depth, cache=cache, language=language, parallel=parallel)
        for i, row in enumerate(hits):
            own = set(positives.get(qids[i], ()))
            for doc, _ in row:
                if doc not in own:
                    found[i].setdefault(doc, []).append(name)
    for i, q in enumerate(qids):
        for doc in synthetic.get(q, ()):
            found[i].setdefault(doc, []).append("llm")

    # One embedding per text and model, shared with evaluation through the cache.
    ids = corpus.column("id").to_pylist()
    row_of = {d: r for r, d in enumerate(ids)}
    vecs = [(embed(m, document_texts(corpus), cache, kind="passage"), embed(m, qtexts, cache, kind="query"))
            for m in cfg.score_models]

    def mean_cosine(i: int, rows: list[int]) -> np.ndarray:
        """Mean cosine over the score models of query i with the corpus rows."""
        return np.mean([docs[rows] @ qs[i] for docs, qs in vecs], axis=0)

    out: list[Candidate] = []
    for i, q in enumerate(qids):
        pos_rows = [row_of[p] for p in positives.get(q, ()) if p in row_of]
        pos_score = float(np.max(mean_cosine(i, pos_rows))) if pos_rows else 0.0
        pool = list(found[i])
        if not pool:
            continue
        scores = mean_cosine(i, [row_of[d] for d in pool])
        order = sorted(range(len(pool)), key=lambda j: (-scores[j], pool[j]))
        kept = 0
        for rank, j in enumerate(order, start=1):
            doc, score = pool[j], float(scores[j])
            ratio = score / pos_score if pos_score > 0 else float("inf")
            if "llm" in found[i][doc]:
                decision = SYNTHETIC
            elif rank <= cfg.skip_top:
                decision = SKIPPED_TOP
            elif ratio >= cfg.max_ratio:
                decision = TOO_CLOSE
            elif kept < cfg.per_query:
                decision, kept = NEGATIVE, kept + 1
            else:
                decision = POOL
            out.append(Candidate(q, doc, score, pos_score, rank, decision, sorted(found[i][doc])))
    return out


def judge_selection(candidates: Sequence[Candidate], cfg: Optional[MiningConfig] = None) -> list[Candidate]:
    """The candidates worth an LLM judgement: per query every too-close one (up to ``judge_max``), the
    ``judge_top`` closest negatives, and every LLM-written negative."""
    cfg = cfg or MiningConfig()
    by_query: dict[str, list[Candidate]] = {}
    for c in candidates:
        by_query.setdefault(c.query_id, []).append(c)
    picked: list[Candidate] = []
    for cands in by_query.values():
        cands = sorted(cands, key=lambda c: c.rank)
        close = [c for c in cands if c.decision in (TOO_CLOSE, SKIPPED_TOP)][: cfg.judge_max]
        negs = [c for c in cands if c.decision == NEGATIVE][: cfg.judge_top]
        picked += close + negs + [c for c in cands if c.decision == SYNTHETIC]
    return picked
