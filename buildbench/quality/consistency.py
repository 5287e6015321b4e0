"""Round-trip consistency: a query must find its own chunk.

A small LLM often drifts off its passage ("I need a car loan" for a paragraph on the discount rate). Such a
query has no correct answer in the corpus, so the benchmark would score every model wrong on it. Following
Promptagator's round-trip filter, a query is kept when at least one cheap retriever ranks its source chunk
within the top ``k``. Several retrievers and a loose ``k`` keep hard, paraphrased queries: this removes
queries that no retriever connects to their chunk, not queries that are merely hard.
"""

from __future__ import annotations

from typing import Optional, Sequence

import pyarrow as pa

from ..records import Drop
from .base import FilterResult, check_aligned


class RoundTripFilter:
    name = "round_trip"

    def __init__(self, corpus: pa.Table, retrievers: Sequence[str] = ("bm25", "static"), k: int = 20,
                 cache=None, language: str = "en", stage: Optional[str] = None):
        """``corpus``: the task's corpus (id, title, text). ``retrievers``: names understood by
        ``buildbench.evaluation.evaluate.retrieve`` (bm25, static, minilm, a sentence-transformers path).
        ``k``: how deep the source chunk may rank and still count as found."""
        self.corpus = corpus
        self.retrievers = list(retrievers)
        self.k = k
        self.cache = cache
        self.language = language
        self.name = self.stage = stage or self.name

    def apply(self, ids: Sequence[str], texts: Sequence[str], refs: Sequence[str] | None = None) -> FilterResult:
        """``refs``: the source chunk id of each query, or a list of them (multi-hop: any one counts)."""
        from ..evaluation.evaluate import retrieve

        check_aligned(ids, texts, refs)
        if refs is None:
            raise ValueError("RoundTripFilter needs refs: the source chunk id of each query")
        if not ids:
            return FilterResult(keep=[])
        k = min(self.k, self.corpus.num_rows)
        queries = pa.table({"id": list(ids), "text": list(texts)})
        best: list[Optional[int]] = [None] * len(ids)  # best rank of the source chunk over retrievers
        found_by = {r: 0 for r in self.retrievers}
        for name in self.retrievers:
            rankings = retrieve(name, self.corpus, queries, k=k, cache=self.cache, language=self.language)
            for i, (ranked, source) in enumerate(zip(rankings, refs)):
                sources = source if isinstance(source, (list, tuple)) else [source]
                ranks = [ranked.index(s) + 1 for s in sources if s in ranked]
                if ranks:
                    found_by[name] += 1
                    best[i] = min(ranks) if best[i] is None else min(best[i], *ranks)
        keep = [b is not None for b in best]
        drops = [
            Drop(self.stage, qid, "source_not_retrieved",
                 f"its chunk {src if isinstance(src, str) else ' / '.join(src)} is not in the top {k} of "
                 f"{', '.join(self.retrievers)}")
            for qid, src, b in zip(ids, refs, best) if b is None
        ]
        stats = {f"found_by_{r}": n for r, n in found_by.items()}
        return FilterResult(keep=keep, drops=drops, stats=stats)
