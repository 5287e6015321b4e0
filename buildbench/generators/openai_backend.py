"""The HTTP backend for any OpenAI-compatible server (vLLM, llama.cpp's servers, OpenAI, ...).

Routing: a request with ``messages`` goes to ``/chat/completions``. A request with ``prompt`` goes where
``cfg.endpoint`` says: ``completions`` sends it as is, ``chat`` wraps it as one user message, and ``auto``
picks chat for models known to be instruct-tuned (see :func:`is_instruct_model`) and completions otherwise.

Retries are ours (the transport does none): 429, 5xx, timeouts, connection errors and malformed bodies are
retried up to ``cfg.max_retries`` times with exponential backoff and jitter, honouring ``Retry-After``; any
other 4xx fails the request at once. A request that fails for good comes back as a result with ``error``
set, never as an exception, so one bad call cannot sink a batch.

Structured output (``request.json_schema``) walks a ladder of ``response_format`` shapes and remembers, per
endpoint, the first one the server accepted:

1. ``json_schema``: the OpenAI shape, honoured by OpenAI and vLLM.
2. ``json_object`` with a ``schema`` key: llama-cpp-python's server, which turns it into a grammar.
3. none: free text; recipes validate and re-ask.

A rung counts as rejected on HTTP 400/422, or on any error whose body names ``response_format``:
llama_cpp.server 0.3.x answers the ``json_schema`` shape with a *500* wrapping its request validation error
(measured in tests/generators/test_openai_backend.py). A server that silently ignores the field cannot be
told apart from one that honours it; llama_cpp.server ignores ``response_format`` on ``/completions``.

The API key is read from the environment variable named by ``cfg.api_key_env`` at each ``generate`` call
and lives only in the request headers of that call; it is scrubbed from every error and log line.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import urlsplit, urlunsplit

from ..config import LLMConfig
from ..errors import ConfigError, require
from .base import GenerationRequest, GenerationResult

log = logging.getLogger("buildbench.generators.openai")

STRUCTURED_MODES = ("json_schema", "json_object", "none")
_INSTRUCT_NAME = re.compile(r"instruct|chat|[-_.]it(\b|[-_.])", re.IGNORECASE)


def is_instruct_model(model: str) -> bool:
    """True for a model registered as chat-tuned by the local backend, or whose name says it is one.

    The name rule ("instruct", "chat", or an "-it" suffix as in gemma-3-4b-it) is a heuristic; set
    ``endpoint`` explicitly when it guesses wrong.
    """
    from .local import MODELS

    spec = MODELS.get(model)
    if spec is not None:
        return spec.chat
    return bool(_INSTRUCT_NAME.search(model))


def prompt_endpoint(cfg: LLMConfig) -> str:
    """Where a prompt-only request goes: "completions" or "chat"."""
    if cfg.endpoint != "auto":
        return cfg.endpoint
    return "chat" if is_instruct_model(cfg.model) else "completions"


def public_url(url: str) -> str:
    """The URL without credentials, query or fragment: safe to log and to put in a model id."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent/invalid."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": half the step is fixed, half random, never above ``cap``."""
    step = min(cap, base * (2**attempt))
    return step / 2 + rng.uniform(0, step / 2)


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: Optional[float] = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Rejected(Exception):
    """The server refused the request itself; retrying it unchanged would get the same answer."""

    def __init__(self, reason: str, status: int, names_format: bool):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.names_format = names_format


@dataclass
class _Call:
    """What one `generate` call shares between its requests."""

    client: Any  # httpx.AsyncClient
    semaphore: asyncio.Semaphore
    key: Optional[str] = field(default=None, repr=False)

    def redact(self, text: str) -> str:
        return text.replace(self.key, "***") if self.key else text


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_detail(resp) -> str:
    """The server's own error message when it sent one in the usual {"error": {"message": ...}} shape."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text
    if isinstance(body, dict):
        err = body.get("error", body.get("detail"))
        if isinstance(err, dict) and "message" in err:
            return str(err["message"])
        if err is not None:
            return str(err)
    return resp.text


class OpenAIBackend:
    """``generate`` runs a batch concurrently (at most ``cfg.concurrency`` requests in flight) and returns
    results in input order.

    ``cfg.timeout`` bounds each attempt from send to last byte, including time queued inside the server:
    llama_cpp.server runs one request at a time, so give it a timeout of about concurrency x one call.

    backoff_base / backoff_cap: seconds of the first retry step and of the largest one.
    retry_after_cap: the longest Retry-After honoured, so a server cannot park a run for an hour.
    jitter_seed: seeds the backoff jitter.
    """

    name = "openai"

    def __init__(
        self,
        cfg: LLMConfig,
        *,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        retry_after_cap: float = 30.0,
        jitter_seed: int = 0,
    ):
        self._httpx = require("httpx", "openai", "The openai backend")
        if not cfg.base_url:
            raise ConfigError("the openai backend needs --base-url (the server's /v1 address)")
        self.cfg = cfg
        self.base_url = cfg.base_url.rstrip("/")
        # CachedLLM hands over this many at once, so `concurrency` requests can be in flight.
        self.batch_size = max(8, 4 * cfg.concurrency)
        # Recipes build messages for chat models and raw prompts for base models.
        self.chat = prompt_endpoint(cfg) == "chat"
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.retry_after_cap = retry_after_cap
        self._rng = random.Random(jitter_seed)
        # endpoint -> index in STRUCTURED_MODES of the first rung worth trying there: the one that last
        # worked, or the one after a rung the server rejected by name.
        self.structured_modes: dict[str, int] = {}

    @property
    def model_id(self) -> str:
        return f"openai:{public_url(self.base_url)}:{self.cfg.model}"

    # ----------------------------------------------------------------------------------------- public API

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        if not requests:
            return []
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._generate(requests))
        # Called from inside an event loop (a notebook, an async caller): ours runs on a worker thread.
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, self._generate(requests)).result()

    # ------------------------------------------------------------------------------------------ internals

    def _headers(self) -> tuple[dict[str, str], Optional[str]]:
        key = os.environ.get(self.cfg.api_key_env) if self.cfg.api_key_env else None
        headers = {"Content-Type": "application/json", "User-Agent": "buildbench"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers, key or None

    async def _generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        httpx = self._httpx
        headers, key = self._headers()
        concurrency = max(1, self.cfg.concurrency)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        # trust_env stays on: HTTPS_PROXY / NO_PROXY apply as for any HTTP client.
        async with httpx.AsyncClient(headers=headers, timeout=self.cfg.timeout, limits=limits) as client:
            call = _Call(client, asyncio.Semaphore(concurrency), key)
            return list(await asyncio.gather(*(self._generate_one(call, r) for r in requests)))

    def _body(self, req: GenerationRequest) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": self.cfg.model,
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "seed": req.seed,
        }
        if req.stop:
            body["stop"] = list(req.stop)
        if req.messages is not None:
            body["messages"] = [{"role": role, "content": content} for role, content in req.messages]
            return "chat", body
        if prompt_endpoint(self.cfg) == "chat":
            body["messages"] = [{"role": "user", "content": req.prompt}]
            return "chat", body
        body["prompt"] = req.prompt
        return "completions", body

    @staticmethod
    def _with_format(body: dict[str, Any], mode: str, schema: Any) -> dict[str, Any]:
        if mode == "json_schema":
            fmt = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": True}}
        elif mode == "json_object":
            fmt = {"type": "json_object", "schema": schema}
        else:
            return body
        return {**body, "response_format": fmt}

    async def _generate_one(self, call: _Call, req: GenerationRequest) -> GenerationResult:
        retries = 0
        extra: dict[str, Any] = {"retries": 0}
        try:
            endpoint, body = self._body(req)
            extra["endpoint"] = endpoint
            schema = json.loads(req.json_schema) if req.json_schema is not None else None
            rung = 0 if schema is not None else len(STRUCTURED_MODES) - 1
            url = f"{self.base_url}/{'chat/completions' if endpoint == 'chat' else 'completions'}"
            while True:
                try:
                    async with call.semaphore:
                        if schema is not None:
                            # Read at send time, not at batch start: requests queued behind the first one
                            # then skip the rungs it already found rejected.
                            rung = max(rung, self.structured_modes.get(endpoint, 0))
                            extra["structured"] = STRUCTURED_MODES[rung]
                        mode = STRUCTURED_MODES[rung]
                        data = await self._post(call, url, self._with_format(body, mode, schema), mode)
                    result = self._result(data, endpoint)
                except _Rejected as exc:
                    if schema is not None and mode != "none" and (exc.status in (400, 422) or exc.names_format):
                        log.debug("%s rejected response_format %s (%s); trying the next one",
                                  public_url(url), mode, call.redact(exc.reason))
                        rung += 1
                        if exc.names_format:  # sure it was the format, not e.g. a too-long prompt
                            self.structured_modes[endpoint] = max(rung, self.structured_modes.get(endpoint, 0))
                        continue
                    return self._failure(call, f"{exc.reason} (not retried)", extra)
                except _Retryable as exc:
                    if retries >= self.cfg.max_retries:
                        return self._failure(call, f"{exc.reason} (gave up after {retries} retries)", extra)
                    delay = (
                        min(exc.retry_after, self.retry_after_cap)
                        if exc.retry_after is not None
                        else backoff_delay(retries, self.backoff_base, self.backoff_cap, self._rng)
                    )
                    retries += 1
                    extra["retries"] = retries
                    log.debug("retry %d/%d in %.2fs: %s", retries, self.cfg.max_retries, delay,
                              call.redact(exc.reason))
                    await asyncio.sleep(delay)  # outside the semaphore: a waiting request holds no slot
                    continue
                if schema is not None:
                    self.structured_modes[endpoint] = rung
                result.extra = extra
                return result
        except Exception as exc:  # never let one request raise out of a batch
            return self._failure(call, f"{type(exc).__name__}: {exc}", extra)

    def _failure(self, call: _Call, reason: str, extra: dict[str, Any]) -> GenerationResult:
        reason = _one_line(call.redact(reason))
        log.warning("openai request to %s failed: %s", public_url(self.base_url), reason)
        return GenerationResult(text="", error=reason, extra=extra)

    async def _post(self, call: _Call, url: str, payload: dict[str, Any], mode: str) -> Any:
        httpx = self._httpx
        path = urlsplit(url).path
        try:
            # httpx's timeout bounds each phase; wait_for bounds the whole exchange, so a server that
            # drips a byte at a time cannot hold the request past cfg.timeout either.
            resp = await asyncio.wait_for(call.client.post(url, json=payload), timeout=self.cfg.timeout)
        except (asyncio.TimeoutError, httpx.TimeoutException):
            raise _Retryable(f"timed out after {self.cfg.timeout:g}s on {path}") from None
        except httpx.TransportError as exc:
            raise _Retryable(f"{type(exc).__name__} on {path}: {exc}") from None
        status = resp.status_code
        if status >= 300:
            detail = _one_line(call.redact(_error_detail(resp)), 200)
            reason = f"HTTP {status} from {path}: {detail}"
            names_format = mode != "none" and "response_format" in resp.text
            if names_format and status != 429:
                raise _Rejected(reason, status, names_format=True)
            if status in (408, 429) or status >= 500:
                raise _Retryable(reason, parse_retry_after(resp.headers.get("retry-after")))
            raise _Rejected(reason, status, names_format=False)
        try:
            return resp.json()
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError: truncated or corrupted body
            raise _Retryable(f"undecodable response body from {path}: {_one_line(str(exc), 120)}") from None

    @staticmethod
    def _result(data: Any, endpoint: str) -> GenerationResult:
        """Read one response; any shape other than the OpenAI one counts as a malformed body (retried)."""
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] if endpoint == "chat" else choice["text"]
            text = "" if text is None else text  # chat content is null when the model only made tool calls
            if not isinstance(text, str):
                raise TypeError(f"text is {type(text).__name__}")
            usage = data.get("usage") or {}
            return GenerationResult(
                text=text,
                tokens_in=int(usage.get("prompt_tokens") or 0),
                tokens_out=int(usage.get("completion_tokens") or 0),
                finish_reason=str(choice.get("finish_reason") or ""),
            )
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise _Retryable(f"malformed response ({type(exc).__name__}: {_one_line(str(exc), 80)})") from None
