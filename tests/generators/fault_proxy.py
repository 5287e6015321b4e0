"""A fault-injecting HTTP proxy for tests: sits on 127.0.0.1 in front of a real OpenAI-compatible server.

Faults are chosen by arrival order, so a schedule is deterministic whatever the client's concurrency:
``FaultProxy(upstream, {0: "500", 3: "stall"})`` breaks the first and the fourth request to arrive and
forwards every other one. It is bounded: stalls end at ``stall_seconds`` (or as soon as the client hangs up,
or the proxy stops), requests beyond ``max_requests`` get a 503, and the proxy shuts itself down after
``lifetime`` seconds even if a test forgets to stop it.

Faults:
  "500"        HTTP 500, not forwarded
  "429"        HTTP 429 with Retry-After: ``retry_after``, not forwarded
  "stall"      reads the request, then says nothing for ``stall_seconds`` and closes; not forwarded
  "drop"       closes the connection without a response; not forwarded
  "truncate"   forwards, then returns the first half of the upstream body (Content-Length matching it)
  "corrupt"    forwards, then returns the body with invalid UTF-8 and quotes broken
  "shape"      HTTP 200 with valid JSON that is not a completion ({"choices": []}); not forwarded
  "echo_auth"  HTTP 400 whose error message repeats the Authorization header (a careless server)
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

import httpx

FAULTS = ("500", "429", "stall", "drop", "truncate", "corrupt", "shape", "echo_auth")
FORWARDED_FAULTS = ("truncate", "corrupt")


@dataclass
class Arrival:
    index: int
    method: str
    path: str
    fault: Optional[str]
    time: float  # time.monotonic() at arrival
    body: Optional[dict]
    authorization: Optional[str]
    status: Optional[int] = None  # what the client got (None: closed without a response)
    response: Optional[dict] = field(default=None, repr=False)  # the upstream JSON, for clean forwards


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        schedule: Optional[dict[int, str]] = None,
        *,
        stall_seconds: float = 8.0,
        retry_after: str = "1",
        max_requests: int = 200,
        lifetime: float = 300.0,
        upstream_timeout: float = 120.0,
        port: int = 0,
    ):
        """upstream: the real server's /v1 address or its origin; only scheme://host:port is used.
        port: where to listen on 127.0.0.1 (0: any free port), e.g. an address a test first found dead."""
        parsed = httpx.URL(upstream)
        self.upstream = f"{parsed.scheme}://{parsed.host}:{parsed.port}"
        self.schedule = dict(schedule or {})
        unknown = set(self.schedule.values()) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)} (known: {', '.join(FAULTS)})")
        self.stall_seconds = stall_seconds
        self.retry_after = retry_after
        self.max_requests = max_requests
        self.lifetime = lifetime
        self.arrivals: list[Arrival] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._client = httpx.Client(timeout=upstream_timeout)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: Optional[threading.Thread] = None
        self._timer: Optional[threading.Timer] = None

    # ------------------------------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> "FaultProxy":
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()  # ends stalls at once
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------------------------------------------- stats

    @property
    def requests(self) -> int:
        return len(self.arrivals)

    @property
    def faults(self) -> Counter:
        return Counter(a.fault for a in self.arrivals if a.fault)

    @property
    def clean(self) -> list[Arrival]:
        """Arrivals forwarded without a fault that got a 200 from upstream."""
        return [a for a in self.arrivals if a.fault is None and a.status == 200]

    # ------------------------------------------------------------------------------------------- handling

    def _handler_class(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                proxy._handle(self)

            def do_POST(self):
                proxy._handle(self)

        return Handler

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self._lock:
            index = len(self.arrivals)
            fault = self.schedule.get(index)
            arrival = Arrival(index, h.command, h.path, fault, time.monotonic(), body, h.headers.get("Authorization"))
            self.arrivals.append(arrival)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if index >= self.max_requests:
                self._reply(h, arrival, 503, {"error": {"message": "fault proxy: request budget spent"}})
            elif fault == "500":
                self._reply(h, arrival, 500, {"error": {"message": "injected server error"}})
            elif fault == "429":
                self._reply(h, arrival, 429, {"error": {"message": "injected rate limit"}},
                            headers={"Retry-After": self.retry_after})
            elif fault == "shape":
                self._reply(h, arrival, 200, {"choices": []})
            elif fault == "echo_auth":
                message = f"invalid credentials: {h.headers.get('Authorization')}"
                self._reply(h, arrival, 400, {"error": {"message": message}})
            elif fault == "stall":
                self._stall(h)
            elif fault == "drop":
                h.close_connection = True
            else:
                self._forward(h, arrival, raw, fault)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True  # the client gave up first; nothing to tell it
        finally:
            with self._lock:
                self.in_flight -= 1

    def _stall(self, h: BaseHTTPRequestHandler) -> None:
        """Hold the connection silent until stall_seconds pass, the client hangs up, or the proxy stops."""
        h.close_connection = True
        deadline = time.monotonic() + self.stall_seconds
        conn: socket.socket = h.connection
        while not self._stopping.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([conn], [], [], 0.05)
            if readable:
                try:
                    if conn.recv(1, socket.MSG_PEEK) == b"":
                        return  # client closed its end
                except OSError:
                    return

    def _forward(self, h: BaseHTTPRequestHandler, arrival: Arrival, raw: bytes, fault: Optional[str]) -> None:
        headers = {k: v for k, v in h.headers.items() if k.lower() in ("authorization", "content-type", "accept")}
        try:
            resp = self._client.request(h.command, self.upstream + h.path, content=raw, headers=headers)
        except httpx.HTTPError as exc:
            self._reply(h, arrival, 502, {"error": {"message": f"fault proxy: upstream {type(exc).__name__}"}})
            return
        content = resp.content
        if fault is None and resp.status_code == 200:
            try:
                arrival.response = resp.json()
            except ValueError:
                pass
        if fault == "truncate":
            content = content[: len(content) // 2]
        elif fault == "corrupt":
            content = b"\xff\xfe" + content.replace(b'"', b"'")
        self._send(h, arrival, resp.status_code, content, resp.headers.get("content-type", "application/json"))

    def _reply(self, h, arrival: Arrival, status: int, payload: dict, headers: Optional[dict] = None) -> None:
        self._send(h, arrival, status, json.dumps(payload).encode(), "application/json", headers)

    @staticmethod
    def _send(h, arrival: Arrival, status: int, content: bytes, content_type: str,
              headers: Optional[dict] = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(content)))
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.end_headers()
        h.wfile.write(content)
        h.wfile.flush()
        arrival.status = status
