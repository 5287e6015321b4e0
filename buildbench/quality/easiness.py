"""Easiness: drop queries that any retriever answers by string matching alone.

A query that repeats its positive's words, that BM25 puts first by a wide margin, and whose embedding sits
closer to its positive than almost every other query's does, separates no two models: all of them get it
right. NeMo's easiness filter uses the embedding signal alone; here up to three signals vote (``combine``
"all" by default, so a query is dropped only when they agree), which spares paraphrased queries that merely
share a topic word with their passage.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from ..domain_pack import EasinessConfig
from ..records import Drop
from .base import FilterResult, check_aligned, words

# Function words and question words: they say nothing about whether a query copies its passage. Words
# under MIN_WORD_CHARS characters are dropped anyway, so the list leaves them out.
STOP_WORDS = frozenset({
    "and", "are", "been", "being", "but", "can", "could", "did", "does", "doing", "for", "from", "had", "has",
    "have", "having", "how", "into", "its", "may", "might", "must", "not", "our", "over", "should", "than",
    "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "through", "under",
    "until", "was", "were", "what", "when", "where", "which", "while", "who", "whom", "whose", "why", "will",
    "with", "would", "you", "your", "about", "after", "again", "against", "all", "any", "because", "before",
    "between", "both", "during", "each", "few", "more", "most", "other", "same", "some", "such", "only",
    "own", "very", "just", "also", "out", "off", "once", "here", "further", "nor", "too", "down",
})
MIN_WORD_CHARS = 3
MIN_DENSE_BATCH = 5  # a percentile of fewer cosines says nothing about the batch


class EasinessFilter:
    """Drop a trivially easy query (``refs[i]`` = the positive corpus ids of query i, each in ``corpus``).

    Signals (each off when its threshold in ``cfg`` is None):

    - lexical: at least ``cfg.max_word_overlap`` of the query's content words (stop words and words under 3
      characters removed; no stop-word list for languages other than English) occur in its positives;
    - bm25: BM25 ranks a positive first, with no other hit or a score at least ``cfg.bm25_margin`` times the
      best non-positive hit's;
    - dense: the cosine (``cfg.model``) of the query and its best positive is at or above the
      ``cfg.percentile``-th percentile of the batch's cosines; off for batches under 5 queries (a
      percentile of fewer values is meaningless).

    A query without positives is never easy.

    ``cfg.combine`` "all" drops a query when every enabled signal fires, "any" when one does.
    """

    name = "easiness"

    def __init__(self, cfg: EasinessConfig, corpus: pa.Table, cache=None, language: str = "en",
                 stage: str | None = None):
        self.cfg = cfg
        self.corpus = corpus
        self.cache = cache
        self.language = language
        self.stop_words = STOP_WORDS if language == "en" else frozenset()
        if stage:
            self.name = stage
        self._doc_text: dict[str, str] | None = None

    def _doc_texts(self) -> dict[str, str]:
        if self._doc_text is None:
            from ..evaluation.evaluate import document_texts

            self._doc_text = dict(zip(self.corpus.column("id").to_pylist(), document_texts(self.corpus)))
        return self._doc_text

    def content_words(self, text: str) -> list[str]:
        return [w for w in words(text) if len(w) >= MIN_WORD_CHARS and w not in self.stop_words]

    def word_overlap(self, query: str, positives: Sequence[str]) -> float | None:
        """Share of the query's content words found among its positives' words; None when it has none."""
        q = self.content_words(query)
        if not q:
            return None
        found = set()
        for text in positives:
            found.update(words(text))
        return sum(w in found for w in q) / len(q)

    def apply(self, ids: Sequence[str], texts: Sequence[str], refs: Sequence | None = None) -> FilterResult:
        if refs is None:
            raise ValueError("EasinessFilter needs refs: the positive corpus ids of each query")
        check_aligned(ids, texts, refs)
        cfg = self.cfg
        stats: dict[str, float] = {"easy_lexical": 0, "easy_bm25": 0, "easy_dense": 0}
        n = len(ids)
        if not cfg.enabled or n == 0:
            return FilterResult([True] * n, [], stats)
        doc_text = self._doc_texts()
        positives = [[r] if isinstance(r, str) else list(r or []) for r in refs]
        for qid, pos in zip(ids, positives):
            missing = [p for p in pos if p not in doc_text]
            if missing:
                raise ValueError(f"query {qid}: positive ids not in the corpus: {missing[:3]}")

        signals: list[list[bool]] = []  # one list per enabled signal, aligned with the queries
        notes: list[list[str]] = [[] for _ in range(n)]

        if cfg.max_word_overlap is not None:
            easy = []
            for i, (text, pos) in enumerate(zip(texts, positives)):
                share = self.word_overlap(text, [doc_text[p] for p in pos])
                fired = share is not None and share >= cfg.max_word_overlap
                easy.append(fired)
                notes[i].append("no content words" if share is None else
                                f"word overlap {share:.2f}" + ("" if fired else f" < {cfg.max_word_overlap:.2f}"))
            signals.append(easy)
            stats["easy_lexical"] = sum(easy)

        if cfg.bm25_margin is not None:
            easy = self._bm25(texts, positives, notes)
            signals.append(easy)
            stats["easy_bm25"] = sum(easy)

        if cfg.percentile is not None:
            easy, threshold = self._dense(texts, positives, doc_text, notes)
            signals.append(easy)
            stats["easy_dense"] = sum(easy)
            if threshold is not None:
                stats["dense_threshold"] = float(threshold)

        keep, drops = [], []
        for i, item_id in enumerate(ids):
            votes = [s[i] for s in signals]
            easy = bool(votes) and (all(votes) if cfg.combine == "all" else any(votes))
            keep.append(not easy)
            if easy:
                drops.append(Drop(self.name, item_id, "trivially_easy", ", ".join(notes[i])))
        return FilterResult(keep, drops, stats)

    def _bm25(self, texts: Sequence[str], positives: list[list[str]], notes: list[list[str]]) -> list[bool]:
        """BM25 signal. The runner-up is the best hit that is not a positive, so a query with two positives
        is judged against the corpus, not against its other positive (k grows with the positives)."""
        from ..evaluation.evaluate import search

        k = min(self.corpus.num_rows, 1 + max((len(p) for p in positives), default=1))
        queries = pa.table({"id": [str(i) for i in range(len(texts))], "text": list(texts)})
        hits = search("bm25", self.corpus, queries, k=max(2, k), language=self.language)
        margin = self.cfg.bm25_margin
        easy = []
        for i, (row, pos) in enumerate(zip(hits, positives)):
            pos_set = set(pos)
            if not row or row[0][0] not in pos_set:
                easy.append(False)
                notes[i].append("BM25 positive not first")
                continue
            top = row[0][1]
            others = [s for doc, s in row[1:] if doc not in pos_set]
            if not others:
                easy.append(True)
                notes[i].append("BM25 positive first, no other hit")
                continue
            ratio = top / others[0] if others[0] > 0 else float("inf")
            fired = bool(ratio >= margin)
            easy.append(fired)
            notes[i].append(f"BM25 positive first by {ratio:.1f}x" + ("" if fired else f" < {margin:g}x"))
        return easy

    def _dense(self, texts: Sequence[str], positives: list[list[str]], doc_text: dict[str, str],
               notes: list[list[str]]) -> tuple[list[bool], float | None]:
        """Dense signal: cosine to the best positive against the batch's ``cfg.percentile``-th percentile."""
        from ..engine.embeddings import embed

        n = len(texts)
        label = f"p{self.cfg.percentile:g}"
        judged = [i for i, pos in enumerate(positives) if pos]  # a query without positives has no cosine
        if len(judged) < MIN_DENSE_BATCH:
            for note in notes:
                note.append(f"cosine not judged (batch of {len(judged)} < {MIN_DENSE_BATCH})")
            return [False] * n, None
        pos_ids = sorted({p for pos in positives for p in pos})
        row = {p: j for j, p in enumerate(pos_ids)}
        vecs = embed(self.cfg.model, [texts[i] for i in judged] + [doc_text[p] for p in pos_ids], self.cache)
        q, d = vecs[: len(judged)], vecs[len(judged) :]
        cos = np.array([float(np.max(d[[row[p] for p in positives[i]]] @ q[k])) for k, i in enumerate(judged)],
                       dtype=np.float64)
        threshold = float(np.percentile(cos, self.cfg.percentile))
        easy = [False] * n
        for i, c in zip(judged, cos):
            easy[i] = bool(c >= threshold)
            notes[i].append(f"cosine {c:.2f} {'>=' if easy[i] else '<'} {label} {threshold:.2f}")
        return easy, threshold
