"""An in-process Hugging Face Hub for the contract tests: the real HfApi, its HTTP answered at the transport.

``huggingface_hub.set_client_factory`` swaps the client every HfApi call uses for one whose transport is an
``httpx2.MockTransport`` (huggingface_hub 2.x speaks httpx2), so nothing leaves the process, while all of
HfApi's own request building, payloads and error mapping run for real. ``FakeHub`` keeps just enough state
(commits, main, tags, pull requests and their status) to answer the calls a publish, a submission and a review
make; every request is recorded so tests can pin the exact sequence of (method, path) and the payloads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from urllib.parse import unquote

import httpx2
import pytest
from huggingface_hub import constants, set_client_factory
from huggingface_hub.utils import _http

TOKEN = "hf_FakeContractToken" + "x7Q2mZ9pL4vB8nR1"  # not a real token; must never be echoed anywhere


def _sha(*parts: object) -> str:
    return hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()


class FakeHub:
    """The few Hub endpoints a publish, a submission and a review use, over in-memory state; records every
    request. A pull request is a discussion with a head commit (``repo["prs"]``), a status ("open", "merged")
    and, once merged, its merge commit on main (``repo["merges"]``)."""

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
        m = re.match(r"^/api/datasets/([^/]+/[^/]+)/(refs|tree|preupload|commit|tag|revision|discussions)/(.+)$",
                     path) or re.match(r"^/api/datasets/([^/]+/[^/]+)/(refs)$", path)
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
            refs = {
                "branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": repo["main"]}],
                "converts": [],
                "tags": [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": c} for t, c in repo["tags"].items()],
            }
            if request.url.params.get("include_prs") == "1":
                refs["pullRequests"] = [{"name": str(n), "ref": f"refs/pr/{n}", "targetCommit": c}
                                        for n, c in enumerate(repo["prs"], start=1)]
            return httpx2.Response(200, json=refs)
        if what == "discussions":
            return self._discussion(repo_id, repo, request.method, rest, body)
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
        if what == "tag" and request.method == "DELETE":
            if rest not in repo["tags"]:
                return httpx2.Response(404, headers={"X-Error-Code": "RevisionNotFound"}, json={"error": "no tag"})
            del repo["tags"][rest]
            return httpx2.Response(200, json={})
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
        self.repos[repo_id] = {"main": first, "tags": {}, "prs": [], "status": {}, "merges": {},
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
        repo["commits"][sha] = {"files": files, "summary": header["summary"],
                                "description": header.get("description", ""), "parent": parent}
        url = f"https://huggingface.co/datasets/{repo_id}"
        out = {"commitUrl": f"{url}/commit/{sha}", "commitOid": sha, "pullRequestUrl": None}
        if create_pr:
            repo["prs"].append(sha)
            repo["status"][len(repo["prs"])] = "open"
            out["pullRequestUrl"] = f"{url}/discussions/{len(repo['prs'])}"
        else:
            repo["main"] = sha
        return httpx2.Response(200, json=out)

    def _discussion(self, repo_id: str, repo: dict, method: str, rest: str, body: bytes) -> httpx2.Response:
        m = re.match(r"^(\d+)(?:/(merge))?$", rest)
        num = int(m.group(1)) if m else 0
        if num not in repo["status"]:
            return httpx2.Response(404, json={"error": "Discussion not found"})
        if method == "GET" and not m.group(2):
            merged = repo["merges"].get(num)
            return httpx2.Response(200, json={
                "num": num, "title": f"Pull request {num}", "author": {"name": "submitter"},
                "createdAt": "2025-01-01T00:00:00.000Z", "status": repo["status"][num],
                "repo": {"name": repo_id, "type": "dataset"}, "isPullRequest": True, "events": [],
                "changes": {"base": "refs/heads/main", **({"mergeCommitId": merged} if merged else {})},
                "filesWithConflicts": [], "diff": "",
            })
        if method == "POST" and m.group(2) == "merge":
            if repo["status"][num] != "open":
                return httpx2.Response(400, json={"error": f"Pull request is {repo['status'][num]}"})
            head = repo["prs"][num - 1]
            files = dict(repo["commits"][head]["files"])
            sha = _sha(repo_id, "merge", num, repo["main"])
            repo["commits"][sha] = {"files": files, "summary": f"Merge pull request #{num}", "description": "",
                                    "parent": repo["main"], "comment": (json.loads(body) if body else {}).get("comment")}
            repo["main"] = sha
            repo["status"][num] = "merged"
            repo["merges"][num] = sha
            return httpx2.Response(200, json={})
        return httpx2.Response(405, json={"error": "unhandled"})

    def push_to_pr(self, repo_id: str, num: int, files: dict[str, bytes]) -> str:
        """What a pull request's author can do on the Hub at any time: push another commit onto it."""
        repo = self.repos[repo_id]
        head = repo["prs"][num - 1]
        sha = _sha(repo_id, "push", num, head, sorted(files.items()))
        repo["commits"][sha] = {"files": {**repo["commits"][head]["files"], **files}, "summary": "more",
                                "description": "", "parent": head}
        repo["prs"][num - 1] = sha
        return sha


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


def assert_token_only_in_auth_headers(hub: FakeHub) -> None:
    for req, body in zip(hub.requests, hub.bodies):
        assert req.url.host == "huggingface.co"
        assert req.headers.get("authorization") == f"Bearer {TOKEN}", req.url
        others = {k: v for k, v in req.headers.items() if k.lower() != "authorization"}
        assert TOKEN not in json.dumps(others) and TOKEN not in str(req.url) and TOKEN.encode() not in body
