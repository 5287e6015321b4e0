"""The corpus-wide document dedup (``doc_dedup.method: bands``) on both engines, and the seam that hands a global
stage's data-parallel pieces to the engine (``engine.parallel``, ``ctx.parallel``).

On a local two-CPU Ray cluster (``ray.init(num_cpus=2)``), ``filter_documents`` with ``method: bands`` runs its
signatures, band groupbys and exact checks as Ray tasks and decides in the driver; its outputs, drops and filter
stats equal the local engine's, and the planted copies are what it drops. ``method: memory`` is unchanged.
"""

from __future__ import annotations

import os
import random
import string
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from buildbench.config import make_config
from buildbench.domain_pack import DedupConfig, EngineConfig
from buildbench.engine.executor import LocalExecutor
from buildbench.engine.parallel import InProcess, piece_size
from buildbench.engine.rundir import RunDir
from buildbench.engine.runner import Runner
from buildbench.engine.stage import StageContext, drops_dataset
from buildbench.errors import BuildBenchError
from buildbench.pipeline import FILTER_DOCUMENTS, STAGES
from buildbench.quality import dedup_bands
from buildbench.quality.dedup import dedup_texts
from buildbench.quality.minhash import jaccard, shingles
from buildbench.records import Document, to_table

ray = pytest.importorskip("ray", reason="needs buildbench[ray]")

FILTER_STAGE = next(st for st in STAGES if st.name == FILTER_DOCUMENTS)


# ---------------------------------------------------------------------------------------------- the corpus


def planted_corpus(seed: int = 7) -> tuple[pa.Table, dict[str, str], dict[str, str]]:
    """About 330 documents: 240 originals of 80-120 pseudo-words, 50 near copies (2-8% of their words replaced)
    and 8 exact copies (other case and spacing), each placed after its original, and 30 documents of one
    template that differ only in their numbers (distinct facts, kept). Returns the documents table and the
    planted copies, near and exact, each mapped to its original's id."""
    rng = random.Random(seed)
    vocab = sorted({"".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(3000)})
    originals = [" ".join(rng.choices(vocab, k=rng.randint(80, 120))) + "." for _ in range(240)]
    template = ("The committee set the target rate at {r} percent on {d} March and expects lending to grow by {g} "
                "percent while the balance sheet shrinks by {b} billion dollars over the coming quarters of the year.")
    templated = [template.format(r=1 + k / 4, d=k + 1, g=2 + k, b=10 * (k + 3)) for k in range(30)]
    docs = [(f"orig{i:03d}", t) for i, t in enumerate(originals)] + [(f"tmpl{k:02d}", t) for k, t in enumerate(templated)]
    rng.shuffle(docs)
    near: dict[str, str] = {}
    exact: dict[str, str] = {}
    for k in range(58):
        src = rng.randrange(240)
        words = originals[src].split()
        if k < 50:
            for w in rng.sample(range(len(words)), max(1, round(len(words) * rng.choice([0.02, 0.05, 0.08])))):
                words[w] = rng.choice(vocab)
            copy_id, text, into = f"orig{src:03d}-near{k}", " ".join(words), near
        else:
            copy_id, text, into = f"orig{src:03d}-exact{k}", "  ".join(words).upper(), exact
        at = next(i for i, (doc_id, _) in enumerate(docs) if doc_id == f"orig{src:03d}")
        docs.insert(rng.randint(at + 1, len(docs)), (copy_id, text))
        into[copy_id] = f"orig{src:03d}"
    table = to_table([Document(id=i, text=t, title=i, source="generated") for i, t in docs], Document)
    return table, near, exact


def test_the_planted_corpus_is_what_it_says():
    table, near, exact = planted_corpus()
    texts = dict(zip(table["id"].to_pylist(), table["text"].to_pylist()))
    assert len(texts) == table.num_rows == 328
    for copy_id, src in near.items():  # every near copy is a near duplicate by exact Jaccard
        assert jaccard(shingles(texts[copy_id]), shingles(texts[src])) >= DedupConfig().threshold


# --------------------------------------------------------------------------------------------- the stage


def run_filter(root: Path, kind: str, method: str) -> dict:
    """``filter_documents`` alone on the planted corpus; its kept rows, drops, filter stats (without seconds)
    and throughput record, and the bytes of every file it wrote under data/."""
    cfg = make_config("finance", out=str(root), engine={"kind": kind, "workers": 2},
                      pack_overrides={"filters.doc_dedup.method": method, "filters.language.enabled": False})
    rundir = RunDir(cfg.out)
    rundir.write("documents", planted_corpus()[0], shard_rows=100)
    manifest = Runner([FILTER_STAGE], cfg, rundir, progress=False, registry=STAGES).run()
    entry = manifest["stages"][FILTER_DOCUMENTS]
    drops = rundir.read(drops_dataset(FILTER_DOCUMENTS)).to_pylist()
    return {
        "kept": rundir.read("documents_clean")["id"].to_pylist(),
        "drops": drops,
        "filters": [{k: v for k, v in f.items() if k != "seconds"} for f in entry["filters"]],
        "counts": entry["counts"],
        "throughput": entry["throughput"],
        "files": {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "data").rglob("*"))
                  if p.is_file() and p.name.endswith(".parquet")},
    }


@pytest.fixture(scope="module")
def small_pieces():
    """Batches of 64 texts and chunks of 16 candidate pairs, so each map has several pieces here (the pieces
    are cut in the driver: Ray's workers need not see the change)."""
    mp = pytest.MonkeyPatch()
    mp.setattr(dedup_bands, "TEXT_BATCH", 64)
    mp.setattr(dedup_bands, "VERIFY_CHUNK", 16)
    yield
    mp.undo()


@pytest.fixture(scope="module")
def local_bands(tmp_path_factory, small_pieces):
    return run_filter(tmp_path_factory.mktemp("local-bands") / "run", "local", "bands")


def test_bands_on_ray_gives_the_local_engine_s_output(ray_cluster, small_pieces, local_bands, tmp_path):
    local = local_bands
    on_ray = run_filter(tmp_path / "run", "ray", "bands")
    _, near, exact = planted_corpus()
    # The planted copies, and only they, are dropped: near copies as near duplicates of their originals.
    dropped = {d["item_id"]: d for d in local["drops"]}
    assert set(dropped) == set(near) | set(exact)
    for copy_id, src in near.items():
        assert dropped[copy_id]["reason"] == "near_duplicate" and f"with {src} (kept)" in dropped[copy_id]["detail"]
    assert {dropped[c]["reason"] for c in exact} == {"exact_duplicate"}
    dedup_stats = local["filters"][0]["extra"]
    assert dedup_stats["near_duplicate_pairs"] >= len(near) and dedup_stats["distinct_numbers"] >= 20
    # Same kept rows, drops (reasons, details), filter stats and bytes on both engines.
    for key in ("kept", "drops", "filters", "counts", "files"):
        assert on_ray[key] == local[key], key
    # Where the pieces ran: 5 batches of 64 texts of the 320 the exact pass kept, 32 bands, chunks of pairs.
    tasks = on_ray["throughput"]["tasks"]
    assert tasks["engine"] == "ray" and local["throughput"]["tasks"] == {"engine": "local", "count": tasks["count"]}
    assert tasks["count"] >= 5 + 32 + 4
    assert on_ray["throughput"]["engine"] == "driver"


def test_memory_is_unchanged_and_runs_no_task(ray_cluster, local_bands, tmp_path):
    """The default ``method: memory`` is ``MinHashDedup.apply`` as before, on either engine; on this corpus (no
    bucket overflows) it drops what ``bands`` drops."""
    table, _, _ = planted_corpus()
    ids, texts = table["id"].to_pylist(), table["text"].to_pylist()
    assert DedupConfig().method == "memory"
    before = dedup_texts(ids, texts, DedupConfig(), "doc_dedup")
    for kind in ("local", "ray"):
        run = run_filter(tmp_path / kind, kind, "memory")
        assert run["kept"] == [i for i, k in zip(ids, before.keep) if k]
        assert [(d["item_id"], d["reason"], d["detail"]) for d in run["drops"]] == \
            [(d.item_id, d.reason, d.detail) for d in before.drops]
        assert "tasks" not in run["throughput"]
        assert run["kept"] == local_bands["kept"]
        assert [(d["item_id"], d["detail"]) for d in run["drops"]] == \
            [(d["item_id"], d["detail"]) for d in local_bands["drops"]]


def test_method_is_in_the_stage_hash_only_when_not_the_default(tmp_path):
    """``method: memory`` is left out of the config's dump, so a run folder made before the key existed keeps
    its finished stages; ``bands`` changes the stage's hash (its drops may differ), the engine does not."""
    assert "method" not in DedupConfig().model_dump() and DedupConfig(method="bands").model_dump()["method"] == "bands"
    assert DedupConfig.model_validate(DedupConfig(method="bands").model_dump(mode="json")).method == "bands"
    keys = list(FILTER_STAGE.config_keys)

    def stage_hash(method: str, kind: str = "local") -> str:
        cfg = make_config("finance", out=str(tmp_path), engine={"kind": kind},
                          pack_overrides={"filters.doc_dedup.method": method})
        return cfg.stage_hash(keys)

    assert stage_hash("memory") == make_config("finance", out=str(tmp_path)).stage_hash(keys)
    assert stage_hash("bands") != stage_hash("memory") and stage_hash("bands", "ray") == stage_hash("bands")


# ---------------------------------------------------------------------------------------------- the seam


def scaled_sum(item: int, weights: np.ndarray, texts: pa.Array) -> tuple[int, str, bool, int]:
    """A piece: the item weighted by the shared array, a shared text, whether the array is writeable, and the
    process it ran in."""
    return (int(weights[item % len(weights)] * item), texts[item % len(texts)].as_py(), weights.flags.writeable,
            os.getpid())


def fails_on_three(item: int) -> int:
    if item == 3:
        raise BuildBenchError("piece 3 is bad")
    return item


def test_in_process_runs_pieces_lazily_in_order():
    drawn: list[int] = []

    def items():
        for i in range(6):
            drawn.append(i)
            yield i

    par = InProcess()
    results = par.map(scaled_sum, items(), np.array([1, 2, 3]), pa.array(["a", "b"]))
    assert drawn == [] and par.tasks == 0  # nothing runs before the first result is asked for
    assert next(results) == (0, "a", True, os.getpid()) and drawn == [0]
    assert [r[:2] for r in results] == [(2, "b"), (6, "a"), (3, "b"), (8, "a"), (15, "b")]
    assert par.tasks == 6
    assert StageContext(config=None, rundir=None, stage="s", log=None).parallel.kind == "local"
    assert LocalExecutor().parallel().kind == "local"
    # Pieces as large as allowed in one process; with several workers about two each, not below the floor.
    assert piece_size(10_000, 5_000, width=1) == 5_000
    assert piece_size(10_000, 5_000, width=2, least=1_000) == 2_500
    assert piece_size(1_500, 5_000, width=2, least=1_000) == 1_000 and piece_size(0, 5_000, width=4) == 1


def test_ray_tasks_give_in_process_results_in_order(ray_cluster):
    from buildbench.engine.ray_executor import RayExecutor

    executor = RayExecutor(EngineConfig(kind="ray", workers=2))
    par = executor.parallel()
    assert par.kind == "ray"
    drawn: list[int] = []

    def items():
        for i in range(40):
            drawn.append(i)
            yield i

    weights, texts = np.array([1, 2, 3]), pa.array(["a", "b"])
    results = par.map(scaled_sum, items(), weights, texts)
    first = next(results)
    assert len(drawn) <= 4  # twice the two workers in flight, not all forty
    got = [first, *results]
    # The same results in the same order, computed in Ray's worker processes; the shared array arrives from the
    # object store (read-only).
    assert [g[:2] for g in got] == [r[:2] for r in InProcess().map(scaled_sum, range(40), weights, texts)]
    assert not any(g[2] for g in got) and par.tasks == 40
    assert os.getpid() not in {g[3] for g in got}
    with pytest.raises(BuildBenchError, match="^piece 3 is bad$"):
        list(par.map(fails_on_three, range(6)))
    executor.close()
    assert ray.is_initialized()  # the caller's own cluster stays up


def test_dedup_by_bands_on_ray_tasks_with_spilled_keys_equals_in_process(ray_cluster, tmp_path, monkeypatch):
    """The streaming API with band keys spilled to disk (read back one band per task) on Ray tasks, in other
    batch and chunk sizes, gives every array and counter the in-process run gives."""
    from buildbench.engine.ray_executor import RayExecutor
    from buildbench.quality import MinHashDedup

    table, _, _ = planted_corpus(seed=11)
    texts = table["text"].to_pylist()
    dedup = MinHashDedup(DedupConfig(distinct_numbers=True))
    fetch = dedup_bands.ArrowTexts(pa.array(texts, pa.large_string()))
    here = dedup_bands.dedup_by_bands(dedup, [texts[s : s + 100] for s in range(0, len(texts), 100)], fetch)
    monkeypatch.setattr(dedup_bands, "VERIFY_CHUNK", 10)
    par = RayExecutor(EngineConfig(kind="ray", workers=2)).parallel()
    there = dedup_bands.dedup_by_bands(dedup, [texts[s : s + 37] for s in range(0, len(texts), 37)], fetch,
                                       spill_dir=tmp_path, parallel=par)
    for name in ("keep", "dropped", "reference", "similarity", "pairs", "pair_similarity"):
        assert np.array_equal(getattr(here, name), getattr(there, name)), name
    assert here.stats == there.stats and len(here.dropped) >= 50
    assert par.tasks > 9 + 32 and list(tmp_path.iterdir()) == []
