"""Word-count bounds: drops empty texts, fragments and run-on generations."""

from __future__ import annotations

from typing import Sequence

from ..domain_pack import LengthConfig
from ..records import Drop
from .base import FilterResult, check_aligned


class LengthFilter:
    """Keep texts with ``cfg.min_words <= words <= cfg.max_words``.

    Words are whitespace-separated tokens of the raw text (punctuation attached), which is what a reader
    would count. Reasons: ``empty`` (nothing but whitespace), ``too_short``, ``too_long``.
    """

    name = "length"

    def __init__(self, cfg: LengthConfig | None = None, stage: str | None = None):
        self.cfg = cfg or LengthConfig()
        if stage:
            self.name = stage
        if self.cfg.min_words > self.cfg.max_words:
            raise ValueError(f"min_words {self.cfg.min_words} is above max_words {self.cfg.max_words}")

    def apply(
        self, ids: Sequence[str], texts: Sequence[str], refs: Sequence[str] | None = None
    ) -> FilterResult:
        check_aligned(ids, texts)
        lo, hi = self.cfg.min_words, self.cfg.max_words
        keep: list[bool] = []
        drops: list[Drop] = []
        for item_id, text in zip(ids, texts):
            n = len(text.split()) if text else 0
            if n == 0:
                reason, detail = "empty", "empty or whitespace-only text"
            elif n < lo:
                reason, detail = "too_short", f"{n} words, minimum {lo}"
            elif n > hi:
                reason, detail = "too_long", f"{n} words, maximum {hi}"
            else:
                keep.append(True)
                continue
            keep.append(False)
            drops.append(Drop(stage=self.name, item_id=item_id, reason=reason, detail=detail))
        return FilterResult(keep, drops)
