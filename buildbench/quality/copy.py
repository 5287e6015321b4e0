"""Drops queries that copy their source chunk or talk about "the passage" instead of the subject.

A query lifted from its chunk measures string matching, not retrieval; a query that says "according to
the passage" only makes sense to someone already holding the passage. Both are cheap to catch.
"""

from __future__ import annotations

import re
from typing import Sequence

from ..domain_pack import CopyConfig
from ..records import Drop
from .base import FilterResult, check_aligned, words

# A query that is a verbatim span of its chunk this long is a copy whatever its n-gram overlap.
MIN_VERBATIM_WORDS = 8

# "the text" etc. as a noun phrase; the plural ("documents") and "context" are left alone because real
# questions use them ("documents needed for a mortgage", "in the context of rising rates").
_SOURCE_MENTION = re.compile(
    r"\b(?:the|this|that|above|given|following|provided|said)\s+"
    r"(?:passage|document|text|article|excerpt|paragraph|chunk|snippet|extract)\b"
    r"|\b(?:according to|based on|as stated in|mentioned in|described in)\s+the\s+(?:author|source|context)\b",
    re.IGNORECASE,
)


def _ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


class CopyFilter:
    """Drop a query that copies its chunk (``refs`` = the chunk text of each query).

    - ``mentions_source``: the query refers to "the passage", "this article", "the given text", ...
    - ``copied_from_chunk``: at least ``cfg.max_overlap`` of the query's word ``cfg.ngram``-grams occur in the
      chunk, or the query is a verbatim span of the chunk of at least 8 words, or it holds a verbatim span of
      ``cfg.max_span`` words. Words are compared after
      normalisation (casefold, no punctuation). Queries shorter than ``cfg.ngram`` words have no n-grams and
      are only checked for mentions; the length filter is the place for them.
    """

    name = "copy"

    def __init__(self, cfg: CopyConfig | None = None, stage: str | None = None):
        self.cfg = cfg or CopyConfig()
        if stage:
            self.name = stage

    def apply(
        self, ids: Sequence[str], texts: Sequence[str], refs: Sequence[str] | None = None
    ) -> FilterResult:
        if refs is None:
            raise ValueError("CopyFilter needs refs: the source chunk text of each query")
        check_aligned(ids, texts, refs)
        keep: list[bool] = []
        drops: list[Drop] = []
        for item_id, text, ref in zip(ids, texts, refs):
            drop = self.check(text, ref or "")
            keep.append(drop is None)
            if drop is not None:
                drops.append(Drop(stage=self.name, item_id=item_id, reason=drop[0], detail=drop[1]))
        return FilterResult(keep, drops)

    def overlap(self, query: str, chunk: str) -> float | None:
        """Fraction of the query's word n-grams found in the chunk; None if the query has none."""
        q = _ngrams(words(query), self.cfg.ngram)
        if not q:
            return None
        c = set(_ngrams(words(chunk), self.cfg.ngram))
        return sum(g in c for g in q) / len(q)

    def check(self, query: str, chunk: str) -> tuple[str, str] | None:
        m = _SOURCE_MENTION.search(query)
        if m:
            return "mentions_source", f"query refers to its source: '{m.group(0)}'"
        q_words = words(query)
        c_words = words(chunk)
        if len(q_words) >= MIN_VERBATIM_WORDS and f" {' '.join(q_words)} " in f" {' '.join(c_words)} ":
            return "copied_from_chunk", f"query is a verbatim {len(q_words)}-word span of its chunk (overlap 1.00)"
        span = set(_ngrams(q_words, self.cfg.max_span)) & set(_ngrams(c_words, self.cfg.max_span))
        if span:
            return "copied_from_chunk", (f"query holds a verbatim span of its chunk of {self.cfg.max_span} or more "
                                         f"words: '{' '.join(next(iter(span)))}'")
        n = self.cfg.ngram
        q = _ngrams(q_words, n)
        if q:
            c = set(_ngrams(c_words, n))
            found = sum(g in c for g in q)
            if found / len(q) >= self.cfg.max_overlap:
                return (
                    "copied_from_chunk",
                    f"overlap {found / len(q):.2f}: {found} of {len(q)} query word {n}-grams occur in the chunk "
                    f"(max {self.cfg.max_overlap:.2f})",
                )
        return None


class PromptEchoFilter:
    """Drop a query that repeats the prompt's own instructions (``refs`` = the persona and style text it was
    given), e.g. "I need a detailed information need of 20 to 40 words": small models echo their prompt."""

    name = "prompt_echo"

    def __init__(self, max_overlap: float = 0.5, ngram: int = 3, stage: str | None = None):
        self._copy = CopyFilter(CopyConfig(max_overlap=max_overlap, ngram=ngram))
        self.max_overlap = max_overlap
        if stage:
            self.name = stage

    def apply(self, ids: Sequence[str], texts: Sequence[str], refs: Sequence[str] | None = None) -> FilterResult:
        if refs is None:
            raise ValueError("PromptEchoFilter needs refs: the instruction text each query was written from")
        check_aligned(ids, texts, refs)
        keep, drops = [], []
        for item_id, text, ref in zip(ids, texts, refs):
            share = self._copy.overlap(text, ref or "")
            echoed = share is not None and share >= self.max_overlap
            keep.append(not echoed)
            if echoed:
                drops.append(Drop(self.name, item_id, "echoes_prompt",
                                  f"{share:.2f} of its word {self._copy.cfg.ngram}-grams repeat the prompt's "
                                  f"instructions (max {self.max_overlap:.2f})"))
        return FilterResult(keep, drops)
