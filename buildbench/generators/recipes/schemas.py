"""Output models of the structured recipes, and the JSON-schema text a request carries.

Each model is the single source of truth for one output: the same class becomes the grammar the backend
samples under (``schema_json``) and the validator its text is parsed with (``structured.parse_structured``).
Length limits live here on purpose: a grammar with ``maxLength`` closes a rambling string instead of running
into ``max_tokens``, which is the commonest way a tiny model's JSON breaks.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints


def _one_line_with_a_word(text: str) -> str:
    # The llama.cpp grammar lets raw newlines into strings, and queries, answers and quotes are one line.
    # Small models fill a field with "..." or "?" when they have nothing to say. Checked here, not as a
    # schema `pattern`: llama.cpp's schema-to-grammar drops maxLength when a string has a pattern.
    text = " ".join(text.split())
    if not any(ch.isalnum() for ch in text):
        raise ValueError("has no letter or digit")
    return text


# Pydantic strips before it checks lengths, so an all-blank string the grammar let through still fails.
Text = Annotated[str, AfterValidator(_one_line_with_a_word)]
Quote = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=160),
                  AfterValidator(_one_line_with_a_word)]


class StructuredOut(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SummaryOut(StructuredOut):
    summary: Text = Field(min_length=1, max_length=500)


class QAOut(StructuredOut):
    """A single-hop question, its answer, and short verbatim quotes from the passage as evidence."""

    question: Text = Field(min_length=1, max_length=200)
    answer: Text = Field(min_length=1, max_length=240)
    citations: list[Quote] = Field(min_length=1, max_length=3)


class MultiHopOut(StructuredOut):
    """A question that needs two or more passages: one quote from each is expected, so at least two."""

    question: Text = Field(min_length=1, max_length=240)
    answer: Text = Field(min_length=1, max_length=300)
    citations: list[Quote] = Field(min_length=2, max_length=4)


class NegativeOut(StructuredOut):
    passage: Text = Field(min_length=20, max_length=700)


class JudgeOut(StructuredOut):
    # llama.cpp's schema-to-grammar ignores minimum/maximum on integers but honours enum.
    label: int = Field(ge=0, le=3, json_schema_extra={"enum": [0, 1, 2, 3]})
    reason: Text = Field(min_length=1, max_length=200)


class AnswerabilityOut(StructuredOut):
    """NeMo-style query checks that need no passage: can a stranger understand it, and what does it want."""

    self_contained: bool
    clear_intent: bool
    reason: Text = Field(min_length=1, max_length=200)


def _without_prose(node: Any, names: bool = False) -> Any:
    """The schema without "title" and "description" keywords; ``names``: node maps field names to schemas."""
    if isinstance(node, dict):
        return {k: _without_prose(v, names=(k in ("properties", "$defs") and not names))
                for k, v in node.items() if names or k not in ("title", "description")}
    if isinstance(node, list):
        return [_without_prose(v) for v in node]
    return node


@lru_cache(maxsize=None)
def schema_json(model_cls: type[BaseModel]) -> str:
    """The model's JSON schema as compact text for ``GenerationRequest.json_schema``.

    The text is part of every cache key, so titles and descriptions (docstrings) are dropped: rewording
    one must not invalidate a cache. Key order is kept, because a grammar emits properties in schema order
    and the question should come before its answer.
    """
    schema = _without_prose(model_cls.model_json_schema())
    return json.dumps(schema, ensure_ascii=False, separators=(",", ":"))
