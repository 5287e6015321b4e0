"""HfHub's contract with the Hub: the real HfApi, its HTTP answered by an in-process fake at the transport.

``huggingface_hub.set_client_factory`` swaps the client every HfApi call uses for one whose transport is an
``httpx2.MockTransport`` (huggingface_hub 2.x speaks httpx2), so nothing leaves the process, while all of
HfApi's own request building, payloads and error mapping run for real. The fake keeps just enough state
(commits, main, tags, pull requests) to answer the calls a publish makes; every request is recorded, and the
tests pin the exact sequence of (method, path), the commit payloads, and where the token goes: only into the
Authorization header of requests to the Hub's own host.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from pathlib import Path
from urllib.parse import unquote

import httpx2
import pytest
from huggingface_hub import constants, set_client_factory
from huggingface_hub.utils import _http

from buildbench.cli import main
from buildbench.errors import PublishError
from buildbench.hub.card import split_card
from buildbench.hub.hf import HfHub
from buildbench.hub.publish import publish_task

from .conftest import write_kitchen_task

REPO = "acme/kitchen"
TOKEN = "hf_FakeContractToken" + "x7Q2mZ9pL4vB8nR1"  # not a real token; must never be echoed anywhere
R = f"/api/datasets/{REPO}"


def _sha(*parts: object) -> str:
    return hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()


class FakeHub:
    """The few Hub endpoints a publish uses, over in-memory state; records every request."""

    def __init__(self):
        self.requests: list[httpx2.Request] = []
        self.bodies: list[bytes] = []
        self.repos: dict[str, dict] = {}

    # -- recording

    def calls(self, start: int = 0) -> list[str]:
        out = []
        for req in self.requests[start:]:
            query = "?create_pr=1" if req.url.params.get("create_pr") == "1" else ""
            out.append(f"{req.method} {unquote(req.url.path)}{query}")
        return out

    def commit_payloads(self) -> list[list[dict]]:
        return [[json.loads(line) for line in body.splitlines() if line.strip()]
                for req, body in zip(self.requests, self.bodies) if req.url.path.endswith("/commit/main")]

    # -- the transport

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        body = request.read()
        self.requests.append(request)
        self.bodies.append(body)
        path = unquote(request.url.path)
        m = re.match(r"^/api/datasets/([^/]+/[^/]+)/(refs|tree|preupload|commit|tag|revision)/(.+)$", path) or \
            re.match(r"^/api/datasets/([^/]+/[^/]+)/(refs)$", path)
        if request.method == "POST" and path == "/api/repos/create":
            return self._create(json.loads(body))
        if request.method == "POST" and path == "/api/validate-yaml":
            return httpx2.Response(200, json={"errors": [], "warnings": []})
        # Revisions come URL-quoted ("refs%2Fpr%2F1"): split the raw path before decoding it.
        raw = request.url.raw_path.decode().split("?", 1)[0]
        m_file = re.match(r"^/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", raw)
        if m_file:
            return self._resolve(*(unquote(g) for g in m_file.groups()))
        if not m:
            return httpx2.Response(404, json={"error": f"no route {path}"})
        repo_id, what, rest = m.group(1), m.group(2), m.group(3) if m.lastindex and m.lastindex >= 3 else ""
        repo = self.repos.get(repo_id)
        if repo is None:
            return httpx2.Response(404, headers={"X-Error-Code": "RepoNotFound"},
                                   json={"error": "Repository not found"})
        if what == "refs":
            return httpx2.Response(200, json={
                "branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": repo["main"]}],
                "converts": [],
                "tags": [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": c} for t, c in repo["tags"].items()],
            })
        if what == "revision":
            sha = self._rev(repo, rest)
            return httpx2.Response(200, json={"id": repo_id, "sha": sha}) if sha else \
                httpx2.Response(404, headers={"X-Error-Code": "RevisionNotFound"}, json={"error": "no revision"})
        if what == "tree":
            files = repo["commits"][self._rev(repo, rest)]["files"]
            return httpx2.Response(200, json=[
                {"type": "file", "oid": hashlib.sha1(data).hexdigest(), "size": len(data), "path": p}
                for p, data in sorted(files.items())
            ])
        if what == "preupload":
            files = json.loads(body)["files"]
            return httpx2.Response(200, json={"files": [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None} for f in files
            ]})
        if what == "commit":
            return self._commit(repo_id, repo, body, request.url.params.get("create_pr") == "1")
        if what == "tag":
            tag = json.loads(body)["tag"]
            if tag in repo["tags"]:
                return httpx2.Response(409, json={"error": "Tag already exists"})
            repo["tags"][tag] = rest
            return httpx2.Response(200, json={})
        return httpx2.Response(404, json={"error": "unhandled"})

    def _create(self, payload: dict) -> httpx2.Response:
        repo_id = f"{payload['organization']}/{payload['name']}"
        assert payload.get("type") == "dataset"
        if repo_id in self.repos:
            return httpx2.Response(409, json={"error": "You already created this dataset repo",
                                              "url": f"https://huggingface.co/datasets/{repo_id}"})
        first = _sha(repo_id, "init")
        self.repos[repo_id] = {"main": first, "tags": {}, "prs": [],
                               "commits": {first: {"files": {".gitattributes": b"*.parquet filter=lfs\n"}}}}
        return httpx2.Response(200, json={"url": f"https://huggingface.co/datasets/{repo_id}"})

    def _rev(self, repo: dict, rev: str) -> str | None:
        if rev == "main":
            return repo["main"]
        if rev in repo["tags"]:
            return repo["tags"][rev]
        m = re.match(r"^refs/pr/(\d+)$", rev)
        if m and int(m.group(1)) <= len(repo["prs"]):
            return repo["prs"][int(m.group(1)) - 1]
        return rev if rev in repo["commits"] else None

    def _resolve(self, repo_id: str, rev: str, path: str) -> httpx2.Response:
        repo = self.repos.get(repo_id)
        sha = self._rev(repo, rev) if repo else None
        if sha is None:
            return httpx2.Response(404, headers={"X-Error-Code": "RevisionNotFound"}, json={"error": "no revision"})
        files = repo["commits"][sha]["files"]
        if path not in files:
            return httpx2.Response(404, headers={"X-Error-Code": "EntryNotFound"}, json={"error": "no file"})
        return httpx2.Response(200, content=files[path])

    def _commit(self, repo_id: str, repo: dict, body: bytes, create_pr: bool) -> httpx2.Response:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        header = lines[0]["value"]
        parent = header.get("parentCommit") or repo["main"]
        if not create_pr and parent != repo["main"]:
            return httpx2.Response(412, json={"error": "A commit has happened since. Please refresh and try again."})
        files = dict(repo["commits"][parent]["files"])
        for line in lines[1:]:
            if line["key"] == "file":
                files[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
            elif line["key"] == "deletedFile":
                files.pop(line["value"]["path"])
        sha = _sha(repo_id, parent, sorted(files.items()), header["summary"], len(repo["commits"]))
        repo["commits"][sha] = {"files": files, "summary": header["summary"], "parent": parent}
        url = f"https://huggingface.co/datasets/{repo_id}"
        out = {"commitUrl": f"{url}/commit/{sha}", "commitOid": sha, "pullRequestUrl": None}
        if create_pr:
            repo["prs"].append(sha)
            out["pullRequestUrl"] = f"{url}/discussions/{len(repo['prs'])}"
        else:
            repo["main"] = sha
        return httpx2.Response(200, json=out)


@pytest.fixture
def fake_hub(monkeypatch, caplog) -> FakeHub:
    """Every huggingface_hub request in this test goes to a FakeHub; HF_TOKEN is the fake token."""
    hub = FakeHub()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the suite's conftest sets HF_HUB_OFFLINE=1
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    set_client_factory(lambda: httpx2.Client(
        transport=httpx2.MockTransport(hub),
        event_hooks={"request": [_http.hf_request_event_hook]},  # as the default client: offline check, ids
        follow_redirects=True,
    ))
    # huggingface_hub's loggers do not propagate: hand them caplog's handler, at debug level.
    hf_logger = logging.getLogger("huggingface_hub")
    old_level = hf_logger.level
    hf_logger.addHandler(caplog.handler)
    hf_logger.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    try:
        yield hub
    finally:
        hf_logger.removeHandler(caplog.handler)
        hf_logger.setLevel(old_level)
        set_client_factory(_http.default_client_factory)


def _assert_token_only_in_auth_headers(hub: FakeHub) -> None:
    for req, body in zip(hub.requests, hub.bodies):
        assert req.url.host == "huggingface.co"
        assert req.headers.get("authorization") == f"Bearer {TOKEN}", req.url
        others = {k: v for k, v in req.headers.items() if k.lower() != "authorization"}
        assert TOKEN not in json.dumps(others) and TOKEN not in str(req.url) and TOKEN.encode() not in body


PUBLISH = [  # HfHub.publish of a snapshot with a tag
    "POST /api/repos/create",
    f"GET {R}/refs",
    f"GET {R}/tree/{{main}}",
    "POST /api/validate-yaml",
    f"POST {R}/preupload/main",
    f"POST {R}/commit/main",
    f"POST {R}/tag/{{commit}}",
]


def test_publish_task_to_the_hub_via_cli(fake_hub: FakeHub, tmp_path: Path, caplog, capsys):
    task = write_kitchen_task(tmp_path / "kitchen")

    assert main(["publish", str(task), "--to", f"hf://{REPO}", "--message", "First cut"]) == 0
    out = capsys.readouterr()
    assert "HTTP Request: POST https://huggingface.co/api/repos/create" in " ".join(out.err.split())
    # The CLI's logging setup replaced the root handlers and quietened huggingface_hub: listen again.
    logging.getLogger().addHandler(caplog.handler)
    logging.getLogger("huggingface_hub").setLevel(logging.DEBUG)
    repo = fake_hub.repos[REPO]
    v1 = repo["tags"]["v1.0.0"]
    init = repo["commits"][v1]["parent"]
    expected = [f"GET {R}/refs"] + [c.format(main=init, commit=v1) for c in PUBLISH]
    assert fake_hub.calls() == expected
    assert f"commit: {v1}" in out.out and "tag: v1.0.0" in out.out and "no-op: no" in out.out

    (payload,) = fake_hub.commit_payloads()
    assert payload[0] == {"key": "header", "value": {"summary": "First cut", "description": "",
                                                     "parentCommit": init}}
    added = {line["value"]["path"]: base64.b64decode(line["value"]["content"])
             for line in payload[1:] if line["key"] == "file"}
    assert set(added) == {"README.md", "task.json", "metadata.json", "descriptive_stats.json",
                          "KitchenTipsRetrieval_task.py", "corpus/test-00000-of-00001.parquet",
                          "queries/test-00000-of-00001.parquet", "qrels/test-00000-of-00001.parquet"}
    assert [line["key"] for line in payload[1:]] == ["file"] * len(added)  # .gitattributes is kept
    assert added["task.json"] == (task / "task.json").read_bytes()
    assert added["corpus/test-00000-of-00001.parquet"] == (task / "corpus/test-00000-of-00001.parquet").read_bytes()
    assert json.loads(added["metadata.json"])["dataset"] == {"path": REPO, "revision": "v1.0.0"}
    header, _ = split_card(added["README.md"].decode())
    assert header["buildbench"]["version"] == "1.0.0" and header["configs"][0]["config_name"] == "corpus"
    tag_req = fake_hub.requests[-1]
    assert json.loads(fake_hub.bodies[-1]) == {"tag": "v1.0.0", "message": "First cut"}
    assert tag_req.url.path == f"{R}/tag/{v1}"

    # Unchanged data: refs, then the latest card (its content hash) and nothing else.
    start = len(fake_hub.requests)
    result = publish_task(task, f"hf://{REPO}")
    assert result.unchanged and result.tag == "v1.0.0" and result.commit == v1
    assert result.url == f"https://huggingface.co/datasets/{REPO}/tree/v1.0.0"
    assert fake_hub.calls(start) == [f"GET {R}/refs", f"GET /datasets/{REPO}/resolve/v1.0.0/README.md"]

    # Changed data, bumped: one more commit on main, parent v1.0.0, tagged v1.1.0.
    write_kitchen_task(task, changed=True)
    with pytest.raises(PublishError, match="changed since v1.0.0"):
        publish_task(task, f"hf://{REPO}")
    start = len(fake_hub.requests)
    second = publish_task(task, f"hf://{REPO}", bump="minor", message="Rewrite a tip")
    assert second.tag == "v1.1.0" and repo["tags"]["v1.1.0"] == second.commit == repo["main"]
    assert fake_hub.calls(start) == [f"GET {R}/refs", f"GET /datasets/{REPO}/resolve/v1.0.0/README.md"] + \
        [c.format(main=v1, commit=second.commit) for c in PUBLISH]
    card = repo["commits"][second.commit]["files"]["README.md"].decode()
    assert "### v1.1.0" in card and "### v1.0.0" in card and card.index("### v1.1.0") < card.index("### v1.0.0")

    # The token: in the Authorization header of every request, and nowhere else.
    _assert_token_only_in_auth_headers(fake_hub)
    assert any("Request" in r.getMessage() for r in caplog.records)  # huggingface_hub's debug log was captured
    assert TOKEN not in caplog.text
    for text in (out.out, out.err, *capsys.readouterr(), repr(result), repr(second), card):
        assert TOKEN not in text
    for commit in repo["commits"].values():
        assert all(TOKEN.encode() not in data for data in commit["files"].values())


def test_pull_request_tag_refusal_and_deletes(fake_hub: FakeHub, caplog):
    hub = HfHub()
    first = hub.publish(REPO, {"README.md": b"---\nlicense: mit\n---\n# v1\n", "data/a.txt": b"alpha\n",
                               "data/old.txt": b"old\n"}, "base", revision_tag="v1.0.0")
    repo = fake_hub.repos[REPO]
    assert first.tag == "v1.0.0" and repo["tags"] == {"v1.0.0": first.commit} and first.pr_ref is None

    # A pull request: the same calls with create_pr=1 on preupload and commit, no tag; main does not move.
    start = len(fake_hub.requests)
    pr = hub.publish(REPO, {"README.md": b"---\nlicense: mit\n---\n# v2\n", "data/a.txt": b"alpha 2\n"},
                     "propose v2", create_pr=True)
    assert fake_hub.calls(start) == [
        "POST /api/repos/create",
        f"GET {R}/refs",
        f"GET {R}/tree/{first.commit}",
        "POST /api/validate-yaml",
        f"POST {R}/preupload/main?create_pr=1",
        f"POST {R}/commit/main?create_pr=1",
    ]
    assert (pr.pr_ref, pr.pr_number, pr.tag) == ("refs/pr/1", 1, None)
    assert pr.url == f"https://huggingface.co/datasets/{REPO}/discussions/1"
    assert repo["main"] == first.commit and repo["prs"] == [pr.commit]
    (_, payload) = fake_hub.commit_payloads()
    ops = {(line["key"], line["value"]["path"]) for line in payload[1:]}
    # A snapshot: data/old.txt goes, the Hub's .gitattributes stays.
    assert ops == {("file", "README.md"), ("file", "data/a.txt"), ("deletedFile", "data/old.txt")}
    assert hub.read_file(REPO, "data/a.txt", "refs/pr/1") == b"alpha 2\n"
    assert hub.read_file(REPO, "data/a.txt") == b"alpha\n"
    assert hub.read_file(REPO, "nope.txt") is None and hub.read_file(REPO, "data/a.txt", "v9.0.0") is None
    assert hub.list_files(REPO, "v1.0.0") == [".gitattributes", "README.md", "data/a.txt", "data/old.txt"]
    with pytest.raises(PublishError, match="review and merge #1 at https://huggingface.co/datasets/acme/kitchen/discussions/1"):
        hub.merge_pr(REPO, 1)

    # An existing tag: refused after reading the refs, before any upload or commit.
    start = len(fake_hub.requests)
    with pytest.raises(PublishError, match="v1.0.0 already exists .* never moved"):
        hub.publish(REPO, {"README.md": b"# other\n"}, "re-create v1.0.0", revision_tag="v1.0.0")
    assert fake_hub.calls(start) == ["POST /api/repos/create", f"GET {R}/refs"]
    assert repo["tags"] == {"v1.0.0": first.commit}

    # create_tag: same commit is a no-op, another commit is refused, a new tag is one POST.
    start = len(fake_hub.requests)
    assert hub.create_tag(REPO, "v1.0.0", first.commit) == first.commit
    with pytest.raises(PublishError, match="never moved"):
        hub.create_tag(REPO, "v1.0.0", "refs/pr/1")
    assert hub.create_tag(REPO, "v2.0.0-rc", "refs/pr/1", "candidate") == pr.commit
    assert fake_hub.calls(start) == [
        f"GET {R}/revision/{first.commit}", f"GET {R}/refs",
        f"GET {R}/revision/refs/pr/1", f"GET {R}/refs",
        f"GET {R}/revision/refs/pr/1", f"GET {R}/refs", f"POST {R}/tag/{pr.commit}",
    ]
    assert repo["tags"] == {"v1.0.0": first.commit, "v2.0.0-rc": pr.commit}
    assert hub.tags(REPO) == repo["tags"]
    assert hub.tags("acme/absent") == {} and hub.list_files("acme/absent") == []

    _assert_token_only_in_auth_headers(fake_hub)
    assert TOKEN not in caplog.text and TOKEN not in repr(pr) and TOKEN not in repr(first)


def test_hub_errors_are_one_line_without_the_token(fake_hub: FakeHub, monkeypatch):
    def refuse(request: httpx2.Request) -> httpx2.Response:
        fake_hub.requests.append(request)
        fake_hub.bodies.append(request.read())
        return httpx2.Response(403, json={"error": "You don't have the rights to create a dataset under acme"})

    set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(refuse),
                                             event_hooks={"request": [_http.hf_request_event_hook]}))
    with pytest.raises(PublishError) as info:
        HfHub().ensure_repo(REPO)
    message = str(info.value)
    assert message.startswith("cannot create acme/kitchen on the Hub: ") and "\n" not in message
    assert TOKEN not in message
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(PublishError, match="HF_HUB_OFFLINE is set"):
        HfHub().tags(REPO)
