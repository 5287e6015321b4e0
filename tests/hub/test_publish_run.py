"""Publishing a build's run directory: every task, then one benchmark manifest pinning their versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildbench.cli import main
from buildbench.errors import ConfigError
from buildbench.hub.local import LocalHub
from buildbench.hub.publish import publish, publish_run
from buildbench.hub.registry import Registry

from .conftest import write_kitchen_task
from .submission_tasks import write_task


def make_run(run: Path, changed: bool = False) -> Path:
    kitchen = write_kitchen_task(run / "task", changed=changed)
    village = write_task(run / "task_reranking", name="VillageStoriesRetrieval")
    draft = {"name": "DemoBenchmark", "description": "Two small tasks.",
             "tasks": [{"variant": "retrieval", "name": "KitchenTipsRetrieval", "path": str(kitchen)},
                       {"variant": "reranking", "name": "VillageStoriesRetrieval", "path": str(village)}]}
    (run / "benchmark.json").write_text(json.dumps(draft))
    return run


def test_run_publishes_tasks_then_a_pinned_manifest(tmp_path: Path):
    root, registry_dir = tmp_path / "hub", tmp_path / "registry"
    run = make_run(tmp_path / "run")
    hub = LocalHub(root)
    out = publish_run(run, f"file://{root}/acme", Registry.load(registry_dir))
    assert [(repo, r.tag) for repo, r in out.tasks] == [("acme/KitchenTipsRetrieval", "v1.0.0"),
                                                        ("acme/VillageStoriesRetrieval", "v1.0.0")]
    assert out.benchmark is not None and out.manifest.version == "v1.0.0"
    manifest = json.loads(hub.read_file("acme/DemoBenchmark", "benchmark.json", "v1.0.0"))
    assert [(t["repo"], t["version"]) for t in manifest["tasks"]] == [
        ("acme/KitchenTipsRetrieval", "v1.0.0"), ("acme/VillageStoriesRetrieval", "v1.0.0")]
    registry = Registry.load(registry_dir)
    assert {(e.kind, e.name, e.version) for e in registry.entries()} >= {
        ("task", "KitchenTipsRetrieval", "v1.0.0"), ("task", "VillageStoriesRetrieval", "v1.0.0"),
        ("benchmark", "DemoBenchmark", "v1.0.0")}

    # Same data again: nothing new anywhere.
    again = publish_run(run, f"file://{root}/acme", Registry.load(registry_dir))
    assert all(r.unchanged for _, r in again.tasks) and again.benchmark is None
    assert set(hub.tags("acme/DemoBenchmark")) == {"v1.0.0"}

    # One task's data changes: it needs a bump; the benchmark then pins the new version in a new minor release.
    make_run(run, changed=True)
    third = publish_run(run, f"file://{root}/acme", Registry.load(registry_dir), bump="minor")
    assert [r.tag for _, r in third.tasks] == ["v1.1.0", "v1.0.0"]
    assert third.manifest.version == "v1.1.0"
    pinned = json.loads(hub.read_file("acme/DemoBenchmark", "benchmark.json", "v1.1.0"))
    assert ("acme/KitchenTipsRetrieval", "v1.1.0") in {(t["repo"], t["version"]) for t in pinned["tasks"]}


def test_cli_publishes_a_run_and_needs_a_registry(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.delenv("BUILDBENCH_REGISTRY", raising=False)
    run = make_run(tmp_path / "run")
    root = tmp_path / "hub"
    with pytest.raises(ConfigError, match="needs --registry"):
        publish(run, f"file://{root}/acme")
    assert main(["publish", str(run), "--to", f"file://{root}/acme"]) == ConfigError.exit_code
    assert capsys.readouterr().err.splitlines()[-1].startswith("build-bench: error: publishing a run's benchmark")
    assert main(["publish", str(run), "--to", f"file://{root}/acme", "--registry", str(tmp_path / "reg")]) == 0
    out = capsys.readouterr().out
    assert "acme/KitchenTipsRetrieval: published v1.0.0" in out
    assert "benchmark acme/DemoBenchmark: published" in out and "acme/VillageStoriesRetrieval@v1.0.0" in out
