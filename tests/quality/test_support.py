"""quality.support: invented terms and queries that name only their document are dropped; supported
paraphrase-free queries about the fact pass. Texts are our own writing."""

from buildbench.quality.support import (
    figure_search,
    written_figures,
    SupportFilter,
    invented_years,
    loose_pairs,
    singular_stems,
    tidy_search,
    with_fact_figure,
    without_invented_years,
)

TITLE = "Ardent Media Group plc - Key Audit Matter on Goodwill Impairment (2025)"
PASSAGE = (TITLE + " During 2025 the Group recognised an impairment charge of GBP 64 million against this goodwill, "
           "after print advertising revenue in the cash-generating unit fell by 17%. We involved our valuation "
           "specialists to assess the discount rate against an independently derived range of 12.6% to 14.2%.")
FACT = ("We involved our valuation specialists to assess the discount rate against an independently derived "
        "range of 12.6% to 14.2%.")


def check(query, fact=FACT):
    return SupportFilter(max_unsupported=0.25).check(query, PASSAGE, fact, TITLE)


def checker(passage, title, fact=""):
    """The support check of queries over one passage and title; ``fact`` is each query's fact unless it names one."""
    return lambda query, fact=fact: SupportFilter().check(query, passage, fact, title)


def test_supported_queries_about_the_fact_pass():
    assert check("Ardent Media Group discount rate range 2025") is None
    assert check("What discount rate range did the auditors of Ardent Media Group check?") is None
    # "auditor" supports "audit" (five-letter stems); question words never count against a query
    assert check("How did the auditor assess Ardent's discount rate?") is None


def test_an_invented_term_is_not_diluted_by_the_entity_name():
    # 1 invented word among 3 that ask something: "CET1" is a bank ratio, not in this media group's passage
    reason, detail = check("Ardent Media Group plc CET1 discount rate")
    assert reason == "unsupported_terms" and "cet1" in detail


def test_a_query_naming_only_its_document_asks_nothing_and_one_off_its_fact_is_off_fact():
    assert check("Ardent Media Group plc 2025")[0] == "names_only_document"
    # about the passage, but not about the fact it was written to ask for
    assert check("Ardent Media Group print advertising revenue")[0] == "off_fact"
    # its legal form and its kind of document name it too
    assert check("Ardent Media Group, Inc. 2025")[0] == "names_only_document"
    assert check("Ardent Media Group 2025 consolidated financial statements")[0] == "names_only_document"
    assert check("Ardent Media Group annual report discount rate range") is None
    # without a fact (e.g. a query from another recipe) only the support check applies
    assert check("Ardent Media Group print advertising revenue", fact="") is None


def test_apply_keeps_alignment_and_reports_reasons():
    f = SupportFilter(stage="query_support")
    refs = [(PASSAGE, FACT, TITLE)] * 3
    out = f.apply(["a", "b", "c"], ["Ardent discount rate range", "Ardent CET1 pilot pay", "Ardent Media 2025"], refs)
    assert out.keep == [True, False, False]
    assert [(d.item_id, d.stage, d.reason) for d in out.drops] == [
        ("b", "query_support", "unsupported_terms"), ("c", "query_support", "names_only_document")]


def test_period_words_are_never_invented_terms():
    # the writer is told the period: "fiscal" or "annual" is not a term the passage must hold, nor a fact
    assert check("Ardent Media Group fiscal 2025")[0] == "names_only_document"
    assert check("Ardent Media Group annual discount rate range, fiscal 2025") is None
    # but a quarter or month that neither the passage nor the title states is invented (see below)
    assert check("Ardent Media Group discount rate range, fourth quarter")[0] == "invented_period"


UNNAMED_TITLE = "(2019)"
UNNAMED = (UNNAMED_TITLE + " Net interest income increased by $16.9 million in fiscal 2019, mainly because average "
           "loan balances grew and deposit costs stayed flat.")
UNNAMED_FACT = "Net interest income increased by $16.9 million in fiscal 2019."


def test_a_query_must_single_out_a_fact_with_a_figure():
    f = SupportFilter(max_unsupported=0.25)
    # In a corpus of excerpts that name no company, only the figure singles this one out.
    assert f.check("The company's net interest income 2019", UNNAMED, UNNAMED_FACT, UNNAMED_TITLE)[0] == "unanchored"
    assert f.check("net interest income up $16.9 million 2019", UNNAMED, UNNAMED_FACT, UNNAMED_TITLE) is None
    # A named document: its entity is the anchor, though not a generic word of its name ("the group").
    assert check("Ardent Media Group discount rate range") is None
    assert check("the group's discount rate range")[0] == "unanchored"
    assert check("discount rate range of 12.6% to 14.2%") is None
    # A fact with no figure asks for no anchor: nothing would single it out but its words.
    assert check("the group's valuation specialists discount rate",
                 fact="We involved our valuation specialists to assess the discount rate.") is None


def test_in_a_document_that_names_no_one_every_query_needs_an_anchor():
    """Whatever its fact: an excerpt that names no company is singled out by a figure or a date, or not at all."""
    f = SupportFilter(max_unsupported=0.25)
    fact = ("Net interest income increased by $16.9 million mainly because average loan balances grew and deposit "
            "costs stayed flat.")
    why = f.check("why net interest income increased loan balances", UNNAMED, fact, UNNAMED_TITLE)
    assert why[0] == "unanchored" and "names no one" in why[1]
    assert f.check("net interest income up $16.9 million loan balances", UNNAMED, fact, UNNAMED_TITLE) is None
    # A named document still asks no anchor of a fact without a figure (measured and dropped: benchmarks/README.md).
    assert check("the group's valuation specialists discount rate",
                 fact="We involved our valuation specialists to assess the discount rate.") is None


def test_anchors_are_an_entity_word_a_dated_period_or_a_stated_figure():
    from buildbench.quality.numbers import figures
    from buildbench.quality.support import anchors

    assert figures("$16.9 million in 2019, 1,346 stores, Q3 FY19") == {"16.9", "1346"}
    statement = "FOMC policy statement, 1995-07-06"
    assert anchors("FOMC rate decision", "The Committee cut rates.", statement)
    assert anchors("the Committee's July 1995 rate cut", "The Committee cut rates.", statement)  # dated
    assert not anchors("the Committee's 1995 rate cut", "The Committee cut rates.", statement)  # a year is not
    assert not anchors("the bank's deposits", "Deposits grew.", "Caldera National Bank - Annual Report 2025")
    assert not anchors("deposits of 12 billion", "Deposits grew to 11 billion.", "(2025)")  # not its figure
    # a day of a month or a split fiscal year is a date every report of its year states, not a figure
    assert figures("year ended December 31, 2019, at 30 June 2019, 2017/18, Jan. 1, 2012") == set()
    year_end = "(2019) Net interest income for the year ended December 31, 2019 rose $16.9 million."
    assert not anchors("net interest income for the year ended December 31, 2019", year_end, "(2019)")


def test_a_number_that_labels_a_standard_or_section_is_no_anchor():
    """"ASC 606", "Level 1" or "Scope 1 and 2" is cited by every report that applies the rule, and "page 112" is a
    place in one; a value is neither."""
    from buildbench.quality.numbers import value_figures
    from buildbench.quality.support import anchors

    assert value_figures("Level 1 inputs of $4.2 million, Topic 605 and Topic 606, Scope 1 & 2, Note 19.") == {"4.2"}
    assert value_figures("levels 1, 2 and 3; Tier 1 ratio of 14.2%") == {"14.2"}
    assert value_figures("a leverage covenant level of 3.5 times") == {"3.5"}  # a decimal is a value
    assert value_figures("AASB 9 and FRS 102 loss allowance of $0.8 million") == {"0.8"}  # national standards too
    title = "(2019)"
    assert value_figures("adopted ASU 2016-02 in 2019; our 401(k) plan matches 4%") == {"4"}
    assert value_figures("Note 5 lists 5 stores") == {"5"}  # the label's number is a value where it is one
    # a search that names a section's number names a rule, not a figure of its passage (tatqa_dev: 8 of the 10
    # labelled queries anchored so were vague or wrong)
    section = "(2019) Our use of net operating loss carryforwards is limited under Section 382 of the Code."
    assert not anchors("net operating loss 382 2019", section, title)
    assert not anchors("retained earnings 2016-02 2018", "(2018) We adopted ASU 2016-02 on January 1.", title)
    assert not anchors("deferred compensation plan 401(k)s", "(2019) A plan above the 401(k) limits.", title)
    assert anchors("Note 5 stores 5", "(2019) Note 5 lists 5 stores.", title)
    assert not anchors("112 results reconciliation", "(2019) See the reconciliation on page 112.", title)
    passage = (title + " Level 2 inputs are observable inputs other than Level 1 prices. Level 2 assets were $12.4 "
               "million at year end.")
    assert not anchors("observable inputs other than Level 1 prices", passage, title)
    assert anchors("Level 2 assets $12.4 million", passage, title)
    fact = "Level 2 inputs are observable inputs other than Level 1 prices."
    f = SupportFilter(max_unsupported=0.25)
    assert f.check("observable inputs other than Level 1 prices", passage, fact, title)[0] == "unanchored"
    assert f.check("Level 2 assets $12.4 million", passage, "Level 2 assets were $12.4 million at year end.",
                   title) is None


def test_a_relation_the_passage_never_states_is_invented():
    # The Ardent passage states figures and an assessment, no cause, effect or comparison.
    reason, detail = check("What is the impact of the discount rate range on Ardent Media Group's goodwill?")
    assert reason == "invented_relation" and "impact" in detail
    assert check("How much of Ardent Media Group's discount rate is due to 12.6%?")[0] == "invented_relation"
    # A passage that states a cause supports asking for it.
    because = PASSAGE.replace("fell by 17%.", "fell by 17% because two titles closed.")
    assert SupportFilter().check("What is the impact of Ardent Media Group's print advertising revenue on goodwill?",
                                 because, "", TITLE) is None


def test_a_quarter_or_month_the_passage_never_states_is_invented():
    reason, detail = check("Ardent Media Group discount rate range in Q3 2025")
    assert reason == "invented_period" and "q3" in detail
    assert check("Ardent Media Group discount rate range for the first half of 2025")[0] == "invented_period"
    # The passage's own periods, and the document's dated title, state theirs.
    dated = "FOMC policy statement, 1995-07-06"
    assert SupportFilter().check("FOMC July 1995 rate cut", dated + " The Committee cut the rate.", "", dated) is None
    assert SupportFilter().check("Ardent third-quarter discount rate", PASSAGE + " In the third quarter",
                                 "", TITLE) is None


def test_a_day_the_passage_dates_in_another_year_is_invented():
    ruling = ("Central Bank of Veloria: Financial Stability Report, November 2025 The Committee raised the buffer rate "
              "in 2025. Banks must comply with the new rate from 1 December 2026.")
    fact = "Banks must comply with the new rate from 1 December 2026."
    # Both years are in the passage, so only the day tells the invented date.
    reason, detail = SupportFilter().check("Central Bank of Veloria buffer rate 1 December 2025", ruling, fact,
                                           "Central Bank of Veloria: Financial Stability Report, November 2025")
    assert (reason, detail) == ("invented_period", "it names 1 December 2025, a day neither its passage nor its title "
                                "dates so")
    assert SupportFilter().check("Central Bank of Veloria buffer rate December 1, 2026", ruling, fact,
                                 "Central Bank of Veloria: Financial Stability Report, November 2025") is None
    # A passage's day carries every year of its date ("December 31, 2025 and 2024") and a span of days is each day.
    assert SupportFilter().check("Ardent Media Group discount rate range December 31, 2024",
                                 PASSAGE + " As of December 31, 2025 and 2024, the range held.", "", TITLE) is None
    assert SupportFilter().check("Ardent Media Group discount rate range 9 April 2025",
                                 PASSAGE + " Meeting of 9–10 April 2025.", "", TITLE) is None


def test_a_year_neither_the_passage_nor_its_title_states_is_invented():
    # One invented word in five: the share of unsupported words let it pass; a wrong year is wrong whatever else.
    reason, detail = check("Ardent Media Group discount rate specialists range 2024")
    assert (reason, detail) == ("invented_period", "it names 2024, which neither its passage nor its title states")
    assert check("What discount rate range did the auditors of Ardent Media Group check in 2023?")[0] == \
        "invented_period"
    # The title's year is the document's: stated.
    undated = PASSAGE.replace(" During 2025", " During the year")
    assert SupportFilter().check("Ardent Media Group discount rate range 2025", undated, FACT, TITLE) is None
    assert invented_years("net average space growth 1.4% normalised 2025 2019", "Growth was 1.4% in 2019.") == {"2025"}
    assert invented_years("FY2025 capex $212 million", "Capex was $212 million.") == set()  # a fiscal-year code
    # A keyword search loses such a year when its other words outweigh it as they would an unsupported word.
    growth = "Net average space growth was 1.4% normalised."
    assert without_invented_years("net average space growth 1.4% normalised 2025", growth, "", 0.25) == \
        "net average space growth 1.4% normalised"
    warehouse = "Capital spending on the new distribution warehouse was $140 million."
    assert without_invented_years("2025 capital spending new distribution warehouse $140 million, 2025", warehouse,
                                  "", 0.25) == "capital spending new distribution warehouse $140 million"
    policy = "Granbury & Pike Specialty Insurance - Policy Wording"
    assert without_invented_years("Granbury & Pike Specialty coverage 2025", policy + " Coverage begins at once.",
                                  policy, 0.25) is None  # mostly year: drafted again
    assert without_invented_years("net average space growth 1.4%", growth, "", 0.25) is None  # no year to take out


def test_a_keyword_search_loses_a_multiple_sign_its_passage_never_writes_and_repeated_tokens():
    grants = "The weighted average grant date fair value was $31.20 in 2021 and $27.45 in 2020."
    assert tidy_search("weighted average grant date fair value 31.20x 27.45x", grants) == \
        "weighted average grant date fair value 31.20 27.45"
    cash = "Net cash used in investing activities rose by $212.5 million to $480.1 million in 2021."
    assert tidy_search("cash used in investing activities 212.5 million x 2021 480.1 million", cash) == \
        "cash used in investing activities 212.5 million 2021 480.1 million"
    # a covenant written as a multiple keeps its sign; so does a passage that says "times"
    covenant = "Net debt to EBITDA may not exceed 3.25x, stepping down to 3.0x in 2027."
    assert tidy_search("net debt to EBITDA covenant 3.25x 2027", covenant) == "net debt to EBITDA covenant 3.25x 2027"
    assert tidy_search("interest cover 4.1x", "Interest cover was 4.1 times.") == "interest cover 4.1x"
    # a token twice in a row, and a year glued to a figure
    benefit = "A deferred tax benefit of $0.6 million in 2021 and $1.9 million in 2020 was recorded."
    assert tidy_search("deferred tax benefit 2021$0.6 million 2020 2020", benefit) == \
        "deferred tax benefit 2021 $0.6 million 2020"
    # words are never touched: a name with an x, a plain search
    assert tidy_search("Xylo Box x-ray scanners 2021", grants) == "Xylo Box x-ray scanners 2021"
    assert tidy_search("net average space growth 1.4%", grants) == "net average space growth 1.4%"


def test_a_keyword_search_without_a_figure_gains_its_facts_one_figure_with_its_unit():
    cap = "The inventory component may not exceed 60% of the Borrowing Base."
    assert with_fact_figure("Ironclad Industrial inventory 2025", cap) == "Ironclad Industrial inventory 60% 2025"
    assert with_fact_figure("Ironclad Industrial inventory", cap) == "Ironclad Industrial inventory 60%"
    # before the closing period, whatever leads it; currency, scale and unit as the fact writes them
    turnover = "Annualized driver turnover in our truckload segment was 78% in fiscal 2025."
    assert with_fact_figure("Northwind driver turnover in fiscal 2025", turnover) == \
        "Northwind driver turnover 78% in fiscal 2025"
    buyback = "The Group announced a EUR 600 million share buyback, to run from November 2025 to March 2026."
    assert with_fact_figure("Ostmark share buyback 2025", buyback) == "Ostmark share buyback EUR 600 million 2025"
    assert with_fact_figure("Veloria bond portfolio 2025", "The monthly run-off stays at 4 billion crowns.") == \
        "Veloria bond portfolio 4 billion crowns 2025"
    assert with_fact_figure("Crestline gross leverage", "We want gross leverage under 1.5 times by mid-2026.") == \
        "Crestline gross leverage 1.5 times"
    assert with_fact_figure("Meridian credit card 2025", "The card program generated $214 million in 2025.") == \
        "Meridian credit card $214 million 2025"
    # a year that is part of a term is no closing period
    notes = "Our convertible senior notes due 2029, in aggregate principal of $1.75 billion, may be settled in cash."
    assert with_fact_figure("Crestline convertible senior notes due 2029", notes) == \
        "Crestline convertible senior notes due 2029 $1.75 billion"
    # left alone: a search that states a figure, a fact with none or with several (whose binding is the
    # writer's), a bare count with no unit, and a date's day
    assert with_fact_figure("Ironclad inventory cap 60 percent", cap) == "Ironclad inventory cap 60 percent"
    assert with_fact_figure("Veloria balance sheet 2025", "The Council reviewed its balance sheet policy.") == \
        "Veloria balance sheet 2025"
    liquidity = "HQLA were $112 billion, and unused borrowing capacity added $41 billion."
    assert with_fact_figure("Caldera HQLA 2025", liquidity) == "Caldera HQLA 2025"
    suit = "A class action alleges that we misclassified approximately 2,300 owner-operators."
    assert with_fact_figure("Northwind class action 2025", suit) == "Northwind class action 2025"
    assert with_fact_figure("Veloria policy decision 2025", "On 12 February 2025 the Council held its rate.") == \
        "Veloria policy decision 2025"


def test_a_figure_is_read_with_its_currency_scale_and_unit_in_one_spelling():
    assert written_figures("We paid distributions of $0.765 per common unit; US$0.765 in the call.") == {"$0.765"}
    assert written_figures("CET1 was 14.6 percent, or 14.6%, up 50 basis points (50 bps).") == {
        "14.6%", "50 basis points"}
    assert written_figures("a limit of 4.5x or 4.5 times gross income") == {"4.5 times"}
    assert written_figures("EUR 600 million, €600 million, $1.2bn and SEK 4.0 billion") == {
        "EUR 600 million", "$1.2 billion", "SEK 4.0 billion"}
    # a bare count or year says what it counts nowhere
    assert written_figures("2,300 owner-operators in 2025") == frozenset()


def test_a_search_that_writes_a_figure_is_read_as_its_figures_and_asking_words():
    title = "Tidewater Energy Partners - Fourth Quarter 2025 Earnings Call"
    assert figure_search("Tidewater Energy Partners $0.765 per unit 2025", title) == (
        frozenset({"$0.765"}), frozenset({"unit"}))
    assert figure_search("Central Bank of Veloria 4.5 times gross income 2025", "Central Bank of Veloria") == (
        frozenset({"4.5 times"}), frozenset({"incom", "gross", "time"}))
    # no figure, or nothing but the document and a figure: nothing to match another passage on
    empty = (frozenset(), frozenset())
    assert figure_search("Tidewater Energy Partners distribution 2025", title) == empty
    assert figure_search("Tidewater Energy Partners $0.765", title) == empty


def test_period_marks_are_canonical():
    from buildbench.builders.context import period_marks

    assert period_marks("Q3 2025, the second quarter, H1, Sept. 30, 2025-07-06") == {"q3", "q2", "h1", "september",
                                                                                      "july"}
    assert period_marks("we may decide in the second half") == {"h2"}  # "may" the verb is no month


def test_a_fiscal_year_does_not_single_out_a_document():
    from buildbench.quality.support import anchors

    report = "Solvane Chemicals Group - MD&A: Liquidity and Capital Resources (Fiscal 2025)"
    assert not anchors("How funded was our pension plan in fiscal 2025?", "Plans were 94% funded.", report)
    assert anchors("How funded was Solvane's pension plan?", "Plans were 94% funded.", report)
    assert anchors("pension plan 94% funded", "Plans were 94% funded.", report)


def test_a_query_of_figures_only_asks_nothing_of_its_fact():
    # Numbers other than years are figures (anchors), not words: no division by an empty word list.
    passage = "(2019) Labour resources increased by 119 employees to 1,620."
    assert SupportFilter().check("119 - 1,620", passage, "Labour rose by 119.", "(2019)")[0] == "names_only_document"
    # scale words name no measure either
    sales = "(2019) Acquired businesses had sales of $8.9 million and $0.6 million in 2019 and 2018, respectively."
    assert SupportFilter().check("$8.9 million and $0.6 million, respectively", sales, sales[7:], "(2019)")[0] == \
        "names_only_document"
    assert SupportFilter().check("acquired businesses sales $8.9 million", sales, sales[7:], "(2019)") is None
    # nor does a period word: "fiscal" of "fiscal year 2019" is when, not what
    fiscal = "(2019) Acquired businesses had sales of $8.9 million and $0.6 million for fiscal year 2019 and 2018."
    assert SupportFilter().check("$8.9 million and $0.6 million for fiscal year 2019 and 2018, respectively.",
                                 fiscal, fiscal[7:], "(2019)")[0] == "names_only_document"


def test_a_query_of_figures_and_their_units_asks_nothing_a_unit_beside_a_measure_still_ties_it_to_its_fact():
    vessel = "(2019) The Polar Spirit was off-hire for 35 days in 2019, against 82 days in 2018."
    f = SupportFilter()
    for query in ("35 days, 2019", "82 days 35 days 2018", "off-hire 35 days 2019"):
        assert f.check(query, vessel, vessel[7:], "(2019)") == (
            ("names_only_document", "it names only its document, its period or figures and their units")
            if "off-hire" not in query else None), query
    cut = "(2025) The Council lowered the policy rate by 25 basis points, to 4.25 percent."
    assert f.check("25 basis points in 2025", cut, cut[7:], "(2025)")[0] == "names_only_document"
    # beside a measure, "basis points" is what ties "cut" to a fact that says "lowered"
    title = "Central Bank of Veloria: Policy Statement, 2025"
    lowered = "The Council lowered the rate by 25 basis points, to 4.25 percent."
    assert f.check("Central Bank of Veloria 25 basis points cut to 4.25 percent",
                   f"{title} The Council cut its policy rate. {lowered}", lowered, title) is None


def test_a_figure_the_passage_does_not_state_is_invented():
    reason, detail = check("Ardent Media Group discount rate range 12.6% to 15%")
    assert reason == "invented_figure" and "15" in detail
    assert check("Ardent Media Group discount rate range 12.6% to 14.2%") is None


def test_a_query_that_fits_another_document_of_its_entity_is_ambiguous():
    title = "Central Bank of Veloria: Minutes of the Monetary Policy Council, October 2025"
    passage = f"{title} Core inflation eased to 2.6 percent in the third quarter, and the Council held the rate."
    fact = "Core inflation eased to 2.6 percent in the third quarter."
    # the February statement of the same bank gives core inflation too
    february = frozenset(singular_stems("Core inflation was 3.1 percent in January; the Council raised the rate."))
    unrelated = frozenset(singular_stems("Loan-to-income limits for first-time buyers stay at 4.5 times income."))
    f = SupportFilter()
    reason, detail = f.check("Central Bank of Veloria core inflation 2025", passage, fact, title, (february,))
    assert reason == "ambiguous_document" and "another document" in detail
    # a month, a quarter or a figure of its own passage tells it apart; so do words the other document lacks
    assert f.check("Central Bank of Veloria core inflation October 2025", passage, fact, title, (february,)) is None
    assert f.check("Central Bank of Veloria core inflation third quarter 2025", passage, fact, title,
                   (february,)) is None
    assert f.check("Central Bank of Veloria core inflation 2.6 percent", passage, fact, title, (february,)) is None
    assert f.check("Central Bank of Veloria core inflation eased 2025", passage, fact, title, (february,)) is None
    # a section's number is no figure of its own: the other document has a section 4 too
    sectioned = passage + " Section 4 reviews core inflation."
    other = frozenset(singular_stems("Section 4: core inflation was 3.1 percent in January."))
    assert f.check("Central Bank of Veloria section 4 core inflation 2025", sectioned, fact, title,
                   (other,))[0] == "ambiguous_document"
    # without another document of the entity, or when it says nothing of the query's words, it is kept
    assert f.check("Central Bank of Veloria core inflation 2025", passage, fact, title) is None
    assert f.check("Central Bank of Veloria core inflation 2025", passage, fact, title, (unrelated,)) is None
    # a plural is the same word: "bond holdings" of another statement's "holdings of bonds"
    bonds = frozenset(singular_stems("The Council will keep reducing its holdings of government bonds by 2 billion."))
    held = f"{title} The Council kept its bond holdings unchanged at 41 billion."
    assert f.check("Central Bank of Veloria bond holdings 2025", held, "The Council kept its bond holdings "
                   "unchanged at 41 billion.", title, (bonds,))[0] == "ambiguous_document"


def test_a_phrase_its_passage_never_states_is_invented():
    # every word is in the passage; "advertising range" and "valuation unit" are not
    reason, detail = check("What advertising range did the valuation unit of Ardent Media Group derive?")
    assert reason == "invented_phrase" and "'advertising range'" in detail and "'valuation unit'" in detail
    # one loose pair is allowed: a searcher joins two words now and then ("discount range")
    assert loose_pairs("Which discount range did the valuation specialists assess?", PASSAGE, TITLE) == [
        "discount range"]
    assert check("Which discount range did the valuation specialists of Ardent Media Group assess?") is None
    # pairs within three words of each other, in either order, are the passage's own phrases
    assert loose_pairs("range derived independently", PASSAGE) == []
    # words of the title and figures are no phrase: "Ardent goodwill", "GBP 64"
    assert loose_pairs("Ardent Media goodwill GBP 64 million charge", PASSAGE, TITLE) == []


def test_an_ask_its_fact_cannot_answer_is_dropped_last():
    # The impairment sentence states a year and a cause ("after ... fell"), no month, span or purpose.
    fact = ("During 2025 the Group recognised an impairment charge of GBP 64 million against this goodwill, after "
            "print advertising revenue in the cash-generating unit fell by 17%.")
    assert check("I need to know when in 2025 Ardent Media Group recognised the GBP 64 million impairment charge.",
                 fact)[0] == "asks_when"
    # A "when" its fact answers: the year is new to the query.
    assert check("When did Ardent Media Group recognise its goodwill impairment charge?", fact) is None
    # The same "when" naming the fact's figure passes asks_when, and is then a question that states its answer.
    assert check("When did Ardent Media Group recognise the GBP 64 million impairment charge?",
                 fact)[0] == "states_answer"
    # Not when the query names a year already: the fact's other year is a comparison, not the answer.
    compared = fact.replace("During 2025", "During 2025, against none in 2024,")
    assert check("I need to know when in 2025 Ardent Media Group recognised the GBP 64 million impairment charge.",
                 compared)[0] == "asks_when"
    assert check("Why did Ardent Media Group recognise the GBP 64 million impairment charge?",
                 fact.split(", after")[0] + ".")[0] == "asks_why"
    assert check("What is the rationale for the discount rate range Ardent Media Group's valuation "
                 "specialists assessed?", FACT)[0] == "asks_why"
    # "because", "driven by" or a purpose ("to fund") is a cause the fact states.
    caused = FACT.replace("We involved", "Because the charge was material, we involved")
    assert check("Why did Ardent Media Group's auditors involve valuation specialists?", caused) is None
    # A "since" of time is no cause; a "since" of reason is.
    assert check("Why did Ardent Media Group's auditors involve valuation specialists?",
                 FACT.replace("We involved", "Since 2021 we have involved"))[0] == "asks_why"
    assert check("Why did Ardent Media Group's auditors involve valuation specialists?",
                 FACT.replace("We involved", "Since the charge was material, we involved")) is None
    reason, detail = check("I need to know the discount rate range Ardent Media Group's auditors assessed, and "
                           "whether valuation specialists were involved.")
    assert reason == "asks_two_things" and "and whether" in detail
    # Checked after the others: an invented term keeps its own reason (and its redraft of the same fact).
    assert check("When did Ardent Media Group's CET1 discount rate range change, and why?")[0] == "unsupported_terms"


def test_a_what_would_of_a_fact_without_a_case_or_estimate_is_dropped():
    from buildbench.quality.asks import unanswered_ask

    guidance = "We expect non-GAAP gross margin between 60.5% and 61.5% in the first quarter."
    reason, _ = unanswered_ask("How much would a 60.5% non-GAAP gross margin increase in Q4 2025?", guidance)
    assert reason == "asks_hypothetical"
    sensitivity = "A 200 basis point rise in rates would cut net interest income by an estimated 4.1%."
    assert unanswered_ask("How much would a 200 basis point rate rise cut net interest income?", sensitivity) is None
    assert unanswered_ask("I would like the 2026 non-GAAP gross margin guidance.", guidance) is None


def test_a_question_or_request_that_compares_two_things_is_dropped_one_against_its_earlier_period_is_not():
    from buildbench.quality.asks import unanswered_ask

    trucking = ("Average revenue per loaded mile fell 3.2%, and the average number of tractors in service decreased "
                "2.9%.")
    reason, detail = unanswered_ask("I need to know whether Northwind Logistics' 2025 average revenue per loaded mile "
                                    "is higher than the average number of tractors in service.", trucking)
    assert reason == "asks_comparison" and "'higher than'" in detail
    assert unanswered_ask("What is the difference between Coyote Flats and Tidewater Energy Partners?",
                          "Coyote Flats came in $12 million under its $410 million budget.")[0] == "asks_comparison"
    # a thing against an earlier period of itself is what a searcher compares
    revenue = "Home sales revenue increased 6% to $5.27 billion, compared with $4.97 billion in 2024."
    assert unanswered_ask("I need to know whether Granite Peak Homebuilders' 2025 sales revenue was higher or lower "
                          "than the 2024 revenue.", revenue) is None
    margin = "Non-GAAP gross margin was 61.8%, down 90 basis points from the prior quarter."
    assert unanswered_ask("Was Crestline Semiconductor's Q4 2025 gross margin lower than the prior quarter?",
                          margin) is None
    # a keyword search is no comparison ask ("higher than 90 days past invoice date" is a bucket of its passage)
    bucket = "Receivables more than 90 days past invoice date were 4% of the total."
    assert unanswered_ask("Ironclad receivables higher than 90 days past invoice date", bucket) is None
    assert unanswered_ask("Were Ironclad's receivables higher than 90 days past invoice date?",
                          bucket)[0] == "asks_comparison"


def test_a_question_that_states_a_figure_of_its_fact_is_dropped_a_request_or_search_is_not():
    impairment = "During 2025 the Group recognised an impairment charge of GBP 64 million against this goodwill."
    reason, detail = check("What was Ardent Media Group's GBP 64 million impairment charge in 2025?", impairment)
    assert reason == "states_answer" and "64" in detail
    # The fact's figure, not any figure: the range stands in the passage, not in this fact, so the question binds
    # another sentence's figure to the impairment (``other_fact_figure``), which it does not state as an answer.
    assert check("What impairment charge did Ardent Media Group recognise against the 12.6% discount rate?",
                 impairment)[0] == "other_fact_figure"
    assert check("What impairment charge did Ardent Media Group recognise in 2025?", impairment) is None
    # A request names its figure to check it; a keyword search names it to single its passage out.
    assert check("I need to know whether Ardent Media Group's 2025 impairment charge was GBP 64 million.",
                 impairment) is None
    assert check("Ardent Media Group GBP 64 million impairment charge 2025", impairment) is None
    # Without a fact (a recipe that writes from the passage) there is no answer to state.
    assert check("What was Ardent Media Group's GBP 64 million impairment charge in 2025?", "") is None


def test_a_question_or_request_about_a_year_its_fact_does_not_state_is_dropped_a_keyword_search_is_not():
    title = "Management's Discussion and Analysis: Granite Peak Homebuilders, Year Ended December 31"
    fact = "Our homebuilding debt-to-capital ratio was 19.8%, and we had $1.05 billion of cash."
    passage = f"{title} SG&A was 9.6% of home sales revenue, against 9.3% in 2024. {fact}"
    f = SupportFilter()
    reason, detail = f.check("What was Granite Peak Homebuilders' debt-to-capital ratio in 2024?", passage, fact,
                             title)
    assert reason == "asks_other_year" and "2024" in detail
    assert f.check("I need to know whether Granite Peak Homebuilders' debt-to-capital ratio was 19.8% in 2024.",
                   passage, fact, title)[0] == "asks_other_year"
    # a keyword search adds its report's year; a question without a year, or of its fact's year, asks its fact
    assert f.check("Granite Peak Homebuilders debt-to-capital ratio 2024", passage, fact, title) is None
    assert f.check("What was Granite Peak Homebuilders' debt-to-capital ratio?", passage, fact, title) is None
    dated = fact.replace("was 19.8%", "was 19.8% at the end of 2024")
    assert f.check("What was Granite Peak Homebuilders' debt-to-capital ratio in 2024?", passage + " " + dated,
                   dated, title) is None
    # the title's year is the document's own period
    assert f.check("What was Granite Peak Homebuilders' debt-to-capital ratio in 2024?", passage, fact,
                   title + ", 2024") is None


def test_an_ask_for_a_value_its_fact_does_not_state_is_dropped():
    # The specialists' sentence without its range states no figure: what the range is, it cannot say.
    no_figure = "We involved our valuation specialists to assess the discount rate."
    reason, detail = check("What is the discount rate range Ardent Media Group's valuation specialists assessed?",
                           no_figure)
    assert reason == "asks_value" and "what is" in detail
    assert check("How much was Ardent Media Group's discount rate?", no_figure)[0] == "asks_value"
    # With its figures it can; and a query that asks no value of it passes.
    assert check("What is the discount rate range Ardent Media Group's valuation specialists assessed?") is None
    assert check("Did Ardent Media Group's valuation specialists assess the discount rate?", no_figure) is None
    # A year is no figure: "in 2025" says when, not how much.
    dated = "During 2025 the Group recognised an impairment charge against this goodwill."
    assert check("What was Ardent Media Group's impairment charge on goodwill in 2025?", dated)[0] == "asks_value"


def test_a_figure_written_in_dollars_its_passage_never_writes_so_is_dropped_last():
    # The passage states GBP 64 million, 12.6% and 17%: "$64 million" or "$12.6%" is a unit it never gives them.
    reason, detail = check("Ardent Media Group $12.6% discount rate range")
    assert reason == "invented_unit" and "$12.6" in detail
    assert check("Ardent Media Group $64 million impairment charge 2025",
                 fact=PASSAGE.split(" During ")[1])[0] == "invented_unit"
    dollars = PASSAGE.replace("GBP 64 million", "$64 million")
    assert SupportFilter().check("Ardent Media Group $64 million impairment charge 2025", dollars, dollars,
                                 TITLE) is None
    # A percent too: GBP 64 million is no 64%, and 12.6% is.
    assert check("Ardent Media Group 64% print advertising revenue charge 2025",
                 fact=PASSAGE.split(" During ")[1])[0] == "invented_unit"
    assert check("Ardent Media Group discount rate range 12.6% to 14.2%") is None
    from buildbench.quality.support import _unit_figures
    assert _unit_figures("$1,200 and 12.6 percent, 3 per cent, 4%") == {"$1200", "12.6%", "3%", "4%"}
    # Pence are no cents: a dividend the passage gives in cents and, converted, in pence.
    title = "Harwell Foods plc Annual Report 2025: Dividends"
    dividend = "The final dividend proposed for 2025 of 3.45 cents per Ordinary Share is equivalent to 2.70 pence."
    pence = checker(f"{title} {dividend}", title, dividend)
    assert pence("Harwell Foods 3.45 pence per Ordinary Share dividend 2025")[0] == "invented_unit"
    assert pence("Harwell Foods 3.45 cents per Ordinary Share dividend 2025") is None
    assert pence("Harwell Foods 2.70 pence final dividend 2025") is None
    # Checked after the others: an invented figure keeps its reason.
    assert check("Ardent Media Group $15% discount rate range")[0] == "invented_figure"


def test_a_query_stating_a_change_the_other_way_from_its_fact_is_dropped():
    """"Expect to increase its net new orders" of orders "down 2%" asks about a change that did not happen."""
    title = "Management's Discussion and Analysis: Granite Peak Homebuilders, Year Ended December 31, 2025"
    orders = "Net new orders for 2025 were 10,036 homes, down 2% from the prior year."
    rates = "Financing incentives reduced buyers' mortgage rates to as low as 4.99% on select homes."
    buyback = "The board authorized buybacks of up to $750 million."
    # The passage's other sentences hold the queries' other words, so only the direction can fail them.
    passage = (f"{title} {orders} {rates} {buyback} We expect land costs to increase, which led to higher prices and "
               "will fall on buyers.")
    check = checker(passage, title)

    reason, detail = check("What does Granite Peak Homebuilders expect to increase its net new orders for 2025?",
                           orders)
    assert reason == "opposite_direction" and "'increase'" in detail and "'down'" in detail
    assert check("I need to know whether Granite Peak Homebuilders' mortgage rates were higher.",
                 rates)[0] == "opposite_direction"
    # The same direction, or a fact that states both ways, or none, passes; so does a query naming both.
    assert check("How much did Granite Peak Homebuilders' net new orders fall in 2025?", orders) is None
    assert check("What does Granite Peak Homebuilders expect to increase its net new orders for 2025?",
                 orders.replace("down 2%", "down 2% after an increase")) is None
    assert check("How much did Granite Peak Homebuilders' net new orders increase in 2025?",
                 "Net new orders for 2025 were 10,036 homes.") is None
    assert check("How much did Granite Peak Homebuilders' net new orders fall after an increase in 2025?",
                 orders) is None
    # "Up to" is a bound, not a rise.
    assert check("How much did Granite Peak Homebuilders reduce its authorized buybacks?", buyback) is None


def test_a_query_that_takes_its_turns_speaker_for_the_subject_is_drafted_again():
    """A transcript turn opens with who speaks: "the analyst's guidance" is the company's, read back to it."""
    title = "Harwell Foods Inc. - Q3 2025 Earnings Call Transcript: Questions and Answers"
    analyst = ("Analyst, Pinecrest Research: You are lowering full-year EPS guidance to $3.10 to $3.20, and comparable "
               "sales fell 2.8% in the quarter.")
    cfo = "Dana Okafor, Chief Financial Officer: Adjusted EBITDA was $212 million in the third quarter."
    place = "Dallas, Texas: the distribution centre opened in the third quarter."
    passage = f"{title} {analyst} {cfo} {place}"
    check = checker(passage, title)

    reason, detail = check("What is the analyst's full-year EPS guidance for Harwell Foods?", analyst)
    assert reason == "names_speaker" and "'Analyst'" in detail
    # An analyst's firm is its speaker too, in any query; the company's guidance itself is what to ask.
    assert check("Pinecrest Research sales fell 2.8%", analyst)[0] == "names_speaker"
    assert check("Harwell Foods full-year EPS guidance $3.10 to $3.20", analyst) is None
    # A company's speaker, by name or surname, in a question; a keyword search may name the speaker.
    assert check("What was the adjusted EBITDA for Dana Okafor's third quarter?", cfo)[0] == "names_speaker"
    assert check("What was Okafor's adjusted EBITDA in the third quarter?", cfo)[0] == "names_speaker"
    assert check("Dana Okafor adjusted EBITDA $212 million third quarter", cfo) is None
    assert check("What was Harwell Foods' adjusted EBITDA in the third quarter?", cfo) is None
    # A place before a colon is no speaker.
    assert check("When did Harwell Foods open its Dallas distribution centre?", place) is None
    # A wording failure: the slot is drafted again about the same fact.
    from buildbench.stages.generate_queries import SAME_FACT_REDRAFT
    assert "names_speaker" in SAME_FACT_REDRAFT


def test_a_question_about_a_quarterly_documents_year_as_a_whole_is_dropped():
    """A fourth-quarter call gives the quarter's revenue: "total revenue ... in fiscal 2025" asks for the year's."""
    title = "Harwell Foods Q4 Fiscal 2025 Earnings Call: Prepared Remarks"
    quarter = "Total revenue was $1.31 billion, up 9%, and frozen foods reached $412 million."
    year = "For the full year, total revenue was $4.9 billion."
    passage = f"{title} {quarter} {year}"
    check = checker(passage, title)

    reason, detail = check("What is the total revenue for Harwell Foods in fiscal 2025?", quarter)
    assert reason == "asks_whole_year" and "Q4 fiscal 2025" in detail
    assert check("I need to know Harwell Foods' total revenue for 2025.", quarter)[0] == "asks_whole_year"
    # Naming the quarter, or a fact about the whole year, or a keyword search, passes.
    assert check("What was Harwell Foods' total revenue in the fourth quarter of fiscal 2025?", quarter) is None
    assert check("What is the total revenue for Harwell Foods in fiscal 2025?", year) is None
    assert check("Harwell Foods total revenue $1.31 billion 2025", quarter) is None
    # A document of a whole year is no part of one.
    annual = "Harwell Foods Annual Report Fiscal 2025: Results"
    assert SupportFilter().check("What is the total revenue for Harwell Foods in fiscal 2025?",
                                 f"{annual} {quarter}", quarter, annual) is None


def test_a_question_presuming_what_its_fact_denies_is_dropped():
    """"What is the state's liability fund ...?" of a state that has no dedicated liability fund."""
    title = "Credit Rating Rationale: Harwell Power Corp. Downgraded to BBB, December 2025"
    fact = ("Harwell Power invested $640 million in undergrounding since 2022, but the state has no dedicated liability "
            "fund, leaving the utility exposed to wildfire claims.")
    passage = f"{title} {fact}"
    check = checker(passage, title, fact)

    reason, detail = check("What is the state's liability fund for Harwell Power Corp.?")
    assert reason == "presumes_negated" and "'liability'" in detail
    # Asking whether, or saying the negation, asks fairly; a word the fact also states plainly is no presumption.
    assert check("Does the state have a liability fund for Harwell Power Corp.'s wildfire claims?") is None
    assert check("I need to know whether the state has a dedicated liability fund for Harwell Power Corp.") is None
    assert check("What does Harwell Power Corp. lack for its wildfire claims, with no state liability fund?") is None
    assert check("How much has Harwell Power Corp. invested in undergrounding since 2022?") is None


def test_a_figure_its_passage_gives_but_its_fact_does_not_is_another_sentences():
    """Answer-first: "$400 million free cash flow" binds the buyback's figure to the fact's free cash flow."""
    title = "Harwell Foods Fourth Quarter Fiscal 2025 Earnings Call: Prepared Remarks"
    fact = "Free cash flow for the year was $301 million, a 19% margin."
    passage = f"{title} {fact} The board authorized a new $400 million share repurchase program."
    check = checker(passage, title, fact)

    reason, detail = check("Harwell Foods $400 million free cash flow 2025")
    assert reason == "other_fact_figure" and "400" in detail
    assert check("Harwell Foods $301 million free cash flow 2025") is None
    assert check("Harwell Foods free cash flow margin 19% 2025") is None
    # A figure its passage does not give at all is invented, as before; a slot with no fact is not held to one.
    assert check("Harwell Foods $350 million free cash flow 2025")[0] == "invented_figure"
    assert check("Harwell Foods $400 million share repurchase program", fact="") is None
    from buildbench.stages.generate_queries import SAME_FACT_REDRAFT
    assert "other_fact_figure" in SAME_FACT_REDRAFT


def test_a_search_whose_figure_its_fact_says_of_another_measure_is_drafted_again():
    """"$16.1 million net cash used in investing" of a fact that gives $16.1 million of capital expenditures."""
    title = "Harwell Foods Annual Report 2025: Liquidity"
    fact = ("Net cash used in investing activities was $44.2 million in 2025, driven by $16.1 million in capital "
            "expenditures.")
    check = checker(f"{title} {fact}", title, fact)

    reason, detail = check("Harwell Foods net cash used in investing activities $16.1 million 2025")
    assert reason == "misbound_figure" and "16.1" in detail and "44.2" in detail
    assert check("Harwell Foods net cash used in investing activities $44.2 million 2025") is None
    assert check("Harwell Foods capital expenditures $16.1 million 2025") is None
    from buildbench.stages.generate_queries import SAME_FACT_REDRAFT
    assert "misbound_figure" in SAME_FACT_REDRAFT


def test_a_search_giving_its_figure_another_year_of_its_list_is_drafted_again():
    title = "Harwell Foods Annual Report 2025: Property and Equipment"
    fact = ("Depreciation expense was $31.4 million, $28.9 million and $25.0 million in fiscal 2025, fiscal 2024 and "
            "fiscal 2023, respectively.")
    check = checker(f"{title} {fact}", title, fact)
    assert check("Harwell Foods $28.9 million depreciation expense 2025") == (
        "misdated_figure", "it dates 28.9 2025, a year its passage gives another figure")
    assert check("Harwell Foods $28.9 million depreciation expense 2024") is None
    from buildbench.stages.generate_queries import SAME_FACT_REDRAFT
    assert "misdated_figure" in SAME_FACT_REDRAFT
