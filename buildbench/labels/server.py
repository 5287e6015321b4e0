"""The review page's server (``build-bench label``): the page's static files and a small JSON API on
127.0.0.1, built on the standard library's ``ThreadingHTTPServer``.

    GET  /                 index.html (carries this server's random token)
    GET  /app.js, /app.css the page's code and style (no inline script: the CSP forbids it)
    GET  /api/queue        the reviewer, the queue (query ids and strata) and this reviewer's latest labels
    GET  /api/item?query_id=ID   one item: the query, its positives, closest candidates and provenance
    POST /api/label        {"query_id", "label", "passage_id"?, "note"?} -> stored in RUN_DIR/labels/labels.jsonl

Queries and passages are untrusted text; the page only ever sets them as text. What the server accepts is
checked before anything is stored: the Host header must name this server (a DNS-rebinding page cannot talk to
it), a foreign Origin or cross-site fetch is refused, every API call carries the token in ``X-Review-Token``,
a POST body is JSON of at most ``MAX_BODY`` bytes, the query must be in the queue, a missed positive must name
one of the item's candidates, and the label passes ``Label.from_dict``. Each label is stored before the reply
(an atomic rewrite of the label file), so closing the page or killing the server loses nothing.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import secrets
import socket
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Optional, Sequence
from urllib.parse import parse_qs

from ..errors import ConfigError
from .queue import STRATUM, ReviewItem
from .store import GOOD, MISSED_POSITIVE, Label, LabelError, LabelStore

log = logging.getLogger("buildbench")

STATIC = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"/": ("index.html", "text/html; charset=utf-8"),
                "/index.html": ("index.html", "text/html; charset=utf-8"),
                "/app.js": ("app.js", "text/javascript; charset=utf-8"),
                "/app.css": ("app.css", "text/css; charset=utf-8")}
TOKEN_HEADER = "X-Review-Token"
TOKEN_PLACEHOLDER = "__REVIEW_TOKEN__"
MAX_BODY = 64 * 1024  # a label with the longest note is well under this
DRAIN_LIMIT = 1 << 20  # an oversize body up to this is read and dropped, so the client gets its 413
CLIENT_FIELDS = frozenset({"query_id", "label", "passage_id", "note"})
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
                    "Cross-Origin-Resource-Policy": "same-origin", "Cross-Origin-Opener-Policy": "same-origin"}


class RequestError(Exception):
    """A request refused with a status and a message for the JSON error body."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def reviewer_name(given: Optional[str]) -> str:
    """The reviewer: ``given`` (a ConfigError when it is no valid name), else $USER when it is one, else
    "reviewer"."""
    name = given or os.environ.get("USER") or "reviewer"
    try:
        return Label("check", GOOD, reviewer=name).reviewer
    except LabelError:
        if given:
            raise ConfigError(f"--reviewer {given!r}: use 1-64 letters, digits or _.@- (starting with a letter "
                              "or digit)") from None
        return "reviewer"  # $USER is no valid reviewer name


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_names(host: str) -> set[str]:
    """The names a browser may put in the Host header for a server bound to ``host``."""
    bare = host.strip("[]")
    names = {bare.lower(), *LOOPBACK_NAMES}
    try:
        if ipaddress.ip_address(bare).version == 6:
            names.add(f"[{bare.lower()}]")
    except ValueError:
        pass
    if bare in ("0.0.0.0", "::", ""):  # every interface: the machine's own names and addresses
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        try:
            names |= set(socket.gethostbyname_ex(socket.gethostname())[2])
        except OSError:
            pass
    return names


class ReviewState:
    """What the handlers share: the queue, the reviewer, the store and the token."""

    def __init__(self, run_dir: Path, items: Sequence[ReviewItem], reviewer: str):
        Label("check", GOOD, reviewer=reviewer)  # a LabelError now, not on the first click
        self.run_dir = Path(run_dir)
        self.items = list(items)
        self.by_id = {it.query_id: it for it in self.items}
        self.reviewer = reviewer
        self.store = LabelStore(self.run_dir)
        self.token = secrets.token_urlsafe(32)
        self.store.read()  # a corrupt label file stops the start with its line named

    def my_labels(self) -> dict[str, dict[str, Any]]:
        """This reviewer's latest label of each query in the queue."""
        return {qid: asdict(lab) for (who, qid), lab in self.store.latest().items()
                if who == self.reviewer and qid in self.by_id}

    def queue(self) -> dict[str, Any]:
        labels = self.my_labels()
        return {"reviewer": self.reviewer, "run": self.run_dir.resolve().name, "total": len(self.items),
                "done": len(labels), "labels": labels,
                "items": [{"query_id": it.query_id, **dict(zip(STRATUM, it.stratum))} for it in self.items]}

    def item(self, query: str) -> dict[str, Any]:
        qid = (parse_qs(query).get("query_id") or [""])[0]
        if qid not in self.by_id:
            raise RequestError(404, f"query_id {qid!r} is not in this review queue")
        return self.by_id[qid].to_json()

    def accept(self, body: Any) -> dict[str, Any]:
        """Check a posted label against the queue and store it; RequestError(400) naming what is wrong."""
        if not isinstance(body, dict):
            raise RequestError(400, "the body is a JSON object with query_id and label")
        unknown = sorted(set(body) - CLIENT_FIELDS)
        if unknown:
            raise RequestError(400, f"unknown field(s) {', '.join(unknown)}; send {', '.join(sorted(CLIENT_FIELDS))}")
        qid = body.get("query_id")
        if not isinstance(qid, str) or qid not in self.by_id:
            raise RequestError(400, f"query_id {qid!r} is not in this review queue")
        pid = body.get("passage_id") or ""
        if (body.get("label") == MISSED_POSITIVE or pid) and \
                (not isinstance(pid, str) or pid not in self.by_id[qid].candidate_ids):
            raise RequestError(400, f"passage_id {pid!r} is not one of the candidates of query {qid}")
        row = {k: v for k, v in body.items() if v is not None}
        try:
            label = Label.from_dict({**row, "reviewer": self.reviewer, "source": "review"})
        except LabelError as e:
            raise RequestError(400, str(e)) from None
        (stored,) = self.store.append(label)
        return {"saved": asdict(stored), "done": len(self.my_labels()), "total": len(self.items)}


class ReviewHandler(BaseHTTPRequestHandler):
    server: "ReviewServer"
    server_version = "build-bench-review"
    sys_version = ""
    timeout = 30  # a client that stops sending mid-request frees its thread

    # -- checks
    def _check_host(self) -> None:
        host = self.headers.get("Host")
        if not host:
            raise RequestError(403, "a Host header is required")
        name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        if not name or not port.isdigit() or int(port) != self.server.port or name.lower() not in self.server.host_names:
            raise RequestError(403, f"Host {host!r} is not this review server")

    def _check_origin(self) -> None:
        origin = self.headers.get("Origin")
        if origin is not None:
            scheme, _, rest = origin.partition("://")
            name, _, port = rest.rpartition(":")
            if scheme != "http" or not port.isdigit() or int(port) != self.server.port \
                    or name.lower() not in self.server.host_names:
                raise RequestError(403, f"Origin {origin!r} may not use this review server")
        if self.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            raise RequestError(403, "cross-site requests are refused")

    def _check_token(self) -> None:
        given = self.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(given.encode("utf-8", "replace"), self.server.state.token.encode()):
            raise RequestError(403, f"missing or wrong {TOKEN_HEADER} header (reload the page)")

    def _json_body(self) -> Any:
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise RequestError(415, "the body must be JSON (Content-Type: application/json)")
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise RequestError(411, "send the body with a Content-Length, not chunked")
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            raise RequestError(411, "a Content-Length header is required")
        size = int(length)
        if size > MAX_BODY:
            if size <= DRAIN_LIMIT:
                self._drain(size)
            raise RequestError(413, f"the body is {size} bytes; at most {MAX_BODY} are accepted")
        raw = self.rfile.read(size)
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RequestError(400, f"the body is not valid JSON ({e})") from None

    def _drain(self, size: int) -> None:
        while size > 0:
            chunk = self.rfile.read(min(size, 65536))
            if not chunk:
                break
            size -= len(chunk)

    # -- replies
    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in SECURITY_HEADERS.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

    def _handle(self, route) -> None:
        try:
            self._check_host()
            self._check_origin()
            route()
        except RequestError as e:
            self.close_connection = True
            self._json(e.status, {"error": str(e), "status": e.status})
        except Exception:  # pragma: no cover - a bug: logged with its traceback, a 500 to the page
            log.exception("review server: %s %s failed", self.command, self.path)
            self._json(500, {"error": "internal error; see the server's log", "status": 500})

    # -- routes
    def do_GET(self) -> None:
        self._handle(self._get)

    def do_HEAD(self) -> None:
        self._handle(self._get)

    def do_POST(self) -> None:
        self._handle(self._post)

    def _not_allowed(self) -> None:
        self._handle(self._refuse)

    def _refuse(self) -> None:
        raise RequestError(405, f"{self.command} is not supported")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    def _get(self) -> None:
        path, _, query = self.path.partition("?")
        if path in STATIC_FILES:
            name, ctype = STATIC_FILES[path]
            body = (STATIC / name).read_bytes()
            if name == "index.html":
                body = body.replace(TOKEN_PLACEHOLDER.encode(), self.server.state.token.encode())
            self._send(200, body, ctype)
        elif path == "/favicon.ico":
            self._send(204, b"", "image/x-icon")
        elif path == "/api/queue":
            self._check_token()
            self._json(200, self.server.state.queue())
        elif path == "/api/item":
            self._check_token()
            self._json(200, self.server.state.item(query))
        else:
            raise RequestError(404, f"no such page: {path}")

    def _post(self) -> None:
        path = self.path.split("?", 1)[0]
        if path != "/api/label":
            raise RequestError(404 if path.startswith("/api/") else 405, f"cannot POST to {path}")
        self._check_token()
        self._json(200, self.server.state.accept(self._json_body()))

    def log_message(self, format: str, *args) -> None:
        log.debug("review server: " + format, *args)


class ReviewServer(ThreadingHTTPServer):
    """The review page's server, bound on construction (``port`` 0: a free port, read back in ``.port``)."""

    daemon_threads = True

    def __init__(self, state: ReviewState, host: str = "127.0.0.1", port: int = 0):
        self.address_family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
        super().__init__((host.strip("[]"), port), ReviewHandler)
        self.state = state
        self.host = host
        self.port = self.server_address[1]
        self.host_names = _host_names(host)

    @property
    def url(self) -> str:
        bare = self.host.strip("[]")
        shown = "127.0.0.1" if bare in ("0.0.0.0", "") else "[::1]" if bare == "::" else \
            f"[{bare}]" if ":" in bare else bare
        return f"http://{shown}:{self.port}/"


def serve(run_dir: Path, items: Sequence[ReviewItem], reviewer: str, host: str = "127.0.0.1", port: int = 0,
          announce: Callable[[str], None] = print, open_browser: bool = False) -> None:
    """Run the review server until Ctrl-C: ``announce`` gets the page's address line once it listens, then the
    default browser opens the page when ``open_browser``."""
    state = ReviewState(run_dir, items, reviewer)
    if not is_loopback(host.strip("[]")):
        log.warning("the review server listens on %s: anyone who can reach it can read the queries (writes "
                    "still need the page's token); use the default 127.0.0.1 unless you mean it", host)
    with ReviewServer(state, host, port) as server:
        announce(f"review page: {server.url}")
        if open_browser:  # in a thread: a console browser would hold up the server
            import threading
            import webbrowser

            threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            announce(f"review server stopped; labels are in {state.store.path}")
