"""Versioned publishing to a LocalHub: real git repos, real task folders, the CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from buildbench.cli import main, make_parser
from buildbench.errors import ConfigError, PublishError
from buildbench.hub.card import previous_changelog, split_card
from buildbench.hub.local import LocalHub
from buildbench.hub.publish import publish_task
from buildbench.hub.targets import parse_target
from buildbench.hub.versioning import Version, content_hash, decide_version, task_content_hash
from buildbench.tasks import write_retrieval_task

from .conftest import kitchen_info, kitchen_tables, write_kitchen_task

REPO = "acme/kitchen"


def _git(hub: LocalHub, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={hub.repo_path(REPO)}", *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def _card(hub: LocalHub, revision: str) -> tuple[dict, str]:
    return split_card(hub.read_file(REPO, "README.md", revision).decode())


def test_publish_noop_refusal_bump_and_changelog(kitchen_task: Path, tmp_path: Path):
    root = tmp_path / "hub"
    to = f"file://{root}/{REPO}"
    hub = LocalHub(root)
    before = sorted(p.name for p in kitchen_task.iterdir())

    first = publish_task(kitchen_task, to, message="First cut of the kitchen tips")
    assert (first.tag, first.unchanged, first.pr_ref) == ("v1.0.0", False, None)
    assert hub.tags(REPO) == {"v1.0.0": first.commit}
    assert _git(hub, "rev-parse", "main") == first.commit
    assert _git(hub, "rev-list", "--count", "main") == "1"  # one publish, one commit
    files = hub.list_files(REPO, "v1.0.0")
    assert {"README.md", "task.json", "metadata.json", "descriptive_stats.json", "KitchenTipsRetrieval_task.py",
            "corpus/test-00000-of-00001.parquet", "queries/test-00000-of-00001.parquet",
            "qrels/test-00000-of-00001.parquet"} == set(files)
    # The data is published byte for byte; the compiled files pin the repo and the tag.
    assert hub.read_file(REPO, "task.json", "v1.0.0") == (kitchen_task / "task.json").read_bytes()
    metadata = json.loads(hub.read_file(REPO, "metadata.json", "v1.0.0"))
    assert metadata["dataset"] == {"path": REPO, "revision": "v1.0.0"}
    assert "'revision': 'v1.0.0'" in hub.read_file(REPO, "KitchenTipsRetrieval_task.py", "v1.0.0").decode()
    assert sorted(p.name for p in kitchen_task.iterdir()) == before  # compiled in a copy, not in the folder

    header, body = _card(hub, "v1.0.0")
    block = header["buildbench"]
    assert block["version"] == "1.0.0" and block["tag"] == "v1.0.0"
    assert block["content_hash"] == task_content_hash(kitchen_task)
    assert block["generator_models"] == ["local:gemma3-270m"]
    assert block["recipes"] == {"paraphrase": 8} and block["filters"] == {"dedup": "9 -> 8"}
    assert block["seed"] == 7 and block["buildbench_version"] == "0.1.0"
    assert {"mteb", "buildbench", "cooking"} <= set(header["tags"])
    assert header["license"] == "cc-by-4.0" and header["language"] == ["en"]
    assert header["size_categories"] == ["n<1K"] and "text-retrieval" in header["task_categories"]
    assert [c["config_name"] for c in header["configs"]] == ["corpus", "queries", "default"]
    assert "| Revision | v1.0.0 |" in body and 'revision="v1.0.0"' in body

    # Same data again: a no-op that reports the version holding it.
    again = publish_task(kitchen_task, to)
    assert (again.tag, again.commit, again.unchanged) == ("v1.0.0", first.commit, True)
    assert _git(hub, "rev-list", "--count", "main") == "1"

    # Changed data without a version: refused, nothing written.
    write_kitchen_task(kitchen_task, changed=True)
    with pytest.raises(PublishError, match=r"changed since v1\.0\.0.*--bump"):
        publish_task(kitchen_task, to)
    with pytest.raises(PublishError, match=r"not greater than .*v1\.0\.0"):
        publish_task(kitchen_task, to, version="1.0.0")
    assert hub.tags(REPO) == {"v1.0.0": first.commit}
    assert _git(hub, "rev-parse", "main") == first.commit

    second = publish_task(kitchen_task, to, bump="minor", message="Rewrite the proofing tip; add a distractor")
    assert (second.tag, second.unchanged) == ("v1.1.0", False)
    assert hub.tags(REPO) == {"v1.0.0": first.commit, "v1.1.0": second.commit}
    assert _git(hub, "rev-list", "--count", "main") == "2"
    assert _git(hub, "rev-parse", "main^") == first.commit

    # v1.0.0 still serves the old data; v1.1.0 the new.
    assert hub.read_file(REPO, "corpus/test-00000-of-00001.parquet", "v1.0.0") != \
        hub.read_file(REPO, "corpus/test-00000-of-00001.parquet", "v1.1.0")

    header, body = _card(hub, "v1.1.0")
    assert header["buildbench"]["version"] == "1.1.0"
    changelog = previous_changelog(hub.read_file(REPO, "README.md", "v1.1.0").decode())
    headings = [line for line in changelog if line.startswith("### ")]
    assert [h.split()[1] for h in headings] == ["v1.1.0", "v1.0.0"]
    text = "\n".join(changelog)
    assert "Rewrite the proofing tip; add a distractor" in text and "First cut of the kitchen tips" in text
    assert "12 documents, 8 queries, 8 qrels" in text and "11 documents, 8 queries, 8 qrels" in text
    assert text.count("content hash: `sha256:") == 2
    # The older card is untouched: one entry.
    old = previous_changelog(hub.read_file(REPO, "README.md", "v1.0.0").decode())
    assert [line.split()[1] for line in old if line.startswith("### ")] == ["v1.0.0"]

    explicit = write_kitchen_task(tmp_path / "third", changed=True)
    (explicit / "extra").mkdir()  # a new Parquet file is new data
    (explicit / "extra" / "notes.parquet").write_bytes((kitchen_task / "qrels" / "test-00000-of-00001.parquet").read_bytes())
    third = publish_task(explicit, to, version="2.0.0")
    assert third.tag == "v2.0.0" and "extra/notes.parquet" in hub.list_files(REPO, "v2.0.0")


def test_a_tag_is_never_moved(kitchen_task: Path, tmp_path: Path):
    hub = LocalHub(tmp_path / "hub")
    first = publish_task(kitchen_task, f"file://{hub.root}/{REPO}")
    tag_object = _git(hub, "rev-parse", "refs/tags/v1.0.0")

    with pytest.raises(PublishError, match="v1.0.0 already exists .* never moved"):
        hub.publish(REPO, {"README.md": b"other content\n"}, "try to re-create v1.0.0", revision_tag="v1.0.0")
    assert _git(hub, "rev-parse", "main") == first.commit  # nothing committed either
    assert _git(hub, "rev-parse", "refs/tags/v1.0.0") == tag_object

    newer = hub.publish(REPO, {"README.md": b"other content\n"}, "an untagged commit")
    assert newer.commit != first.commit and newer.tag is None
    with pytest.raises(PublishError, match="never moved"):
        hub.create_tag(REPO, "v1.0.0", newer.commit)
    assert hub.tags(REPO)["v1.0.0"] == first.commit
    assert _git(hub, "rev-parse", "refs/tags/v1.0.0") == tag_object
    assert hub.create_tag(REPO, "v1.0.0", first.commit) == first.commit  # same commit: a no-op
    assert hub.create_tag(REPO, "v1.0.1", "main") == newer.commit
    # Plain git refuses to move it too (no -f): the repo itself is the guard.
    assert subprocess.run(["git", f"--git-dir={hub.repo_path(REPO)}", "tag", "v1.0.0", newer.commit],
                          capture_output=True).returncode != 0


def test_pull_requests_and_merge(tmp_path: Path):
    hub = LocalHub(tmp_path / "hub")
    base = hub.publish(REPO, {"README.md": b"# kitchen\n", "data/a.txt": b"alpha\n"}, "base", revision_tag="v1.0.0")

    pr1 = hub.publish(REPO, {"README.md": b"# kitchen\n", "data/a.txt": b"alpha, revised\n"}, "revise a",
                      create_pr=True)
    assert pr1.pr_ref == "refs/pr/1" and pr1.pr_number == 1 and pr1.tag is None
    assert _git(hub, "rev-parse", "refs/pr/1") == pr1.commit
    assert _git(hub, "rev-parse", "main") == base.commit  # main does not move until the merge
    assert hub.read_file(REPO, "data/a.txt", "refs/pr/1") == b"alpha, revised\n"
    assert hub.read_file(REPO, "data/a.txt") == b"alpha\n"

    pr2 = hub.publish(REPO, {"README.md": b"# kitchen\n", "data/a.txt": b"alpha\n", "data/b.txt": b"beta\n"},
                      "add b", create_pr=True)
    assert pr2.pr_ref == "refs/pr/2"
    assert hub.pull_requests(REPO) == {1: pr1.commit, 2: pr2.commit}

    assert hub.merge_pr(REPO, 1) == pr1.commit  # main had not moved: fast-forward
    assert _git(hub, "rev-parse", "main") == pr1.commit
    merged = hub.merge_pr(REPO, 2)  # main moved: a merge commit with both changes
    assert _git(hub, "rev-parse", "main") == merged
    assert set(_git(hub, "rev-list", "--parents", "-n", "1", merged).split()[1:]) == {pr1.commit, pr2.commit}
    assert hub.list_files(REPO) == ["README.md", "data/a.txt", "data/b.txt"]
    assert hub.read_file(REPO, "data/a.txt") == b"alpha, revised\n"
    assert hub.create_tag(REPO, "v1.1.0", "main", "merged #1 and #2") == merged

    with pytest.raises(PublishError, match="already merged"):
        hub.merge_pr(REPO, 2)
    with pytest.raises(PublishError, match="no pull request #9"):
        hub.merge_pr(REPO, 9)
    conflicting = hub.publish(REPO, {"README.md": b"# other\n"}, "rewrite readme", create_pr=True)
    hub.publish(REPO, {"README.md": b"# yet another\n", "data/a.txt": b"alpha, revised\n", "data/b.txt": b"beta\n"},
                "readme on main")
    with pytest.raises(PublishError, match="conflicts"):
        hub.merge_pr(REPO, conflicting.pr_number)


def test_reads_of_missing_things(tmp_path: Path):
    hub = LocalHub(tmp_path / "hub")
    assert hub.tags(REPO) == {} and hub.list_files(REPO) == [] and hub.read_file(REPO, "README.md") is None
    hub.publish(REPO, {"README.md": b"x"}, "one")
    assert hub.read_file(REPO, "nope.txt") is None and hub.read_file(REPO, "README.md", "v9.9.9") is None
    assert hub.list_files(REPO, "--all") == []
    for bad in ("acme", "acme/kitchen/x", "../kitchen", "acme/kit..chen", "acme/kitchen.git", "-x/y"):
        with pytest.raises(PublishError):
            hub.ensure_repo(bad)
    for bad in ("../x", "/abs", "a//b", ".git/config", ""):
        with pytest.raises(PublishError):
            hub.publish(REPO, {bad: b"x"}, "bad path")
    with pytest.raises(PublishError, match="not a valid tag"):
        hub.publish(REPO, {"README.md": b"y"}, "bad tag", revision_tag="-f")


def test_refuses_a_task_failing_the_quality_rules(tmp_path: Path):
    corpus, queries, qrels = kitchen_tables()
    texts = corpus.column("text").to_pylist()
    texts[-1] = "ok"  # shorter than the quality rules' minimum
    corpus = corpus.set_column(corpus.column_names.index("text"), "text", [texts])
    task = write_retrieval_task(tmp_path / "short", corpus, queries, qrels, kitchen_info())
    with pytest.raises(PublishError, match="refusing to publish .*min_text_length|refusing to publish .*short"):
        publish_task(task, f"file://{tmp_path}/hub/{REPO}")
    assert not (tmp_path / "hub").exists()


def test_versions_and_content_hash(kitchen_task: Path):
    assert Version.parse("v1.2.3") == Version(1, 2, 3) and str(Version(1, 2, 3)) == "1.2.3"
    assert Version(1, 2, 3).bump("major") == Version(2, 0, 0)
    assert Version(1, 2, 3).bump("minor") == Version(1, 3, 0)
    assert Version(1, 2, 3).bump("patch") == Version(1, 2, 4)
    assert Version(1, 10, 0) > Version(1, 9, 9)
    for bad in ("1.2", "1.2.3-rc1", "01.2.3", "x"):
        with pytest.raises(ConfigError):
            Version.parse(bad)

    h = task_content_hash(kitchen_task)
    # The card is not data: rewriting it leaves the hash alone; touching task.json does not.
    (kitchen_task / "README.md").write_text("rewritten card\n")
    assert task_content_hash(kitchen_task) == h
    assert content_hash({"task.json": b"{}", "README.md": b"a"}) == content_hash({"task.json": b"{}"})
    assert content_hash({"task.json": b"{}"}) != content_hash({"task.json": b"{ }"})

    v1 = Version(1, 0, 0)
    assert decide_version(h, None, None).version == v1
    assert decide_version(h, None, None, version="0.3.0").version == Version(0, 3, 0)
    same = decide_version(h, v1, h, bump="major")
    assert same.unchanged and same.version == v1
    assert decide_version("sha256:new", v1, h, bump="patch").version == Version(1, 0, 1)
    assert decide_version("sha256:new", v1, h, version="1.0.1").version == Version(1, 0, 1)
    with pytest.raises(ConfigError):
        decide_version("sha256:new", v1, h, version="2.0.0", bump="major")
    with pytest.raises(ConfigError):
        decide_version("sha256:new", v1, h, bump="huge")


def test_parse_target(tmp_path: Path, monkeypatch):
    hub, repo = parse_target(f"file://{tmp_path}/hub/acme/kitchen")
    assert isinstance(hub, LocalHub) and repo == REPO and hub.root == (tmp_path / "hub").resolve()
    monkeypatch.chdir(tmp_path)
    hub, repo = parse_target("file://rel/acme/kitchen")
    assert hub.root == (tmp_path / "rel").resolve()
    hub, repo = parse_target("hf://acme/kitchen")
    assert type(hub).__name__ == "HfHub" and repo == REPO
    for bad in ("s3://x/y", "hf://acme", "file://kitchen", "hf://a/b/c"):
        with pytest.raises(PublishError):
            parse_target(bad)


def test_cli_publish(kitchen_task: Path, tmp_path: Path, capsys):
    to = f"file://{tmp_path}/hub/{REPO}"
    assert main(["publish", str(kitchen_task), "--to", to, "--message", "first"]) == 0
    out = capsys.readouterr().out
    commit = LocalHub(tmp_path / "hub").tags(REPO)["v1.0.0"]
    assert "version: 1.0.0" in out and "tag: v1.0.0" in out and f"commit: {commit}" in out and "no-op: no" in out

    assert main(["publish", str(kitchen_task), "--to", to]) == 0
    out = capsys.readouterr().out
    assert out.startswith("unchanged, v1.0.0") and "no-op: yes" in out and f"commit: {commit}" in out

    write_kitchen_task(kitchen_task, changed=True)
    assert main(["publish", str(kitchen_task), "--to", to]) == PublishError.exit_code
    err = capsys.readouterr().err  # logs go to stderr too; the error is its own last line
    assert err.splitlines()[-1].startswith("build-bench: error: the data changed since v1.0.0")
    assert "--bump major|minor|patch" in err.splitlines()[-1]

    assert main(["publish", str(kitchen_task), "--to", to, "--bump", "patch"]) == 0
    assert "tag: v1.0.1" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # argparse: --version and --bump exclude each other
        main(["publish", str(kitchen_task), "--to", to, "--bump", "patch", "--version", "3.0.0"])
    capsys.readouterr()
    assert "publish" in make_parser().format_help()
    header = yaml.safe_load(LocalHub(tmp_path / "hub").read_file(REPO, "README.md", "v1.0.1").decode().split("---")[1])
    assert header["buildbench"]["version"] == "1.0.1"
