"""The numbers a text states: so that two templated passages with different facts are not called copies, and so
that a query's figures can be compared with its passage's.

``numbers`` reads integers, decimals, fractions (1/4, 2-3/4, ¼) and scale words ($1.2 billion, $30B) into
canonical values; ``numbers_differ`` says whether two texts state different facts. ``figures`` and
``value_figures`` read the figures a query or passage states as written (``quality.support``, ``quality.asks``).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from fractions import Fraction

from ..builders.context import DATE_NUMBERS, YEAR

# Markdown link targets and bare URLs: their digits are addresses, not facts of the text.
_URL = re.compile(r"\]\([^)\s]*\)|\bhttps?://\S+|\bwww\.\S+", re.IGNORECASE)
_VULGAR = re.compile("[\u00bc-\u00be\u2150-\u215e]")  # ¼ ½ ¾ ⅓ ... as single characters
# The words that scale a figure ("$1.2 billion"), as a regex alternation.
SCALE_WORDS = "thousand|million|billion|trillion|bn|mn|tn"
_NUMBER = re.compile(
    r"(?<![\d./])"  # not the tail of a number or date already read, nor a footnote mark ("rates.1")
    r"(?:(?P<fnum>\d+)\s?[/\u2044]\s?(?P<fden>\d+)"  # 1/4
    r"|(?P<int>\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?P<dec>\.\d+)?"  # 25, 1,200, 2.5
    r"(?:[-\s](?P<num>\d+)[/\u2044](?P<den>\d+))?)"  # mixed fraction: 2-3/4, 4 1/4
    rf"(?:\s?(?P<scale>{SCALE_WORDS})\b|(?P<suffix>[kmb])\b)?",  # $1.2 billion, $30B
    re.IGNORECASE,
)
_SCALE = {
    "thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12,
    "k": 10**3, "m": 10**6, "mn": 10**6, "b": 10**9, "bn": 10**9, "tn": 10**12,
}


def _canonical(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.6f}".rstrip("0").rstrip(".")


def _vulgar(m: re.Match) -> str:
    # "2½" -> "2-1/2", "½" -> "1/2"; NFKC would give "21⁄2", which reads as twenty-one halves.
    frac = Fraction(unicodedata.numeric(m.group(0))).limit_denominator(100)
    before = m.string[m.start() - 1 : m.start()]
    return f"{'-' if before.isdigit() else ''}{frac.numerator}/{frac.denominator}"


class Numbers(Counter):
    """A multiset of canonical number values (``numbers``), plus ``unscaled``: for each value written with a
    scale word, its digits without it ("$200 billion" -> ``{"200000000000": {"200"}}``)."""

    def __init__(self) -> None:
        super().__init__()
        self.unscaled: dict[str, set[str]] = {}


def numbers(text: str) -> Numbers:
    """The numbers a text states, as a multiset of canonical values.

    Mixed and plain fractions, decimals and thousands separators become one value ("2-3/4", "2 3/4", "2¾"
    and "2.75" are all ``"2.75"``; "1/4" and "0.25" are ``"0.25"``; "1,200" is ``"1200"``), and a following
    thousand/million/billion/trillion (bn, mn, tn, or k/m/b right after the digits) scales it ("$1.2 billion",
    "1,200 million" and "$1.2B" are ``"1200000000"``). Units and signs are ignored: "25%", "$25" and "25 basis
    points" are all ``"25"``, and "-0.5" is ``"0.5"`` (a hyphen before a digit is more often a range or a
    compound than a minus), but a scale word is part of the value, so "$40 billion" and "$40" differ. Digits
    in URLs and footnote marks glued to a word ("securities.1") are skipped. Spelled-out numbers ("one-half",
    "twelve") and month names are not read.
    """
    text = _URL.sub(" ", text)
    if not text.isascii():
        text = _VULGAR.sub(_vulgar, text)
    out = Numbers()
    for m in _NUMBER.finditer(text):
        if m.group("fnum") is not None:
            num, den = int(m.group("fnum")), int(m.group("fden"))
            out[_canonical(Fraction(num, den)) if den else f"{num}/0"] += 1
            continue
        value = Fraction(m.group("int").replace(",", "") + (m.group("dec") or ""))
        if m.group("num") is not None:
            num, den = int(m.group("num")), int(m.group("den"))
            if 0 < num < den:
                value += Fraction(num, den)
            else:  # not a proper fraction, so not a mixed number: "3 5/4" is 3 and 5/4
                out[_canonical(Fraction(num, den)) if den else f"{num}/0"] += 1
        scale = m.group("scale") or m.group("suffix")
        if scale:
            digits = _canonical(value)
            value *= _SCALE[scale.lower()]
            out.unscaled.setdefault(_canonical(value), set()).add(digits)
        out[_canonical(value)] += 1
    return out


def numbers_differ(a: Counter[str], b: Counter[str]) -> bool:
    """Whether two texts' numbers (``numbers``) state different facts: each has a number the other lacks.

    A one-sided difference is not enough. A copy edited by deleting or rewording a number ("rose 25 basis
    points" -> "rose a quarter point"), or by adding a sentence with one, still repeats the other text; a
    fact changes when a number is replaced, which leaves an unmatched number on both sides ("25 basis
    points to 4-1/4 percent" vs "50 basis points to 6 percent"). Compared as multisets, so "25 then 25" and
    "25 then 50" differ. One edit that does leave both sides unmatched is a lost scale word ("$200 billion"
    -> "$200"); such a pair (same digits, scale word on one side only) counts as matched, while "$200 billion"
    and "$200 million" still differ.
    """
    # Fast path on plain dicts (Counter arithmetic dominated dedup time on templated text): most pairs either
    # match or differ without any scale word involved.
    if not a or not b:
        return False
    if not any(v > b.get(k, 0) for k, v in a.items()) or not any(v > a.get(k, 0) for k, v in b.items()):
        return False
    if not (getattr(a, "unscaled", None) or getattr(b, "unscaled", None)):
        return True
    only_a, only_b = a - b, b - a
    sides = ((only_a, only_b, getattr(a, "unscaled", {})), (only_b, only_a, getattr(b, "unscaled", {})))
    for scaled, plain, unscaled in sides:
        for value in list(scaled):
            for digits in unscaled.get(value, ()):
                pairs = min(scaled[value], plain[digits])
                scaled[value] -= pairs
                plain[digits] -= pairs
    return bool(+only_a) and bool(+only_b)


# A figure: a number that is not part of a word (not "Q3", "FY19") and not a year, commas dropped. Its digits as
# written, not ``numbers``' canonical value: "16.9" of "$16.9 million" is the figure a query repeats.
NUMBER = r"\d[\d,]*(?:\.\d+)?"
FIGURE = re.compile(rf"(?<![\w.,]){NUMBER}")


def written_figure(currency: str, unit: str, after: str = "") -> re.Pattern:
    """A figure as a passage writes it: an optional currency, the number (``after`` says what may not follow it),
    an optional scale word and an optional unit, as the named groups cur, num, scale and unit. The support check
    reads every currency and unit; the binding check only those whose figure a measure's words go with."""
    return re.compile(rf"(?P<cur>{currency})?(?<![\w.,])(?P<num>{NUMBER}){after}"
                      rf"(?P<scale>\s?(?:{SCALE_WORDS})\b)?(?P<unit>\s?{unit})?", re.IGNORECASE)


def figures(text: str) -> set[str]:
    """The numbers a text states, years and days of months left out ("$16.9 million" -> "16.9"; "1,346" ->
    "1346"; "year ended December 31, 2019" -> none: every annual report of that year states it)."""
    out = {n.replace(",", "").rstrip(".") for n in FIGURE.findall(DATE_NUMBERS.sub(" ", text))}
    return {n for n in out if not YEAR.fullmatch(n)}


# A whole number that labels a standard, section, tier or page ("ASC 606", "AASB 9", "Level 1", "Scope 1 and 2",
# "Note 19", "ASU 2016-02", a "401(k)" plan, "page 112") names a rule many reports cite or a place in the report,
# not a value of it ("leverage covenant level 3.5 times" states one). Of 23 labelled tatqa_dev queries whose only
# figures shared with their passage were such labels ("Topic 605 and Topic 606" boilerplate, "observable inputs
# other than Level 1 prices"), 4 were good, against 189 of 273 with a value.
_LABEL = r"\d+(?:-\d+)?"
_LABELLED_NUMBER = re.compile(
    r"\b(?:levels?|topics?|asc|asu|scopes?|notes?|sections?|items?|tiers?|phases?|stages?|class|series|parts?|"
    r"articles?|rules?|ias|ifrs|sfas|fas|aasb|frs|hkfrs|sfrs|schedules?|exhibits?|form|chapters?|steps?|pillars?|"
    r"pages?)\s+"
    rf"({_LABEL}(?:\s*(?:,|and|&|or|to)\s*{_LABEL})*)(?![\d.,]*\d)|\b\d+\(k\)", re.IGNORECASE)


def value_figures(text: str) -> set[str]:
    """The figures of ``text`` that are values, not labels of a standard, section or page: "Level 1 inputs of $4.2
    million" -> {"4.2"}. A number a label takes is no value there only: "Note 5 ... 5 stores" -> {"5"}."""
    return figures(_LABELLED_NUMBER.sub(" ", text))
