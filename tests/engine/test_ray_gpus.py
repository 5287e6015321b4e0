"""GPU actors for LLM map stages (``engine.gpus_per_worker``), on a real local Ray cluster that declares one GPU
(``ray.init(num_cpus=2, num_gpus=1)``; Ray schedules logical GPUs the same way whether or not a device is there,
and sets ``CUDA_VISIBLE_DEVICES`` for the actor, which is what a vLLM engine in the actor reads). No GPU here, so
vLLM itself does not run: this checks the scheduling contract, not the engine."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pytest

from buildbench.config import BuildConfig
from buildbench.domain_pack import DomainPack, EngineConfig
from buildbench.engine.rundir import RunDir
from buildbench.engine.runner import Runner
from buildbench.engine.stage import Stage, StageResult
from buildbench.errors import BuildBenchError

ray = pytest.importorskip("ray", reason="needs buildbench[ray]")

RAY_INIT = {"num_gpus": 1}
PACK = DomainPack(
    name="toy", description="toy pack", personas=[{"id": "p", "description": "a person"}],
    query_styles=[{"id": "s", "instruction": "short"}],
    few_shot=[{"persona": "p", "style": "s", "passage": "text", "query": "q"}],
    tasks=[{"name": "ToyRetrieval"}],
)


def source(ctx):
    return StageResult(outputs={"numbers": pa.table({"n": list(range(8))})})


def where(shard, ctx):
    """Each row with the GPUs Ray gave the worker that ran it, what CUDA sees, and the worker's pid."""
    n = len(shard)
    gpus = json.dumps(sorted(str(g) for g in ray.get_gpu_ids()))
    return pa.table({"n": shard["n"], "gpus": [gpus] * n, "cuda": [os.environ.get("CUDA_VISIBLE_DEVICES", "")] * n,
                     "pid": [os.getpid()] * n}), []


def stages() -> list[Stage]:
    return [
        Stage("source", "numbers", inputs=(), outputs=("numbers",), kind="global", fn=source, config_keys=()),
        Stage("write", "an LLM stage", inputs=("numbers",), outputs=("written",), kind="map", fn=where,
              config_keys=(), needs_llm=True),
        Stage("count", "a stage without an LLM", inputs=("written",), outputs=("counted",), kind="map", fn=where,
              config_keys=()),
    ]


def build(root, gpus: float) -> tuple[Runner, dict]:
    cfg = BuildConfig(domain=PACK, out=str(root), engine=EngineConfig(kind="ray", workers=2, gpus_per_worker=gpus))
    runner = Runner(stages(), cfg, RunDir(cfg.out), progress=False, shard_rows={"numbers": 2})
    return runner, runner.run()


def test_llm_stage_actors_get_a_gpu_each_and_other_stages_none(ray_cluster, tmp_path):
    runner, manifest = build(tmp_path / "run", gpus=1)
    written = runner.rundir.read("written").to_pylist()
    counted = runner.rundir.read("counted").to_pylist()
    # the LLM stage: one actor (the cluster has one GPU), which holds GPU 0, and CUDA sees only it
    assert {r["gpus"] for r in written} == {'["0"]'} and {r["cuda"] for r in written} == {"0"}
    assert len({r["pid"] for r in written}) == 1
    assert manifest["stages"]["write"]["throughput"]["workers"] == 1
    # the stage without an LLM: two actors, no GPU
    assert {r["gpus"] for r in counted} == {"[]"}
    assert manifest["stages"]["count"]["throughput"]["workers"] == 2
    assert [r["n"] for r in counted] == list(range(8))


def test_more_gpus_per_worker_than_the_cluster_has_fails_in_one_line(ray_cluster, tmp_path):
    with pytest.raises(BuildBenchError, match=r"^engine.gpus_per_worker is 2 but the Ray cluster has 1 GPUs; "):
        build(tmp_path / "run", gpus=2)
