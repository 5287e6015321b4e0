"""The Ray engine on a real local cluster (``ray.init(num_cpus=2)``): the same bytes as the local engine, a worker
killed mid-shard (retried by Ray, or failing the stage and resumed by a rerun) without losing or repeating a
cached LLM call, and the workers' LLM cache segments folded into the main file.

The toy-stage tests take seconds; the end-to-end ones run the real pipeline with Gemma 3 270M in llama.cpp
(slow, llm).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from buildbench.config import BuildConfig
from buildbench.domain_pack import DomainPack, EngineConfig
from buildbench.engine.rundir import RunDir
from buildbench.engine.runner import Runner
from buildbench.engine.stage import Stage, StageResult
from buildbench.errors import BuildBenchError
from buildbench.generators.base import GenerationRequest, GenerationResult
from buildbench.generators.cache import CachedLLM, LLMCache, segments_dir
from buildbench.quality.chain import FilterStats
from buildbench.records import Drop

ray = pytest.importorskip("ray", reason="needs buildbench[ray]")

PACK = DomainPack(
    name="toy", description="toy pack", personas=[{"id": "p", "description": "a person"}],
    query_styles=[{"id": "s", "instruction": "short"}],
    few_shot=[{"persona": "p", "style": "s", "passage": "text", "query": "q"}],
    tasks=[{"name": "ToyRetrieval"}],
)
# The run-folder file that makes the next worker to cache an LLM call kill itself right after (see _kill_hook).
KILL_TRIGGER = "kill-a-worker-after-its-next-cached-call"


def _kill_hook() -> None:
    """Run in every Ray worker process: after an LLM call is stored, if the run folder holds KILL_TRIGGER, the
    first worker to take it (an atomic rename) dies with SIGKILL. A shard of several calls is so killed with
    some calls cached and its output not written, at a point no timing can miss."""
    from buildbench.generators import cache

    put = cache.LLMCache.put

    def put_then_maybe_die(self, *args, **kwargs):
        put(self, *args, **kwargs)
        trigger = self.main.parent.parent / KILL_TRIGGER
        try:
            os.rename(trigger, trigger.with_name(trigger.name + ".fired"))
        except FileNotFoundError:
            return
        os.kill(os.getpid(), signal.SIGKILL)

    cache.LLMCache.put = put_then_maybe_die


# Every worker of the module's cluster (conftest.ray_cluster) can be told to die mid-shard.
RAY_INIT = {"runtime_env": {"worker_process_setup_hook": _kill_hook}}


# -------------------------------------------------------------------------------------------- toy stages


class LoggedBackend:
    """A deterministic backend that appends each prompt it is really asked to a log file (shared by every
    worker process), so a test counts the calls that reached the model across processes."""

    name = "logged"
    model_id = "logged-v1"

    def __init__(self, log: Path):
        self.log = log

    def generate(self, requests):
        with open(self.log, "a", encoding="utf-8") as fh:
            for r in requests:
                fh.write(r.prompt + "\n")
        return [GenerationResult(text=r.prompt.upper(), tokens_in=2, tokens_out=1) for r in requests]


def calls_made(log: Path) -> list[str]:
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def toy_stages(work: Path, rows: int = 30) -> list[Stage]:
    """A global source of ``rows`` numbers, then a map stage making one cached LLM call per row, with drops,
    stats and filter stats. ``work/victim.armed`` makes the worker on the shard holding 13 record its pid in
    ``work/victim.pid`` after two calls and wait to be killed (once: the file is taken)."""

    def source(ctx):
        return StageResult(outputs={"numbers": pa.table({"n": list(range(rows))})})

    def spell(shard, ctx):
        llm = ctx.service("llm", lambda: CachedLLM(LoggedBackend(work / "calls.log"),
                                                   LLMCache(ctx.rundir.cache_dir / "llm.sqlite"), batch_size=1))
        ns = shard["n"].to_pylist()
        victim = 13 in ns and _take(work / "victim.armed")
        texts = []
        for k, n in enumerate(ns):
            if victim and k == 2:
                (work / "victim.pid").write_text(str(os.getpid()))
                time.sleep(120)  # killed here by the test
                raise RuntimeError("the victim was not killed")
            before = llm.stats["calls"]
            texts.append(llm.generate([GenerationRequest(prompt=f"number {n}")])[0].text)
            ctx.stats["llm.calls"] += llm.stats["calls"] - before
            ctx.stats["llm.cache_hits"] += 1 - (llm.stats["calls"] - before)
        keep = [i for i, n in enumerate(ns) if n % 7]
        ctx.stats["spelled"] += len(ns)
        ctx.filters = [FilterStats("seven", n_in=len(ns), kept=len(keep), dropped=len(ns) - len(keep),
                                   reasons={"multiple_of_7": len(ns) - len(keep)})]
        drops = [Drop("spell", str(n), "multiple_of_7") for n in ns if not n % 7]
        return pa.table({"n": [ns[i] for i in keep], "text": [texts[i] for i in keep]}), drops

    return [
        Stage("source", "numbers", inputs=(), outputs=("numbers",), kind="global", fn=source, config_keys=("seed",)),
        Stage("spell", "numbers spelled by an LLM", inputs=("numbers",), outputs=("spelled",), kind="map", fn=spell,
              config_keys=()),
    ]


def _take(path: Path) -> bool:
    try:
        os.rename(path, path.with_name(path.name + ".taken"))
        return True
    except FileNotFoundError:
        return False


def toy_run(root: Path, kind: str, retries: int = 1) -> tuple[Runner, Path]:
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    cfg = BuildConfig(domain=PACK, out=str(root / "run"), engine=EngineConfig(kind=kind, workers=2, retries=retries))
    return Runner(toy_stages(work), cfg, RunDir(cfg.out), progress=False, shard_rows={"numbers": 3}), work


def data_files(run: Path, stats: bool = True) -> dict[str, bytes]:
    """Every file a build wrote under data/, by relative path (temporary files of killed writers aside).
    ``stats=False`` leaves out the per-shard counters, which tell a resumed shard's cache hits from calls."""
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted((run / "data").rglob("*"))
            if p.is_file() and not p.name.startswith(".") and (stats or p.parent.name != "_stats")}


def stage_record(manifest: dict, name: str) -> dict:
    return {k: manifest["stages"][name][k] for k in ("status", "counts", "stats", "filters", "input_hashes")}


@pytest.fixture(scope="module")
def toy_local(tmp_path_factory):
    runner, work = toy_run(tmp_path_factory.mktemp("local"), "local")
    manifest = runner.run()
    return runner, work, manifest


def test_ray_writes_the_local_engine_s_shards_byte_for_byte(ray_cluster, toy_local, tmp_path):
    local, local_work, local_manifest = toy_local
    runner, work = toy_run(tmp_path, "ray")
    manifest = runner.run()
    assert data_files(runner.rundir.root) == data_files(local.rundir.root)
    assert stage_record(manifest, "spell") == stage_record(local_manifest, "spell")
    assert len(runner.rundir.shards("spelled")) == 10
    # Each request reached the model once; the workers' cache segments were folded into the main file.
    assert sorted(calls_made(work / "calls.log")) == sorted(calls_made(local_work / "calls.log"))
    assert len(calls_made(work / "calls.log")) == 30
    cache_dir = runner.rundir.cache_dir
    assert not list(segments_dir(cache_dir / "llm.sqlite").glob("*.sqlite"))
    assert LLMCache(cache_dir / "llm.sqlite").totals()["calls"] == 30
    # Per-stage progress: where it ran and the rate, in the manifest and in this run's record.
    throughput = manifest["stages"]["spell"]["throughput"]
    assert throughput["engine"] == "ray" and throughput["workers"] == 2 and throughput["shards"] == 10
    assert throughput["rows"] == 30 and throughput["rows_per_second"] > 0
    assert runner.this_run["spell"]["throughput"] == throughput
    assert runner.this_run["spell"]["stats"]["llm.calls"] == 30
    assert local_manifest["stages"]["spell"]["throughput"]["engine"] == "local"


def test_a_killed_worker_s_shard_is_redone_without_repeating_its_cached_calls(ray_cluster, toy_local, tmp_path):
    """Kill -9 of the worker in the middle of a shard, from outside: Ray restarts the actor and runs the shard
    again; the two calls the dead worker had made come from its cache segment."""
    local, _, local_manifest = toy_local
    runner, work = toy_run(tmp_path, "ray", retries=1)
    (work / "victim.armed").write_text("")
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(manifest=runner.run()))
    thread.start()
    pid_file = work / "victim.pid"
    deadline = time.time() + 120
    while not pid_file.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert pid_file.exists(), "the victim shard never started"
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    thread.join(timeout=300)
    assert "manifest" in result, "the run did not finish after its worker was killed"
    assert data_files(runner.rundir.root, stats=False) == data_files(local.rundir.root, stats=False)
    assert stage_record(result["manifest"], "spell")["counts"] == stage_record(local_manifest, "spell")["counts"]
    calls = calls_made(work / "calls.log")
    assert sorted(set(calls)) == sorted(calls), "a request reached the model twice"
    assert len(calls) == 30
    assert runner.this_run["spell"]["stats"]["llm.cache_hits"] == 2  # the dead worker's two calls


def test_with_no_retries_the_stage_fails_in_one_line_and_a_rerun_resumes(ray_cluster, toy_local, tmp_path):
    local, _, _ = toy_local
    runner, work = toy_run(tmp_path, "ray", retries=0)
    (work / "victim.armed").write_text("")
    killer = threading.Thread(target=_kill_when_ready, args=(work / "victim.pid",))
    killer.start()
    with pytest.raises(BuildBenchError, match=r"stage spell: the Ray worker running shard 4 failed after 0 "
                                              r"retries .*run the same command again to resume") as err:
        runner.run()
    killer.join()
    assert "\n" not in str(err.value)
    rd = runner.rundir
    assert not rd.shard_path("spelled", 4).exists() and not rd.has_dataset("spelled")
    assert json.loads(rd.manifest_path.read_text())["stages"]["spell"]["status"] == "running"
    before = calls_made(work / "calls.log")

    rerun, _ = toy_run(tmp_path, "ray", retries=0)
    manifest = rerun.run()
    assert data_files(rd.root, stats=False) == data_files(local.rundir.root, stats=False)
    assert manifest["stages"]["spell"]["status"] == "done"
    calls = calls_made(work / "calls.log")
    repeated = len(calls) - len(set(calls))
    # The victim's calls were cached before it died: not one of them is asked again. Only a call the other
    # worker had in flight when the stage stopped (its actor killed with it) may be.
    assert {"number 12", "number 13"} <= set(before) and calls.count("number 12") == calls.count("number 13") == 1
    assert repeated <= 1 and len(set(calls)) == 30
    assert rerun.this_run["spell"]["stats"]["llm.cache_hits"] >= 2
    assert rerun.this_run["spell"]["throughput"]["shards"] < 10  # only the shards left undone


def _kill_when_ready(pid_file: Path) -> None:
    deadline = time.time() + 120
    while not pid_file.exists() and time.time() < deadline:
        time.sleep(0.1)
    if pid_file.exists():
        os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_more_workers_than_the_cluster_has_cpus_are_not_waited_for(ray_cluster, toy_local, tmp_path):
    local, _, _ = toy_local
    work = tmp_path / "work"
    work.mkdir()
    cfg = BuildConfig(domain=PACK, out=str(tmp_path / "run"), engine=EngineConfig(kind="ray", workers=5))
    runner = Runner(toy_stages(work), cfg, RunDir(cfg.out), progress=True, shard_rows={"numbers": 3})
    manifest = runner.run()
    assert manifest["stages"]["spell"]["throughput"]["workers"] == 2  # ray.init(num_cpus=2)
    assert data_files(runner.rundir.root) == data_files(local.rundir.root)


def test_the_real_chunk_stage_on_ray_matches_local(ray_cluster, tmp_path):
    from buildbench.config import make_config
    from buildbench.pipeline import STAGES

    docs = tmp_path / "docs"
    docs.mkdir()
    sentence = ("The committee kept the target range for the federal funds rate at {r} percent while inflation "
                "eased to {i} percent in the {q} quarter, and members noted steady growth in lending. ")
    for d in range(7):
        (docs / f"d{d}.txt").write_text(f"Note {d}. " + " ".join(
            sentence.format(r=4 + d / 4 + k / 8, i=2 + k / 10, q=["first", "second", "third"][k % 3])
            for k in range(12 + d)))
    outputs = {}
    for kind in ("local", "ray"):
        cfg = make_config("finance", out=str(tmp_path / kind), docs=[str(docs)], engine={"kind": kind})
        runner = Runner(STAGES[:3], cfg, RunDir(cfg.out, inputs=cfg.docs), progress=False,
                        shard_rows={"documents_clean": 2}, registry=STAGES)
        manifest = runner.run()
        assert manifest["stages"]["chunk"]["throughput"]["engine"] == kind
        outputs[kind] = data_files(tmp_path / kind)
    assert len([k for k in outputs["ray"] if k.startswith("data/chunks_raw/part-")]) == 4
    assert outputs["ray"] == outputs["local"]


# ------------------------------------------------------------------------------- the real pipeline, real LLM

# A small build: 8 FOMC passages, 4 queries in plan shards of 2 (so a shard makes two LLM calls), one draft
# each and two few-shot examples (shorter prompts); the likelihood judge is off (a global stage, and minutes).
E2E_SHARD_ROWS = 2


def e2e_config(out: Path, docs: Path, **engine):
    from buildbench.config import make_config

    return make_config("finance", out=str(out), docs=[str(docs)], max_docs=8, max_queries=4, seed=5,
                       generator={"drafts": 1, "few_shot": 2},
                       # The engines are under test, not the writer: on four slots with one draft each, the support
                       # filter may leave no query, which ends a build (quality.support is tested on its own).
                       pack_overrides={"likelihood.enabled": False, "filters.support.enabled": False},
                       engine=engine or None)


def e2e_build(cfg, monkeypatch, **kw):
    from buildbench import pipeline

    monkeypatch.setattr(pipeline, "PLAN_SHARD_ROWS", E2E_SHARD_ROWS)
    return pipeline.build(cfg, progress=False, **kw)


def task_rows(run: Path) -> dict[str, list[dict]]:
    """The task's corpus, queries and qrels, and the run's chunks and queries at each step, as sorted rows."""
    out = {}
    for name in ("corpus", "queries", "qrels"):
        out[f"task/{name}"] = pq.read_table(run / "task" / name).to_pylist()
    for name in ("chunks", "plan", "raw_queries", "queries", "final_queries", "qrels"):
        out[name] = pq.read_table(run / "data" / name).to_pylist()
    return {k: sorted(v, key=lambda r: json.dumps(r, sort_keys=True, default=str)) for k, v in out.items()}


@pytest.fixture(scope="module")
def e2e_local(tmp_path_factory, fomc_passages):
    pytest.importorskip("llama_cpp", reason="needs buildbench[local]")
    mp = pytest.MonkeyPatch()
    out = tmp_path_factory.mktemp("e2e") / "local"
    t0 = time.perf_counter()
    report = e2e_build(e2e_config(out, fomc_passages), mp)
    mp.undo()
    return out, report, time.perf_counter() - t0


@pytest.mark.slow
@pytest.mark.llm
def test_e2e_ray_build_gives_the_local_task(ray_cluster, e2e_local, fomc_passages, tmp_path, monkeypatch):
    local, local_report, local_seconds = e2e_local
    out = tmp_path / "ray"
    t0 = time.perf_counter()
    report = e2e_build(e2e_config(out, fomc_passages, kind="ray", workers=2), monkeypatch)
    seconds = time.perf_counter() - t0
    gen = report["stages"]["generate_queries"]
    assert gen["this_run"]["throughput"]["engine"] == "ray" and gen["this_run"]["throughput"]["shards"] == 2
    assert gen["this_run"]["throughput"]["workers"] == 2 and gen["this_run"]["throughput"]["rows_per_second"] > 0
    assert report["llm"]["new_calls_this_run"] == local_report["llm"]["new_calls_this_run"] == 4
    assert report["llm"]["calls_total"] == 4  # the workers' segments, folded into cache/llm.sqlite
    assert not list((out / "cache" / "llm").glob("*.sqlite"))
    rows, local_rows = task_rows(out), task_rows(local)
    assert len(rows["queries"]) > 0 and len(rows["task/qrels"]) > 0
    assert rows == local_rows
    print(f"\nlocal build {local_seconds:.0f}s, ray build {seconds:.0f}s; generate_queries "
          f"{local_report['stages']['generate_queries']['seconds']}s local, {gen['seconds']}s ray")


@pytest.mark.slow
@pytest.mark.llm
def test_e2e_worker_killed_mid_generation_then_resumed(ray_cluster, e2e_local, fomc_passages, tmp_path,
                                                        monkeypatch):
    """A worker dies (SIGKILL) right after the first call of its shard is cached; with no retries the build
    stops with one line. The rerun redoes the unfinished shards, replays the cached calls and asks the model
    only what was never stored; the task is the uninterrupted local run's."""
    local, _, _ = e2e_local
    out = tmp_path / "ray"
    cfg = e2e_config(out, fomc_passages, kind="ray", workers=2, retries=0)
    until = ["ingest", "filter_documents", "chunk", "dedup_chunks", "plan_queries"]
    e2e_build(cfg, monkeypatch, stages=until)
    (out / KILL_TRIGGER).write_text("")
    with pytest.raises(BuildBenchError, match="stage generate_queries: the Ray worker running shard"):
        e2e_build(cfg, monkeypatch)
    assert (out / (KILL_TRIGGER + ".fired")).exists()
    assert not RunDir(out, claim=False).has_dataset("raw_queries")
    stored = LLMCache(out / "cache" / "llm.sqlite").totals()["calls"]  # the main file and the dead worker's segment
    assert stored >= 1

    report = e2e_build(cfg, monkeypatch)
    assert report["llm"]["cache_hits_this_run"] >= 1
    assert report["llm"]["new_calls_this_run"] == report["llm"]["calls_total"] - stored == 4 - stored
    assert task_rows(out) == task_rows(local)
