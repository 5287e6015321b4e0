"""Where eval and compare keep their caches and may write their results (evaluation.workspace)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildbench.engine.rundir import RunDir
from buildbench.errors import ConfigError
from buildbench.evaluation.workspace import check_result_target, default_compare_path, scoring_setup


def test_a_run_task_uses_the_run_cache_only_when_it_exists(tmp_path: Path):
    task = tmp_path / "run" / "task"
    task.mkdir(parents=True)
    with scoring_setup(task, k=10, n_boot=100, via_mteb=False) as scoring:
        assert scoring.embeddings is None and scoring.reference_cache is None and scoring.via_mteb is False
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["task"]  # nothing created

    (tmp_path / "run" / "cache").mkdir()  # a build's cache: reused
    with scoring_setup(task, k=10, n_boot=100) as scoring:
        assert scoring.embeddings is not None and scoring.reference_cache == (tmp_path / "run" / "cache" / "reference").resolve()


def test_compare_always_caches_and_cache_dir_wins(tmp_path: Path):
    task = tmp_path / "elsewhere" / "task"
    task.mkdir(parents=True)
    with scoring_setup(task, k=5, n_boot=10, always_cache=True) as scoring:
        assert scoring.reference_cache == (tmp_path / "elsewhere" / "cache" / "reference").resolve()
    mine = tmp_path / "mine"
    with scoring_setup(task, k=5, n_boot=10, cache_dir=mine) as scoring:
        assert scoring.embeddings is not None and scoring.reference_cache == mine / "reference"
    assert default_compare_path(task) == (tmp_path / "elsewhere" / "compare.json").resolve()


def test_bad_numbers_are_refused_before_any_cache(tmp_path: Path):
    for k, n_boot, option in ((10, 0, "--bootstrap"), (0, 10, "--k")):
        with pytest.raises(ConfigError, match=rf"{option} must be at least 1 \(got 0\)"):
            scoring_setup(tmp_path / "task", k=k, n_boot=n_boot, cache_dir=tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_from_task_dir_names_paths_and_claims_nothing(tmp_path: Path):
    rundir = RunDir.from_task_dir(tmp_path / "new" / "task")
    assert rundir.root == (tmp_path / "new").resolve()
    assert rundir.cache_dir == rundir.root / "cache" and rundir.report_path == rundir.root / "report.json"
    assert not (tmp_path / "new").exists()


def test_result_target(tmp_path: Path):
    check_result_target(tmp_path / "new.json")  # nothing there
    ours = tmp_path / "ours.json"
    ours.write_text(json.dumps({"k": 10, "n_boot": 5, "models": {}}))
    check_result_target(ours)
    theirs = tmp_path / "theirs.json"
    theirs.write_text("notes\n")
    with pytest.raises(ConfigError, match="not a result build-bench wrote.*--overwrite"):
        check_result_target(theirs)
    check_result_target(theirs, overwrite=True)
    with pytest.raises(ConfigError, match="is a folder"):
        check_result_target(tmp_path, overwrite=True)
