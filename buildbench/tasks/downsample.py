"""MMTEB-style downsampled corpora, and whether a downsampled task still ranks models like the full one.

MMTEB shrinks large retrieval corpora by keeping every judged-relevant document plus the documents several
retrievers rank highest for each query (hard to tell apart from the relevant ones), optionally padded with
random documents. ``ranking_agreement`` then checks that the models come out in the same order.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import require

log = logging.getLogger(__name__)


def downsample_corpus(
    corpus: pa.Table,
    qrels: pa.Table,
    pools: Mapping[str, Mapping[str, Sequence[str]]],
    top_k: int,
    corpus_size: int | None,
    seed: int,
) -> tuple[pa.Table, dict[str, Any]]:
    """The rows of ``corpus`` to keep, in their original order, and what was kept.

    Kept: every document with a qrels score above 0 (gold), each query's ``top_k`` from every retriever's pool
    (pooled), then, when ``corpus_size`` is larger, a random fill seeded by ``seed`` from the other documents.
    When ``corpus_size`` is smaller than gold + pooled, gold stays and pooled documents are kept by their best
    rank across retrievers and queries (ties: pooled more often, then earlier in the corpus) until the size
    is reached; gold is never dropped, even if it alone exceeds the size.

    pools: retriever name -> query id -> ranked corpus ids (ids not in the corpus are ignored).
    Stats: ``full``, ``kept``, ``gold``, ``pooled`` (non-gold pooled documents kept), ``random_fill``,
    ``size_target``, ``pooled_candidates`` (non-gold pooled documents before any cut), and a ``note`` when
    the target forced a cut or could not be met.
    """
    if top_k < 0:
        raise ValueError("top_k must not be negative")
    if corpus_size is not None and corpus_size < 0:
        raise ValueError("corpus_size must not be negative")
    ids = corpus.column("id").to_pylist()
    row_of: dict[str, int] = {}
    for i, doc in enumerate(ids):
        row_of.setdefault(doc, i)

    gold = {
        c for c, s in zip(qrels.column("corpus-id").to_pylist(), qrels.column("score").to_pylist())
        if s is not None and s > 0 and c in row_of
    }
    best_rank: dict[str, int] = {}
    hits: dict[str, int] = {}
    for name in sorted(pools):
        for ranked in pools[name].values():
            for rank, doc in enumerate(list(ranked)[:top_k]):
                if doc in row_of and doc not in gold:
                    best_rank[doc] = min(rank, best_rank.get(doc, rank))
                    hits[doc] = hits.get(doc, 0) + 1
    pooled = sorted(best_rank, key=lambda d: (best_rank[d], -hits[d], row_of[d]))

    stats: dict[str, Any] = {
        "full": corpus.num_rows,
        "kept": 0,
        "gold": len(gold),
        "pooled": len(pooled),
        "random_fill": 0,
        "size_target": corpus_size,
        "pooled_candidates": len(pooled),
    }
    keep = set(gold)
    if corpus_size is not None and corpus_size < len(gold) + len(pooled):
        room = max(0, corpus_size - len(gold))
        pooled = pooled[:room]
        stats["pooled"] = len(pooled)
        if len(gold) > corpus_size:
            stats["note"] = (
                f"the {len(gold)} gold documents alone exceed the target of {corpus_size}; all gold kept, "
                "no pooled or random documents added"
            )
        else:
            stats["note"] = (
                f"target {corpus_size} is below gold + pooled ({len(gold)} + {stats['pooled_candidates']}); "
                f"all gold kept, {len(pooled)} pooled documents kept by best rank"
            )
        log.warning("downsample: %s", stats["note"])
    keep.update(pooled)

    if corpus_size is not None and corpus_size > len(keep):
        rest = [i for i, doc in enumerate(ids) if doc not in keep]
        n_fill = min(corpus_size - len(keep), len(rest))
        picked = np.random.default_rng(seed).choice(len(rest), size=n_fill, replace=False) if n_fill else []
        fill_rows = {rest[j] for j in picked}
        stats["random_fill"] = len(fill_rows)
        if n_fill < corpus_size - len(keep):
            stats["note"] = f"the corpus has only {corpus.num_rows} documents; the target {corpus_size} is not met"
    else:
        fill_rows = set()

    rows = [i for i, doc in enumerate(ids) if doc in keep or i in fill_rows]
    sub = corpus.take(pa.array(rows, pa.int64()))
    stats["kept"] = sub.num_rows
    log.info(
        "downsampled corpus %d -> %d documents (gold %d, pooled %d, random %d)",
        stats["full"], stats["kept"], stats["gold"], stats["pooled"], stats["random_fill"],
    )
    return sub, stats


def _order(scores: Mapping[str, float]) -> list[str]:
    """Models best first; ties by name, so the order is deterministic."""
    return sorted(scores, key=lambda m: (-float(scores[m]), m))


def _finite_or_none(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def ranking_agreement(full: Mapping[str, float], sub: Mapping[str, float]) -> dict[str, Any]:
    """How well the model ranking on a downsampled task agrees with the ranking on the full task.

    full, sub: model name -> main score (e.g. nDCG@10) on each task. Models present in only one are left out
    (listed under ``dropped``). Returns ``spearman_rho`` and ``kendall_tau`` (scipy.stats; None with a
    ``note`` when fewer than 3 models are compared, or when a side's scores are all equal and the correlation is
    undefined), the two orderings (best first) and each model's pair of scores.
    """
    models = sorted(m for m in full if m in sub)
    dropped = sorted(set(full).symmetric_difference(sub))
    f = {m: float(full[m]) for m in models}
    s = {m: float(sub[m]) for m in models}
    out: dict[str, Any] = {
        "models": len(models),
        "spearman_rho": None,
        "kendall_tau": None,
        "full_order": _order(f),
        "sub_order": _order(s),
        "scores": {m: {"full": f[m], "sub": s[m]} for m in models},
    }
    if dropped:
        out["dropped"] = dropped
    if len(models) < 3:
        out["note"] = f"{len(models)} models compared; rank correlation needs at least 3"
        return out
    stats = require("scipy.stats", "eval", "Rank agreement of downsampled tasks")
    x = [f[m] for m in models]
    y = [s[m] for m in models]
    if len(set(x)) == 1 or len(set(y)) == 1:
        # scipy would warn and return nan: a ranking with every model tied carries no order to compare.
        out["note"] = "every model has the same score on one side; rank correlation is undefined"
        return out
    rho = _finite_or_none(stats.spearmanr(x, y).statistic)
    tau = _finite_or_none(stats.kendalltau(x, y).statistic)
    out["spearman_rho"], out["kendall_tau"] = rho, tau
    if rho is None or tau is None:
        out["note"] = "rank correlation is undefined for these scores"
    return out
