"""Citation grounding: a YourBench query's citations must be found in its source chunks."""

from buildbench.domain_pack import GroundingConfig
from buildbench.generators.recipes import citation_support as recipe_citation_support
from buildbench.quality import CitationFilter, citation_support

COVENANT = ("Under the revised covenant, the borrower must keep its net leverage ratio below 3.5 times EBITDA, "
            "measured at the end of each fiscal quarter. A breach lets the lenders accelerate the loan.")
DIVIDEND = ("The board declared a quarterly dividend of 0.42 dollars per share, payable on 15 March to holders "
            "of record on 28 February.")


def test_recipes_use_the_moved_function():
    assert recipe_citation_support is citation_support


def test_verbatim_kept_and_fabricated_dropped_with_its_quote_and_score():
    fake = "Dividends are capped at half of net income in any year the ratio exceeds the limit"
    flt = CitationFilter(stage="query_grounding")
    res = flt.apply(
        ["good", "bad"], ["q1", "q2"],
        refs=[(["the borrower must keep its net leverage ratio below 3.5 times EBITDA"], [COVENANT]),
              ([fake], [COVENANT])],
    )
    assert res.keep == [True, False]
    (drop,) = res.drops
    assert (drop.stage, drop.item_id, drop.reason) == ("query_grounding", "bad", "unsupported_citation")
    assert "'Dividends are capped at half of net income in any year th...'" in drop.detail  # cut to 60 chars
    score = citation_support(fake, [COVENANT])
    assert score < 0.85 and f"scores {score:.2f}" in drop.detail and "0 of 1" in drop.detail
    assert res.stats == {"citations": 2, "citations_supported": 1, "queries_with_citations": 2}


def test_light_paraphrase_and_case_change_still_supported():
    quotes = ["The Borrower must keep its net-leverage ratio below 3.5x EBITDA",  # case, hyphen, "3.5x"
              "A BREACH LETS LENDERS ACCELERATE THE LOAN",                         # caps, one word dropped
              "  measured at the end of each\nfiscal   quarter  "]                 # spacing
    assert all(0.85 <= citation_support(q, [COVENANT]) for q in quotes)
    res = CitationFilter().apply(["q"], ["t"], refs=[(quotes, [COVENANT])])
    assert res.keep == [True] and res.stats["citations_supported"] == 3


def test_min_supported_half_keeps_one_of_two():
    refs = [(["net leverage ratio below 3.5 times EBITDA", "interest is paid in gold bars every Tuesday"],
             [COVENANT])]
    assert CitationFilter(GroundingConfig(min_supported=0.5)).apply(["q"], ["t"], refs=refs).keep == [True]
    strict = CitationFilter(GroundingConfig(min_supported=1.0)).apply(["q"], ["t"], refs=refs)
    assert strict.keep == [False] and "1 of 2" in strict.drops[0].detail
    assert "gold bars" in strict.drops[0].detail  # the worst citation is named


def test_queries_without_citations_are_kept_and_not_counted():
    res = CitationFilter().apply(["a", "b", "c"], ["x", "y", "z"],
                                 refs=[(None, [COVENANT]), ([], [COVENANT]), (None, [])])
    assert res.keep == [True, True, True] and not res.drops
    assert res.stats == {"citations": 0, "citations_supported": 0, "queries_with_citations": 0}


def test_multi_hop_citation_found_in_second_chunk():
    refs = [(["net leverage ratio below 3.5 times EBITDA", "a quarterly dividend of 0.42 dollars per share"],
             [COVENANT, DIVIDEND])]
    res = CitationFilter().apply(["q"], ["t"], refs=refs)
    assert res.keep == [True] and res.stats["citations_supported"] == 2
    # The same dividend quote against the first chunk alone is not grounded.
    alone = CitationFilter().apply(["q"], ["t"], refs=[(refs[0][0], [COVENANT])])
    assert alone.keep == [False] and "quarterly dividend" in alone.drops[0].detail


def test_disabled_keeps_everything():
    res = CitationFilter(GroundingConfig(enabled=False)).apply(["q"], ["t"], refs=[(["made up"], [COVENANT])])
    assert res.keep == [True] and not res.drops
