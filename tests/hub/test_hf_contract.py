"""HfHub's contract with the Hub: the real HfApi, its HTTP answered by an in-process fake at the transport.

``huggingface_hub.set_client_factory`` swaps the client every HfApi call uses for one whose transport is an
``httpx2.MockTransport`` (huggingface_hub 2.x speaks httpx2), so nothing leaves the process, while all of
HfApi's own request building, payloads and error mapping run for real (``tests/hub/fake_hub.py``). The tests
pin the exact sequence of (method, path), the commit payloads, and where the token goes: only into the
Authorization header of requests to the Hub's own host.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

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
from .fake_hub import TOKEN, FakeHub, assert_token_only_in_auth_headers, fake_hub  # noqa: F401 (a fixture)

REPO = "acme/kitchen"
R = f"/api/datasets/{REPO}"

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
    # The CLI logs what it published (the HTTP clients are quietened to warnings), never the token.
    assert "published KitchenTipsRetrieval v1.0.0 to acme/kitchen" in " ".join(out.err.split())
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
    assert_token_only_in_auth_headers(fake_hub)
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
    # Merging: the pull request's status, its head (still the one given), the merge, its merge commit.
    start = len(fake_hub.requests)
    with pytest.raises(PublishError, match=r"pull request #1 of acme/kitchen changed since it was validated"):
        hub.merge_pr(REPO, 1, head=first.commit)
    merged = hub.merge_pr(REPO, 1, head=pr.commit, message="Looks good")
    assert fake_hub.calls(start) == [
        f"GET {R}/discussions/1", f"GET {R}/refs",
        f"GET {R}/discussions/1", f"GET {R}/refs", f"POST {R}/discussions/1/merge", f"GET {R}/discussions/1",
    ]
    assert json.loads(fake_hub.bodies[-2]) == {"comment": "Looks good"}
    assert repo["main"] == merged == repo["merges"][1] and repo["status"][1] == "merged"
    assert hub.read_file(REPO, "data/a.txt") == b"alpha 2\n" and hub.main_commit(REPO) == merged
    assert hub.undo_merge(REPO, merged, first.commit) is False  # the Hub cannot unmerge

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

    # delete_tag (a review undoing its own tag): only the tag at the given commit; absent is a no-op.
    start = len(fake_hub.requests)
    with pytest.raises(PublishError, match="points at .* not deleted"):
        hub.delete_tag(REPO, "v2.0.0-rc", first.commit)
    assert hub.delete_tag(REPO, "v2.0.0-rc", pr.commit) is True
    assert hub.delete_tag(REPO, "v2.0.0-rc", pr.commit) is False
    assert fake_hub.calls(start) == [f"GET {R}/refs", f"GET {R}/refs", f"DELETE {R}/tag/v2.0.0-rc", f"GET {R}/refs"]
    assert repo["tags"] == {"v1.0.0": first.commit}

    assert_token_only_in_auth_headers(fake_hub)
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
