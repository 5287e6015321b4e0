"""What every filter returns, and the text normalisation the filters share.

A filter is any object with a ``name`` and
``apply(ids, texts, refs=None) -> FilterResult``. Filters take plain lists (or anything indexable, such as
an Arrow column turned into a list) so a stage can feed them columns without building records per row.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

from ..records import Drop


@dataclass
class FilterResult:
    """The outcome of one filter over one batch.

    ``keep`` is aligned with the input; ``drops`` holds one ``Drop`` per ``False`` in ``keep``, in input order.
    ``stats`` holds filter-specific counts for a run report (e.g. ``MinHashDedup``'s ``distinct_numbers``).
    """

    keep: list[bool]
    drops: list[Drop] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        kept = sum(self.keep)
        return {"in": len(self.keep), "kept": kept, "dropped": len(self.keep) - kept}

    def kept_indices(self) -> list[int]:
        return [i for i, k in enumerate(self.keep) if k]

    def reasons(self) -> dict[str, int]:
        """Dropped items per reason code, for a run report."""
        out: dict[str, int] = {}
        for d in self.drops:
            out[d.reason] = out.get(d.reason, 0) + 1
        return out


@runtime_checkable
class Filter(Protocol):
    name: str

    def apply(
        self, ids: Sequence[str], texts: Sequence[str], refs: Sequence[str] | None = None
    ) -> FilterResult: ...


def check_aligned(ids: Sequence[str], texts: Sequence[str], refs: Sequence[str] | None = None) -> None:
    """Misaligned columns would silently drop the wrong rows, so they are a programming error."""
    if len(ids) != len(texts):
        raise ValueError(f"ids and texts differ in length ({len(ids)} vs {len(texts)})")
    if refs is not None and len(refs) != len(texts):
        raise ValueError(f"refs and texts differ in length ({len(refs)} vs {len(texts)})")


_PUNCT = re.compile(r"[^\w\s]+")
# Punctuation between digits becomes a space, so "2.5%" and "25%" (or "3-1/4" and "314") stay different.
_DIGIT_PUNCT = re.compile(r"(\d)[^\w\s]+(?=\d)")
# The same deletion as _PUNCT for ASCII characters, as a str.translate table: four times faster than the
# regex, and most text is ASCII.
_ASCII_PUNCT = {c: None for c in range(128) if _PUNCT.fullmatch(chr(c))}


def normalize_text(text: str) -> str:
    """Casefold, strip punctuation, collapse whitespace: the form two copies of a text share.

    Punctuation (anything that is neither a word character nor a space) is removed rather than replaced
    by a space, so ``don't`` and ``dont`` agree; between two digits it becomes a space, so numbers keep
    their value (``2.5`` -> ``2 5``, not ``25``). Non-ASCII text is NFKC-normalised first so full-width and
    ligature forms compare equal to their plain spelling.
    """
    text = _DIGIT_PUNCT.sub(r"\1 ", text)
    if text.isascii():
        text = text.lower().translate(_ASCII_PUNCT)
    else:
        text = _PUNCT.sub("", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(text.split())


def words(text: str) -> list[str]:
    """The normalised words of a text."""
    norm = normalize_text(text)
    return norm.split(" ") if norm else []
