"""Submissions on a LocalHub: submit opens refs/pr/N, review re-validates, merges, tags and registers; the
registry and benchmark manifests; hostile pull requests are refused without writing outside temp folders."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from buildbench.cli import main
from buildbench.errors import InputError, QualityError
from buildbench.hub.local import LocalHub
from buildbench.hub.manifest import BenchmarkManifest, publish_benchmark, read_benchmark, write_benchmark
from buildbench.hub.registry import REGISTRY_PARQUET, Registry, RegistryEntry
from buildbench.hub.submit import PR_DESCRIPTION_LIMIT, pr_description, review_submission, submit_task
from buildbench.hub.checks import Check
from buildbench.hub.safety import submission_files
from buildbench.hub.validate import ValidationReport
from tests.hub.submission_tasks import OTHER_SUBJECTS, files_under, write_task

REPO = "org/village"


@pytest.fixture
def hub_root(tmp_path: Path) -> Path:
    return tmp_path / "hub"


def target(hub_root: Path, repo: str = REPO) -> str:
    return f"file://{hub_root}/{repo}"


def commit_message(hub: LocalHub, repo: str, ref: str) -> str:
    out = subprocess.run(["git", f"--git-dir={hub.repo_path(repo)}", "log", "-1", "--format=%B", ref],
                         capture_output=True, check=True)
    return out.stdout.decode().strip()


def test_submit_review_list(tmp_path: Path, hub_root: Path, capsys):
    task = write_task(tmp_path / "village")
    # The compiled mteb module a build leaves in the folder is not part of the submission.
    (task / "VillageStoriesRetrieval_task.py").write_text("from mteb.abstasks.retrieval import AbsTaskRetrieval\n")
    registry = tmp_path / "registry"

    assert main(["submit", str(task), "--to", target(hub_root), "--registry", str(registry)]) == 0
    out = capsys.readouterr().out
    assert "pull request: refs/pr/1" in out and "all 21 checks passed" in out

    hub = LocalHub(hub_root)
    assert list(hub.pull_requests(REPO)) == [1]
    expected = sorted(submission_files(task))
    assert hub.list_files(REPO, "refs/pr/1") == expected
    assert "VillageStoriesRetrieval_task.py" not in expected and "task.json" in expected
    for name in expected:
        assert hub.read_file(REPO, name, "refs/pr/1") == (task / name).read_bytes()
    assert hub.list_files(REPO, "main") == []  # nothing lands on main before review
    description = commit_message(hub, REPO, "refs/pr/1")
    assert len(description) < PR_DESCRIPTION_LIMIT
    assert description.startswith("Submit task VillageStoriesRetrieval\n")
    assert "- Documents: 150, queries: 30, relevance judgements: 30" in description
    assert "- PASS baselines: random nDCG@10" in description

    assert main(["review", target(hub_root), "--pr", "1", "--registry", str(registry)]) == 0
    out = capsys.readouterr().out
    assert "merged pull request #1 into main" in out and "tagged v1.0.0" in out
    assert hub.list_files(REPO, "main") == expected
    assert hub.tags(REPO)["v1.0.0"] == hub.pull_requests(REPO)[1]  # fast-forward: main is the PR's commit

    reg = Registry.load(registry)
    entry = reg.get("VillageStoriesRetrieval")
    assert (entry.kind, entry.repo, entry.version, entry.license, entry.languages) == (
        "task", REPO, "v1.0.0", "cc-by-4.0", ["en"])
    assert entry.revision == hub.tags(REPO)["v1.0.0"]
    assert entry.content_hash.startswith("sha256:")
    fp = reg.fingerprints("VillageStoriesRetrieval")
    assert fp.queries.shape == (30, 128) and fp.corpus.shape == (150, 128)

    assert main(["list", "--registry", str(registry)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split() == ["kind", "name", "version", "repo", "languages", "license", "accepted"]
    assert listing[1].split()[:6] == ["task", "VillageStoriesRetrieval", "v1.0.0", REPO, "en", "cc-by-4.0"]

    # The same task submitted to another repo: its name is taken and its queries are the registered ones.
    assert main(["submit", str(task), "--to", target(hub_root, "org/copycat"), "--registry", str(registry)]) == 5
    out = capsys.readouterr().out
    assert ("FAIL  overlap                 task name 'VillageStoriesRetrieval' is already registered from org/village; "
            "30 of 30 queries (100.0%)") in out
    assert LocalHub(hub_root).pull_requests("org/copycat") == {}
    copy = write_task(tmp_path / "copy", "CopiedStoriesRetrieval")
    assert main(["validate", str(copy), "--registry", str(registry)]) == QualityError.exit_code
    out = capsys.readouterr().out
    assert ("FAIL  overlap                 30 of 30 queries (100.0%) are near-identical (MinHash Jaccard >= 0.8) to "
            "queries of registered task 'VillageStoriesRetrieval' v1.0.0 (> 5%)") in out


def test_submit_sends_nothing_when_validation_fails(tmp_path: Path, hub_root: Path, capsys):
    task = write_task(tmp_path / "german", german=True)
    assert main(["submit", str(task), "--to", target(hub_root)]) == QualityError.exit_code
    out = capsys.readouterr().out
    assert "FAIL  language" in out and "not submitted" in out
    assert not (hub_root / "datasets").exists()


def test_validate_cli_exit_codes(tmp_path: Path, capsys):
    assert main(["validate", str(write_task(tmp_path / "ok"))]) == 0
    assert capsys.readouterr().out.rstrip().endswith("all 21 checks passed")
    bad = write_task(tmp_path / "bad")
    (bad / "loader.py").write_text("print('hi')\n")
    assert main(["validate", str(bad)]) == QualityError.exit_code
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split(None, 2) == ["FAIL", "extensions", "loader.py is a Python loader script (only .parquet, "
                                       ".json, .md, .jsonl, .txt files are accepted)"]
    assert lines[-1].endswith("rejected, 1 check(s) failed, 18 not run")


def _plant_pr_with_names(hub: LocalHub, repo: str, task: Path, nested: list[str], evil: bytes) -> int:
    """Open a PR whose tree holds ``task``'s files plus a file reached through the tree entries ``nested``
    (e.g. ["..", "..", "x.txt"]): git plumbing accepts such trees, LocalHub.publish never writes them."""
    git = ["git", f"--git-dir={hub.repo_path(repo)}"]

    def run(*args: str, stdin: bytes = b"") -> str:
        return subprocess.run([*git, *args], input=stdin, capture_output=True, check=True).stdout.decode().strip()

    hub.ensure_repo(repo)
    blob = run("hash-object", "-w", "--stdin", stdin=evil)
    tree = run("mktree", stdin=f"100644 blob {blob}\t{nested[-1]}\n".encode())
    for part in reversed(nested[:-1]):
        tree = run("mktree", stdin=f"040000 tree {tree}\t{part}\n".encode())
    inner = run("ls-tree", tree)  # the single top entry, e.g. "040000 tree <id>\t.."
    # Merge that entry into the tree of the honest files.
    honest = hub.publish(repo, submission_files(task), "honest files", create_pr=True)
    entries = run("ls-tree", honest.commit) + "\n" + inner + "\n"
    combined = run("mktree", stdin=entries.encode())
    commit = run("commit-tree", combined, stdin=b"Submit task\n")
    run("update-ref", "refs/pr/2", commit, "")
    return 2


def test_review_refuses_a_pr_with_path_traversal_names(tmp_path: Path, hub_root: Path, capsys):
    hub = LocalHub(hub_root)
    task = write_task(tmp_path / "village")
    pr = _plant_pr_with_names(hub, REPO, task, ["..", "..", "x.txt"], b"written outside")
    assert "../../x.txt" in hub.list_files(REPO, f"refs/pr/{pr}")
    registry = tmp_path / "registry"
    before = files_under(tmp_path.parent)
    temp_before = set(os.listdir(tempfile.gettempdir()))

    result = review_submission(target(hub_root), pr, registry=Registry.load(registry))
    assert not result.accepted
    check = result.report.check("paths")
    assert check.reason == "refused submission file: the name '../../x.txt' has a '..' component (path traversal)"
    assert files_under(tmp_path.parent) == before  # no x.txt anywhere, registry not created
    assert "x.txt" not in set(os.listdir(tempfile.gettempdir())) - temp_before
    assert hub.list_files(REPO, "main") == [] and hub.tags(REPO) == {}

    assert main(["review", target(hub_root), "--pr", str(pr), "--registry", str(registry)]) == QualityError.exit_code
    assert "pull request #2 refused" in capsys.readouterr().out
    assert not registry.exists()


def test_review_refuses_a_pr_with_a_loader_script(tmp_path: Path, hub_root: Path):
    hub = LocalHub(hub_root)
    task = write_task(tmp_path / "village")
    files = submission_files(task) | {"village.py": b"import os\nos.system('touch pwned')\n"}
    pr = hub.publish(REPO, files, "Submit", create_pr=True).pr_number
    result = review_submission(target(hub_root), pr, registry=Registry.load(tmp_path / "registry"))
    assert not result.accepted
    assert result.report.check("paths").reason == (
        "refused submission file: village.py is a Python loader script (only .parquet, .json, .md, .jsonl, .txt files "
        "are accepted)")
    assert hub.list_files(REPO, "main") == []


def test_review_validates_again(tmp_path: Path, hub_root: Path):
    # A PR opened by hand (not through submit) with German queries: review's own validation refuses it.
    hub = LocalHub(hub_root)
    pr = hub.publish(REPO, submission_files(write_task(tmp_path / "german", german=True)), "Submit",
                     create_pr=True).pr_number
    registry = Registry.load(tmp_path / "registry")
    result = review_submission(target(hub_root), pr, registry=registry)
    assert not result.accepted
    assert [c.id for c in result.report.failed] == ["language"]
    assert registry.entries() == [] and hub.tags(REPO) == {}


def test_second_version_is_bumped(tmp_path: Path, hub_root: Path):
    registry = Registry.load(tmp_path / "registry")
    first = submit_task(write_task(tmp_path / "v1"), target(hub_root), registry=registry)
    assert review_submission(target(hub_root), first.pr.pr_number, registry=registry).version == "v1.0.0"
    second = submit_task(write_task(tmp_path / "v2", seed=11), target(hub_root), registry=registry)
    assert second.ok  # a new version of a registered task is not compared with the old one
    result = review_submission(target(hub_root), second.pr.pr_number, registry=registry)
    assert result.version == "v1.1.0"
    assert [e.version for e in Registry.load(tmp_path / "registry").entries()] == ["v1.0.0", "v1.1.0"]


def test_pr_description_stays_under_the_limit():
    checks = [Check(f"check_{i}", True, "a very long reason " * 40) for i in range(60)]
    record = {"name": "X" * 500, "description": "<b>long</b> " * 500, "language": "en", "license": "mit",
              "counts": {"corpus": 1, "queries": 1, "qrels": 1}}
    text = pr_description(record, ValidationReport(Path("x"), checks), {"task.json": b"{}"})
    assert len(text) < PR_DESCRIPTION_LIMIT
    assert "<b>" not in text and "&lt;b&gt;" in text


# -- the registry and benchmarks


def test_registry_round_trip(tmp_path: Path):
    root = tmp_path / "registry"
    reg = Registry.load(root)
    task = write_task(tmp_path / "t")
    entry = reg.add_task(task, repo=REPO, version="v1.0.0", revision="abc")
    with pytest.raises(InputError, match="already in the registry"):
        reg.add(RegistryEntry(kind="task", name=entry.name, repo=REPO, version="v1.0.0"))
    with pytest.raises(ValueError):
        RegistryEntry(kind="task", name="../evil", repo=REPO, version="v1")
    reg.save()
    assert sorted(files_under(root)) == [".buildbench-registry", "README.md", "fingerprints",
                                         "fingerprints/task-VillageStoriesRetrieval-v1.0.0.parquet", REGISTRY_PARQUET]
    again = Registry.load(root)
    assert again.entries() == reg.entries()
    np.testing.assert_array_equal(again.fingerprints(entry.name).queries, reg.fingerprints(entry.name).queries)
    card = (root / "README.md").read_text()
    assert "config_name: fingerprints" in card and "| task | VillageStoriesRetrieval | v1.0.0 | org/village |" in card


def test_registry_in_a_local_hub_repo(tmp_path: Path, hub_root: Path):
    url = target(hub_root, "org/registry")
    reg = Registry.load(url)
    assert reg.entries() == []
    reg.add_task(write_task(tmp_path / "t"), repo=REPO, version="v1.0.0")
    reg.save("Register VillageStoriesRetrieval")
    hub = LocalHub(hub_root)
    assert REGISTRY_PARQUET in hub.list_files("org/registry")
    again = Registry.load(url)
    assert [e.name for e in again.entries()] == ["VillageStoriesRetrieval"]
    assert again.fingerprints("VillageStoriesRetrieval").queries.shape == (30, 128)


def test_benchmark_manifest(tmp_path: Path, hub_root: Path):
    reg = Registry.load(tmp_path / "registry")
    reg.add_task(write_task(tmp_path / "a"), repo=REPO, version="v1.0.0", revision="c0ffee")
    reg.add_task(write_task(tmp_path / "b", "HarbourStoriesRetrieval", subjects=OTHER_SUBJECTS, seed=2),
                 repo="org/harbour", version="v2.0.0")
    reg.save()
    manifest = BenchmarkManifest(name="StoriesBench", version="1.0.0",
                                 tasks=["org/village@1.0.0", "org/harbour@v2.0.0"])
    folder = write_benchmark(tmp_path / "bench", manifest, reg)
    assert read_benchmark(folder) == manifest
    assert manifest.tasks[0].version == "v1.0.0"

    wrong = BenchmarkManifest(name="StoriesBench", version="1.0.0", tasks=["org/village@v3.0.0", "org/nowhere@v1.0.0"])
    with pytest.raises(InputError) as err:
        write_benchmark(tmp_path / "wrong", wrong, reg)
    assert str(err.value) == (
        f"benchmark StoriesBench v1.0.0 lists tasks not in the registry {tmp_path / 'registry'} at that version: "
        "org/village@v3.0.0 (registered versions: v1.0.0); org/nowhere@v1.0.0 (repo not in the registry)"
    )
    assert not (tmp_path / "wrong").exists()

    result = publish_benchmark(folder, target(hub_root, "org/stories-bench"), reg)
    hub = LocalHub(hub_root)
    assert hub.tags("org/stories-bench") == {"v1.0.0": result.commit}
    assert hub.list_files("org/stories-bench", "v1.0.0") == ["README.md", "benchmark.json"]
    bench = Registry.load(tmp_path / "registry").get("StoriesBench", kind="benchmark")
    assert (bench.version, bench.repo, bench.languages, bench.license) == ("v1.0.0", "org/stories-bench", ["en"],
                                                                           "cc-by-4.0")
