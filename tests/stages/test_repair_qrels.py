"""repair_qrels without a judge: a candidate that repeats the positive joins the qrels, a too-close one is
excluded, a safe one becomes a hard negative; the judge's calibration is an output, untrusted here."""

from __future__ import annotations

import json

import pyarrow as pa

from buildbench.builders.context import document_context
from buildbench.generators.likelihood import LIKELIHOOD_SCHEMA
from buildbench.generators.recipes import JUDGEMENT_SCHEMA, QUERY_CHECK_SCHEMA
from buildbench.quality.mining import Candidate, candidates_table
from buildbench.records import Chunk, Document, empty_table, to_table
from buildbench.stages.common import entity_key, search_counts
from buildbench.stages.repair_qrels import judge_trusted

from .conftest import PASSAGES, chunks_table, context, make_cfg, queries_table, run_global


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
    rundir.write("likelihoods", LIKELIHOOD_SCHEMA.empty_table())
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


def test_a_question_its_positive_explains_weakly_is_dropped_a_keyword_search_is_not(tmp_path, rundir):
    """The likelihood judge, trusted on its controls, scores each positive: a question or request needs its
    threshold (+1.08) plus repair.request_margin (0.4), a keyword search only the threshold."""
    from buildbench.generators.likelihood import ScoredPair

    write_inputs(rundir, [], [])
    rundir.write("queries", pa.concat_tables([
        queries_table([("q0", "What did the Committee decide about the federal funds rate target range?", ["c0"]),
                       ("q1", "What was the impact of tighter standards on the economy's financial position?",
                        ["c1"])], style="question"),
        queries_table([("q2", "dealers balance sheet constraints March", ["c2"])]),
        queries_table([("q3", "I need to know how much household spending grew and why.", ["c3"])],
                      style="long_form"),
    ]))
    pmi = {"q0": 2.4, "q1": 1.3, "q2": 1.3, "q3": 1.45}
    rows = [ScoredPair(q, f"c{i}", "positive", -20.0, -40.0, 10, p) for i, (q, p) in enumerate(pmi.items())]
    rows += [ScoredPair(q, "c5", "control", -39.0, -40.0, 10, 0.1) for q in pmi]
    rundir.write("likelihoods", pa.Table.from_pylist([r.__dict__ for r in rows], schema=LIKELIHOOD_SCHEMA))
    rundir.write("judgements", pa.Table.from_pylist([
        dict(query_id=r.query_id, passage_id=r.passage_id, kind=r.kind, label=r.label(1.076, 1.0), reason="",
             model="m", cache_key="", backend="likelihood", prompt_hash="") for r in rows], schema=JUDGEMENT_SCHEMA))
    result, _ = run_global("repair_qrels", make_cfg(tmp_path / "run"), rundir)
    out = result.outputs
    assert out["final_queries"]["id"].to_pylist() == ["q0", "q2"]
    drops = {d.item_id: (d.reason, d.detail) for d in result.drops}
    assert drops == {
        "q1": ("weakly_explained", "its positive explains this question by +1.30 nats/token, under the +1.48 a "
                                   "question needs"),
        "q3": ("weakly_explained", "its positive explains this request by +1.45 nats/token, under the +1.48 a "
                                   "request needs")}
    assert result.stats["queries_dropped.weakly_explained"] == 2
    # Off, or with a judge that fails its calibration, nothing is dropped; the verdict is audited.
    off = make_cfg(tmp_path / "off")
    off.domain.repair.request_margin = None  # a pack's "request_margin: null"
    assert run_global("repair_qrels", off, rundir)[0].outputs["final_queries"].num_rows == 4
    never = make_cfg(tmp_path / "never", **{"repair.trust_judge": "never"})
    result, _ = run_global("repair_qrels", never, rundir)
    assert result.outputs["final_queries"].num_rows == 4
    notes = {r["query_id"]: r["detail"] for r in result.outputs["audit"].to_pylist() if r["reason"] == "judge_not_trusted"}
    assert set(notes) == {"q1", "q3"} and "weakly_explained" in notes["q1"]


def test_a_search_its_positive_explains_hardly_better_than_another_passage_is_dropped_where_its_document_is_unnamed(
        tmp_path, rundir):
    """A search of an annual report's paragraph that names no one ("net sales $1.7 million 2019") is tied to it by
    its figure alone: when another passage explains it within repair.search_margin (0.4 nats/token) of its
    positive, it is dropped; by a wider lead, or in a document that names its entity, it stays."""
    from buildbench.generators.likelihood import ScoredPair

    write_inputs(rundir, [], [])
    rundir.write("chunks", to_table([
        Chunk(id="u1", doc_id="d-u1", position=0, title="", text="Net sales increased $1.7 million in 2019."),
        Chunk(id="u2", doc_id="d-u2", position=0, title="", text="Net sales were $93.7 million in 2019."),
        Chunk(id="n1", doc_id="d-n1", position=0, title="Tidewater Energy Partners - Fourth Quarter 2025 Earnings Call",
              text="Net sales were $4.1 billion in 2025."),
        Chunk(id="x", doc_id="d-x", position=0, title="", text="Net sales fell in 2019 on lower volumes.")], Chunk))
    rundir.write("queries", queries_table([("q1", "net sales to $1.7 million 2019", ["u1"]),
                                           ("q2", "net sales $93.7 million 2019", ["u2"]),
                                           ("q3", "Tidewater Energy Partners net sales $4.1 billion 2025", ["n1"])]))
    lead = {"q1": 0.23, "q2": 0.9, "q3": 0.1}
    positive = {"q1": "u1", "q2": "u2", "q3": "n1"}
    rows = [ScoredPair(q, positive[q], "positive", -20.0, -40.0, 10, 2.0) for q in lead]
    rows += [ScoredPair(q, "x", "candidate", -22.0, -40.0, 10, 2.0 - d) for q, d in lead.items()]
    rows += [ScoredPair(q, "x", "control", -39.0, -40.0, 10, 0.1) for q in ("q1", "q2", "q3")]
    rundir.write("likelihoods", pa.Table.from_pylist([r.__dict__ for r in rows], schema=LIKELIHOOD_SCHEMA))
    rundir.write("judgements", pa.Table.from_pylist([
        dict(query_id=r.query_id, passage_id=r.passage_id, kind=r.kind, label=r.label(1.076, 1.0), reason="",
             model="m", cache_key="", backend="likelihood", prompt_hash="") for r in rows if r.kind != "candidate"],
        schema=JUDGEMENT_SCHEMA))
    result, _ = run_global("repair_qrels", make_cfg(tmp_path / "run"), rundir)
    assert result.outputs["final_queries"]["id"].to_pylist() == ["q2", "q3"]
    assert {d.item_id: (d.reason, d.detail) for d in result.drops} == {
        "q1": ("weakly_specific", "its positive explains this search by only +0.23 nats/token more than the closest "
                                  "other passage, under the +0.40 a search of a document naming no one needs")}
    off = make_cfg(tmp_path / "off")
    off.domain.repair.search_margin = None
    assert run_global("repair_qrels", off, rundir)[0].outputs["final_queries"].num_rows == 3


def test_a_close_chunk_of_its_document_holding_every_word_of_a_topic_search_joins_the_qrels(tmp_path, rundir):
    """The keyword search "banks lending standards" names no figure, month or quarter: the next chunk of its
    positive's document, which holds all its words and scores too close to the positive to be a safe negative,
    answers it too. A chunk of another document that does is left to the judge (untrusted here), and so is the same
    chunk for a search that names a quarter, and for a question, which asks more than its words; a chunk of the
    document scored well below the positive stays a negative."""
    more = "Most banks expect lending standards to stay tight through year end, with demand weaker."
    write_inputs(rundir, [], [Candidate(q, p, 0.8 - r / 10, 0.8, r, d, ["bm25"]) for q in ("q1", "q2", "q3")
                              for r, (p, d) in enumerate([("c1-more", "too_close"), ("c9", "too_close"),
                                                          ("c1-last", "negative")], 1)],
                 extra_chunks=[("c1-more", "d2", more), ("c9", "d9", more), ("c1-last", "d2", "Lending standards "
                                                                               "for banks eased in 2019.")])
    rundir.write("queries", pa.concat_tables([
        queries_table([("q1", "banks lending standards", ["c1"]), ("q2", "banks lending standards Q3", ["c1"])]),
        queries_table([("q3", "Why did banks tighten lending standards?", ["c1"])], style="question")]))
    result, _ = run_global("repair_qrels", make_cfg(tmp_path / "run"), rundir)
    out = result.outputs
    assert sorted(tuple(r.values()) for r in out["qrels"].to_pylist()) == [
        ("q1", "c1", 1), ("q1", "c1-more", 1), ("q2", "c1", 1), ("q3", "c1", 1)]
    added = [(r["query_id"], r["reason"], r["passage_id"]) for r in out["audit"].to_pylist()
             if r["action"] == "add_qrel"]
    assert added == [("q1", "same_document_topic", "c1-more")]
    assert {r["query_id"]: r["passage_ids"] for r in out["hard_negatives"].to_pylist()} == {
        q: ["c1-last"] for q in ("q1", "q2", "q3")}


def test_a_passage_of_the_positives_entity_giving_a_searchs_figure_joins_the_qrels(tmp_path, rundir):
    """The call and the risk factors of one partnership (one titled with its legal form, one without) both give the
    $0.765 distribution: the search for it has both as positives; the question asking it, and a search for it whose
    figure another entity's passage writes, do not gain passages outside the entity."""
    write_inputs(rundir, [], [Candidate(q, p, 0.5, 0.8, r, "negative", ["bm25"]) for q in ("q1", "q2")
                              for r, p in enumerate(["t-risks", "h-other"], 1)])
    rundir.write("chunks", to_table([
        Chunk(id="t-call", doc_id="d-call", position=0, text="We are keeping the distribution at $0.765 per unit.",
              title="Tidewater Energy Partners - Fourth Quarter 2025 Earnings Call"),
        Chunk(id="t-risks", doc_id="d-risks", position=0, title="Tidewater Energy Partners, L.P. - Risk Factors",
              text="We paid quarterly distributions of $0.765 per common unit throughout 2025."),
        Chunk(id="h-other", doc_id="d-h", position=0, title="Harbor Midstream LP - Results",
              text="Harbor pays $0.765 per unit each quarter.")], Chunk))
    rundir.write("queries", pa.concat_tables([
        queries_table([("q1", "Tidewater Energy Partners $0.765 per unit", ["t-call"])]),
        queries_table([("q2", "What is Tidewater's distribution of $0.765 per unit?", ["t-call"])],
                      style="question")]))
    result, _ = run_global("repair_qrels", make_cfg(tmp_path / "run"), rundir)
    out = result.outputs
    assert sorted(tuple(r.values()) for r in out["qrels"].to_pylist()) == [
        ("q1", "t-call", 1), ("q1", "t-risks", 1), ("q2", "t-call", 1)]
    added = [(r["query_id"], r["reason"], r["passage_id"]) for r in out["audit"].to_pylist()
             if r["action"] == "add_qrel"]
    assert added == [("q1", "same_entity_figure", "t-risks")]
    assert {r["query_id"]: r["passage_ids"] for r in out["hard_negatives"].to_pylist()} == {
        "q1": ["h-other"], "q2": ["t-risks", "h-other"]}


def test_an_entitys_documents_share_its_key_whether_or_not_they_write_its_legal_form():
    call = document_context("", title="Tidewater Energy Partners - Fourth Quarter 2025 Earnings Call").entity
    risks = document_context("", title="Tidewater Energy Partners, L.P. - Risk Factors Related to Our Business").entity
    assert (call, risks) == ("Tidewater Energy Partners", "Tidewater Energy Partners, L.P.")
    assert entity_key(call) == entity_key(risks) == "tidewater energy partners"
    assert entity_key("Copperline Industrial Holdings Inc.") == entity_key("Copperline Industrial Holdings")
    assert entity_key("Kaleva Telecom Holdings S.A.") == "kaleva telecom holdings"
    # part of the name, not a legal form: two entities stay two
    assert entity_key("Ostmark Bank Group") != entity_key("Ostmark Bank")
    assert entity_key("Central Bank of  Veloria") == "central bank of veloria" and entity_key("") == ""


def test_a_searchs_counts_are_the_numbers_it_states_without_a_unit(tmp_path, rundir):
    """What the repair's count guard reads: "24 stores" is a count; "$120 million" is a written figure, "Note 5" a
    label, 2026 a year, and a question's numbers are not a search's."""
    rundir.write("chunks", to_table([Chunk(id="m", doc_id="d", position=0, text="We are closing 24 stores.",
                                           title="Meridian Retail Holdings - Third Quarter 2025 Earnings Call")], Chunk))
    queries = pa.concat_tables([
        queries_table([("q1", "Meridian Retail Holdings 24 stores 2025", ["m"]),
                       ("q2", "Meridian Retail Holdings $120 million tariffs 2026", ["m"]),
                       ("q3", "Meridian Retail Holdings Note 5 leases", ["m"])]),
        queries_table([("q4", "How many of Meridian's 24 stores will close?", ["m"])], style="question")])
    ctx = context("repair_qrels", make_cfg(tmp_path / "run"), rundir)
    assert search_counts(ctx, queries) == {"q1": frozenset({"24"})}
