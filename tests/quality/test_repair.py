"""AIR-Bench qrels repair: rules, the judge's calibration gate, and the audit log."""

from buildbench.domain_pack import RepairConfig
from buildbench.labels import Label
from buildbench.labels.decide import decide
from buildbench.quality.mining import Candidate
from buildbench.quality.repair import (
    CANDIDATE,
    CONTROL,
    POSITIVE,
    Answerability,
    Verdict,
    audit_table,
    calibrate,
    containment,
    repair,
    weakly_explained,
    weakly_specific,
)
from buildbench.quality.support import figure_search, topic_stems

TEXTS = {
    "p1": "The board raised the quarterly dividend to 42 cents per share, payable on 15 March to holders of record.",
    # The positive's paragraph repeated inside a longer release: it answers the same query.
    "dup": "Press release. The board raised the quarterly dividend to 42 cents per share, payable on 15 March to "
           "holders of record. The annual meeting is in May.",
    # Same template, other numbers: a different fact, not a duplicate.
    "other_year": "The board raised the quarterly dividend to 38 cents per share, payable on 14 March to holders "
                  "of record.",
    "n1": "The company repurchased 2 million shares during the quarter under its existing authorisation.",
    "n2": "Capital expenditure was 310 million, mostly for the new distribution centre.",
    "syn": "The board discussed the dividend policy and will review it at the next meeting.",
    "p2": "Net interest margin narrowed to 2.9 percent as deposit costs rose.",
}


def cand(q, p, score, rank, decision, pos=0.8, found=("bm25",)):
    return Candidate(q, p, score, pos, rank, decision, list(found))


CANDS = [
    cand("q1", "dup", 0.82, 1, "too_close"),
    cand("q1", "other_year", 0.79, 2, "too_close"),
    cand("q1", "n1", 0.50, 3, "negative"),
    cand("q1", "n2", 0.30, 4, "negative"),
    cand("q1", "syn", 0.60, 5, "synthetic", found=("llm",)),
    cand("q2", "n1", 0.20, 1, "negative"),
]
POS = {"q1": ["p1"], "q2": ["p2"]}


def good_judge_verdicts():
    """A judge that tells positives from controls (balanced accuracy 1.0)."""
    v = [Verdict("q1", "p1", POSITIVE, 3), Verdict("q2", "p2", POSITIVE, 3)]
    v += [Verdict("q1", "n2", CONTROL, 0), Verdict("q2", "n2", CONTROL, 0)]
    return v


def test_containment_is_directional():
    assert containment(TEXTS["p1"], TEXTS["dup"]) == 1.0
    assert containment(TEXTS["dup"], TEXTS["p1"]) < 0.8
    assert containment("", TEXTS["p1"]) == 0.0


def test_duplicate_of_positive_is_added_without_any_judge():
    res = repair(["q1", "q2"], POS, CANDS, TEXTS)
    assert ("q1", "dup", 1) in res.qrels and ("q1", "p1", 1) in res.qrels
    added = [e for e in res.audit if e.action == "add_qrel"]
    assert [(e.query_id, e.passage_id, e.reason) for e in added] == [("q1", "dup", "duplicate_of_positive")]
    assert "numbers agree" in added[0].detail
    # Same wording, other numbers: too close to be a negative, but not added either.
    excluded = {e.passage_id: e for e in res.audit if e.action == "exclude_candidate"}
    assert excluded["other_year"].reason == "too_close" and "0.99 of the positive" in excluded["other_year"].detail
    assert res.hard_negatives["q1"] == ["n1", "n2", "syn"]
    assert res.stats["false_negatives_added"] == 1
    assert not res.calibration.trusted and "no judged positives" in res.calibration.why


def test_trusted_judge_applies_air_bench_rules():
    verdicts = good_judge_verdicts() + [
        Verdict("q1", "n1", CANDIDATE, 3),  # a mined "negative" that answers the query
        Verdict("q1", "syn", CANDIDATE, 2),  # an LLM-written negative that answers it
        Verdict("q1", "n2", CANDIDATE, 0),
    ]
    res = repair(["q1", "q2"], POS, CANDS, TEXTS, verdicts)
    assert res.calibration.trusted and res.calibration.balanced_accuracy == 1.0
    assert ("q1", "n1", 1) in res.qrels
    assert "n1" not in res.hard_negatives["q1"] and res.hard_negatives["q1"] == ["n2"]
    assert res.removed_synthetic == ["syn"]
    reasons = {(e.passage_id, e.action, e.reason) for e in res.audit if e.query_id == "q1"}
    assert ("n1", "add_qrel", "judged_relevant") in reasons
    assert ("syn", "remove_negative", "synthetic_negative_relevant") in reasons
    assert ("n2", "keep_negative", "judged_not_relevant") in reasons
    assert res.stats["false_negatives.judged_relevant"] == 1


def test_positive_judged_not_relevant_drops_the_query_only_with_a_trusted_judge():
    verdicts = good_judge_verdicts() + [Verdict("q3", "p3", POSITIVE, 0)]
    pos = {**POS, "q3": ["p3"]}
    res = repair(["q1", "q2", "q3"], pos, CANDS, TEXTS, verdicts)
    assert res.kept_queries == ["q1", "q2"]
    drop = [e for e in res.audit if e.action == "drop_query"][0]
    assert (drop.query_id, drop.reason) == ("q3", "positive_not_relevant")
    # A judge that calls everything relevant fails calibration: nothing is dropped, the verdict is logged.
    yes_man = [Verdict(v.query_id, v.passage_id, v.kind, 3) for v in verdicts[:4]] + [Verdict("q3", "p3", POSITIVE, 0)]
    res = repair(["q1", "q2", "q3"], pos, CANDS, TEXTS, yes_man)
    assert not res.calibration.trusted and res.calibration.balanced_accuracy == 0.3333
    assert res.kept_queries == ["q1", "q2", "q3"]
    note = [e for e in res.audit if e.query_id == "q3"][0]
    assert (note.action, note.reason) == ("keep_query", "judge_not_trusted") and "positive_not_relevant" in note.detail


def test_answerability_and_trust_override():
    checks = [Answerability("q2", self_contained=False, clear_intent=True, reason="refers to 'it'")]
    res = repair(["q1", "q2"], POS, CANDS, TEXTS, good_judge_verdicts(), checks)
    assert res.kept_queries == ["q1"]
    assert [(e.query_id, e.reason, e.detail) for e in res.audit if e.action == "drop_query"] == [
        ("q2", "not_self_contained", "refers to 'it'")]
    res = repair(["q1", "q2"], POS, CANDS, TEXTS, good_judge_verdicts(), checks, RepairConfig(trust_judge="never"))
    assert res.kept_queries == ["q1", "q2"] and res.calibration.why == "trust_judge=never"


def test_calibration_numbers_and_audit_table():
    cal = calibrate(good_judge_verdicts() + [Verdict("q9", "x", CONTROL, 3)], RepairConfig())
    assert (cal.positives, cal.controls, cal.true_positive_rate, cal.true_negative_rate) == (2, 3, 1.0, 0.6667)
    assert cal.trusted and "0.83" in cal.why
    table = audit_table(repair(["q1"], POS, CANDS, TEXTS).audit, stage="repair_qrels")
    assert set(table.column_names) == {"query_id", "stage", "action", "reason", "passage_id", "detail", "decided_by"}
    assert set(table["decided_by"].to_pylist()) == {"build"}
    assert table.num_rows >= 2 and set(table["stage"].to_pylist()) == {"repair_qrels"}


def test_a_query_more_passages_answer_than_a_repair_may_add_is_dropped_as_vague():
    cands = [cand("q2", "n1", 0.7, 1, "too_close"), cand("q2", "n2", 0.7, 2, "too_close"),
             cand("q2", "other_year", 0.6, 3, "negative"), cand("q1", "n1", 0.5, 1, "negative")]
    verdicts = good_judge_verdicts() + [Verdict("q2", p, CANDIDATE, 2) for p in ("n1", "n2", "other_year")]
    verdicts += [Verdict("q1", "n1", CANDIDATE, 2)]
    out = repair(["q1", "q2"], POS, cands, TEXTS, verdicts, cfg=RepairConfig(max_added_positives=2))
    assert out.kept_queries == ["q1"]
    drop = next(e for e in out.audit if e.action == "drop_query")
    assert (drop.query_id, drop.reason) == ("q2", "vague") and "3 pooled passages" in drop.detail
    # one relevant candidate is a missed positive, added to the qrels
    assert ("q1", "n1", 1) in out.qrels
    # with room for three, q2's candidates are added instead
    out = repair(["q1", "q2"], POS, cands, TEXTS, verdicts, cfg=RepairConfig(max_added_positives=3))
    assert out.kept_queries == ["q1", "q2"] and {("q2", p, 1) for p in ("n1", "n2", "other_year")} <= set(out.qrels)


def test_copies_of_the_positive_do_not_make_a_query_vague():
    cands = [cand("q1", "dup", 0.82, 1, "too_close"), cand("q1", "n1", 0.5, 2, "negative")]
    verdicts = good_judge_verdicts() + [Verdict("q1", "dup", CANDIDATE, 3), Verdict("q1", "n1", CANDIDATE, 2)]
    out = repair(["q1", "q2"], POS, cands, TEXTS, verdicts, cfg=RepairConfig(max_added_positives=1))
    assert "q1" in out.kept_queries and {("q1", "dup", 1), ("q1", "n1", 1)} <= set(out.qrels)


def test_a_chunk_that_holds_the_cited_fact_word_for_word_joins_the_qrels():
    """Overlapping chunks repeat a sentence: a query written to ask for it is answered by both chunks, judge or not,
    and that second passage does not make the query vague."""
    fact = "Net interest margin narrowed to 2.9 percent as deposit costs rose."
    texts = {**TEXTS, "p2": "Fee income fell 4 percent on lower card volumes and weaker mortgage banking. " + fact,
             "p2-next": "Deposit costs rose. Net interest margin narrowed to 2.9 percent as deposit "
                                 "costs rose! Loan growth slowed to 3 percent.",
             "p2-part": "Net interest margin narrowed to 2.9 percent in the quarter."}
    cands = [cand("q2", "p2-next", 0.7, 1, "too_close"), cand("q2", "p2-part", 0.6, 2, "negative"),
             cand("q2", "n1", 0.2, 3, "negative")]
    verdicts = good_judge_verdicts() + [Verdict("q2", "p2-next", CANDIDATE, 3), Verdict("q2", "n1", CANDIDATE, 2)]
    out = repair(["q1", "q2"], POS, cands, texts, verdicts, cfg=RepairConfig(max_added_positives=1),
                 citations={"q2": [fact], "q1": ["Dividend."]})
    assert "q2" in out.kept_queries
    assert {("q2", "p2", 1), ("q2", "p2-next", 1), ("q2", "n1", 1)} <= set(out.qrels)
    added = {e.passage_id: e for e in out.audit if e.action == "add_qrel"}
    assert added["p2-next"].reason == "holds_cited_fact" and "2 9 percent" in added["p2-next"].detail
    assert "p2-part" not in added  # a part of the sentence is not the fact
    assert out.stats["false_negatives.holds_cited_fact"] == 1
    # without the citation the same candidate is only judged relevant, which makes two: vague
    out = repair(["q1", "q2"], POS, cands, texts, verdicts, cfg=RepairConfig(max_added_positives=1))
    assert "q2" not in out.kept_queries


def test_a_close_chunk_of_its_document_that_holds_every_word_of_a_topic_search_joins_the_qrels():
    """A search naming no figure, month or quarter ("Norrland Power green financing 2025") fits every chunk of its
    document that holds all its words: one that scores too close to the positive to be a safe negative joins the
    qrels, judge or not, and does not make it vague. One scored well below stays a negative; a chunk of another
    document, one missing a word, and a search naming a figure are left to the judge."""
    title = "Norrland Power AB: Impact Report 2025"
    texts = {**TEXTS,
             "g1": "Norrland Power allocated SEK 4.2 billion of green financing to wind farms in 2025.",
             "g2": "Unallocated proceeds of green financings are held in cash and short-term deposits.",
             "g3": "Green bonds funded two solar parks and a storage project.",
             "g4": "The green financing framework excludes fossil-fuel assets.",
             "o1": "Caldera National Bank arranged green financing for utilities in 2025."}
    documents = {"g1": "impact", "g2": "impact", "g3": "impact", "g4": "impact", "o1": "caldera"}
    queries = {"q1": "Norrland Power green financing 2025", "q2": "Norrland Power SEK 4.2 billion green financing"}
    topics = {q: t for q, text in queries.items() if (t := topic_stems(text, title))}
    assert topics == {"q1": frozenset({"green", "finan"})}
    cands = [cand(q, p, 0.7 - r / 10, r, d) for q in queries
             for r, (p, d) in enumerate([("g2", "too_close"), ("g3", "too_close"), ("o1", "too_close"),
                                         ("g4", "negative")], 1)]
    pos = {"q1": ["g1"], "q2": ["g1"]}
    out = repair(["q1", "q2"], pos, cands, texts, topics=topics, documents=documents)
    assert sorted(out.qrels) == [("q1", "g1", 1), ("q1", "g2", 1), ("q2", "g1", 1)]
    assert out.hard_negatives == {"q1": ["g4"], "q2": ["g4"]}
    added = [e for e in out.audit if e.action == "add_qrel"]
    assert [(e.query_id, e.passage_id, e.reason) for e in added] == [("q1", "g2", "same_document_topic")]
    assert "finan, green" in added[0].detail and out.stats["false_negatives.same_document_topic"] == 1
    # The judge calls g2 and o1 relevant: o1 alone counts towards vague, g2 answers as the positive does.
    verdicts = [Verdict(q, "g1", POSITIVE, 3) for q in queries] + [Verdict(q, "n2", CONTROL, 0) for q in queries]
    verdicts += [Verdict("q1", p, CANDIDATE, 3) for p in ("g2", "o1")]
    out = repair(["q1", "q2"], pos, cands, texts, verdicts, cfg=RepairConfig(max_added_positives=1), topics=topics,
                 documents=documents)
    assert "q1" in out.kept_queries and {("q1", "g2", 1), ("q1", "o1", 1)} <= set(out.qrels)
    reasons = {e.passage_id: e.reason for e in out.audit if e.query_id == "q1" and e.action == "add_qrel"}
    assert reasons == {"g2": "same_document_topic", "o1": "judged_relevant"}


def test_a_passage_of_its_entity_writing_a_searchs_figure_with_every_word_it_asks_joins_the_qrels():
    """A search that writes a figure ("Tidewater Energy Partners $0.765 per unit") is answered by every passage of
    its entity that gives the same figure with its words, whatever the passage scored: the risk factors repeat the
    call's distribution. A passage of another entity with the figure, one of the entity missing a word, and one with
    another figure are left alone; so is a question, which asks more than its words."""
    texts = {**TEXTS,
             "call": "Miriam Castellanos, CFO: We are keeping the distribution at $0.765 per unit.",
             "risks": "We paid quarterly distributions of US$0.765 per common unit throughout 2025.",
             "risks2": "Distribution coverage was 1.42 times; we paid $0.765 each quarter.",
             "risks3": "We may reduce the distribution of $0.70 per unit if volumes fall.",
             "other": "Harbor Midstream pays $0.765 per unit each quarter."}
    entities = {"call": "tidewater energy partners", "risks": "tidewater energy partners",
                "risks2": "tidewater energy partners", "risks3": "tidewater energy partners",
                "other": "harbor midstream"}
    title = "Tidewater Energy Partners - Fourth Quarter 2025 Earnings Call"
    figures = {"q1": figure_search("Tidewater Energy Partners $0.765 per unit", title)}
    cands = [cand("q1", p, 0.9 - r / 10, r, d) for r, (p, d) in enumerate(
        [("risks", "negative"), ("risks2", "too_close"), ("risks3", "too_close"), ("other", "negative")], 1)]
    out = repair(["q1"], {"q1": ["call"]}, cands, texts, figures=figures, entities=entities)
    assert sorted(out.qrels) == [("q1", "call", 1), ("q1", "risks", 1)]
    assert out.hard_negatives == {"q1": ["other"]}
    added = [e for e in out.audit if e.action == "add_qrel"]
    assert [(e.passage_id, e.reason) for e in added] == [("risks", "same_entity_figure")]
    assert "($0.765" not in added[0].detail and "tidewater energy partners" in added[0].detail
    assert "$0.765" in added[0].detail and "(unit)" in added[0].detail
    assert out.stats["false_negatives.same_entity_figure"] == 1
    # The figure and the words in one sentence: 4.6 percent unemployment and inflation two sentences on is no answer.
    texts["risks4"] = "Services inflation moderated. The unemployment rate rose to 4.6% in the fourth quarter."
    texts["call2"] = "Services inflation of 4.6% remained too high."
    entities.update(risks4="tidewater energy partners", call2="tidewater energy partners")
    infl = {"q1": figure_search("Tidewater Energy Partners 4.6% inflation", title)}
    out = repair(["q1"], {"q1": ["call2"]}, [cand("q1", "risks4", 0.8, 1, "too_close")], texts, figures=infl,
                 entities=entities)
    assert sorted(out.qrels) == [("q1", "call2", 1)]
    # without entities (or for a query with no figures) nothing is added
    out = repair(["q1"], {"q1": ["call"]}, cands, texts, figures=figures)
    assert sorted(out.qrels) == [("q1", "call", 1)]


# -- people's labels


def people(*labels: Label):
    return decide(labels)


def test_people_drop_wrong_and_vague_queries_whatever_the_judge_says():
    human = people(Label("q1", "wrong", reviewer="ana"), Label("q2", "vague", reviewer="ana"))
    res = repair(["q1", "q2"], POS, CANDS, TEXTS, good_judge_verdicts(), (), None, human)
    assert res.kept_queries == []
    drops = {(e.query_id, e.reason, e.decided_by) for e in res.audit if e.action == "drop_query"}
    assert drops == {("q1", "human_wrong", "human"), ("q2", "human_vague", "human")}
    assert all("ana=" in e.detail for e in res.audit if e.decided_by == "human")


def test_people_keep_a_query_the_judge_dropped_and_add_the_missed_positive():
    bad_judge = [Verdict("q1", "p1", POSITIVE, 0)] + good_judge_verdicts()[1:]
    assert repair(["q1"], POS, CANDS, TEXTS, bad_judge, cfg=RepairConfig(trust_judge="always")).kept_queries == []
    human = people(Label("q1", "missed_positive", reviewer="ana", passage_id="n1"),
                   Label("q1", "good", reviewer="bo"), Label("q1", "missed_positive", reviewer="cy", passage_id="n1"))
    res = repair(["q1"], POS, CANDS, TEXTS, bad_judge, (), RepairConfig(trust_judge="always"), human)
    assert res.kept_queries == ["q1"]
    assert ("q1", "n1", 1) in res.qrels and "n1" not in res.hard_negatives["q1"]
    keep = next(e for e in res.audit if e.action == "keep_query")
    assert keep.decided_by == "human" and "overrides the build's positive_not_relevant" in keep.detail
    assert "2 of 3 reviewer(s)" in keep.detail
    assert [(e.passage_id, e.reason) for e in res.audit if e.action == "add_qrel" and e.decided_by == "human"] == [
        ("n1", "human_missed_positive")]


def test_a_tie_between_reviewers_goes_to_the_cautious_label():
    d = people(Label("q1", "good", reviewer="ana"), Label("q1", "vague", reviewer="bo"))["q1"]
    assert d.label == "vague"
    # a reviewer's last label counts
    d = people(Label("q1", "wrong", reviewer="ana"), Label("q1", "good", reviewer="ana"))["q1"]
    assert d.label == "good" and d.votes == {"ana": "good"}


def test_calibration_on_human_labels_once_there_are_enough():
    ids = [f"h{i}" for i in range(14)]
    # The judge says relevant for all 14; people say 11 are answered by their positive and 3 are wrong.
    verdicts = [Verdict(q, "p", POSITIVE, 3) for q in ids] + [Verdict("h0", "c", CONTROL, 0)] * 5
    human = people(*[Label(q, "good" if i < 11 else "wrong") for i, q in enumerate(ids)])
    cal = calibrate(verdicts, RepairConfig(), human)
    assert (cal.on, cal.labelled, cal.true_positive_rate, cal.true_negative_rate) == ("human labels", 14, 1.0, 0.0)
    assert not cal.trusted and "11 queries people say" in cal.why  # the controls alone would have trusted it
    assert calibrate(verdicts, RepairConfig()).trusted
    assert calibrate(verdicts, RepairConfig(calibrate_on="controls"), human).on == "controls"
    few = people(*[Label(q, "good") for q in ids[:5]])
    assert calibrate(verdicts, RepairConfig(), few).on == "controls"


def test_a_weakly_explained_question_or_request_is_dropped_unless_people_keep_it():
    forms = {"q1": "question", "q2": "request", "q3": "keywords", "q4": "question", "q5": None}
    weak = weakly_explained({"q1": 1.2, "q2": 1.5, "q3": 0.9, "q4": 1.9, "q5": 1.0}, forms, 1.6)
    assert weak == {
        "q1": ("weakly_explained", "its positive explains this question by +1.20 nats/token, under the +1.60 a "
                                   "question needs"),
        "q2": ("weakly_explained", "its positive explains this request by +1.50 nats/token, under the +1.60 a "
                                   "request needs")}
    res = repair(["q1", "q2"], POS, CANDS, TEXTS, good_judge_verdicts(), weak={"q2": weak["q2"]})
    assert res.kept_queries == ["q1"]
    assert [(e.query_id, e.reason) for e in res.audit if e.action == "drop_query"] == [("q2", "weakly_explained")]
    res = repair(["q1", "q2"], POS, CANDS, TEXTS, good_judge_verdicts(), (), None,
                 people(Label("q2", "good", reviewer="ana")), weak={"q2": weak["q2"]})
    assert res.kept_queries == ["q1", "q2"]
    keep = next(e for e in res.audit if e.query_id == "q2" and e.action == "keep_query")
    assert "overrides the build's weakly_explained" in keep.detail


def test_a_search_its_positive_explains_hardly_better_than_another_passage_is_dropped_if_its_document_names_no_one():
    """Only the searches named (those of documents that name no one) and only under the margin; the lead is the
    positive's score minus the closest candidate's, so a negative lead (a candidate explains it better) is under."""
    weak = weakly_specific({"q1": 0.23, "q2": 0.41, "q3": -0.11, "q4": 0.1}, {"q1", "q2", "q3"}, 0.4)
    assert weak == {
        "q1": ("weakly_specific", "its positive explains this search by only +0.23 nats/token more than the closest "
                                  "other passage, under the +0.40 a search of a document naming no one needs"),
        "q3": ("weakly_specific", "its positive explains this search by only -0.11 nats/token more than the closest "
                                  "other passage, under the +0.40 a search of a document naming no one needs")}
    res = repair(["q1", "q2"], POS, CANDS, TEXTS, good_judge_verdicts(), weak={"q1": weak["q1"]})
    assert res.kept_queries == ["q2"]
    assert [(e.query_id, e.reason) for e in res.audit if e.action == "drop_query"] == [("q1", "weakly_specific")]
    assert res.stats["queries_dropped.weakly_specific"] == 1


def test_a_passage_the_judge_calls_relevant_that_does_not_write_the_searchs_figure_stays_out():
    """The judge reads words: "Tidewater Energy Partners 250 million cubic feet per day capacity" is not answered
    by the risk factors' 420 million cubic feet per day of expiring commitments, whatever the judge says: neither a
    qrel nor a safe negative, and no sign that the search is vague. A passage writing the figure joins."""
    texts = {**TEXTS,
             "call": "Coyote Flats adds 250 million cubic feet per day of processing capacity.",
             "risks": "Commitments covering approximately 420 million cubic feet per day expire by December 2027.",
             "plant": "The plant's 250 million cubic feet per day of capacity was 60% utilized by year end."}
    title = "Tidewater Energy Partners - Fourth Quarter 2025 Earnings Call"
    figures = {"q1": figure_search("Tidewater Energy Partners 250 million cubic feet per day capacity", title)}
    verdicts = good_judge_verdicts() + [Verdict("q1", "risks", CANDIDATE, 2), Verdict("q1", "plant", CANDIDATE, 2)]
    cands = [cand("q1", "risks", 0.85, 1, "too_close"), cand("q1", "plant", 0.7, 2, "negative")]
    out = repair(["q1"], {"q1": ["call"]}, cands, texts, verdicts, figures=figures)
    assert sorted(out.qrels) == [("q1", "call", 1), ("q1", "plant", 1)]
    assert out.hard_negatives == {"q1": []}
    left = [(e.passage_id, e.action, e.reason) for e in out.audit if e.passage_id == "risks"]
    assert left == [("risks", "exclude_candidate", "judged_relevant_other_figure")]
    assert out.stats["excluded.judged_relevant_other_figure"] == 1
    # Without the search's figures (a question, or a search naming none) the judge's verdicts stand: two passages
    # judged relevant besides the positive are more than a repair may add, and the query leaves as vague.
    out = repair(["q1"], {"q1": ["call"]}, cands, texts, verdicts)
    assert out.qrels == [] and out.stats["queries_dropped.vague"] == 1


def test_a_passage_the_judge_calls_relevant_that_never_states_a_searchs_count_stays_out():
    """"Meridian Retail Holdings 24 stores 2025" names a count with no unit: too loose to add another passage of
    its entity (``figures`` holds no such search), but a passage that never writes 24 does not answer it: the risk
    factors' 512 stores stay out of the qrels and the negatives, where a passage writing 24 joins."""
    texts = {**TEXTS,
             "call": "We are closing 24 stores in January, mostly in malls where the anchor tenants have left.",
             "risks": "We operate 512 department stores, of which 188 are located in enclosed regional malls.",
             "release": "Meridian will close 24 underperforming stores after the holiday season."}
    verdicts = good_judge_verdicts() + [Verdict("q1", "risks", CANDIDATE, 2), Verdict("q1", "release", CANDIDATE, 2)]
    cands = [cand("q1", "risks", 0.85, 1, "too_close"), cand("q1", "release", 0.7, 2, "negative")]
    out = repair(["q1"], {"q1": ["call"]}, cands, texts, verdicts, counts={"q1": frozenset({"24"})})
    assert sorted(out.qrels) == [("q1", "call", 1), ("q1", "release", 1)]
    assert out.hard_negatives == {"q1": []}
    (left,) = [e for e in out.audit if e.passage_id == "risks"]
    assert (left.action, left.reason) == ("exclude_candidate", "judged_relevant_other_figure")
    assert left.detail == "judge label 2, but it does not write 24, which the search names"
    # Without the count the judge's verdicts stand: two passages besides the positive are more than a repair may
    # add, and the search leaves as vague.
    out = repair(["q1"], {"q1": ["call"]}, cands, texts, verdicts)
    assert out.qrels == [] and out.stats["queries_dropped.vague"] == 1
