"""The servers behind the openai backend: one base URL, or several replicas of one deployment load-balanced.

Each base URL becomes an :class:`Endpoint`: the address calls go to (userinfo and query split off, to travel as
Basic auth and as the SDK's default query), the redacted address logs show, and the public address (no
credentials, query or fragment) that names it in model ids. An :class:`EndpointPool` keeps the servers' health
across batches; a :class:`Balancer` is one batch's view of them:

- least outstanding: a request goes to the server with the fewest requests of the batch in flight (ties taken in
  turn), and each server has its own bound of ``concurrency`` requests in flight. llama.cpp's servers run one
  request at a time and have no ``n`` > 1, so spreading requests is the only way to use several of them;
- a server that failed a request's last attempt is avoided by its retry while another one can take it;
- a server that fails ``fail_limit`` attempts in a row (no connection, a broken exchange, a timeout, 408, 409,
  429 or 5xx, a malformed body) is set aside for a cooldown (``cooldown`` seconds, doubling at each new trip up to
  ``cooldown_cap``), with one warning line; after it, it takes one request at a time (a probe) until one
  succeeds, which clears it, or fails, which sets it aside again.
  With every server set aside, requests go to them anyway: their retry budget bounds the cost.

A single server is never set aside: there is nowhere else to send its requests. Also here: how a server's
failure reads in one line (:func:`error_detail`, :func:`connection_cause`) and how long it asks to wait.
"""

from __future__ import annotations

import asyncio
import email.utils
import errno
import logging
import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Optional
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from ..redact import redact_url

log = logging.getLogger("buildbench.generators.openai")

MAX_RETRY_AFTER = 120.0  # seconds of Retry-After honoured, as the openai SDK does


def public_url(url: str) -> str:
    """The URL without credentials, query or fragment: the server's identity in model ids (and so in cache
    keys, which must not change with a rotated credential)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def split_credentials(url: str) -> tuple[str, Optional[tuple[str, str]], dict[str, str]]:
    """(URL without userinfo or query, (user, password) or None, query parameters) of a base URL."""
    parts = urlsplit(url)
    auth = (unquote(parts.username or ""), unquote(parts.password or "")) if (parts.username or parts.password) \
        else None
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", "")), auth, query


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": half the step is fixed, half random, never above ``cap``."""
    step = min(cap, base * (2**attempt))
    return step / 2 + rng.uniform(0, step / 2)


def retry_after(headers) -> Optional[float]:
    """Seconds a response's ``Retry-After-Ms`` or ``Retry-After`` (seconds or an HTTP date) asks to wait, when
    more than 0 and at most MAX_RETRY_AFTER; else None (the backoff decides)."""
    delay: Optional[float] = None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            delay = float(value) / divisor
            break
        except ValueError:
            parsed = email.utils.parsedate_tz(value) if divisor == 1.0 else None
            if parsed is not None:
                delay = email.utils.mktime_tz(parsed) - time.time()
    if delay is None or not math.isfinite(delay) or not 0 < delay <= MAX_RETRY_AFTER:
        return None
    return delay


def error_detail(resp) -> str:
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


def connection_cause(exc: BaseException) -> str:
    """What stood between us and the server, in words: "connection refused", "name not resolved", ..."""
    seen = set()
    cur: Optional[BaseException] = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ConnectionRefusedError) or getattr(cur, "errno", None) == errno.ECONNREFUSED:
            return "connection refused"
        if "refused" in str(cur).lower():
            return "connection refused"
        if "name or service not known" in str(cur).lower() or "nodename nor servname" in str(cur).lower():
            return "host name not resolved"
        cur = cur.__cause__ or cur.__context__
    inner = exc.__cause__ or exc.__context__ or exc
    return f"{type(inner).__name__}: {inner}" if str(inner) else type(inner).__name__


@dataclass
class Endpoint:
    """One server. Its health (the fields after ``public``) lives as long as the backend, across batches."""

    index: int
    url: str  # where calls go: no userinfo, no query
    auth: Optional[tuple[str, str]] = field(repr=False)  # the URL's userinfo, sent as Basic auth
    query: dict[str, str] = field(repr=False)  # the URL's query, sent as the SDK's default query
    shown: str  # redacted, for logs and errors
    public: str  # no credentials: the server's identity
    failures: int = 0  # failed attempts in a row
    trips: int = 0  # times set aside since its last success
    cooldown_until: float = 0.0  # clock time until which it is set aside
    down: Optional[str] = None  # why its latest attempt could not connect; None once it answers


class EndpointPool:
    """The servers of one backend, in the order given, with their health."""

    def __init__(self, urls: list[str], *, fail_limit: int = 2, cooldown: float = 10.0,
                 cooldown_cap: float = 120.0, clock: Callable[[], float] = time.monotonic):
        self.endpoints: list[Endpoint] = []
        for i, url in enumerate(urls):
            base, auth, query = split_credentials(url)
            self.endpoints.append(Endpoint(i, base, auth, query, redact_url(url.rstrip("/")), public_url(base)))
        self.fail_limit = max(1, fail_limit)
        self.cooldown = cooldown
        self.cooldown_cap = cooldown_cap
        self.clock = clock

    def __len__(self) -> int:
        return len(self.endpoints)

    @property
    def shown(self) -> str:
        return ", ".join(ep.shown for ep in self.endpoints)

    @property
    def identity(self) -> str:
        """The servers' part of the model id (and so of every cache key). One server: its public URL, as it
        always was. Several: their public URLs sorted and joined, so neither the server that happened to answer
        a request, nor the order the URLs were given in, nor their credentials change a key (the replicas serve
        the same model with the same settings: which one answered is not part of what was asked); another set
        of servers is another identity, as another single server would be."""
        return ",".join(sorted({ep.public for ep in self.endpoints}))

    def cooling(self, ep: Endpoint) -> bool:
        return ep.cooldown_until > self.clock()

    def all_down(self) -> bool:
        return all(ep.down for ep in self.endpoints)

    def succeeded(self, ep: Endpoint) -> None:
        ep.failures = ep.trips = 0
        ep.cooldown_until = 0.0  # a request sent before it was set aside got through: it is back
        ep.down = None

    def failed(self, ep: Endpoint, reason: str, *, connect: bool = False) -> None:
        """An attempt on ``ep`` failed for a reason another attempt may get past; ``reason`` is already redacted.
        Sets the server aside after ``fail_limit`` failures in a row, logging it once per trip."""
        ep.down = reason if connect else None
        if len(self.endpoints) == 1:
            return
        ep.failures += 1
        now = self.clock()
        if ep.failures < self.fail_limit or ep.cooldown_until > now:  # not yet, or already set aside
            return
        seconds = min(self.cooldown_cap, self.cooldown * 2**ep.trips)
        ep.trips += 1
        ep.cooldown_until = now + seconds
        others = sum(not self.cooling(other) for other in self.endpoints)
        log.warning("openai server %s set aside for %.0fs after %d failures in a row (latest: %s); %d of %d "
                    "servers in use", ep.shown, seconds, ep.failures, reason, others, len(self.endpoints))

    def balancer(self, concurrency: int) -> "Balancer":
        return Balancer(self, concurrency)


class Balancer:
    """One batch's requests in flight per server, and the wait for a free slot (one asyncio event loop)."""

    def __init__(self, pool: EndpointPool, concurrency: int):
        self.pool = pool
        self.concurrency = max(1, concurrency)
        self.in_flight = [0] * len(pool)
        self._turn = 0  # where ties start: the server after the one chosen last
        self._freed = asyncio.Event()

    def pick(self, avoid: Optional[Endpoint] = None) -> Optional[Endpoint]:
        """The server for the next request, or None while every server it may go to is full: among the servers
        not set aside (all of them when every one is) and, when another one is left, other than ``avoid``, the
        one with the fewest requests in flight."""
        eps = self.pool.endpoints
        usable = [ep for ep in eps if not self.pool.cooling(ep)] or eps
        usable = [ep for ep in usable if ep is not avoid] or usable
        # A server back from a cooldown takes one request at a time until one succeeds (trips is reset then).
        free = [ep for ep in usable if self.in_flight[ep.index] < (1 if ep.trips else self.concurrency)]
        if not free:
            return None
        chosen = min(free, key=lambda ep: (self.in_flight[ep.index], (ep.index - self._turn) % len(eps)))
        self._turn = chosen.index + 1
        return chosen

    async def acquire(self, avoid: Optional[Endpoint] = None) -> Endpoint:
        """A slot on a server, waiting for one to free up; give it back with :meth:`release`."""
        while (ep := self.pick(avoid)) is None:
            self._freed.clear()
            await self._freed.wait()
        self.in_flight[ep.index] += 1
        return ep

    def release(self, ep: Endpoint) -> None:
        self.in_flight[ep.index] -= 1
        self._freed.set()
