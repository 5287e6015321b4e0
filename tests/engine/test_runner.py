"""The runner: plan validation, manifest, skipping finished stages and resuming a map stage shard by shard."""

import json

import pyarrow as pa
import pytest

from buildbench.config import BuildConfig, DomainPack
from buildbench.engine.rundir import RunDir, atomic_write_text
from buildbench.engine.runner import Runner, validate_plan
from buildbench.engine.stage import Stage, StageResult
from buildbench.errors import ConfigError
from buildbench.records import Drop

PACK = DomainPack(
    name="toy", description="toy pack", personas=[{"id": "p", "description": "a person"}],
    query_styles=[{"id": "s", "instruction": "short"}],
    few_shot=[{"persona": "p", "style": "s", "passage": "text", "query": "q"}],
    tasks=[{"name": "ToyRetrieval"}],
)


def make_stages(calls: list, fail_at: int | None = None):
    def source(ctx):
        calls.append("source")
        return StageResult(outputs={"numbers": pa.table({"n": list(range(10))})})

    def square(shard, ctx):
        n = shard["n"].to_pylist()
        if fail_at is not None and fail_at in n:
            raise RuntimeError("boom")
        calls.append(("square", tuple(n)))
        ctx.stats["squared"] += len(n)
        keep = [x for x in n if x % 5]
        drops = [Drop("square", str(x), "multiple_of_five") for x in n if not x % 5]
        return pa.table({"n": keep, "sq": [x * x for x in keep]}), drops

    return [
        Stage("source", "numbers", inputs=(), outputs=("numbers",), kind="global", fn=source, config_keys=("seed",)),
        Stage("square", "squares", inputs=("numbers",), outputs=("squares",), kind="map", fn=square,
              config_keys=("queries_per_chunk",)),
    ]


def config(tmp_path, **kw):
    return BuildConfig(domain=PACK, out=str(tmp_path / "run"), **kw)


def run(tmp_path, calls, fail_at=None, **kw):
    cfg = config(tmp_path, **kw)
    r = Runner(make_stages(calls, fail_at), cfg, RunDir(cfg.out), progress=False, shard_rows={"numbers": 3})
    return r, r.run()


def test_runs_writes_shards_and_manifest(tmp_path):
    calls = []
    runner, manifest = run(tmp_path, calls)
    rd = runner.rundir
    assert len(rd.shards("numbers")) == 4  # 10 rows at 3 per shard
    assert rd.read("squares")["sq"].to_pylist() == [1, 4, 9, 16, 36, 49, 64, 81]
    sq = manifest["stages"]["square"]
    assert sq["status"] == "done"
    assert sq["counts"] == {"in": 10, "out": 8, "dropped": 2}
    assert sq["stats"]["squared"] == 10
    assert set(sq["input_hashes"]) == {"numbers"}
    on_disk = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert on_disk["config_hash"] == config(tmp_path).config_hash()
    assert "pyarrow" in on_disk["versions"]
    assert rd.read("_drops/square")["reason"].to_pylist() == ["multiple_of_five"] * 2


def test_rerun_skips_finished_stages(tmp_path):
    calls = []
    run(tmp_path, calls)
    calls.clear()
    runner, _ = run(tmp_path, calls)
    assert calls == []
    assert runner.this_run["square"]["skipped"]


def test_changed_config_key_reruns_only_that_stage(tmp_path):
    calls = []
    run(tmp_path, calls)
    calls.clear()
    run(tmp_path, calls, queries_per_chunk=3)
    assert "source" not in calls and len(calls) == 4


def test_crash_resumes_at_first_missing_shard(tmp_path):
    calls = []
    with pytest.raises(RuntimeError):
        run(tmp_path, calls, fail_at=7)  # shards [0,1,2] [3,4,5] done, [6,7,8] fails
    assert [c for c in calls if c != "source"] == [("square", (0, 1, 2)), ("square", (3, 4, 5))]
    calls.clear()
    runner, manifest = run(tmp_path, calls)
    assert calls == [("square", (6, 7, 8)), ("square", (9,))]
    # The manifest's totals cover the whole stage; this_run only the resumed part.
    assert manifest["stages"]["square"]["stats"]["squared"] == 10
    assert runner.this_run["square"]["stats"]["squared"] == 4
    assert runner.rundir.read("squares")["n"].to_pylist() == [1, 2, 3, 4, 6, 7, 8, 9]


def test_plan_validation_names_missing_input(tmp_path):
    stages = make_stages([])[1:]
    with pytest.raises(ConfigError, match="needs \\['numbers'\\]"):
        validate_plan(stages, config(tmp_path))


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "a" / "b.txt"
    atomic_write_text(target, "hello")
    atomic_write_text(target, "world")
    assert target.read_text() == "world"
    assert [p.name for p in target.parent.iterdir()] == ["b.txt"]
