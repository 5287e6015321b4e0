"""Text normalisation and stable ids, shared by every reader.

Every document's text goes through ``normalize_text`` once, at ingest. Chunk offsets, dedup and the
published corpus all refer to that normalised text, so it must be deterministic and idempotent.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Line and page separators that some extractors emit (PDF form feeds, Unicode line/paragraph separators)
# mean "new line" to a reader; turn them into "\n" before the control characters are stripped.
_LINE_BREAKS = re.compile(r"\r\n|[\r\f\v\x1c\x1d\x1e\x85\u2028\u2029]")
# C0/C1 control characters except "\n" and "\t" (tabs are collapsed with spaces below), plus the BOM and
# zero-width space, which are invisible but break exact matching and dedup.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff\u200b]")
# Horizontal whitespace of any kind (tabs, no-break and typographic spaces), but not newlines.
_HSPACE = re.compile(r"[^\S\n]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")


def normalize_text(text: str) -> str:
    """Canonical form of a document's text.

    Unicode NFC; control characters removed (newlines kept); runs of spaces and tabs collapsed to one
    space; each line trimmed; three or more newlines collapsed to one paragraph break ("\\n\\n"); the
    whole text stripped. ``normalize_text(normalize_text(t)) == normalize_text(t)``.
    """
    text = unicodedata.normalize("NFC", text)
    text = _LINE_BREAKS.sub("\n", text)
    text = _CONTROL.sub("", text)
    text = _HSPACE.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip()


def normalize_title(title: str) -> str:
    """A title is one line: normalised like text, with every line break turned into a space."""
    return " ".join(normalize_text(title).split())


def stable_id(*parts: str, prefix: str = "doc") -> str:
    """A short id derived only from ``parts``: the same parts give the same id in every run.

    The parts are joined with a separator that cannot appear in normalised text, so ``("ab", "c")`` and
    ``("a", "bc")`` get different ids. 64 bits of sha256 keep collisions negligible for any corpus size
    buildbench handles.
    """
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return f"{prefix}-{digest[:16]}"
