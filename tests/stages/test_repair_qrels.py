"""repair_qrels without a judge: a candidate that repeats the positive joins the qrels, a too-close one is
excluded, a safe one becomes a hard negative; the judge's calibration is an output, untrusted here."""

from __future__ import annotations

import json

from buildbench.generators.recipes import JUDGEMENT_SCHEMA, QUERY_CHECK_SCHEMA
from buildbench.quality.mining import Candidate, candidates_table
from buildbench.records import Document, empty_table
from buildbench.stages.repair_qrels import judge_trusted

from .conftest import PASSAGES, chunks_table, make_cfg, queries_table, run_global


QUERIES = [("q0", "why did the committee raise rates", ["c0"]), ("q1", "why are banks lending less to firms", ["c1"]),
           ("q2", "what happened to treasury liquidity", ["c2"])]


def write_inputs(rundir, queries, candidates, extra_chunks=()) -> None:
    """The repair's inputs without a judge: the six passages as chunks (c0..c5) and ``extra_chunks``."""
    chunks = [(f"c{i}", d, t) for i, (d, t) in enumerate(PASSAGES)] + list(extra_chunks)
    rundir.write("chunks", chunks_table(chunks))
    rundir.write("queries", queries_table(queries))
    rundir.write("candidates", candidates_table(candidates))
    rundir.write("judgements", JUDGEMENT_SCHEMA.empty_table())
    rundir.write("query_checks", QUERY_CHECK_SCHEMA.empty_table())
    rundir.write("negatives", empty_table(Document))


def test_repair_adds_duplicates_excludes_close_ones_and_records_the_calibration(tmp_path, rundir):
    write_inputs(rundir, QUERIES[:2], [
        Candidate("q0", "c0-again", 0.9, 0.8, 1, "too_close", ["bm25"]),
        Candidate("q0", "c3", 0.4, 0.8, 2, "negative", ["bm25"]),
        Candidate("q1", "c5", 0.79, 0.8, 1, "too_close", ["static"]),
        Candidate("q1", "c2", 0.3, 0.8, 2, "negative", ["static"]),
    ], extra_chunks=[("c0-again", "d9", PASSAGES[0][1] + " The vote was unanimous.")])  # holds c0 whole
    result, ctx = run_global("repair_qrels", make_cfg(tmp_path / "run"), rundir)
    out = result.outputs
    assert out["final_queries"]["id"].to_pylist() == ["q0", "q1"]
    assert sorted(tuple(r.values()) for r in out["qrels"].to_pylist()) == [
        ("q0", "c0", 1), ("q0", "c0-again", 1), ("q1", "c1", 1)]
    assert {r["query_id"]: r["passage_ids"] for r in out["hard_negatives"].to_pylist()} == {"q0": ["c3"],
                                                                                         "q1": ["c2"]}
    audit = {(r["query_id"], r["action"], r["reason"], r["passage_id"]) for r in out["audit"].to_pylist()}
    assert audit == {("q0", "add_qrel", "duplicate_of_positive", "c0-again"),
                     ("q1", "exclude_candidate", "too_close", "c5")}
    assert set(out["audit"]["stage"].to_pylist()) == {"repair_qrels"}
    cal = out["judge_calibration"].to_pylist()
    assert len(cal) == 1 and cal[0]["trusted"] is False
    assert cal[0]["why"] == "no judged positives and controls to calibrate on"
    assert json.loads(cal[0]["calibration"])["controls"] == 0
    assert not judge_trusted(out["judge_calibration"])
    assert result.stats["false_negatives_added"] == 1 and ctx.stats["judge_trusted"] == 0
    assert result.drops == []


def test_people_s_labels_act_on_the_task_and_are_audited_as_human(tmp_path, rundir):
    from buildbench.labels import Label, LabelStore

    write_inputs(rundir, QUERIES, [
        Candidate("q0", "c3", 0.4, 0.8, 1, "negative", ["bm25"]),
        Candidate("q1", "c5", 0.3, 0.8, 1, "negative", ["static"]),
        Candidate("q1", "c4", 0.2, 0.8, 2, "negative", ["static"]),
    ])
    LabelStore(rundir.root).append([
        Label("q0", "wrong", reviewer="ana", note="asks why; the passage says what"),
        Label("q1", "missed_positive", reviewer="ana", passage_id="c5"),
        Label("q1", "missed_positive", reviewer="bo", passage_id="c5"),
        Label("q9", "good", reviewer="ana"),  # a query this build does not have
    ])
    result, ctx = run_global("repair_qrels", make_cfg(tmp_path / "run"), rundir)
    out = result.outputs
    assert out["final_queries"]["id"].to_pylist() == ["q1", "q2"]
    assert ("q1", "c5", 1) in [tuple(r.values()) for r in out["qrels"].to_pylist()]
    assert {r["query_id"]: r["passage_ids"] for r in out["hard_negatives"].to_pylist()}["q1"] == ["c4"]
    human = [(r["query_id"], r["action"], r["reason"], r["passage_id"]) for r in out["audit"].to_pylist()
             if r["decided_by"] == "human"]
    assert sorted(human) == [("q0", "drop_query", "human_wrong", "c0"),
                             ("q1", "add_qrel", "human_missed_positive", "c5"),
                             ("q1", "keep_query", "human_missed_positive", "c1")]
    reviews = {r["query_id"]: r for r in out["reviews"].to_pylist()}
    assert set(reviews) == {"q0", "q1"} and json.loads(reviews["q1"]["votes"]) == {"ana": "missed_positive",
                                                                                  "bo": "missed_positive"}
    assert reviews["q0"]["notes"] == ["ana: asks why; the passage says what"]
    assert [d.reason for d in result.drops] == ["human_wrong"]
    assert ctx.stats["human.reviewed"] == 2 and ctx.stats["human.labels_not_applied"] == 1
