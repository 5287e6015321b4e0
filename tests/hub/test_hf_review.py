"""Submit and review on the Hugging Face Hub: the real HfApi against the in-process FakeHub (``fake_hub.py``).

submit opens a pull request whose title is the commit message and whose description is the commit description;
review merges it with ``HfApi.merge_pull_request`` and tags the merge commit. The tests pin the exact requests,
what a failure after the merge leaves (the Hub cannot unmerge: the tag goes, the merge stays, and a second
review finishes the job), and the refusal to merge a pull request that moved after it was validated.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest

from buildbench.cli import main
from buildbench.errors import PublishError
from buildbench.hub import registry as registry_module
from buildbench.hub.hf import hub_errors, transport_errors
from buildbench.hub.registry import REGISTRY_PARQUET, Registry
from buildbench.hub.submit import review_submission, submit_task
from buildbench.hub.safety import submission_files

from .fake_hub import TOKEN, FakeHub, assert_token_only_in_auth_headers, fake_hub  # noqa: F401 (a fixture)
from .submission_tasks import write_task

REPO = "acme/village"
R = f"/api/datasets/{REPO}"


def submitted(fake: FakeHub, tmp_path: Path) -> tuple[Path, int]:
    task = write_task(tmp_path / "village")
    result = submit_task(task, f"hf://{REPO}")
    assert result.ok, result.report
    return task, result.pr.pr_number


def review_calls(files: list[str], head: str, merged: str) -> list[str]:
    """The requests of one accepted review of a first version (no tags yet)."""
    data = [p for p in files if p == "task.json" or p.endswith(".parquet")]
    return [
        f"GET {R}/refs",  # the pull request's head commit
        f"GET {R}/tree/{head}",  # its files, listed before any is read
        *[f"GET /datasets/{REPO}/resolve/{head}/{p}" for p in files],
        f"GET {R}/refs",  # the tags: the version
        f"GET {R}/refs",  # main before the merge (what a LocalHub would move back to)
        f"GET {R}/discussions/1",  # open, a pull request into main
        f"GET {R}/refs",  # its head is still the validated commit
        f"POST {R}/discussions/1/merge",
        f"GET {R}/discussions/1",  # the merge commit
        f"GET {R}/tree/{merged}",  # the merge holds exactly the validated data
        *[f"GET /datasets/{REPO}/resolve/{merged}/{p}" for p in data],
        f"GET {R}/revision/{merged}",  # create_tag on the merge commit
        f"GET {R}/refs",
        f"POST {R}/tag/{merged}",
    ]


def test_submit_puts_the_description_in_the_commit_description(fake_hub: FakeHub, tmp_path: Path):
    task, pr = submitted(fake_hub, tmp_path)
    repo = fake_hub.repos[REPO]
    init = repo["main"]
    assert fake_hub.calls() == [
        "POST /api/repos/create",  # submit_task's ensure_repo
        "POST /api/repos/create",  # publish's
        f"GET {R}/refs",
        f"GET {R}/tree/{init}",
        "POST /api/validate-yaml",
        f"POST {R}/preupload/main?create_pr=1",
        f"POST {R}/commit/main?create_pr=1",
    ]
    (payload,) = fake_hub.commit_payloads()
    header = payload[0]["value"]
    assert header["summary"] == "Submit task VillageStoriesRetrieval"  # the title stays a short title
    body = header["description"]
    assert body.startswith("Find the short village story a question asks about.\n\n- Type: Retrieval;")
    assert "- Documents: 150, queries: 30, relevance judgements: 30" in body
    assert "Submit task" not in body and header["parentCommit"] == init
    assert {line["value"]["path"] for line in payload[1:]} == set(submission_files(task))
    assert pr == 1 and repo["status"] == {1: "open"} and repo["main"] == init
    assert_token_only_in_auth_headers(fake_hub)


def test_review_on_the_hub_merges_and_tags(fake_hub: FakeHub, tmp_path: Path, capsys):
    task, pr = submitted(fake_hub, tmp_path)
    repo = fake_hub.repos[REPO]
    head = repo["prs"][0]
    files = sorted([".gitattributes", *submission_files(task)])
    registry = tmp_path / "registry"
    start = len(fake_hub.requests)

    assert main(["review", f"hf://{REPO}", "--pr", str(pr), "--registry", str(registry)]) == 0
    merged = repo["merges"][1]
    out = capsys.readouterr().out
    assert f"merged pull request #1 into main: {merged}, tagged v1.0.0" in out
    assert fake_hub.calls(start) == review_calls(files, head, merged)
    merge_body = fake_hub.bodies[fake_hub.calls(start).index(f"POST {R}/discussions/1/merge") + start]
    assert json.loads(merge_body) == {"comment": "Accept pull request #1 as v1.0.0"}
    assert json.loads(fake_hub.bodies[-1]) == {"tag": "v1.0.0", "message": "Accept pull request #1"}
    assert repo["status"][1] == "merged" and repo["main"] == merged and repo["tags"] == {"v1.0.0": merged}
    entry = Registry.load(registry).get("VillageStoriesRetrieval")
    assert (entry.repo, entry.version, entry.revision) == (REPO, "v1.0.0", merged)
    assert_token_only_in_auth_headers(fake_hub)
    assert TOKEN not in out


def test_review_on_the_hub_failing_after_the_merge(fake_hub: FakeHub, tmp_path: Path, monkeypatch):
    task, pr = submitted(fake_hub, tmp_path)
    repo = fake_hub.repos[REPO]
    registry = tmp_path / "registry"
    real = registry_module.atomic_write_parquet

    def full_disk(path, table, *args, **kwargs):
        if Path(path).name == REGISTRY_PARQUET:
            raise OSError(28, "No space left on device")
        return real(path, table, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(registry_module, "atomic_write_parquet", full_disk)
        start = len(fake_hub.requests)
        with pytest.raises(PublishError) as err:
            review_submission(f"hf://{REPO}", pr, registry=Registry.load(registry))
    merged = repo["merges"][1]
    assert str(err.value) == (
        f"review of pull request #1 of {REPO} stopped (cannot write the registry {registry} (No space left on "
        "device); nothing saved); rolled back: tag "
        f"v1.0.0 deleted, the registry is unchanged; NOT rolled back: the merge into main ({merged[:12]}) stays: "
        "this hub cannot undo a merge; run review again to tag and register it, or revert it on the hub")
    assert fake_hub.calls(start)[-2:] == [f"GET {R}/refs", f"DELETE {R}/tag/v1.0.0"]
    assert repo["tags"] == {} and repo["main"] == merged  # the tag is gone, the merge stays
    assert not (registry / REGISTRY_PARQUET).exists() and not list(registry.rglob("*.parquet"))

    # A second review finishes: the merged pull request is not merged again, its merge commit is tagged.
    start = len(fake_hub.requests)
    result = review_submission(f"hf://{REPO}", pr, registry=Registry.load(registry))
    assert result.accepted and result.version == "v1.0.0" and result.merged_commit == merged
    assert f"POST {R}/discussions/1/merge" not in fake_hub.calls(start)
    assert repo["tags"] == {"v1.0.0": merged}
    assert Registry.load(registry).get("VillageStoriesRetrieval").revision == merged


def test_review_on_the_hub_refuses_a_pr_pushed_to_after_validation(fake_hub: FakeHub, tmp_path: Path,
                                                                    monkeypatch):
    task, pr = submitted(fake_hub, tmp_path)
    repo = fake_hub.repos[REPO]
    validated = repo["prs"][0]
    real = registry_module.Registry.prepare_task

    def prepare_then_push(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        fake_hub.push_to_pr(REPO, pr, {"notes.txt": b"changed after review\n"})  # the submitter pushes again
        return out

    monkeypatch.setattr(registry_module.Registry, "prepare_task", prepare_then_push)
    start = len(fake_hub.requests)
    with pytest.raises(PublishError) as err:
        review_submission(f"hf://{REPO}", pr, registry=Registry.load(tmp_path / "registry"))
    assert str(err.value) == (f"pull request #1 of {REPO} changed since it was validated ({validated[:12]} -> "
                              f"{repo['prs'][0][:12]}); nothing merged: review it again")
    assert f"POST {R}/discussions/1/merge" not in fake_hub.calls(start)
    assert repo["status"][1] == "open" and repo["tags"] == {}
    assert not (tmp_path / "registry").exists()


def test_hub_errors_with_whichever_http_client_is_installed(monkeypatch):
    import httpx2

    assert httpx2.HTTPError in transport_errors() and httpx.HTTPError in transport_errors()
    with pytest.raises(PublishError, match=r"^cannot read acme/kitchen on the Hub: connection refused$"):
        with hub_errors("read", "acme/kitchen"):
            raise httpx2.ConnectError("connection refused")
    # A huggingface_hub without httpx2 (1.x speaks httpx, 0.x requests): hf.py must not import it.
    monkeypatch.setitem(sys.modules, "httpx2", None)
    errors = transport_errors()
    assert httpx.HTTPError in errors and all(e.__module__.split(".")[0] != "httpx2" for e in errors)
    with pytest.raises(PublishError, match=r"^cannot read acme/kitchen on the Hub: connection refused$"):
        with hub_errors("read", "acme/kitchen"):
            raise httpx.ConnectError("connection refused")
