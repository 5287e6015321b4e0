"""The review server's checks, without a browser: what it serves and everything it refuses (token, Host,
Origin, body type and size, queries outside the queue, passages outside an item's candidates, invalid labels),
each with a JSON error and a 4xx status; and what it accepts lands in labels.jsonl."""

from __future__ import annotations

import http.client
import json
import re
import threading
from pathlib import Path

import pytest

from buildbench.errors import ConfigError
from buildbench.labels.queue import review_items
from buildbench.labels.server import (
    MAX_BODY,
    TOKEN_HEADER,
    ReviewServer,
    ReviewState,
    reviewer_name,
)
from buildbench.labels.store import Label, LabelStore
from tests.labels.rundata import DOC_FILTERS, QUERY_FILTERS, make_run, read_labels


@pytest.fixture
def server(tmp_path: Path):
    run = make_run(tmp_path / "run").root
    state = ReviewState(run, review_items(run), "ana")
    srv = ReviewServer(state, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def request(srv, method: str, path: str, body=None, headers=None, token: bool = True):
    """(status, parsed JSON or text, headers) of one request; ``body`` a dict is sent as JSON."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    hdrs = {"Host": f"127.0.0.1:{srv.port}"}
    if token:
        hdrs[TOKEN_HEADER] = srv.state.token
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for k, v in hdrs.items():
        conn.putheader(k, v)
    if body is not None and "Content-Length" not in hdrs:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    ctype = resp.getheader("Content-Type", "")
    return resp.status, (json.loads(raw) if "json" in ctype else raw.decode()), resp


def post(srv, body, **kw):
    return request(srv, "POST", "/api/label", body, **kw)


def test_the_page_is_static_with_a_strict_csp_and_the_token(server):
    status, html, resp = request(server, "GET", "/", token=False)
    assert status == 200 and resp.getheader("Content-Type").startswith("text/html")
    csp = resp.getheader("Content-Security-Policy")
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert resp.getheader("X-Content-Type-Options") == "nosniff"
    assert f'content="{server.state.token}"' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)  # no inline script
    assert not re.search(r"\son[a-z]+\s*=", html) and "style=" not in html  # no inline handler or style
    for path, ctype in (("/app.js", "text/javascript"), ("/app.css", "text/css")):
        status, text, resp = request(server, "GET", path, token=False)
        assert status == 200 and resp.getheader("Content-Type").startswith(ctype) and text
    status, js, _ = request(server, "GET", "/app.js", token=False)
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js and "document.write" not in js
    status, body, _ = request(server, "GET", "/nothing-here")
    assert status == 404 and "nothing-here" in body["error"]


def test_the_queue(server):
    status, q, _ = request(server, "GET", "/api/queue")
    assert status == 200
    assert q["reviewer"] == "ana" and q["total"] == 8 and q["done"] == 0 and q["labels"] == {}
    assert [it["query_id"] for it in q["items"]] == [f"q{i}" for i in range(8)]
    assert q["items"][1] == {"query_id": "q1", "persona": "journalist", "style": "keyword", "difficulty": "easy",
                             "recipe": "inpars-persona"}
    status, q1, _ = request(server, "GET", "/api/item?query_id=q1")
    assert status == 200 and q1["query_id"] == "q1"
    assert q1["text"] == "what rate did the committee set in meeting 1?"
    assert [(p["id"], p["kind"]) for p in q1["positives"]] == [("c1", "corpus")]
    assert "1 percent in meeting 1" in q1["positives"][0]["text"]
    cands = q1["candidates"]
    assert len(cands) == 8 and [c["rank"] for c in cands] == list(range(1, 9))
    assert cands[0]["decision"] == "too_close" and cands[0]["found_by"] == ["bm25", "minilm"]
    assert cands[3]["passage"]["id"] == "neg-q1" and cands[3]["passage"]["kind"] == "synthetic"
    assert cands[3]["decision"] == "synthetic" and "synthetic passage" in cands[3]["passage"]["text"]
    assert q1["persona"] == "journalist" and q1["style"] == "keyword" and q1["recipe"] == "inpars-persona"
    assert q1["model"].startswith("gemma3-270m") and q1["filters"] == DOC_FILTERS + QUERY_FILTERS
    assert "judge" not in json.dumps([q, q1]).lower()  # no verdict to steer the reviewer
    for path in ("/api/queue", "/api/item?query_id=q1"):
        assert request(server, "GET", path, token=False)[0] == 403
    status, body, _ = request(server, "GET", "/api/item?query_id=q%2099")
    assert status == 404 and "q 99" in body["error"]


def test_token_is_required(server):
    ok = {"query_id": "q1", "label": "good"}
    assert post(server, ok, token=False)[0] == 403
    status, body, _ = post(server, ok, token=False, headers={TOKEN_HEADER: "not-the-token"})
    assert status == 403 and TOKEN_HEADER in body["error"] and body["status"] == 403
    assert read_labels(server.state.run_dir) == []


def test_host_and_origin_are_checked(server):
    port = server.port
    for host in (f"evil.example:{port}", f"127.0.0.1:{port + 1}", "127.0.0.1", f"localhost.evil.example:{port}"):
        status, body, _ = request(server, "GET", "/", headers={"Host": host})
        assert status == 403 and "Host" in body["error"], host
    assert request(server, "GET", "/", headers={"Host": f"localhost:{port}"})[0] == 200
    for origin in ("http://evil.example", f"http://evil.example:{port}", "null", f"https://127.0.0.1:{port}"):
        status, body, _ = post(server, {"query_id": "q1", "label": "good"}, headers={"Origin": origin})
        assert status == 403 and "Origin" in body["error"], origin
    status, _, _ = post(server, {"query_id": "q1", "label": "good"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 403
    assert read_labels(server.state.run_dir) == []
    status, _, _ = post(server, {"query_id": "q1", "label": "good"},
                        headers={"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"})
    assert status == 200


def test_the_body_is_checked(server):
    status, body, _ = post(server, b'{"query_id": "q1", "label": "good"}', headers={"Content-Type": "text/plain"})
    assert status == 415 and "JSON" in body["error"]
    status, body, _ = post(server, b"{not json", headers={"Content-Type": "application/json"})
    assert status == 400 and "JSON" in body["error"]
    big = json.dumps({"query_id": "q1", "label": "good", "note": "x" * (3 * MAX_BODY)}).encode()
    status, body, _ = post(server, big, headers={"Content-Type": "application/json"})
    assert status == 413 and str(MAX_BODY) in body["error"]
    status, body, _ = post(server, b"", headers={"Content-Type": "application/json", "Content-Length": "99999999"})
    assert status == 413
    status, body, _ = post(server, b'["q1"]', headers={"Content-Type": "application/json"})
    assert status == 400 and "object" in body["error"]
    assert read_labels(server.state.run_dir) == []


def test_the_label_is_checked_against_the_queue(server):
    status, body, _ = post(server, {"query_id": "q99", "label": "good"})
    assert status == 400 and "q99" in body["error"] and "queue" in body["error"]
    status, body, _ = post(server, {"query_id": "q1", "label": "missed_positive", "passage_id": "c13"})
    assert status == 400 and "c13" in body["error"] and "candidates" in body["error"]
    status, body, _ = post(server, {"query_id": "q1", "label": "missed_positive", "passage_id": "c1"})  # its positive
    assert status == 400 and "c1" in body["error"]
    status, body, _ = post(server, {"query_id": "q1", "label": "missed_positive"})
    assert status == 400 and "passage_id" in body["error"]
    status, body, _ = post(server, {"query_id": "q1", "label": "great"})
    assert status == 400 and "great" in body["error"] and "good" in body["error"]
    status, body, _ = post(server, {"query_id": "q1", "label": "good", "reviewer": "bob"})
    assert status == 400 and "reviewer" in body["error"]  # the server's reviewer, not the page's say
    status, body, _ = post(server, {"query_id": "q1", "label": "good", "note": 5})
    assert status == 400 and "note" in body["error"]
    assert request(server, "PUT", "/api/label", {"query_id": "q1", "label": "good"})[0] == 405
    assert read_labels(server.state.run_dir) == []


def test_accepted_labels_are_stored_and_shown_to_their_reviewer_only(server):
    run = server.state.run_dir
    LabelStore(run).append(Label("q3", "wrong", reviewer="bob"))
    status, body, _ = post(server, {"query_id": "q2", "label": "missed_positive", "passage_id": "c4", "note": "é <b>"})
    assert status == 200 and body["done"] == 1 and body["total"] == 8
    assert body["saved"]["reviewer"] == "ana" and body["saved"]["time"]
    status, body, _ = post(server, {"query_id": "q2", "label": "good"})  # a change of mind: the last one counts
    assert status == 200 and body["done"] == 1
    rows = read_labels(run)
    assert [(r["reviewer"], r["query_id"], r["label"], r["passage_id"], r["note"], r["source"]) for r in rows] == [
        ("bob", "q3", "wrong", "", "", "review"), ("ana", "q2", "missed_positive", "c4", "é <b>", "review"),
        ("ana", "q2", "good", "", "", "review")]
    _, q, _ = request(server, "GET", "/api/queue")
    assert q["done"] == 1 and list(q["labels"]) == ["q2"] and q["labels"]["q2"]["label"] == "good"


def test_reviewer_names(monkeypatch):
    monkeypatch.setenv("USER", "carla")
    assert reviewer_name(None) == "carla" and reviewer_name("ana.b@x") == "ana.b@x"
    monkeypatch.setenv("USER", "not a name")
    assert reviewer_name(None) == "reviewer"
    monkeypatch.delenv("USER")
    assert reviewer_name(None) == "reviewer"
    with pytest.raises(ConfigError, match="--reviewer"):
        reviewer_name("a b")
