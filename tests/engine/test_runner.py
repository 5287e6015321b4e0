"""The runner: plan validation, manifest, skipping finished stages and resuming a map stage shard by shard."""

import json

import pyarrow as pa
import pytest

from buildbench.config import BuildConfig
from buildbench.domain_pack import DomainPack
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


def test_other_code_reruns_every_stage(tmp_path, monkeypatch):
    from buildbench.engine import runner as runner_module

    calls = []
    _, manifest = run(tmp_path, calls)
    assert manifest["stages"]["square"]["code_hash"] == manifest["code_hash"] == runner_module.code_hash()
    # An upgrade or an edit of buildbench: nothing finished by the old code is taken as up to date.
    monkeypatch.setattr(runner_module, "code_hash", lambda: "other")
    calls.clear()
    runner, manifest = run(tmp_path, calls)
    assert calls[0] == "source" and len(calls) == 5
    assert not runner.this_run["square"].get("skipped")
    assert manifest["stages"]["source"]["code_hash"] == "other"
    calls.clear()
    run(tmp_path, calls)
    assert calls == []


def test_tree_hash_reads_every_file_but_compiled_caches(tmp_path):
    from buildbench.engine.runner import code_hash, tree_hash

    (tmp_path / "pkg" / "templates").mkdir(parents=True)
    (tmp_path / "pkg" / "stage.py").write_text("X = 1\n")
    (tmp_path / "pkg" / "templates" / "prompt.j2").write_text("Query:")
    first = tree_hash(tmp_path / "pkg")
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "stage.cpython-311.pyc").write_bytes(b"\x00")
    assert tree_hash(tmp_path / "pkg") == first
    (tmp_path / "pkg" / "templates" / "prompt.j2").write_text("Query: ")  # a prompt edit changes outputs too
    assert tree_hash(tmp_path / "pkg") != first
    (tmp_path / "pkg" / "templates" / "prompt.j2").write_text("Query:")
    (tmp_path / "pkg" / "templates" / "prompt.j2").rename(tmp_path / "pkg" / "templates" / "other.j2")
    assert tree_hash(tmp_path / "pkg") != first
    assert len(code_hash()) == 16 and code_hash() is code_hash()  # buildbench's own, computed once


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


def flaky_stages(calls: list, down: set):
    """`square` as an LLM stage would do it: a value whose call failed for a reason a later run may get past is
    dropped with the reason and counted in llm.retryable_failures."""

    def source(ctx):
        return StageResult(outputs={"numbers": pa.table({"n": list(range(10))})})

    def square(shard, ctx):
        n = shard["n"].to_pylist()
        calls.append(tuple(n))
        failed = [x for x in n if x in down]
        ctx.stats["llm.retryable_failures"] += len(failed)
        keep = [x for x in n if x not in down]
        return (pa.table({"n": keep, "sq": [x * x for x in keep]}),
                [Drop("square", str(x), "llm_error", "HTTP 503 from /v1/completions") for x in failed])

    def total(ctx):
        calls.append("total")
        failed = int(bool(down))
        ctx.stats["llm.retryable_failures"] += failed
        return StageResult(outputs={"total": pa.table({"sum": [sum(ctx.rundir.read("squares")["sq"].to_pylist())]})})

    return [
        Stage("source", "numbers", inputs=(), outputs=("numbers",), kind="global", fn=source, config_keys=()),
        Stage("square", "squares", inputs=("numbers",), outputs=("squares",), kind="map", fn=square,
              config_keys=()),
        Stage("total", "sum", inputs=("squares",), outputs=("total",), kind="global", fn=total, config_keys=()),
    ]


def test_finding_10_failed_llm_calls_leave_the_stage_to_rerun(tmp_path):
    """A stage whose LLM calls failed was recorded as done, and every rerun skipped it "up to date" until the
    run folder was deleted. Now it is left incomplete; a rerun repeats only the shards with failed calls."""
    cfg = config(tmp_path)
    calls: list = []
    down = {4, 7}

    def run_once():
        runner = Runner(flaky_stages(calls, down), cfg, RunDir(cfg.out), progress=False,
                        shard_rows={"numbers": 3})
        return runner, runner.run()

    runner, manifest = run_once()
    assert calls == [(0, 1, 2), (3, 4, 5), (6, 7, 8), (9,), "total"]
    square = manifest["stages"]["square"]
    assert square["status"] == "incomplete" and square["stats"]["llm.retryable_failures"] == 2
    assert manifest["stages"]["total"]["status"] == "incomplete"
    assert runner.rundir.read("squares")["n"].to_pylist() == [0, 1, 2, 3, 5, 6, 8, 9]  # the build went on

    calls.clear()
    down.clear()  # the server is back
    runner, manifest = run_once()
    assert calls == [(3, 4, 5), (6, 7, 8), "total"]  # only the shards whose calls failed, then what reads them
    assert manifest["stages"]["square"]["status"] == manifest["stages"]["total"]["status"] == "done"
    assert "llm.retryable_failures" not in manifest["stages"]["square"]["stats"]
    assert runner.rundir.read("squares")["n"].to_pylist() == list(range(10))
    assert runner.rundir.read("_drops/square").num_rows == 0
    assert runner.rundir.read("total")["sum"].to_pylist() == [285]

    calls.clear()
    runner, _ = run_once()
    assert calls == [] and runner.this_run["square"]["skipped"] and runner.this_run["total"]["skipped"]


def test_finding_14_manifest_keeps_no_credentials(tmp_path):
    """`--base-url http://user:password@host` was stored in plain text in manifest.json."""
    generator = PACK.generator.model_copy(update={"base_url": "http://user:password@127.0.0.1:8080/v1?api_key=k3y"})
    cfg = BuildConfig(domain=PACK.model_copy(update={"generator": generator}), out=str(tmp_path / "run"))
    Runner(make_stages([]), cfg, RunDir(cfg.out), progress=False).run()
    text = (tmp_path / "run" / "manifest.json").read_text()
    assert "password" not in text and "k3y" not in text
    assert json.loads(text)["config"]["domain"]["generator"]["base_url"] == "http://***@127.0.0.1:8080/v1?api_key=***"
    assert cfg.domain.generator.base_url.startswith("http://user:password@")  # the run itself keeps the real URL


@pytest.mark.llm
def test_finding_10_rerun_after_llm_server_failures(llama_server, tmp_path):
    """The issue's case with a real llama_cpp.server behind a fault proxy on one fixed address: first nothing
    listens there, then the server is up but fails two calls, then it is healthy. Each rerun of the same build
    asks only what failed before; only successful responses were cached."""
    import base64

    from buildbench.config import make_config
    from buildbench.errors import GenerationError
    from buildbench.pipeline import build
    from tests.generators.fault_proxy import FaultProxy
    from tests.servers import free_port

    docs = tmp_path / "docs"
    docs.mkdir()
    text = ("The committee kept the target range for the federal funds rate at 5-1/4 to 5-1/2 percent. "
            "Inflation has eased over the past year but remains elevated. ")
    for i, topic in enumerate(["interest rates", "bank capital ratios", "bond market liquidity"]):
        (docs / f"d{i}.txt").write_text(f"Note {i} on {topic}. " + text * 2)
    port = free_port()
    # Credentials in the URL (finding 14) ride along: they must reach the server and nothing the run writes.
    cfg = make_config("finance", out=str(tmp_path / "run"), docs=[str(docs)], queries_per_chunk=2, generator={
        "backend": "openai", "model": "gemma3-270m", "base_url": f"http://user:password@127.0.0.1:{port}/v1",
        "max_retries": 0, "timeout": 60, "concurrency": 1, "drafts": 1})  # one call per slot to count
    until = ["ingest", "filter_documents", "chunk", "dedup_chunks", "plan_queries", "generate_queries"]
    out = tmp_path / "run"

    def stage(name):
        return json.loads((out / "manifest.json").read_text())["stages"][name]

    def llm_errors():
        return [d for d in RunDir(out).read("_drops/generate_queries").to_pylist() if d["reason"] == "llm_error"]

    # 1. Nothing listens: generation stops at its first batch; the stage is not done.
    with pytest.raises(GenerationError, match=rf"cannot connect to http://\*\*\*@127\.0\.0\.1:{port}/v1: "
                                              "connection refused"):
        build(cfg, progress=False, stages=until)
    assert stage("generate_queries")["status"] == "running"
    slots = RunDir(out).read("plan").num_rows
    assert slots >= 4

    # 2. Up, but two calls fail for good (max_retries 0): the build goes on without them, the stage is left
    #    incomplete, and those two are the only calls not cached.
    with FaultProxy(llama_server.base_url, {1: "500", 3: "500"}, port=port) as proxy:
        build(cfg, progress=False, stages=until)
        assert len(proxy.arrivals) == slots
    assert stage("generate_queries")["status"] == "incomplete"
    assert stage("generate_queries")["stats"]["llm.retryable_failures"] == 2
    assert len(llm_errors()) == 2 and all("HTTP 500" in d["detail"] for d in llm_errors())
    first = RunDir(out).read("raw_queries")
    basic = "Basic " + base64.b64encode(b"user:password").decode()
    assert {a.authorization for a in proxy.arrivals} == {basic}

    # 3. Healthy: the rerun asks exactly the two failed requests again; everything else comes from the cache.
    with FaultProxy(llama_server.base_url, port=port) as proxy:
        build(cfg, progress=False, stages=until)
        assert len(proxy.arrivals) == 2
    assert stage("generate_queries")["status"] == "done" and not llm_errors()
    queries = RunDir(out).read("raw_queries")
    assert set(first["id"].to_pylist()) < set(queries["id"].to_pylist())
    assert queries.num_rows + RunDir(out).read("_drops/generate_queries").num_rows == slots

    # 4. Up to date now: nothing is asked.
    with FaultProxy(llama_server.base_url, port=port) as proxy:
        build(cfg, progress=False, stages=until)
        assert proxy.arrivals == []
    for path in out.rglob("*"):
        if path.is_file():
            assert b"password" not in path.read_bytes(), path


def test_filter_stats_go_to_the_manifest_as_an_ordered_list(tmp_path):
    """A global stage returns its filters in its result; a map stage leaves each shard's in ctx.filters, and the
    manifest holds them summed over the shards by name, in chain order."""
    from buildbench.quality.chain import FilterStats

    def source(ctx):
        return StageResult(outputs={"numbers": pa.table({"n": list(range(10))})},
                           filters=[FilterStats("zeta", 12, 10, 2, 0.5, {"negative": 2}),
                                    FilterStats("alpha", 10, 10, 0, 0.25)])

    def odd(shard, ctx):
        n = shard["n"].to_pylist()
        ctx.filters = [FilterStats("odd", len(n), sum(x % 2 for x in n), sum(1 - x % 2 for x in n), 0.0,
                                   {"even": sum(1 - x % 2 for x in n)}, {"max": max(n)}),
                       FilterStats("all", len(n), len(n), 0)]
        return pa.table({"n": [x for x in n if x % 2]}), []

    stages = [Stage("source", "numbers", inputs=(), outputs=("numbers",), kind="global", fn=source, config_keys=()),
              Stage("odd", "odd numbers", inputs=("numbers",), outputs=("odds",), kind="map", fn=odd, config_keys=())]
    cfg = config(tmp_path)
    Runner(stages, cfg, RunDir(cfg.out), progress=False, shard_rows={"numbers": 4}).run()
    saved = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]
    assert saved["source"]["filters"] == [
        {"name": "zeta", "in": 12, "kept": 10, "dropped": 2, "seconds": 0.5, "reasons": {"negative": 2}, "extra": {}},
        {"name": "alpha", "in": 10, "kept": 10, "dropped": 0, "seconds": 0.25, "reasons": {}, "extra": {}}]
    assert saved["odd"]["filters"] == [  # 3 shards: 0-3, 4-7, 8-9
        {"name": "odd", "in": 10, "kept": 5, "dropped": 5, "seconds": 0.0, "reasons": {"even": 5},
         "extra": {"max": 3 + 7 + 9}},
        {"name": "all", "in": 10, "kept": 10, "dropped": 0, "seconds": 0.0, "reasons": {}, "extra": {}}]
    assert not any("." in key for key in saved["source"]["stats"])  # no flattened "name.in" keys


def test_a_stage_reading_an_undeclared_dataset_fails_naming_both(tmp_path):
    def sneaky(ctx):
        ctx.read("numbers")
        return StageResult(outputs={"out": pa.table({"n": [1]})})

    def source(ctx):
        return StageResult(outputs={"numbers": pa.table({"n": [1]}), "other": pa.table({"n": [2]})})

    stages = [Stage("source", "s", inputs=(), outputs=("numbers", "other"), kind="global", fn=source, config_keys=()),
              Stage("sneaky", "s", inputs=("other",), outputs=("out",), kind="global", fn=sneaky, config_keys=())]
    cfg = config(tmp_path)
    with pytest.raises(ConfigError, match=r"stage 'sneaky' reads dataset 'numbers', which it does not declare as an "
                                          r"input \(its inputs: other\)"):
        Runner(stages, cfg, RunDir(cfg.out), progress=False).run()


def test_a_stage_that_reads_a_file_reruns_when_the_file_changes(tmp_path):
    """People's labels are a file, not a dataset: their content is in the signature of the stage that reads them."""
    from buildbench.engine.rundir import RunDir
    from buildbench.engine.runner import Runner
    from buildbench.engine.stage import Stage, StageResult

    calls = []

    def body(ctx):
        path = ctx.rundir.root / "labels" / "labels.jsonl"
        calls.append(path.read_text() if path.exists() else None)
        return StageResult(outputs={"out": pa.table({"n": [len(calls)]})})

    st = Stage("reads_labels", "", inputs=(), outputs=("out",), config_keys=(), kind="global", fn=body,
               files=("labels/labels.jsonl",))
    from buildbench.config import make_config

    cfg = make_config("finance", out=str(tmp_path / "run"), docs=[])
    rd = RunDir(tmp_path / "run")
    Runner([st], cfg, rd, progress=False).run()
    Runner([st], cfg, rd, progress=False).run()
    assert calls == [None]  # unchanged: skipped
    (rd.root / "labels").mkdir()
    (rd.root / "labels" / "labels.jsonl").write_text('{"query_id": "q1", "label": "good"}\n')
    manifest = Runner([st], cfg, rd, progress=False).run()
    assert calls == [None, '{"query_id": "q1", "label": "good"}\n']
    assert manifest["stages"]["reads_labels"]["file_hashes"]["labels/labels.jsonl"] == rd.file_hash("labels/labels.jsonl")
