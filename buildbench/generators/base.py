"""The one LLM interface every recipe talks to. Recipes never know which backend runs them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Optional, Protocol


@dataclass(frozen=True)
class GenerationRequest:
    """One call. Exactly one of ``prompt`` (completion) or ``messages`` (chat) is set."""

    prompt: Optional[str] = None
    messages: Optional[tuple[tuple[str, str], ...]] = None  # (role, content) pairs, hashable
    max_tokens: int = 64
    temperature: float = 0.7
    top_p: float = 0.95
    stop: tuple[str, ...] = ()
    seed: int = 0
    json_schema: Optional[str] = None  # JSON text of a schema the output must follow
    # Characters at the start of `prompt` that many requests share (few-shot examples). Backends may keep
    # that prefix evaluated; it never changes what is asked.
    prefix_chars: int = 0

    def __post_init__(self):
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("a GenerationRequest needs exactly one of prompt or messages")

    def key(self, model_id: str) -> str:
        """Content address of the call: model + prompt + every sampling parameter."""
        payload = json.dumps({"model": model_id, **asdict(self)}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    @property
    def prompt_hash(self) -> str:
        body = self.prompt if self.prompt is not None else json.dumps(self.messages)
        return hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]


@dataclass
class GenerationResult:
    text: str
    tokens_in: int = 0
    tokens_out: int = 0
    finish_reason: str = ""
    cache_key: str = ""
    cached: bool = False
    error: Optional[str] = None  # set when the call failed for good (after the backend's own retries)
    # A failure a later run may get past (no connection, timeouts, 5xx, rate limits, malformed bodies), as
    # opposed to a request the model refused (too long a prompt, a 4xx): the stage is left to be rerun.
    retryable: bool = False
    unreachable: bool = False  # no connection to the server could be made at all
    # Backend facts about the call, e.g. {"retries": 2, "structured": "json_schema"}; cached with the result.
    extra: dict[str, Any] = field(default_factory=dict)


class LLMBackend(Protocol):
    name: str  # "local", "openai", "vllm"

    @property
    def model_id(self) -> str:
        """A stable identity of the model and its weights, part of every cache key."""
        ...

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        ...
