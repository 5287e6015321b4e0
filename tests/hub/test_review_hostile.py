"""Hostile and careless submissions against submit, review and publish on a LocalHub (issue 10).

Pull requests are crafted with plain git, as a submitter who never runs buildbench would; every test checks
what is left behind: the hub's refs, the registry folder byte for byte, files outside the temp folders.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pyarrow.parquet as pq
import pytest

from buildbench.cli import main
from buildbench.errors import InputError, PublishError
from buildbench.hub import registry as registry_module
from buildbench.hub.base import TreeEntry
from buildbench.hub.local import LocalHub
from buildbench.hub.manifest import BenchmarkManifest, publish_benchmark, write_benchmark
from buildbench.hub.publish import publish_task
from buildbench.hub.registry import REGISTRY_PARQUET, Registry
from buildbench.hub.submit import pr_description, review_submission, submit_task
from buildbench.hub.safety import submission_files
from buildbench.hub.validate import ValidationReport
from tests.hub.submission_tasks import OTHER_SUBJECTS, write_task

REPO = "org/village"
# A submitter's own git: a fixed identity, none of the machine's config.
_GIT_ENV = {"GIT_AUTHOR_NAME": "mallory", "GIT_AUTHOR_EMAIL": "m@example.org", "GIT_COMMITTER_NAME": "mallory",
            "GIT_COMMITTER_EMAIL": "m@example.org", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(*args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, env={**os.environ, **_GIT_ENV})
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode().strip()


def target(root: Path, repo: str = REPO) -> str:
    return f"file://{root}/{repo}"


def work_tree(folder: Path, task: Path) -> Path:
    """A git work tree holding the task's submission files, nothing committed yet."""
    git("init", "-q", "-b", "main", str(folder))
    for name, data in submission_files(task).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def push_pr(hub: LocalHub, work: Path, number: int = 1, *, gitlink: str | None = None) -> int:
    """Commit everything in ``work`` (plus a gitlink entry named ``gitlink``) and push it as refs/pr/N."""
    hub.ensure_repo(REPO)
    git("add", "-A", cwd=work)
    if gitlink:
        git("update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},{gitlink}", cwd=work)
    git("commit", "-q", "-m", "Submit task", cwd=work)
    git("push", "-q", str(hub.repo_path(REPO)), f"HEAD:refs/pr/{number}", cwd=work)
    return number


def refs(hub: LocalHub, repo: str = REPO) -> str:
    return git(f"--git-dir={hub.repo_path(repo)}", "for-each-ref", "--format=%(refname) %(objectname)")


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for a folder): 'byte-identical' made checkable."""
    if not folder.exists():
        return {}
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def renamed(task: Path, name: str) -> Path:
    """``task`` with task.json naming it ``name`` (what a submitter edits by hand)."""
    record = json.loads((task / "task.json").read_text())
    record["name"] = name
    (task / "task.json").write_text(json.dumps(record))
    return task


def registry_with_one_task(tmp_path: Path) -> Path:
    """A saved registry folder that already holds an unrelated accepted task."""
    folder = tmp_path / "registry"
    reg = Registry.load(folder)
    reg.add_task(write_task(tmp_path / "harbour", "HarbourStoriesRetrieval", subjects=OTHER_SUBJECTS, seed=2),
                 repo="org/harbour", version="v1.0.0", revision="c0ffee")
    reg.save()
    return folder


# -- finding 2: links in a pull request and in a folder being published


@pytest.mark.parametrize("kind", ["symlink", "gitlink"])
def test_finding_02_review_refuses_a_git_link_in_a_pr(tmp_path: Path, kind: str):
    hub = LocalHub(tmp_path / "hub")
    work = work_tree(tmp_path / "work", write_task(tmp_path / "village"))
    if kind == "symlink":
        os.symlink("/etc/passwd", work / "notes.txt")
        pr = push_pr(hub, work)
        mode, what = "120000", "a symbolic link"
    else:
        pr = push_pr(hub, work, gitlink="notes.txt")
        mode, what = "160000", "a git submodule (gitlink)"
    assert f"{mode} " in git(f"--git-dir={hub.repo_path(REPO)}", "ls-tree", "-r", f"refs/pr/{pr}")
    assert TreeEntry("notes.txt", mode) in hub.list_tree(REPO, f"refs/pr/{pr}")
    assert hub.read_file(REPO, "notes.txt", f"refs/pr/{pr}") is None  # never the link's target as content
    registry = tmp_path / "registry"
    before = refs(hub)

    result = review_submission(target(tmp_path / "hub"), pr, registry=Registry.load(registry))
    assert not result.accepted
    assert result.report.check("paths").reason == (
        f"refused submission file: notes.txt is {what} (git mode {mode}); only regular files are accepted")
    assert refs(hub) == before and hub.tags(REPO) == {}  # nothing merged or tagged
    assert not registry.exists()


def test_finding_02_publish_never_follows_links(tmp_path: Path):
    hub_root = tmp_path / "hub"
    # The hostile pull request as a reviewer's clone checks it out: notes.txt is a link to /etc/passwd.
    work = work_tree(tmp_path / "work", write_task(tmp_path / "village"))
    os.symlink("/etc/passwd", work / "notes.txt")
    push_pr(LocalHub(hub_root), work)
    clone = tmp_path / "clone"
    git("clone", "-q", str(LocalHub(hub_root).repo_path(REPO)), str(clone))
    git("fetch", "-q", "origin", "refs/pr/1", cwd=clone)
    git("checkout", "-q", "FETCH_HEAD", cwd=clone)
    assert (clone / "notes.txt").is_symlink()
    out_root = tmp_path / "out"
    with pytest.raises(PublishError) as err:
        publish_task(clone, target(out_root, "org/leak"))
    assert str(err.value) == f"refusing to publish {clone}: notes.txt is a symbolic link; links are never followed"
    assert LocalHub(out_root).list_files("org/leak") == []

    # A hard link to a file outside the folder, and a linked folder.
    secret = tmp_path / "secret.txt"
    secret.write_text("password=hunter2\n")
    task = write_task(tmp_path / "hardlinked")
    os.link(secret, task / "notes.txt")
    with pytest.raises(PublishError, match=r"notes\.txt is a hard link \(2 links\); copy the file"):
        publish_task(task, target(out_root, "org/leak"))
    linked = write_task(tmp_path / "linked-folder")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "keys.txt").write_text("secret\n")
    os.symlink(tmp_path / "outside", linked / "extra")
    with pytest.raises(PublishError, match=r"extra is a symbolic link"):
        publish_task(linked, target(out_root, "org/leak"))
    assert LocalHub(out_root).list_files("org/leak") == []
    # The same folder without the link publishes.
    (linked / "extra").unlink()
    assert publish_task(linked, target(out_root, "org/leak")).tag == "v1.0.0"

    # A benchmark folder whose card is a link: refused before anything is sent.
    reg = Registry.load(tmp_path / "registry")
    reg.add_task(linked, repo="org/leak", version="v1.0.0")
    reg.save()
    bench = write_benchmark(tmp_path / "bench", BenchmarkManifest(name="Leak", version="1.0.0",
                                                                  tasks=["org/leak@v1.0.0"]), reg)
    (bench / "README.md").unlink()
    os.symlink("/etc/passwd", bench / "README.md")
    with pytest.raises(InputError) as err:
        publish_benchmark(bench, target(out_root, "org/leak-bench"), reg)
    assert str(err.value) == f"cannot read {bench}: README.md is a symbolic link; links are never followed"
    assert LocalHub(out_root).list_files("org/leak-bench") == []


# -- finding 3: review validates everything first, and its writes complete or leave nothing


def test_finding_03_unregistrable_name_leaves_hub_and_registry_unchanged(tmp_path: Path, capsys):
    hub_root = tmp_path / "hub"
    hub = LocalHub(hub_root)
    registry = registry_with_one_task(tmp_path)
    bad = renamed(write_task(tmp_path / "bad"), "Village Stories")
    pr = hub.publish(REPO, submission_files(bad), "Submit", create_pr=True).pr_number
    hub_before, registry_before = refs(hub), snapshot(registry)

    assert main(["review", target(hub_root), "--pr", str(pr), "--registry", str(registry)]) != 0
    out = capsys.readouterr().out
    # Refused by validation's name rule (task.json) or, at the latest, by the registration check before any
    # write: either way a failed check naming the rule, never a crash after merging.
    assert re.search(r"FAIL  (metadata|registration) .*'Village Stories'.* must start with a letter", out), out
    assert f"pull request #{pr} refused: nothing merged, the registry is unchanged" in out
    assert refs(hub) == hub_before and hub.tags(REPO) == {} and hub.list_files(REPO, "main") == []
    assert snapshot(registry) == registry_before

    # A corrected pull request is then reviewed as the first version.
    good = hub.publish(REPO, submission_files(write_task(tmp_path / "good")), "Submit", create_pr=True).pr_number
    result = review_submission(target(hub_root), good, registry=Registry.load(registry))
    assert result.accepted and result.version == "v1.0.0"
    assert hub.tags(REPO) == {"v1.0.0": result.merged_commit}
    assert [e.name for e in Registry.load(registry).entries()] == ["HarbourStoriesRetrieval",
                                                                 "VillageStoriesRetrieval"]


def test_finding_03_registration_is_checked_before_any_write(tmp_path: Path, capsys):
    # The registry already holds v1.0.0 of this task (registered by hand), the hub has no tag: the version a
    # review picks cannot be registered, which must be found before merging, not after.
    hub_root = tmp_path / "hub"
    hub = LocalHub(hub_root)
    task = write_task(tmp_path / "village")
    registry = tmp_path / "registry"
    reg = Registry.load(registry)
    reg.add_task(task, repo=REPO, version="v1.0.0")
    reg.save()
    pr = hub.publish(REPO, submission_files(task), "Submit", create_pr=True).pr_number
    hub_before, registry_before = refs(hub), snapshot(registry)

    assert main(["review", target(hub_root), "--pr", str(pr), "--registry", str(registry)]) != 0
    out = capsys.readouterr().out
    assert re.search(r"FAIL  registration +task VillageStoriesRetrieval v1\.0\.0 is already in the registry", out), out
    assert refs(hub) == hub_before and hub.tags(REPO) == {}
    assert snapshot(registry) == registry_before


def _fail_tag(monkeypatch):
    def create_tag(self, repo_id, tag, revision, message=None):
        raise PublishError("injected: cannot create the tag")

    monkeypatch.setattr(LocalHub, "create_tag", create_tag)


def _fail_registry_parquet(monkeypatch):
    real = registry_module.atomic_write_parquet

    def write(path, table, *args, **kwargs):
        if Path(path).name == REGISTRY_PARQUET:
            raise OSError(28, "No space left on device")
        return real(path, table, *args, **kwargs)

    monkeypatch.setattr(registry_module, "atomic_write_parquet", write)


def _fail_card(monkeypatch):
    real = registry_module.atomic_write_bytes
    calls = []

    def write(path, data, *args, **kwargs):
        # The first write of the card fails; putting the old card back (the rollback) works.
        if Path(path).name == "README.md" and not calls:
            calls.append(path)
            raise OSError(5, "Input/output error")
        return real(path, data, *args, **kwargs)

    monkeypatch.setattr(registry_module, "atomic_write_bytes", write)


@pytest.mark.parametrize("inject", [_fail_tag, _fail_registry_parquet, _fail_card],
                         ids=["tag", "registry.parquet", "registry card"])
def test_finding_03_failure_between_steps_leaves_nothing(tmp_path: Path, monkeypatch, inject):
    hub_root = tmp_path / "hub"
    hub = LocalHub(hub_root)
    registry = registry_with_one_task(tmp_path)
    # A second PR onto an accepted first version, so main and a tag exist that must stay where they are.
    first = hub.publish(REPO, submission_files(write_task(tmp_path / "v1")), "Submit", create_pr=True).pr_number
    v1 = review_submission(target(hub_root), first, registry=Registry.load(registry))
    assert v1.version == "v1.0.0"
    pr = hub.publish(REPO, submission_files(write_task(tmp_path / "v2", seed=11)), "Submit",
                     create_pr=True).pr_number
    hub_before, registry_before = refs(hub), snapshot(registry)

    with monkeypatch.context() as m:
        inject(m)
        with pytest.raises(PublishError) as err:
            review_submission(target(hub_root), pr, registry=Registry.load(registry))
    message = str(err.value)
    assert "\n" not in message and f"pull request #{pr}" in message and "rolled back" in message
    assert refs(hub) == hub_before  # main back at v1.0.0, no v1.1.0 tag, the PR ref untouched
    assert snapshot(registry) == registry_before  # no fingerprint file, no entry, the card as it was

    result = review_submission(target(hub_root), pr, registry=Registry.load(registry))
    assert result.accepted and result.version == "v1.1.0"
    assert [e.version for e in Registry.load(registry).entries("task")] == ["v1.0.0", "v1.0.0", "v1.1.0"]


def test_finding_03_pr_moved_after_validation_is_not_merged(tmp_path: Path, monkeypatch):
    # The PR's head moves between download and merge: review merges only the commit it validated.
    hub_root = tmp_path / "hub"
    hub = LocalHub(hub_root)
    pr = hub.publish(REPO, submission_files(write_task(tmp_path / "v1")), "Submit", create_pr=True).pr_number
    other = hub.publish(REPO, submission_files(write_task(tmp_path / "other", seed=5)), "x", create_pr=True)
    real = registry_module.Registry.prepare_task

    def prepare_then_push(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        git(f"--git-dir={hub.repo_path(REPO)}", "update-ref", f"refs/pr/{pr}", other.commit)
        return out

    monkeypatch.setattr(registry_module.Registry, "prepare_task", prepare_then_push)
    with pytest.raises(PublishError, match=f"pull request #{pr} of {REPO} changed since it was validated"):
        review_submission(target(hub_root), pr, registry=Registry.load(tmp_path / "registry"))
    assert hub.list_files(REPO, "main") == [] and hub.tags(REPO) == {}
    assert not (tmp_path / "registry").exists()


# -- finding 8: read-only hubs, corrupt and foreign registries


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` made read-only: by mode for a normal user; root ignores modes, so a read-only bind mount."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")] if not p.is_symlink()}
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    proc = subprocess.run(["mount", "--bind", "-o", "ro", str(folder), str(folder)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot make a read-only folder as root here: {proc.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("existing_repo", [False, True], ids=["new repo", "existing repo"])
def test_finding_08_read_only_hub_on_submit(tmp_path: Path, capsys, existing_repo: bool):
    hub_root = tmp_path / "hub"
    (hub_root / "datasets").mkdir(parents=True)
    if existing_repo:
        LocalHub(hub_root).ensure_repo(REPO)
    task = write_task(tmp_path / "village")
    with read_only(hub_root):
        code = main(["submit", str(task), "--to", target(hub_root)])
    err = capsys.readouterr().err
    assert code == PublishError.exit_code, err
    errors = [line for line in err.splitlines() if line.startswith("build-bench: error: ")]
    assert len(errors) == 1 and err.rstrip().endswith(errors[0]) and "Traceback" not in err, err
    # The reason is the system's: a read-only mount as root, missing write permission otherwise.
    assert re.fullmatch(rf"build-bench: error: the hub {re.escape(str(hub_root))} is not writable "
                        r"\((Read-only file system|Permission denied)\): cannot "
                        f"{'write to' if existing_repo else 'create'} the dataset repo {REPO}", errors[0]), errors
    assert LocalHub(hub_root).pull_requests(REPO) == {}


def test_finding_08_read_only_registry_on_review_merges_nothing(tmp_path: Path, capsys):
    hub_root = tmp_path / "hub"
    hub = LocalHub(hub_root)
    registry = registry_with_one_task(tmp_path)
    pr = hub.publish(REPO, submission_files(write_task(tmp_path / "village")), "Submit", create_pr=True).pr_number
    hub_before, registry_before = refs(hub), snapshot(registry)
    with read_only(registry):
        code = main(["review", target(hub_root), "--pr", str(pr), "--registry", str(registry)])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == PublishError.exit_code
    assert err == (f"build-bench: error: cannot write the registry {registry} ({registry} is not writable); "
                   "nothing was merged")
    assert refs(hub) == hub_before and snapshot(registry) == registry_before


def test_finding_08_corrupt_registry_parquet_is_one_line(tmp_path: Path, capsys):
    registry = registry_with_one_task(tmp_path)
    (registry / REGISTRY_PARQUET).write_bytes(b"PAR1 this is not a parquet file")
    capsys.readouterr()
    assert main(["list", "--registry", str(registry)]) == InputError.exit_code
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"build-bench: error: {registry / REGISTRY_PARQUET} is not a readable registry file "
                   "(not Parquet); restore it from a backup or the registry's repo")
    fingerprints = next((registry / "fingerprints").iterdir())
    (registry / REGISTRY_PARQUET).unlink()
    registry_with_one_task(tmp_path / "again")
    (registry / REGISTRY_PARQUET).write_bytes((tmp_path / "again" / "registry" / REGISTRY_PARQUET).read_bytes())
    fingerprints.write_bytes(b"\0" * 64)
    with pytest.raises(InputError, match=f"{fingerprints} is not a readable registry file"):
        Registry.load(registry).fingerprints("HarbourStoriesRetrieval")


def test_finding_08_registry_refuses_an_ordinary_folder(tmp_path: Path, capsys):
    hub_root = tmp_path / "hub"
    hub = LocalHub(hub_root)
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "README.md").write_text("# My project\n\nNotes I keep by hand.\n")
    before = snapshot(folder)
    pr = submit_task(write_task(tmp_path / "village"), target(hub_root)).pr.pr_number

    assert main(["review", target(hub_root), "--pr", str(pr), "--registry", str(folder)]) == InputError.exit_code
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"build-bench: error: {folder} is not a buildbench registry (no {REGISTRY_PARQUET}) and is not "
                   "empty; pass a registry folder, a new or empty folder, or a registry repo")
    assert snapshot(folder) == before and hub.tags(REPO) == {} and hub.list_files(REPO, "main") == []
    # A new folder becomes a registry (its marker written first); from then on it is recognised.
    new = tmp_path / "registry"
    assert main(["review", target(hub_root), "--pr", str(pr), "--registry", str(new)]) == 0
    assert (new / ".buildbench-registry").is_file()
    assert [e.name for e in Registry.load(new).entries()] == ["VillageStoriesRetrieval"]


# -- findings 6 and 11: the PR description


def test_finding_11_pr_description_counts_come_from_the_data(tmp_path: Path):
    task = write_task(tmp_path / "village")
    files = submission_files(task)
    record = json.loads(files["task.json"])
    record["counts"] = {"corpus": 24, "queries": 3, "qrels": 2}  # what the submitter claims
    text = pr_description(record, ValidationReport(task), files)
    assert pq.ParquetFile(task / "corpus/test-00000-of-00001.parquet").metadata.num_rows == 150
    assert "- Documents: 150, queries: 30, relevance judgements: 30" in text
    assert "24" not in text.split("- Files:")[0]


def test_finding_06_pr_description_escapes_every_submitter_field():
    record = {"name": "Evil\x1b[2J\x1b[31mTask\u202e", "description": "<script>alert(1)</script> ok",
              "language": "en<b>", "license": '<img src=x onerror="alert(1)">', "type": "Retrieval\x07"}
    text = pr_description(record, ValidationReport(Path("x")), {"task.json": b"{}"})
    assert "<" not in text and ">" not in text.replace("->", "")
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert text.startswith("Submit task EvilTask\n")
    assert "license: &lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; ok" in text
