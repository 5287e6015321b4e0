"""Structured generation: ask for JSON, validate it against a pydantic model, re-ask what fails.

``generate_structured`` is the loop every JSON recipe shares. Each request is asked once; outputs that are
not JSON or do not fit the model are asked again with a derived seed (a new request, so a new cache key:
the content-addressed cache would otherwise replay the same bad answer), and given up after
``max_attempts`` with a reason. All re-asks of one round go to the backend as one batch.

The module also holds the plumbing the JSON recipes share: rendering a template as a chat message or as a
completion prompt, and cutting passages to fit small contexts.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Generic, Optional, Sequence, TypeVar

from pydantic import BaseModel, ValidationError

from ..base import GenerationRequest, GenerationResult
from .schemas import schema_json
from .templates import derive_seed, template

M = TypeVar("M", bound=BaseModel)

INVALID_JSON = "invalid_json"
SCHEMA_MISMATCH = "schema_mismatch"
LLM_ERROR = "llm_error"


# --------------------------------------------------------------------------------------------- parsing

_FENCE = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder(strict=False)  # raw newlines inside strings: the llama.cpp grammar allows them


def extract_json(text: str) -> dict:
    """The first JSON object in a model's answer, leniently.

    Code fences are looked into first; then the first ``{`` that starts a complete object wins, and text
    around it (a preamble, a trailing remark, a second object) is ignored. Raises ValueError when there is
    no complete object, e.g. when the answer was cut off at ``max_tokens``.
    """
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        start = candidate.find("{")
        while start != -1:
            try:
                obj, _ = _DECODER.raw_decode(candidate, start)
            except json.JSONDecodeError:
                obj = None
            if isinstance(obj, dict):
                return obj
            start = candidate.find("{", start + 1)
    raise ValueError("no complete JSON object in the output")


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(root)"
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{loc}: {first['msg']}{more}"


def parse_structured(text: str, model_cls: type[M]) -> tuple[Optional[M], Optional[str], str]:
    """(value, None, "") when ``text`` holds a valid object, else (None, drop reason, detail)."""
    try:
        obj = extract_json(text)
    except ValueError as exc:
        return None, INVALID_JSON, f"{exc}: {text[:120]!r}"
    try:
        return model_cls.model_validate(obj), None, ""
    except ValidationError as exc:
        return None, SCHEMA_MISMATCH, _first_error(exc)


# --------------------------------------------------------------------------------------------- the loop


@dataclass
class StructuredOutcome(Generic[M]):
    """What became of one request after up to ``max_attempts`` asks."""

    request: GenerationRequest  # as first asked; re-asks differ only in their seed
    value: Optional[M] = None
    attempts: int = 0
    drop_reason: Optional[str] = None  # invalid_json / schema_mismatch / llm_error, when value is None
    detail: str = ""
    cache_keys: list[str] = field(default_factory=list)  # one per attempt, in order
    raw: str = ""  # text of the last attempt
    result: Optional[GenerationResult] = None  # the last attempt's result

    @property
    def ok(self) -> bool:
        return self.value is not None

    @property
    def cache_key(self) -> str:
        """The key of the call that produced the value (or of the last failed one)."""
        return self.cache_keys[-1] if self.cache_keys else ""


def reask(request: GenerationRequest, attempt: int) -> GenerationRequest:
    """The request for 0-based ``attempt``: the first as is, every later one with its own derived seed."""
    if attempt == 0:
        return request
    return dataclasses.replace(request, seed=derive_seed(request.seed, attempt))


def generate_structured(
    llm,
    requests: Sequence[GenerationRequest],
    model_cls: type[M],
    max_attempts: int = 3,
    stats: Optional[Counter] = None,
) -> list[StructuredOutcome[M]]:
    """Ask every request, validate each output against ``model_cls``, re-ask failures with a new seed.

    llm: anything with ``generate(list[GenerationRequest]) -> list[GenerationResult]`` (a backend or a
        ``CachedLLM``).
    requests: usually with ``json_schema=schema_json(model_cls)`` so the backend samples valid JSON; the
        loop works without it too, it just re-asks more.
    max_attempts: asks per request, the first included. A failed output is asked again with
        ``seed=derive_seed(seed, attempt)``; all re-asks of a round are one ``llm.generate`` call.
    stats: a Counter updated in place with ``attempts`` (calls asked), ``retries`` (re-asks), ``ok``,
        ``first_try_ok``, ``failures`` (dropped requests) and ``drop.<reason>``.

    Backend errors (``result.error``) are not re-asked: a backend has already retried transient failures,
    and what is left (a prompt longer than the context, a refused request) would fail again.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    stats = stats if stats is not None else Counter()
    model_id = getattr(llm, "model_id", "")
    outcomes = [StructuredOutcome(request=r) for r in requests]
    pending = list(range(len(outcomes)))
    for attempt in range(max_attempts):
        if not pending:
            break
        asked = [reask(outcomes[i].request, attempt) for i in pending]
        results = llm.generate(asked)
        stats["attempts"] += len(asked)
        if attempt:
            stats["retries"] += len(asked)
        still = []
        for i, req, res in zip(pending, asked, results):
            out = outcomes[i]
            out.attempts += 1
            # A bare backend sets no cache key; the request's content address is the same key a cache uses.
            out.cache_keys.append(res.cache_key or (req.key(model_id) if model_id else ""))
            out.raw, out.result = res.text, res
            if res.error:
                out.drop_reason, out.detail = LLM_ERROR, res.error
                continue
            value, reason, detail = parse_structured(res.text, model_cls)
            if reason == INVALID_JSON and res.finish_reason == "length":
                detail = f"cut off at max_tokens={asked[0].max_tokens}; {detail}"
            out.value, out.drop_reason, out.detail = value, reason, detail
            if value is None:
                still.append(i)
        pending = still
    for out in outcomes:
        if out.ok:
            stats["ok"] += 1
            stats["first_try_ok"] += int(out.attempts == 1)
        else:
            stats["failures"] += 1
            stats[f"drop.{out.drop_reason}"] += 1
            out.detail = f"after {out.attempts} attempt(s): {out.detail}"
    return outcomes


# --------------------------------------------------------------------------------------------- plumbing

def truncate(text: str, max_chars: int) -> str:
    """Whitespace collapsed and cut at a word boundary, so long passages fit a 2048-token context."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    return text[:max_chars].rsplit(" ", 1)[0] + " ..."


def llm_is_chat(llm) -> bool:
    """Whether the model takes chat messages: ``llm.chat``, or its wrapped backend's; False when unknown."""
    for obj in (llm, getattr(llm, "backend", None)):
        chat = getattr(obj, "chat", None)
        if isinstance(chat, bool):
            return chat
    return False


# Where the shared prefix ends. Every template puts {{ cut }} before any per-item text, so its first
# occurrence is the template's own even if a passage happened to contain the same characters.
_CUT = "\x00prefix-end\x00"


def render_request(template_name: str, *, chat: bool, model_cls: type[BaseModel], max_tokens: int,
                   temperature: float, top_p: float, seed: int, **variables) -> GenerationRequest:
    """A template rendered as one user message (instruct models) or as a completion prompt (base models).

    Templates mark with ``{{ cut }}`` where the part every request of a recipe shares (instructions and,
    for base models, the worked example) ends; for completions that becomes ``prefix_chars``.
    """
    text = template(template_name).render(chat=chat, cut=_CUT, **variables).strip()
    cut = text.find(_CUT)
    text = text.replace(_CUT, "", 1)
    common = dict(max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed,
                  json_schema=schema_json(model_cls))
    if chat:
        return GenerationRequest(messages=(("user", text),), **common)
    return GenerationRequest(prompt=text, prefix_chars=max(cut, 0), **common)


class StructuredRecipe:
    """Shared settings of the JSON recipes: model, prompt form, sampling, attempts and counters."""

    def __init__(self, llm, *, chat: Optional[bool] = None, seed: int = 0, max_attempts: int = 3,
                 temperature: float = 0.7, top_p: float = 0.95):
        self.llm = llm
        self.chat = llm_is_chat(llm) if chat is None else chat
        self.seed = seed
        self.max_attempts = max_attempts
        self.temperature = temperature
        self.top_p = top_p
        self.stats: Counter = Counter()

    role = "query_writer"  # the pack's model role whose sampling settings from_pack reads

    @classmethod
    def pack_language(cls, pack) -> str:
        """The language this recipe writes in: the documents' by default."""
        return pack.language

    @classmethod
    def from_pack(cls, llm, pack, seed: int = 0, **overrides):
        """Language and sampling from a domain pack (the recipe's role, else the query writer's); other knobs
        from ``overrides``."""
        from ..factory import role_config

        cfg = role_config(pack, cls.role)
        kwargs = dict(language=cls.pack_language(pack), seed=seed, temperature=cfg.temperature, top_p=cfg.top_p)
        return cls(llm, **{**kwargs, **overrides})

    @property
    def backend_name(self) -> str:
        return getattr(self.llm, "name", "")

    @property
    def model_id(self) -> str:
        return getattr(self.llm, "model_id", "")

    def _request(self, template_name: str, model_cls: type[BaseModel], max_tokens: int, seed: int,
                 **variables: Any) -> GenerationRequest:
        return render_request(template_name, chat=self.chat, model_cls=model_cls, max_tokens=max_tokens,
                              temperature=self.temperature, top_p=self.top_p, seed=seed, **variables)

    def _generate(self, requests: list[GenerationRequest], model_cls: type[M]) -> list[StructuredOutcome[M]]:
        return generate_structured(self.llm, requests, model_cls, self.max_attempts, self.stats)
