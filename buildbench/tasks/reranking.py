"""Candidate lists for reranking tasks: the ``top_ranked`` config mteb scores each query on.

Each query's list holds its relevant documents, then its mined hard negatives, then documents from a
retrieval pool, up to a fixed size, in a shuffled order so the position of a positive says nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa

log = logging.getLogger(__name__)

TOP_RANKED_SCHEMA = pa.schema([("query-id", pa.string()), ("corpus-ids", pa.list_(pa.string()))])


def _rng(seed: int, query_id: str) -> np.random.Generator:
    """A generator seeded by (seed, query id): a query's order does not depend on the other queries."""
    digest = hashlib.sha256(f"{seed}\x00{query_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def candidate_lists(
    query_ids: Iterable[str],
    positives: Mapping[str, Sequence[str]],
    negatives: Mapping[str, Sequence[str]],
    pool: Mapping[str, Sequence[str]],
    size: int,
    seed: int,
) -> pa.Table:
    """One candidate list per query with a positive: columns ``query-id`` and ``corpus-ids``.

    positives: query id -> its relevant documents; every one goes into the list, even past ``size`` (a list
        that drops a positive misjudges the models that find it).
    negatives: query id -> hard negatives, best first; taken in order after the positives.
    pool: query id -> documents from retrievers, ranked; fill the list up to ``size``.
    Duplicates and negatives or pool entries that are positives are skipped. The final list is shuffled with a
    generator seeded by (seed, query id). Queries without a positive are left out: they cannot be scored.
    """
    if size < 1:
        raise ValueError("size must be at least 1")
    out_q: list[str] = []
    out_lists: list[list[str]] = []
    oversized = []
    for qid in query_ids:
        pos = list(dict.fromkeys(d for d in positives.get(qid, ()) if d))
        if not pos:
            continue
        chosen = list(pos)
        seen = set(chosen)
        for source in (negatives.get(qid, ()), pool.get(qid, ())):
            for doc in source:
                if len(chosen) >= size:
                    break
                if doc and doc not in seen:
                    chosen.append(doc)
                    seen.add(doc)
        if len(pos) > size:
            oversized.append(qid)
        order = _rng(seed, qid).permutation(len(chosen))
        out_q.append(qid)
        out_lists.append([chosen[i] for i in order])
    if oversized:
        log.warning("%d queries have more positives than %d candidates; their lists hold every positive",
                    len(oversized), size)
    short = sum(1 for lst in out_lists if len(lst) < size)
    if short:
        log.info("%d of %d candidate lists are shorter than %d: too few negatives and pooled documents",
                 short, len(out_lists), size)
    return pa.Table.from_arrays(
        [pa.array(out_q, pa.string()), pa.array(out_lists, pa.list_(pa.string()))], schema=TOP_RANKED_SCHEMA
    )
