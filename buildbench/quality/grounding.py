"""Grounding: the citations a YourBench-style query quotes must be found in its source chunks.

A writer model that invents its citations has usually invented the facts behind its question too, so the
question's "answer" is not in the corpus. YourBench only scores citations; here a query whose citations
are not found is dropped. Queries without citations (persona queries) pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from difflib import SequenceMatcher

from ..domain_pack import GroundingConfig
from ..records import Drop
from .base import FilterResult, check_aligned

try:  # a faster drop-in when present; difflib gives the same kind of score
    from rapidfuzz import fuzz as _fuzz
except ImportError:  # pragma: no cover - depends on the environment
    _fuzz = None


def _normalise(text: str) -> str:
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    return " ".join(text.split())


def _partial_ratio(short: str, long: str) -> float:
    """Best similarity of ``short`` to any equally long window of ``long`` (rapidfuzz's partial_ratio)."""
    if len(short) > len(long):
        short, long = long, short
    if not short:
        return 0.0
    if short in long:
        return 1.0
    if _fuzz is not None:
        return _fuzz.partial_ratio(short, long) / 100.0
    # Windows start where a matching block would align short with long; autojunk off, because on text
    # over 200 characters it would junk spaces and common letters and miss the alignment.
    best = 0.0
    for a, b, size in SequenceMatcher(None, short, long, autojunk=False).get_matching_blocks():
        if not size:
            continue
        start = max(0, min(b - a, len(long) - len(short)))
        window = long[start : start + len(short)]
        best = max(best, SequenceMatcher(None, short, window, autojunk=False).ratio())
    return best


def citation_support(citation: str, chunk_texts: Sequence[str]) -> float:
    """How verbatim a citation is: 1.0 when it occurs in one of the chunks (case and spacing ignored),
    lower as it drifts from every window of them, 0.0 when empty."""
    quote = _normalise(citation).strip("\"' ")
    if not quote:
        return 0.0
    return max((_partial_ratio(quote, _normalise(t)) for t in chunk_texts), default=0.0)


def _cut(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


class CitationFilter:
    """Drop a query whose citations are not found in its source chunks.

    ``refs[i]`` = ``(citations, source_texts)``: the query's citations (None or empty: nothing to check,
    the query is kept) and the texts of the chunks it was written from (any one may hold a citation, so a
    multi-hop query can quote each of its chunks). A citation is supported when ``citation_support`` reaches
    ``cfg.min_citation_score``; the query is dropped (``unsupported_citation``) when fewer than
    ``cfg.min_supported`` of its citations are.
    """

    name = "grounding"

    def __init__(self, cfg: GroundingConfig | None = None, stage: str | None = None):
        self.cfg = cfg or GroundingConfig()
        if stage:
            self.name = stage

    def apply(self, ids: Sequence[str], texts: Sequence[str], refs: Sequence | None = None) -> FilterResult:
        if refs is None:
            raise ValueError("CitationFilter needs refs: (citations, source chunk texts) of each query")
        check_aligned(ids, texts, refs)
        stats = {"citations": 0, "citations_supported": 0, "queries_with_citations": 0}
        if not self.cfg.enabled:
            return FilterResult([True] * len(ids), [], stats)
        keep: list[bool] = []
        drops: list[Drop] = []
        for item_id, ref in zip(ids, refs):
            citations, sources = ref if ref is not None else (None, [])
            citations = [c for c in (citations or []) if c is not None]
            if not citations:
                keep.append(True)
                continue
            scores = [citation_support(c, list(sources or [])) for c in citations]
            supported = sum(s >= self.cfg.min_citation_score for s in scores)
            stats["citations"] += len(citations)
            stats["citations_supported"] += supported
            stats["queries_with_citations"] += 1
            share = supported / len(citations)
            ok = share >= self.cfg.min_supported
            keep.append(ok)
            if not ok:
                worst = min(range(len(scores)), key=lambda j: scores[j])
                drops.append(Drop(
                    self.name, item_id, "unsupported_citation",
                    f"{supported} of {len(citations)} citations found in its chunks (need "
                    f"{self.cfg.min_supported:.2f}); worst '{_cut(citations[worst])}' scores {scores[worst]:.2f} "
                    f"(min {self.cfg.min_citation_score:.2f})",
                ))
        return FilterResult(keep, drops, stats)
