"""The HTTP backend for any OpenAI-compatible server (vLLM, llama.cpp's servers, OpenAI, ...), through the
official ``openai`` SDK (``AsyncOpenAI``).

Routing: a request with ``messages`` goes to ``/chat/completions``. A request with ``prompt`` goes where
``cfg.endpoint`` says: ``completions`` sends it as is, ``chat`` wraps it as one user message, and ``auto``
picks chat for models known to be instruct-tuned (see :func:`is_instruct_model`) and completions otherwise.

Retries are the SDK's: the client gets ``max_retries=cfg.max_retries`` and ``timeout=cfg.timeout``, so
408/409/429/5xx, timeouts and connection errors are retried with its exponential backoff and jitter, honouring
``Retry-After`` (the SDK refuses to wait more than two minutes and fails the request instead); any other 4xx
fails the request at once (``APIStatusError``). Two things the SDK does not do are ours and draw on the same
budget of ``cfg.max_retries`` retries per request: a 200 whose body is not a completion (truncated, undecodable,
no choices) is asked again after a backoff, and a response body must arrive within ``cfg.timeout`` of the
request (the SDK's timeout bounds each read, so a server dripping a byte at a time could hold it longer).

A request that fails for good comes back as a result with ``error`` set, never as an exception, so one bad call
cannot sink a batch. ``retryable`` marks the failures a later run may get past (no connection, timeouts, 5xx,
429, malformed bodies): the call cache does not keep them and the stage is left to be rerun.
``unreachable`` marks the ones where no connection could be made at all.

Structured output (``request.json_schema``) walks a ladder of ``response_format`` shapes and remembers, per
endpoint, the first one the server accepted:

1. ``json_schema``: the OpenAI shape, honoured by OpenAI and vLLM.
2. ``json_object`` with a ``schema`` key: llama-cpp-python's server, which turns it into a grammar.
3. none: free text; recipes validate and re-ask.

A rung counts as rejected on HTTP 400/422, or on any error whose body names ``response_format``:
llama_cpp.server 0.3.x answers the ``json_schema`` shape with a *500* wrapping its request validation error
(measured in tests/generators/test_openai_backend.py). Such a response is marked ``x-should-retry: false``, the
header the SDK obeys, so the SDK does not repeat it and the ladder moves on. A server that silently ignores the
field cannot be told apart from one that honours it; llama_cpp.server ignores ``response_format`` on
``/completions``. Other llama.cpp limits the requests respect: one completion per request (no ``n`` > 1), and
``response_format`` goes in the body as is (``extra_body``), since the ``schema`` key of rung 2 is not OpenAI's.

The API key is read from the environment variable named by ``cfg.api_key_env`` at each ``generate`` call and
lives only in that call's client; it is scrubbed from every error and log line. Credentials written into the
URL never travel in it: its userinfo becomes the HTTP client's Basic auth and its query parameters the SDK's
default query, so no URL that httpx2 or the SDK logs carries them.

Several base URLs (replicas of one deployment serving the same model) are load-balanced by
:mod:`buildbench.generators.endpoints`: each request goes to the server with the fewest in flight, each server
has its own bound of ``cfg.concurrency``, and a server that keeps failing is set aside for a while. Retries are
then ours rather than the SDK's (it would repeat on the same server): on no connection, a broken exchange, a
timeout, 408/409/429 or 5xx, the request is asked again after the same backoff (Retry-After honoured), on
another server when there is one, from the same budget of ``cfg.max_retries``. A request fails as
``unreachable`` only when every server is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import os
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import urlsplit

from ..domain_pack import LLMConfig
from ..redact import redact_text
from ..errors import ConfigError, require
from .base import GenerationRequest, GenerationResult
# public_url, backoff_delay and split_credentials are imported from here too.
from .endpoints import (Balancer, Endpoint, EndpointPool, backoff_delay, connection_cause, error_detail,
                        public_url, retry_after, split_credentials)

__all__ = ["OpenAIBackend", "backoff_delay", "is_instruct_model", "prompt_endpoint", "public_url",
           "split_credentials"]

log = logging.getLogger("buildbench.generators.openai")

STRUCTURED_MODES = ("json_schema", "json_object", "none")


class _RedactURLs(logging.Filter):
    """httpx2 logs each request's URL at INFO; query parameters of the base URL (``?api_key=``) ride in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_text(str(a)) if "://" in str(a) else a for a in record.args)
        return True


_REDACT_URLS = _RedactURLs()
logging.getLogger("httpx2").addFilter(_REDACT_URLS)  # once per process: addFilter ignores a repeat
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


class _Malformed(Exception):
    """A 200 whose body is not a completion."""


@dataclass
class _Attempts:
    """One request's HTTP attempts, seen by the httpx2 event hooks (through a context variable: each request
    runs in its own asyncio task, so each has its own)."""

    mode: str = "none"  # the response_format rung being sent
    sent: int = 0  # HTTP attempts, over every SDK call made for this request
    started: float = 0.0  # time.monotonic() of the latest attempt
    last: str = ""  # what the latest attempt got, for the retry log line
    retries_allowed: int = 0  # of the SDK call in flight, for the retry log line


_ATTEMPTS: contextvars.ContextVar[Optional[_Attempts]] = contextvars.ContextVar("buildbench_openai_attempts",
                                                                               default=None)


@dataclass
class _Call:
    """What one `generate` call shares between its requests."""

    clients: list[Any]  # one openai.AsyncOpenAI per server, in the pool's order
    balancer: Balancer  # the requests in flight per server, each server at most cfg.concurrency
    key: Optional[str] = field(default=None, repr=False)
    omit_auth: bool = False  # no key: send no Authorization header at all
    # Set when a request of this call could not connect at all, after its retries (to any server): requests
    # not yet sent fail at once with the same reason instead of each spending the whole retry budget on it.
    unreachable: Optional[str] = None
    # A server's client with a given retry budget left (SDK copies sharing one connection pool), made once each.
    budgets: dict[tuple[int, int], Any] = field(default_factory=dict, repr=False)

    def with_retries(self, ep: Endpoint, max_retries: int):
        if (ep.index, max_retries) not in self.budgets:
            self.budgets[ep.index, max_retries] = self.clients[ep.index].with_options(max_retries=max_retries)
        return self.budgets[ep.index, max_retries]

    def redact(self, text: str) -> str:
        return text.replace(self.key, "***") if self.key else text


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class OpenAIBackend:
    """``generate`` runs a batch concurrently (at most ``cfg.concurrency`` requests in flight per server) and
    returns results in input order.

    ``cfg.timeout`` bounds each attempt, including time queued inside the server: llama_cpp.server runs one
    request at a time, so give it a timeout of about concurrency x one call.

    backoff_base / backoff_cap: seconds of the first and of the largest step between re-asks after a malformed
    body (the SDK's own retries use its backoff) and, with several servers, of every retry. jitter_seed: seeds
    that backoff's jitter. fail_limit, cooldown, cooldown_cap: when a server of several is set aside, and for
    how long (see :class:`~buildbench.generators.endpoints.EndpointPool`).
    """

    name = "openai"

    def __init__(
        self,
        cfg: LLMConfig,
        *,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        jitter_seed: int = 0,
        fail_limit: int = 2,
        cooldown: float = 10.0,
        cooldown_cap: float = 120.0,
    ):
        self._openai = require("openai", "openai", "The openai backend")
        self._httpx2 = require("httpx2", "openai", "The openai backend")
        if not cfg.base_url:
            raise ConfigError("the openai backend needs --base-url (the server's /v1 address)")
        self.cfg = cfg
        # Calls go to the real URLs; logs and errors show them redacted, model ids without credentials.
        self.pool = EndpointPool(cfg.base_urls, fail_limit=fail_limit, cooldown=cooldown, cooldown_cap=cooldown_cap)
        self.endpoints = self.pool.endpoints
        self.base_url = self.endpoints[0].url
        self.shown_url = self.pool.shown
        # CachedLLM hands over this many at once, so `concurrency` requests can be in flight on every server.
        self.batch_size = max(8, 4 * cfg.concurrency * len(self.endpoints))
        # Recipes build messages for chat models and raw prompts for base models.
        self.chat = prompt_endpoint(cfg) == "chat"
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._rng = random.Random(jitter_seed)
        # endpoint -> index in STRUCTURED_MODES of the first rung worth trying there: the one that last
        # worked, or the one after a rung the server rejected by name.
        self.structured_modes: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"OpenAIBackend({self.shown_url!r}, model={self.cfg.model!r})"

    @property
    def model_id(self) -> str:
        # Never the server that answered: with several, their sorted public URLs (see EndpointPool.identity).
        return f"openai:{self.pool.identity}:{self.cfg.model}"

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

    def _client(self, key: Optional[str], ep: Endpoint):
        httpx2 = self._httpx2
        concurrency = max(1, self.cfg.concurrency)
        # trust_env stays on: HTTPS_PROXY / NO_PROXY apply as for any HTTP client.
        http_client = httpx2.AsyncClient(
            timeout=httpx2.Timeout(self.cfg.timeout),
            limits=httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            auth=httpx2.BasicAuth(*ep.auth) if ep.auth else None,
            event_hooks={"request": [self._on_request], "response": [self._on_response]},
            follow_redirects=True,
        )
        return self._openai.AsyncOpenAI(
            # Without a key no Authorization header is sent (each request omits it); the SDK still wants one.
            api_key=key or "unused",
            base_url=ep.url,
            default_query=ep.query or None,
            max_retries=self.cfg.max_retries,
            timeout=self.cfg.timeout,
            http_client=http_client,
            default_headers={"User-Agent": "buildbench"},
        )

    async def _on_request(self, request) -> None:
        state = _ATTEMPTS.get()
        if state is None:
            return
        state.sent += 1
        state.started = time.monotonic()
        retry = int(request.headers.get("x-stainless-retry-count") or 0)
        if retry:
            log.debug("retry %d/%d of %s (after %s)", retry, state.retries_allowed, request.url.path,
                      state.last or "no response")
        state.last = ""

    async def _on_response(self, response) -> None:
        state = _ATTEMPTS.get()
        if state is None:
            return
        # The whole body within cfg.timeout of sending: the SDK's timeout bounds each read, not their sum.
        remaining = self.cfg.timeout - (time.monotonic() - state.started)
        try:
            await asyncio.wait_for(response.aread(), timeout=max(remaining, 0.001))
        except asyncio.TimeoutError:
            state.last = "a body slower than the timeout"
            raise self._httpx2.ReadTimeout(f"no complete response within {self.cfg.timeout:g}s",
                                           request=response.request) from None
        status = response.status_code
        state.last = f"HTTP {status}"
        if status >= 300 and status != 429 and state.mode != "none" and "response_format" in response.text:
            # About the format, not the server's health: the ladder tries the next rung instead.
            response.headers["x-should-retry"] = "false"

    async def _generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        key = os.environ.get(self.cfg.api_key_env) if self.cfg.api_key_env else None
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(self._client(key, ep)) for ep in self.endpoints]
            call = _Call(clients, self.pool.balancer(self.cfg.concurrency), key or None, omit_auth=not key)
            return list(await asyncio.gather(*(self._generate_one(call, r) for r in requests)))

    def _params(self, req: GenerationRequest) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {
            "model": self.cfg.model,
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "seed": req.seed,
        }
        if req.stop:
            params["stop"] = list(req.stop)
        if req.messages is not None:
            params["messages"] = [{"role": role, "content": content} for role, content in req.messages]
            return "chat", params
        if prompt_endpoint(self.cfg) == "chat":
            params["messages"] = [{"role": "user", "content": req.prompt}]
            return "chat", params
        params["prompt"] = req.prompt
        return "completions", params

    @staticmethod
    def _response_format(mode: str, schema: Any) -> Optional[dict[str, Any]]:
        if mode == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": True}}
        if mode == "json_object":
            return {"type": "json_object", "schema": schema}
        return None

    async def _create(self, call: _Call, ep: Endpoint, endpoint: str, params: dict[str, Any], mode: str,
                      schema: Any, max_retries: int):
        client = call.with_retries(ep, max_retries)
        options: dict[str, Any] = {}
        fmt = self._response_format(mode, schema)
        if fmt is not None:
            options["extra_body"] = {"response_format": fmt}
        if call.omit_auth:
            options["extra_headers"] = {"Authorization": self._openai.omit}
        if endpoint == "chat":
            return await client.chat.completions.create(**params, **options)
        return await client.completions.create(**params, **options)

    async def _generate_one(self, call: _Call, req: GenerationRequest) -> GenerationResult:
        openai = self._openai
        state = _Attempts()
        _ATTEMPTS.set(state)  # this coroutine runs in its own task: the variable is this request's
        retries = 0
        extra: dict[str, Any] = {"retries": 0}
        # Several servers: each attempt is one HTTP call, and its retry is ours, on another server if it can.
        failover = len(self.endpoints) > 1
        ep, avoid = self.endpoints[0], None
        connect_only = True  # every failed attempt so far made no connection at all
        try:
            endpoint, params = self._params(req)
            extra["endpoint"] = endpoint
            route = "chat/completions" if endpoint == "chat" else "completions"
            schema = json.loads(req.json_schema) if req.json_schema is not None else None
            rung = 0 if schema is not None else len(STRUCTURED_MODES) - 1
            while True:
                budget = 0 if failover else self.cfg.max_retries - retries
                ep = await call.balancer.acquire(avoid)
                try:
                    if call.unreachable and not state.sent:
                        return self._failure(call, call.unreachable, extra, retryable=True, unreachable=True,
                                             quiet=True)
                    if schema is not None:
                        # Read at send time, not at batch start: requests queued behind the first one then
                        # skip the rungs it already found rejected.
                        rung = max(rung, self.structured_modes.get(endpoint, 0))
                        extra["structured"] = STRUCTURED_MODES[rung]
                    mode = STRUCTURED_MODES[rung]
                    state.mode, state.retries_allowed = mode, budget
                    sent = state.sent
                    failure: Optional[BaseException] = None
                    try:
                        result = self._result(
                            await self._create(call, ep, endpoint, params, mode, schema, budget), endpoint)
                    except (openai.APIError, _Malformed, ValueError) as exc:
                        failure = exc
                    # Every attempt after the first of this SDK call was one of its retries.
                    retries += max(0, state.sent - sent - 1)
                    extra["retries"] = retries
                finally:
                    call.balancer.release(ep)
                path = f"{urlsplit(ep.url).path}/{route}"
                if failure is None:
                    self.pool.succeeded(ep)
                    if schema is not None:
                        self.structured_modes[endpoint] = rung
                    result.extra = extra
                    return result
                connect: Optional[str] = None  # no connection made at all: "{cause} ({error} on {path}"
                transient, refused, wait = True, False, None  # transient: what the SDK retries on its own
                if isinstance(failure, openai.APIStatusError):
                    status = failure.status_code
                    detail = _one_line(call.redact(error_detail(failure.response)), 200)
                    reason = f"HTTP {status} from {path}: {detail}"
                    names_format = mode != "none" and status != 429 and "response_format" in failure.response.text
                    if schema is not None and mode != "none" and (status in (400, 422) or names_format):
                        log.debug("%s rejected response_format %s (%s); trying the next one", path, mode, reason)
                        rung += 1
                        if names_format:  # sure it was the format, not e.g. a too-long prompt
                            self.structured_modes[endpoint] = max(rung, self.structured_modes.get(endpoint, 0))
                        continue
                    if not (status in (408, 409, 429) or status >= 500):
                        return self._failure(call, f"{reason} (not retried)", extra, where=ep.shown)
                    wait = retry_after(failure.response.headers)
                    refused = failure.response.headers.get("x-should-retry") == "false"  # the server says so
                elif isinstance(failure, openai.APITimeoutError):
                    reason = f"timed out after {self.cfg.timeout:g}s on {path}"
                elif isinstance(failure, openai.APIConnectionError):
                    cause = failure.__cause__ or failure
                    if isinstance(cause, self._httpx2.ConnectError):
                        connect = f"{connection_cause(failure)} ({type(cause).__name__} on {path}"
                        reason = f"cannot connect to {ep.shown}: {connect})"
                    else:  # connected, then the exchange broke (a dropped connection, a reset)
                        reason = f"{type(cause).__name__} on {path}: {cause}"
                else:
                    transient = False
                    if isinstance(failure, openai.APIError):  # e.g. a response the SDK could not validate
                        reason = f"{type(failure).__name__} on {path}: {failure}"
                    else:  # a truncated, undecodable or wrongly shaped body
                        reason = (f"malformed response from {path} "
                                  f"({type(failure).__name__}: {_one_line(str(failure), 80)})")
                if failover:
                    self.pool.failed(ep, _one_line(redact_text(call.redact(reason)), 200), connect=bool(connect))
                    connect_only, avoid = connect_only and bool(connect), ep
                if retries >= self.cfg.max_retries or refused or (transient and not failover):
                    if connect:  # with several servers, unreachable only when none of them can be reached
                        everywhere = not failover or (connect_only and self.pool.all_down())
                        where = f"any of {self.shown_url}" if failover and everywhere else ep.shown
                        reason = f"cannot connect to {where}: {connect}; gave up after {retries} retries)"
                        if everywhere:
                            call.unreachable = reason
                        return self._failure(call, reason, extra, retryable=True, unreachable=everywhere,
                                             where=ep.shown)
                    return self._failure(call, f"{reason} (gave up after {retries} retries)", extra, retryable=True,
                                         where=ep.shown)
                delay = wait or backoff_delay(retries, self.backoff_base, self.backoff_cap, self._rng)
                retries += 1
                extra["retries"] = retries
                log.debug("retry %d/%d in %.2fs: %s%s", retries, self.cfg.max_retries, delay,
                          redact_text(call.redact(reason)), f" from {ep.shown}" if failover else "")
                await asyncio.sleep(delay)  # outside the slot: a waiting request holds none
        except Exception as exc:  # never let one request raise out of a batch
            return self._failure(call, f"{type(exc).__name__}: {exc}", extra, where=ep.shown)

    def _failure(self, call: _Call, reason: str, extra: dict[str, Any], *, retryable: bool = False,
                 unreachable: bool = False, quiet: bool = False, where: Optional[str] = None) -> GenerationResult:
        """A failed request's result; ``where``: the server it last went to (shown redacted)."""
        reason = _one_line(redact_text(call.redact(reason)))  # a server may echo the key or a URL in its error
        if not quiet:  # quiet: the same reason was logged for an earlier request of the batch
            log.warning("openai request to %s failed: %s", where or self.shown_url, reason)
        return GenerationResult(text="", error=reason, extra=extra, retryable=retryable, unreachable=unreachable)

    @staticmethod
    def _result(data: Any, endpoint: str) -> GenerationResult:
        """Read one response; any shape other than the OpenAI one counts as a malformed body (re-asked)."""
        try:
            choice = data.choices[0]
            text = choice.message.content if endpoint == "chat" else choice.text
            text = "" if text is None else text  # chat content is null when the model only made tool calls
            if not isinstance(text, str):
                raise TypeError(f"text is {type(text).__name__}")
            usage = getattr(data, "usage", None)
            return GenerationResult(
                text=text,
                tokens_in=int(getattr(usage, "prompt_tokens", 0) or 0),
                tokens_out=int(getattr(usage, "completion_tokens", 0) or 0),
                finish_reason=str(getattr(choice, "finish_reason", "") or ""),
            )
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise _Malformed(f"{type(exc).__name__}: {_one_line(str(exc), 80)}") from None
