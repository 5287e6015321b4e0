"""A run folder at an fsspec URL: pulled into a fresh working copy, pushed after every shard and stage (data
first, the manifest last), resumed from another machine's working copy after a crash, refused when it is not a
run folder. ``file://`` and ``memory://`` are fsspec's own filesystems; ``s3://`` goes through the real s3fs and
botocore to an S3 server on 127.0.0.1 (moto's, since no cloud store is reachable here); gcsfs and adlfs plug in
the same way, untested."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import fsspec
import pytest

S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                  "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_server():
    """An S3 server on 127.0.0.1 (moto's), with the environment s3fs and botocore read its address and
    credentials from; yields that environment. The bucket ``bb-runs`` exists."""
    moto_server = pytest.importorskip("moto.server", reason="needs moto[server] (buildbench[dev])")
    pytest.importorskip("s3fs", reason="needs s3fs (buildbench[s3])")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    with pytest.MonkeyPatch.context() as mp:  # module-scoped, so not the function-scoped monkeypatch fixture
        for key, value in env.items():
            mp.setenv(key, value)
        fsspec.filesystem("s3", skip_instance_cache=True).mkdir("bb-runs")
        yield env
    server.stop()

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


@pytest.mark.parametrize("scheme", ["file", "memory", "s3"])
def test_a_crashed_run_resumes_from_another_working_copy(tmp_path, scheme, request):
    urls = {"file": f"file://{tmp_path / 'bucket' / 'run'}", "memory": f"memory://bb-test-{tmp_path.name}/run",
            "s3": f"s3://bb-runs/{tmp_path.name}/run"}
    url = urls[scheme]
    if scheme == "s3":
        request.getfixturevalue("s3_server")
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
    with pytest.raises(Exception, match="gcsfs|--out"):  # fsspec names the package the protocol needs
        RunMirror("gs://bucket/run")


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


def test_the_cli_builds_into_s3_and_another_machine_resumes_it(tmp_path, s3_server):
    """The real CLI against the S3 server, up to the LLM-free plan: the objects hold the run (the manifest among
    them, no temporary names left), and a build from a fresh working copy finds every stage done."""
    import os

    url = f"s3://bb-runs/{tmp_path.name}/finance"
    env = {**os.environ, **s3_server, "BUILDBENCH_RUN_CACHE": str(tmp_path / "cache-a"), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "buildbench.cli", "--domain", "finance", "--out", url, "--until", "plan_queries",
           "--no-progress"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    files = remote_files(url)
    assert {MARKER, "manifest.json", "report.json"} <= files and any(f.startswith("data/plan/") for f in files)
    assert not any(".tmp" in f or f.endswith(".part") for f in files)
    manifest = json.loads(fs.cat_file(f"bb-runs/{tmp_path.name}/finance/manifest.json"))
    assert manifest["stages"]["plan_queries"]["status"] == "done"
    env["BUILDBENCH_RUN_CACHE"] = str(tmp_path / "cache-b")
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stderr.count("up to date, skipped") == 5, second.stderr[-3000:]
    # no credential reaches the run's records
    assert not any("testing" in fs.cat_file(f"bb-runs/{tmp_path.name}/finance/{f}").decode(errors="ignore")
                   for f in ("manifest.json", "report.json"))
