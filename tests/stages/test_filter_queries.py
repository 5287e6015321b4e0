"""filter_queries: planted bad queries are each dropped by the filter meant for them, with its reason; the good
ones pass; the chain's stats come back in order."""

from __future__ import annotations

import pyarrow as pa

from buildbench.records import Chunk, Query, empty_table, to_table
from buildbench.stages.common import support_refs

from .conftest import PASSAGES, chunks_table, context, make_cfg, queries_table, run_global

GOOD = [("ok-rates", "why did policymakers tighten borrowing costs again", ["c0"]),
        ("ok-loans", "why are lenders more cautious about business credit", ["c1"]),
        ("ok-bonds", "how did dealer constraints affect government bond trading", ["c2"])]
PLANTED = {
    "short": ("rates", ["c0"], "query_length", "too_short"),
    "copy": ("continue reducing its holdings of Treasury securities and agency mortgage-backed securities",
             ["c4"], "query_copy", "copied_from_chunk"),
    "mention": ("what does the passage say about capital ratios at big banks", ["c5"], "query_copy",
                "mentions_source"),
    "german": ("warum sind die Banken bei Krediten an Unternehmen vorsichtiger geworden", ["c1"], "query_language",
               "wrong_language"),
    "dup": (GOOD[0][1].upper() + ".", ["c0"], "query_dedup", "exact_duplicate"),
    # A keyword-style query (queries_table) written as a question.
    "form": ("are banks tightening standards for business loans?", ["c1"], "query_form", "not_keywords"),
}


def test_planted_bad_queries_are_dropped_with_their_reasons(tmp_path, rundir):
    rundir.write("chunks", chunks_table([(f"c{i}", d, t) for i, (d, t) in enumerate(PASSAGES)]))
    rundir.write("raw_queries", queries_table(GOOD + [(i, t, c) for i, (t, c, _, _) in PLANTED.items()]))
    rundir.write("qa_queries", empty_table(Query))
    # GOOD paraphrases its passages with words they lack; the support filter would drop it (see below).
    result, _ = run_global("filter_queries", make_cfg(tmp_path / "run", **{"filters.support.enabled": False}),
                           rundir)
    assert result.outputs["queries"]["id"].to_pylist() == [i for i, _, _ in GOOD]
    assert {(d.item_id, d.stage, d.reason) for d in result.drops} == {
        (i, stage, reason) for i, (_, _, stage, reason) in PLANTED.items()}
    chain = [(f.name, f.n_in, f.kept) for f in result.filters]
    assert chain == [("query_length", 9, 8), ("query_form", 8, 7), ("query_prompt_echo", 7, 7), ("query_copy", 7, 5),
                     ("query_grounding", 5, 5), ("query_language", 5, 4), ("query_dedup", 4, 3)]
    assert result.filters[3].reasons == {"copied_from_chunk": 1, "mentions_source": 1}
    assert all(f.dropped == f.n_in - f.kept and f.seconds >= 0 for f in result.filters)


def test_the_support_filter_drops_paraphrase_it_cannot_tell_from_invention(tmp_path, rundir):
    """The price of quality.support (on by default): a faithful paraphrase with new words goes too."""
    rundir.write("chunks", chunks_table([(f"c{i}", d, t) for i, (d, t) in enumerate(PASSAGES)]))
    rundir.write("raw_queries", queries_table(GOOD + [("supported", "federal funds rate target range raised",
                                                       ["c0"])]))
    rundir.write("qa_queries", empty_table(Query))
    result, _ = run_global("filter_queries", make_cfg(tmp_path / "run"), rundir)
    assert result.outputs["queries"]["id"].to_pylist() == ["supported"]
    # "how did dealer constraints affect ..." asks a relation its passage states only with "as": invented too.
    assert {(d.item_id, d.reason) for d in result.drops if d.stage == "query_support"} == {
        ("ok-rates", "unsupported_terms"), ("ok-loans", "unsupported_terms"), ("ok-bonds", "invented_relation")}


def test_a_query_another_document_of_its_entity_answers_is_dropped_as_ambiguous(tmp_path, rundir):
    """Two statements of one central bank both give core inflation: naming the bank and a bare year fits both."""
    docs = [("c0", "d-feb", "Central Bank of Veloria: Policy Statement, February 2025",
             "Core inflation was 3.1 percent in January and the Council raised the policy rate."),
            ("c1", "d-oct", "Central Bank of Veloria: Minutes, October 2025",
             "Core inflation eased to 2.6 percent in the third quarter and the Council held the policy rate."),
            ("c2", "d-other", "Larchmont Short Duration Bond Fund: Prospectus 2025",
             "Annual fund operating expenses are 0.45 percent and core holdings are investment-grade bonds.")]
    rundir.write("chunks", to_table([Chunk(id=i, doc_id=d, text=t, title=title, position=0)
                                     for i, d, title, t in docs], Chunk))
    ctx = context("filter_queries", make_cfg(tmp_path / "run"), rundir)
    refs = support_refs(ctx, [["c1"], ["c2"]], ["", ""])
    # the October minutes see the February statement's words, not the fund's; the fund has no sibling
    assert len(refs[0][3]) == 1 and "febru" not in refs[0][3][0] and "infla" in refs[0][3][0]
    assert refs[1][3] == ()
    rundir.write("raw_queries", queries_table([
        ("bare", "Central Bank of Veloria core inflation 2025", ["c1"]),
        ("dated", "Central Bank of Veloria core inflation October 2025", ["c1"]),
        ("figure", "Central Bank of Veloria core inflation 2.6 percent", ["c1"])]))
    rundir.write("qa_queries", empty_table(Query))
    result, _ = run_global("filter_queries", make_cfg(tmp_path / "run"), rundir)
    assert result.outputs["queries"]["id"].to_pylist() == ["dated", "figure"]
    assert {(d.item_id, d.reason) for d in result.drops} == {("bare", "ambiguous_document")}


def test_a_question_that_states_its_facts_figure_is_dropped_a_search_that_names_it_is_not(tmp_path, rundir):
    """A question that states its fact's figure asks for what it says (quality.asks.states_answer); a keyword
    search names the same figure to single its passage out."""
    rundir.write("chunks", chunks_table([(f"c{i}", d, t) for i, (d, t) in enumerate(PASSAGES)]))
    fact = "Inflation remains elevated and the Committee is strongly committed to returning it to 2 percent."
    rows = [("asks", "What inflation rate is the Committee strongly committed to returning to 2 percent?", "question"),
            ("search", "Committee inflation 2 percent", "keyword")]
    rundir.write("raw_queries", pa.concat_tables([
        queries_table([(i, text, ["c0"])], style=style, answer=fact) for i, text, style in rows]))
    rundir.write("qa_queries", empty_table(Query))
    result, _ = run_global("filter_queries", make_cfg(tmp_path / "run"), rundir)
    assert result.outputs["queries"]["id"].to_pylist() == ["search"]
    assert [(d.item_id, d.stage, d.reason) for d in result.drops] == [("asks", "query_support", "states_answer")]
    assert "states 2 of its fact" in result.drops[0].detail
