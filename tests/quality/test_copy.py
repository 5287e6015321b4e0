import pytest
from .quality_samples import PASSAGES

from buildbench.domain_pack import CopyConfig
from buildbench.quality import CopyFilter

CHUNK = PASSAGES[0]


def run(queries, chunk=CHUNK, cfg=None):
    ids = [f"q{i}" for i in range(len(queries))]
    return CopyFilter(cfg).apply(ids, queries, [chunk] * len(queries))


def test_verbatim_span_is_a_copy():
    result = run(["central bank raised its benchmark interest rate by a quarter of a percentage point"])
    assert result.keep == [False]
    assert result.drops[0].reason == "copied_from_chunk"
    assert "verbatim 14-word span" in result.drops[0].detail


def test_verbatim_span_ignores_case_and_punctuation():
    result = run(["POLICYMAKERS SAID: further increases may be appropriate, if price pressures do not ease?"])
    assert result.keep == [False]


def test_high_ngram_overlap_is_a_copy():
    # 5 of the 6 word 3-grams occur in the chunk (0.83); with max_overlap 0.8 that is a copy.
    query = "the decision was widely expected by investors today"
    f = CopyFilter(CopyConfig(max_overlap=0.8, ngram=3))
    assert f.overlap(query, CHUNK) == pytest.approx(5 / 6)
    result = f.apply(["q"], [query], [CHUNK])
    assert result.keep == [False]
    assert result.drops[0].detail.startswith("overlap 0.83: 5 of 6 query word 3-grams")


def test_paraphrase_is_kept():
    queries = [
        "why did the central bank lift rates again despite calls for a pause",
        "Policymakers said more increases might be appropriate if price pressures do not ease soon",
        "which sectors still feel earlier rate increases",
        "borrowing costs highest in a decade",
    ]
    result = run(queries)
    assert result.keep == [True, True, True, True], result.drops


def test_mentions_source():
    queries = [
        "what does the passage say about bond yields",
        "According to the text, why did yields move?",
        "Summarize this article's view on housing",
        "in the given document, who argued for a pause",
        # Not a mention: plural, and "context" as an ordinary phrase.
        "documents needed for a mortgage application",
        "in the context of rising rates, how do housing markets react",
    ]
    result = run(queries)
    assert result.keep == [False, False, False, False, True, True]
    assert {d.reason for d in result.drops} == {"mentions_source"}
    assert "'the passage'" in result.drops[0].detail


def test_short_query_has_no_ngrams_and_is_kept():
    assert run(["rates"]).keep == [True]


def test_refs_are_required():
    with pytest.raises(ValueError, match="refs"):
        CopyFilter().apply(["q"], ["a query"])


def test_a_query_holding_a_long_verbatim_span_copies_its_chunk():
    from buildbench.quality.copy import CopyFilter

    chunk = ("Two of the product offerings acquired with the business in 2017 were sunset after March 31, 2018, "
             "and are presented as discontinued operations.")
    reason, detail = CopyFilter().check(
        "I need to check whether the product offerings acquired with the business in 2017 were sunset", chunk)
    assert reason == "copied_from_chunk" and "verbatim span" in detail
    assert CopyFilter().check("which offerings acquired in 2017 were sunset after March 2018", chunk) is None
