"""A run folder at an fsspec URL: pulled into a fresh working copy, pushed after every shard and stage (data
first, the manifest last), resumed from another machine's working copy after a crash, refused when it is not a
run folder. ``file://`` and ``memory://`` are fsspec's own filesystems; s3fs, gcsfs and adlfs plug in the same
way (no object store is reachable here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import fsspec
import pytest

from buildbench.engine.remote import RunMirror, is_remote, local_root, working_copy
from buildbench.engine.rundir import MARKER, RunDir
from buildbench.engine.runner import Runner
from buildbench.errors import ConfigError

from .test_runner import config, make_stages


def run_remote(url: str, cache: Path, calls: list, tmp_path: Path, fail_at=None):
    """The toy two-stage build against a remote run folder, from the working copy under ``cache``."""
    mirror = RunMirror(url, local=cache / "copy")
    root = mirror.pull()
    cfg = config(tmp_path)
    runner = Runner(make_stages(calls, fail_at), cfg, RunDir(root), progress=False, shard_rows={"numbers": 3},
                    on_commit=mirror.push)
    try:
        return runner, runner.run()
    finally:
        mirror.push()


def remote_files(url: str) -> set[str]:
    fs, path = fsspec.core.url_to_fs(url)
    return {p[len(path.rstrip("/")) + 1:] for p in fs.find(path)} if fs.exists(path) else set()


@pytest.mark.parametrize("scheme", ["file", "memory"])
def test_a_crashed_run_resumes_from_another_working_copy(tmp_path, scheme):
    url = f"file://{tmp_path / 'bucket' / 'run'}" if scheme == "file" else f"memory://bb-test-{tmp_path.name}/run"
    calls: list = []
    with pytest.raises(RuntimeError):
        run_remote(url, tmp_path / "machine-a", calls, tmp_path, fail_at=7)  # shards 0-1 finish, shard 2 fails
    files = remote_files(url)
    assert {MARKER, "manifest.json", "data/squares/part-00000.parquet", "data/squares/part-00001.parquet"} <= files
    assert "data/squares/part-00002.parquet" not in files and not any(f.endswith(".part") for f in files)
    fs, path = fsspec.core.url_to_fs(url)
    assert json.loads(fs.cat_file(f"{path}/manifest.json"))["stages"]["square"]["status"] == "running"
    # Another machine, an empty working copy: it pulls the finished shards and redoes only the rest.
    calls.clear()
    runner, manifest = run_remote(url, tmp_path / "machine-b", calls, tmp_path)
    assert calls == [("square", (6, 7, 8)), ("square", (9,))]
    assert manifest["stages"]["square"]["status"] == "done"
    assert json.loads(fs.cat_file(f"{path}/manifest.json"))["stages"]["square"]["status"] == "done"
    # A third copy finds everything done.
    calls.clear()
    runner, _ = run_remote(url, tmp_path / "machine-c", calls, tmp_path)
    assert calls == [] and runner.this_run["square"]["skipped"]
    assert RunDir(tmp_path / "machine-c" / "copy", claim=False).read("squares")["n"].to_pylist() == [1, 2, 3, 4, 6, 7,
                                                                                                      8, 9]


def test_outputs_a_stage_deletes_are_deleted_remotely_but_labels_stay(tmp_path):
    url = f"file://{tmp_path / 'remote'}"
    mirror = RunMirror(url, local=tmp_path / "copy")
    root = mirror.pull()
    (root / MARKER).write_text("{}")
    (root / "data" / "x").mkdir(parents=True)
    (root / "data" / "x" / "part-00000.parquet").write_bytes(b"old")
    (root / "labels").mkdir()
    (root / "labels" / "labels.jsonl").write_text("{}\n")
    assert mirror.push() == 3
    assert mirror.push() == 0  # nothing changed
    (root / "data" / "x" / "part-00000.parquet").unlink()
    (root / "labels" / "labels.jsonl").unlink()
    mirror.push()
    assert remote_files(url) == {MARKER, "labels/labels.jsonl"}


def test_the_llm_cache_goes_up_as_a_consistent_copy(tmp_path):
    import sqlite3

    url = f"file://{tmp_path / 'remote'}"
    mirror = RunMirror(url, local=tmp_path / "copy")
    root = mirror.pull()
    (root / MARKER).write_text("{}")
    (root / "cache").mkdir()
    db = sqlite3.connect(root / "cache" / "llm.sqlite")
    db.execute("pragma journal_mode=wal")
    db.execute("create table calls (k text primary key, v text)")
    db.execute("insert into calls values ('a', 'b')")
    db.commit()  # still open, its rows in the -wal file
    mirror.push()
    db.close()
    assert "cache/llm.sqlite-wal" not in remote_files(url)
    copy = sqlite3.connect(tmp_path / "remote" / "cache" / "llm.sqlite")
    assert copy.execute("select v from calls where k = 'a'").fetchone() == ("b",)


def test_a_remote_folder_that_is_not_a_run_is_refused(tmp_path):
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="is not a build-bench run folder"):
        RunMirror(f"file://{tmp_path / 'theirs'}", local=tmp_path / "copy").pull()
    assert (tmp_path / "theirs" / "notes.txt").read_text() == "mine"


def test_urls_and_working_copies(tmp_path, monkeypatch):
    monkeypatch.setenv("BUILDBENCH_RUN_CACHE", str(tmp_path))
    assert is_remote("s3://bucket/run") and is_remote("file:///tmp/x") and not is_remote("/tmp/x")
    assert not is_remote("runs/finance") and local_root("runs/finance") == Path("runs/finance")
    a, b = working_copy("s3://bucket/run"), working_copy("gs://bucket/run")
    assert a.parent == tmp_path and a != b and local_root("s3://bucket/run") == a
    with pytest.raises(Exception, match="s3fs|--out"):  # fsspec names the package the protocol needs
        RunMirror("s3://bucket/run")


def test_the_cli_builds_into_a_url_and_another_copy_resumes_it(tmp_path):
    """The real CLI, up to the LLM-free plan: the remote folder holds the run, and a build from a fresh working
    copy finds every stage done."""
    url = f"file://{tmp_path / 'shared' / 'run'}"
    env = {"BUILDBENCH_RUN_CACHE": str(tmp_path / "cache-a"), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "buildbench.cli", "--domain", "finance", "--out", url, "--until", "plan_queries",
           "--no-progress"]
    import os

    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, **env})
    assert first.returncode == 0, first.stderr[-3000:]
    files = remote_files(url)
    assert {MARKER, "manifest.json", "report.json"} <= files and any(f.startswith("data/plan/") for f in files)
    manifest = json.loads((tmp_path / "shared" / "run" / "manifest.json").read_text())
    assert manifest["stages"]["plan_queries"]["status"] == "done"
    env["BUILDBENCH_RUN_CACHE"] = str(tmp_path / "cache-b")
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, **env})
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stderr.count("up to date, skipped") == 5, second.stderr[-3000:]
