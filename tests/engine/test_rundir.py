"""The run folder: the marker that makes a folder build-bench's, deletions confined to it, file modes."""

from __future__ import annotations

import json
import os
import stat
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pytest

from buildbench.engine.rundir import RunDir, atomic_write_json, atomic_write_text
from buildbench.errors import ConfigError

MARKER = ".buildbench-run"  # the marker's name is a contract: older and newer versions must agree on it


def is_run_dir(root: Path) -> bool:
    return json.loads((root / MARKER).read_text()).get("tool") == "buildbench" if (root / MARKER).is_file() else False


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# -- finding 1: a run folder is marked, and nothing outside a marked run folder is ever deleted


def test_new_and_empty_folders_get_the_marker(tmp_path):
    for root in (tmp_path / "new" / "run", tmp_path / "empty"):
        if root.name == "empty":
            root.mkdir()
        rd = RunDir(root)
        marker = json.loads((root / MARKER).read_text())
        assert marker["tool"] == "buildbench" and marker["format"] == 1
        assert is_run_dir(root)
        rd.write("numbers", pa.table({"n": [1, 2]}))
        RunDir(root)  # a marked folder is opened again as is
        assert rd.read("numbers")["n"].to_pylist() == [1, 2]


def test_finding_01_user_folder_is_refused_before_any_write(tmp_path):
    proj = tmp_path / "proj"
    (proj / "data" / "documents").mkdir(parents=True)
    (proj / "data" / "documents" / "thesis.txt").write_text("Four years of my life.\n")
    (proj / "manifest.json").write_text('{"name": "my project"}\n')
    before = snapshot(proj)
    with pytest.raises(ConfigError) as err:
        RunDir(proj)
    message = str(err.value)
    assert str(proj) in message and "not a build-bench run folder" in message and "\n" not in message
    assert snapshot(proj) == before and not (proj / MARKER).exists()


def test_finding_01_inputs_inside_the_run_folder_are_refused(tmp_path):
    run = tmp_path / "run"
    RunDir(run).write("documents", pa.table({"id": ["a"]}))
    inside = run / "data" / "documents"
    for spec in (str(inside), str(inside / "part-00000.parquet"), str(run / "data" / "**" / "*.parquet"),
                 str(run / "cache"), str(run / "task_reranking" / "corpus"), str(run)):
        with pytest.raises(ConfigError) as err:
            RunDir(run, inputs=[spec])
        assert "--docs" in str(err.value) and str(run) in str(err.value)
    assert RunDir(run).has_dataset("documents")
    # The same through a symlink, and for a folder that is not marked yet (new or empty).
    link = tmp_path / "link"
    link.symlink_to(inside)
    with pytest.raises(ConfigError):
        RunDir(run, inputs=[str(link)])
    fresh = tmp_path / "fresh"
    with pytest.raises(ConfigError):
        RunDir(fresh, inputs=[str(fresh)])
    assert not fresh.exists()
    # Inputs elsewhere, beside the managed areas, or on the Hub are fine.
    (run / "notes").mkdir()
    RunDir(run, inputs=[str(tmp_path / "docs"), str(run / "notes"), "hf://datasets/org/name"])


def test_finding_01_reset_dataset_deletes_only_inside_a_marked_run_folder(tmp_path):
    run = tmp_path / "run"
    rd = RunDir(run)
    rd.write("documents", pa.table({"id": ["a"]}))
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    for name in ("../../precious", "../precious", "/" + str(outside).lstrip("/")):
        with pytest.raises(ConfigError):
            rd.reset_dataset(name)
    assert (outside / "keep.txt").read_text() == "mine"
    # A dataset folder that is a link to somewhere else is not followed.
    (run / "data" / "linked").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ConfigError):
        rd.reset_dataset("linked")
    assert (outside / "keep.txt").read_text() == "mine"
    # Without its marker the folder is no longer known to be build-bench's: nothing is deleted.
    (run / MARKER).unlink()
    with pytest.raises(ConfigError, match="not a marked build-bench run folder"):
        rd.reset_dataset("documents")
    assert rd.has_dataset("documents")


def test_finding_01_run_folder_of_an_older_version_is_adopted(tmp_path):
    """A run folder written before the marker existed: its manifest.json is build-bench's (config_hash and
    stages), so it is marked and resumes."""
    old = tmp_path / "old"
    (old / "data" / "documents").mkdir(parents=True)
    (old / "data" / "documents" / "_SUCCESS").write_text("")
    (old / "manifest.json").write_text(json.dumps({"config_hash": "abc", "stages": {"ingest": {"status": "done"}},
                                                   "config": {}}))
    rd = RunDir(old)
    assert is_run_dir(old) and rd.has_dataset("documents")
    assert rd.load_manifest()["stages"]["ingest"]["status"] == "done"
    # A manifest.json of something else does not count.
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({"config_hash": "abc"}))
    with pytest.raises(ConfigError):
        RunDir(other)


def test_finding_08_out_that_is_a_file_is_one_line(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("not a folder")
    with pytest.raises(ConfigError) as err:
        RunDir(target)
    assert str(target) in str(err.value) and "is a file" in str(err.value)
    assert target.read_text() == "not a folder"
    with pytest.raises(ConfigError, match="cannot create"):
        RunDir(target / "run")


# -- finding 12: files follow the umask


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664), (0o077, 0o600)])
def test_finding_12_written_files_follow_the_umask(tmp_path, mask, expected):
    with umask(mask):
        atomic_write_text(tmp_path / "a" / "file.txt", "x")
        atomic_write_json(tmp_path / "b.json", {"x": 1})
        rd = RunDir(tmp_path / "run")
        rd.write("numbers", pa.table({"n": [1]}))
        rd.save_manifest({"stages": {}})
    for path in (tmp_path / "a" / "file.txt", tmp_path / "b.json", tmp_path / "run" / MARKER,
                 tmp_path / "run" / "manifest.json", rd.shard_path("numbers", 0),
                 rd.dataset_dir("numbers") / "_SUCCESS"):
        assert mode(path) == expected, path
    assert mode(rd.dataset_dir("numbers")) == 0o777 & ~mask
    assert not list(tmp_path.rglob("*.tmp"))  # no temp file left behind


def test_finding_12_temp_dirs_follow_the_umask(tmp_path):
    from buildbench.engine.rundir import make_temp_dir

    with umask(0o022):
        a = make_temp_dir(tmp_path / "cache", ".ref.")
        b = make_temp_dir(tmp_path / "cache", ".ref.")
    assert a != b and a.name.startswith(".ref.") and mode(a) == 0o755


def test_finding_12_converted_reference_follows_the_umask(tmp_path):
    """A BEIR reference converted into a run's cache is renamed from a temp folder: not left 0700."""
    from buildbench.evaluation.compare import load_reference

    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text(json.dumps({"_id": "p1", "title": "", "text": "Kettles switch off."}) + "\n")
    (beir / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "why do kettles stop"}) + "\n")
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tp1\t1\n")
    with umask(0o022):
        task = load_reference(beir, cache_dir=tmp_path / "run" / "cache" / "reference")
    assert mode(task) == 0o755
    assert all(mode(p) == (0o755 if p.is_dir() else 0o644) for p in task.rglob("*"))
