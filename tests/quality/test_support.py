"""quality.support: invented terms and queries that name only their document are dropped; supported
paraphrase-free queries about the fact pass. Texts are our own writing."""

from buildbench.quality.support import SupportFilter

TITLE = "Ardent Media Group plc - Key Audit Matter on Goodwill Impairment (2025)"
PASSAGE = (TITLE + " During 2025 the Group recognised an impairment charge of GBP 64 million against this goodwill, "
           "after print advertising revenue in the cash-generating unit fell by 17%. We involved our valuation "
           "specialists to assess the discount rate against an independently derived range of 12.6% to 14.2%.")
FACT = ("We involved our valuation specialists to assess the discount rate against an independently derived "
        "range of 12.6% to 14.2%.")


def check(query, fact=FACT):
    return SupportFilter(max_unsupported=0.25).check(query, PASSAGE, fact, TITLE)


def test_supported_queries_about_the_fact_pass():
    assert check("Ardent Media Group discount rate range 2025") is None
    assert check("What discount rate range did the auditors of Ardent Media Group check?") is None
    # "auditor" supports "audit" (five-letter stems); question words never count against a query
    assert check("How did the auditor assess Ardent's discount rate?") is None


def test_an_invented_term_is_not_diluted_by_the_entity_name():
    # 1 invented word among 3 that ask something: "CET1" is a bank ratio, not in this media group's passage
    reason, detail = check("Ardent Media Group plc CET1 discount rate")
    assert reason == "unsupported_terms" and "cet1" in detail


def test_a_query_naming_only_its_document_is_off_fact():
    assert check("Ardent Media Group plc 2025")[0] == "off_fact"
    # about the passage, but not about the fact it was written to ask for
    assert check("Ardent Media Group print advertising revenue")[0] == "off_fact"
    # without a fact (e.g. a query from another recipe) only the support check applies
    assert check("Ardent Media Group print advertising revenue", fact="") is None


def test_apply_keeps_alignment_and_reports_reasons():
    f = SupportFilter(stage="query_support")
    refs = [(PASSAGE, FACT, TITLE)] * 3
    out = f.apply(["a", "b", "c"], ["Ardent discount rate range", "Ardent CET1 pilot pay", "Ardent Media 2025"], refs)
    assert out.keep == [True, False, False]
    assert [(d.item_id, d.stage, d.reason) for d in out.drops] == [
        ("b", "query_support", "unsupported_terms"), ("c", "query_support", "off_fact")]


def test_period_words_are_never_invented_terms():
    # the writer is told the period: "February" is not a term the passage must hold, but not a fact either
    assert check("Ardent Media Group February 2025")[0] == "off_fact"
    assert check("Ardent Media Group discount rate range, fourth quarter") is None
