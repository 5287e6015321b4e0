"""A query's and a passage's words as the support checks compare them: three letters or more, cut to a stem."""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W_][\w'’\-.%$]*")
# "borrowings" and "borrowing" are one word: stems of five letters, with no stemmer to install or tune.
PREFIX = 5


def words(text: str) -> list[str]:
    """Its words of three letters or more, lower-cased, without the quotes and dots around them."""
    return [w.strip(".'’-").lower() for w in _WORD.findall(text) if len(w.strip(".'’-")) > 2]


def word_stems(text: str) -> set[str]:
    """A text's words of three letters or more, each cut to its first five letters ("borrowings" -> "borro")."""
    return {w[:PREFIX] for w in words(text)}


def singular(stem: str) -> str:
    """A word stem without a plural "s", so "bond" and "bonds" are one word ("class" keeps its "ss")."""
    return stem[:-1] if len(stem) > 3 and stem.endswith("s") and not stem.endswith("ss") else stem
