"""The evaluation and compare results as DataFrames: one row per model and metric, with the interval."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa

from buildbench.evaluation import ComparisonResult, EvaluationResult, ci_frame, evaluate_with_ci
from buildbench.evaluation.compare import compare
from buildbench.tasks import write_retrieval_task
from tests.tasks.taskdata import easy_tables, make_info

METRICS = ["ndcg_at_10", "recall_at_10", "mrr_at_10"]


def test_evaluation_result_to_pandas(easy_task: Path):
    result = evaluate_with_ci(easy_task, ["bm25", "random"], n_boot=200)
    assert isinstance(result, EvaluationResult)
    frame = result.to_pandas()

    assert list(frame.columns) == ["task", "model", "metric", "mean", "ci_low", "ci_high", "scored_by"]
    assert list(zip(frame["model"], frame["metric"])) == [(m, k) for m in ("bm25", "random") for k in METRICS]
    assert set(frame["task"]) == {result["task"]} and set(frame["scored_by"]) == {"buildbench"}
    for row in frame.itertuples():
        stats = result["models"][row.model][row.metric]
        assert (row.mean, row.ci_low, row.ci_high) == (stats["mean"], stats["ci_low"], stats["ci_high"])
        assert row.ci_low <= row.mean <= row.ci_high
    bm25 = frame.set_index(["model", "metric"]).loc[("bm25", "ndcg_at_10"), "mean"]
    rand = frame.set_index(["model", "metric"]).loc[("random", "ndcg_at_10"), "mean"]
    assert bm25 > 0.5 > rand  # the easy task: BM25 finds most documents, chance does not
    assert frame.attrs == {"k": 10, "queries": result["queries"], "corpus": result["corpus"], "n_boot": 200}

    # Still the plain JSON dict the CLI and report.json hold; read back, it gives the same table.
    back = json.loads(json.dumps(result))
    assert back == result
    pd.testing.assert_frame_equal(ci_frame(back), frame)


def test_comparison_result_to_pandas(tmp_path: Path):
    corpus, queries, qrels = easy_tables()
    synth = write_retrieval_task(tmp_path / "run" / "task", corpus, queries, qrels, make_info("EasySynth"))
    # The reference judges only the first ten queries, so its scores differ from the synthetic task's.
    keep = pa.array([q in {f"q{i}" for i in range(10)} for q in qrels["query-id"].to_pylist()])
    ref = write_retrieval_task(tmp_path / "reference", corpus, queries.slice(0, 10), qrels.filter(keep),
                               make_info("EasyReference"))
    result = compare(synth, ref, ["random", "bm25"], n_boot=50)
    assert isinstance(result, ComparisonResult)
    frame = result.to_pandas()

    assert list(frame.columns) == ["side", "task", "model", "metric", "mean", "ci_low", "ci_high", "scored_by"]
    assert len(frame) == 2 * 2 * len(METRICS)
    assert list(frame["side"]) == ["synthetic"] * 6 + ["reference"] * 6
    assert dict(zip(frame["side"], frame["task"])) == {"synthetic": "EasySynth", "reference": "EasyReference"}
    for row in frame.itertuples():
        stats = result[row.side]["models"][row.model][row.metric]
        assert (row.mean, row.ci_low, row.ci_high) == (stats["mean"], stats["ci_low"], stats["ci_high"])
    assert frame.attrs["spearman"] == result["spearman"] and frame.attrs["kendall"] == result["kendall"]
    assert json.loads(json.dumps(result)) == result


def test_ci_frame_of_an_empty_result():
    frame = ci_frame({"task": "T", "models": {}})
    assert frame.empty and list(frame.columns) == ["task", "model", "metric", "mean", "ci_low", "ci_high", "scored_by"]
