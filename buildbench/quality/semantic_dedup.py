"""Semantic deduplication: one query per cluster of queries that mean the same thing.

MinHash catches reworded copies that share most words; a small LLM asked the same thing twice also writes
"what was the rate increase" and "by how much was the rate raised", which share almost none. Such twins
count one information need twice in the benchmark. Queries are embedded, pairs at or above a cosine
threshold are linked (single linkage), and each cluster keeps its most central member, the one that best
stands for the others (SemDeDup keeps one per cluster the same way).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..domain_pack import SemanticDedupConfig
from ..records import Drop
from .base import FilterResult, check_aligned

BLOCK_FLOATS = 4_000_000  # cosines held at once (16 MB of float32), whatever the batch size


def similar_pairs(vecs: np.ndarray, threshold: float, block_rows: int | None = None) -> np.ndarray:
    """All pairs ``(i, j)``, ``i < j``, of rows of ``vecs`` (unit vectors) with cosine >= ``threshold``.

    Computed a block of rows at a time against the rows from the block on, so memory stays at
    ``block_rows x n`` cosines instead of ``n x n``. Returns an int64 array of shape (pairs, 2), sorted.
    """
    n = vecs.shape[0]
    if n < 2:
        return np.zeros((0, 2), dtype=np.int64)
    block = block_rows or max(1, BLOCK_FLOATS // n)
    found = []
    for start in range(0, n, block):
        stop = min(n, start + block)
        scores = vecs[start:stop] @ vecs[start:].T  # columns are rows start.. n-1
        rows, cols = np.nonzero(scores >= threshold)
        i, j = rows + start, cols + start
        upper = j > i
        found.append(np.stack([i[upper], j[upper]], axis=1))
    pairs = np.concatenate(found).astype(np.int64, copy=False)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def cluster_vectors(vecs: np.ndarray, threshold: float, block_rows: int | None = None) -> list[list[int]]:
    """Single-linkage clusters (union-find over ``similar_pairs``) of size > 1, each sorted, ordered by
    their first member."""
    n = vecs.shape[0]
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in similar_pairs(vecs, threshold, block_rows).tolist():
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    groups: dict[int, list[int]] = {}
    for x in range(n):
        groups.setdefault(find(x), []).append(x)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


TIE = 1e-9  # mean cosines this close are equal: rounding must not pick between the two members of a pair


def most_central(vecs: np.ndarray, members: Sequence[int]) -> int:
    """The member with the highest mean cosine to the other members; ties (within ``TIE``) go to the earliest.

    Uses sum_j v_i.v_j = v_i.(sum of the vectors), in float64, so a large cluster needs no square matrix.
    """
    members = list(members)
    sub = vecs[members].astype(np.float64)
    means = (sub @ sub.sum(axis=0) - np.einsum("ij,ij->i", sub, sub)) / max(1, len(members) - 1)
    first = int(np.nonzero(means >= means.max() - TIE)[0][0])  # members are in input order
    return members[first]


class SemanticDedup:
    """Drop queries whose embedding (``cfg.model``) is within ``cfg.threshold`` cosine of another's, keeping the
    most central query of each single-linkage cluster. No refs."""

    name = "semantic_dedup"

    def __init__(self, cfg: SemanticDedupConfig, cache=None, stage: str | None = None):
        self.cfg = cfg
        self.cache = cache
        if stage:
            self.name = stage

    def apply(self, ids: Sequence[str], texts: Sequence[str], refs: Sequence | None = None) -> FilterResult:
        check_aligned(ids, texts, refs)
        n = len(ids)
        keep = [True] * n
        stats = {"clusters": 0, "largest_cluster": 0}
        if not self.cfg.enabled or n < 2:
            return FilterResult(keep, [], stats)
        from ..engine.embeddings import embed

        vecs = embed(self.cfg.model, list(texts), self.cache)
        clusters = cluster_vectors(vecs, self.cfg.threshold)
        dropped: dict[int, str] = {}
        for members in clusters:
            kept = most_central(vecs, members)
            for m in members:
                if m != kept:
                    keep[m] = False
                    cos = float(vecs[m] @ vecs[kept])
                    dropped[m] = f"cosine {cos:.2f} to kept {ids[kept]} (cluster of {len(members)})"
        drops = [Drop(self.name, ids[i], "semantic_duplicate", dropped[i]) for i in sorted(dropped)]
        stats["clusters"] = len(clusters)
        stats["largest_cluster"] = max((len(c) for c in clusters), default=0)
        return FilterResult(keep, drops, stats)
