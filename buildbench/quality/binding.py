"""Which words of a passage a figure is said of, so that a search putting its figure with another's measure is caught.

"Halcyon Biotherapeutics $187.4 million accumulated deficit 2025" of "net losses of $187.4 million in 2024 and an
accumulated deficit of $904 million": the passage says what each figure is, and no model need read it.

A figure's words are those from the figure or sentence break before it (further back while that stretch holds no
content word: "Salaries, wages and benefits increased 1.8% to $1.42 billion", "Original issue discount: 99.0") and
the few after it up to the next comma, "and" or figure ("$1.05 billion of cash"). A search is misbound when it
states one figure, none of its measure words is among that figure's words, and half of them or more are among
another figure's: the passage says them of that one. A sentence that lists figures in parallel ("respectively",
"while", ", and", "compared", "from ... to") is left alone: which goes with which is the table's order, not a
phrase.

Read on every distinct labelled keyword search of every build (benchmarks/query_labels/; for tatqa_dev, whose
labels keep no fact, the passage's sentence that states the figure stands in for it): it fires on 15 wrong and 9
good (10 and 4 of the sample's, 5 and 5 of tatqa_dev's), where searches are good about 70% of the time; on the 927
labelled questions and requests, on 1 (good).

A figure is dated by its sentence too: "Depreciation expense was $31.4 million, $28.9 million and $25.0 million in
fiscal 2025, fiscal 2024 and fiscal 2023, respectively" gives $28.9 million to 2024, and "412.5p (2024: 398.0p)"
gives 412.5p to a year other than 2024. A search stating one figure and one year that its sentence gives to
another of its figures is misdated ("$28.9 million depreciation expense 2025"). Of the distinct labelled keyword
searches it fires on 5: 4 wrong, and 1 read good whose note says its figure is the other year's; of the
questions and requests, on 1 (wrong).
"""

from __future__ import annotations

import re
from typing import AbstractSet, Optional

from ..builders.context import DATE_NUMBERS, YEAR
from .numbers import value_figures, written_figure
from .words import PREFIX, singular, words

_SENTENCE_BREAK = re.compile(r"[.!?](?=\s)|[;:()\[\]\n]")
_CLAUSE_BREAK = re.compile(r",|\b(?:and|while|whereas|but|compared|versus|respectively)\b", re.IGNORECASE)
# A figure as a passage writes it: currency, digits, scale, unit. "90-day" and "5-nanometer" are modifiers, not
# figures, and do not break a stretch.
_FIGURE = written_figure(r"(?:US\$|\$|€|£|\b(?:EUR|USD|GBP|RMB)\s?)",
                         r"(?:%|percent\b|per cent\b|basis points?\b|bps\b|x\b|times\b|pence\b|cents\b)",
                         after=r"(?![\d-])")
# A figure that restates the one before it in other units: "3.45 cents per share is equivalent to 2.70 pence",
# "$2.2 billion or 15%". It is said of that figure's words too.
_RESTATES = re.compile(r"\b(?:equivalent to|or|i\.e\.)\s*$", re.IGNORECASE)
_PARALLEL = re.compile(r"respectively|\bwhile\b|, and\b|\bcompared\b|\bfrom\b.*\bto\b", re.IGNORECASE)
# Words that join a figure to its measure without naming it ("increased 1.8% to", "including $9 million of").
_LINK_WORDS = frozenset("""
was were is are been increased decreased rose fell grew declined totaled totalled amounted compared approximately
about approx roughly including include includes included which also up down by to from equal equals equaled
reached stood
""".split())
AFTER_WORDS = 8


def _figures(text: str) -> list[tuple[int, int, str]]:
    """(start, end, value) of each figure of ``text``: not a day of a date, nor a bare year."""
    masked = DATE_NUMBERS.sub(lambda m: " " * len(m.group(0)), text)
    out = []
    for m in _FIGURE.finditer(masked):
        value = m.group("num").replace(",", "").rstrip(".")
        if YEAR.fullmatch(value) and not re.search(r"[$€£%]|million|billion", m.group(0)):
            continue
        out.append((m.start(), m.end(), value))
    return out


def _stems(text: str, stop: AbstractSet[str]) -> set[str]:
    return {singular(w[:PREFIX]) for w in words(text) if w not in stop and w not in _LINK_WORDS
            and not w[0].isdigit()}


def said_of(text: str, value: str, stop: AbstractSet[str]) -> Optional[set[str]]:
    """The content word stems ``text`` says ``value`` of, over each place it writes it; None when it never does."""
    marks = _figures(text)
    breaks = [m.end() for m in _SENTENCE_BREAK.finditer(text)]
    out, found = set(), False
    for start, end, v in marks:
        if v != value:
            continue
        found = True
        at = start
        for _ in range(3):
            before_figure = max((e for _, e, _ in marks if e <= at), default=0)
            before_break = max((e for e in breaks if e <= at), default=0)
            stretch = max(before_figure, before_break)
            said = _stems(text[stretch:at], stop)
            out |= said
            if (said and not _RESTATES.search(text[stretch:at])) or stretch == 0:
                break
            # an empty stretch: a label ("Original issue discount: 99.0") or a link ("1.8% to $1.42 billion")
            at = stretch - 1 if stretch == before_break else next(s for s, e, _ in marks if e == before_figure)
        rest = text[end:]
        cut = min([m.start() for m in _SENTENCE_BREAK.finditer(rest)]
                  + [m.start() for m in _CLAUSE_BREAK.finditer(rest)]
                  + [s - end for s, _, _ in marks if s >= end] + [len(rest)])
        out |= _stems(" ".join(words(rest[:cut])[:AFTER_WORDS]), stop)
    return out if found else None


def _sentences(text: str) -> list[str]:
    """The sentences and semicolon clauses of ``text`` whose figures are read together (a "respectively" list, an
    earlier year's parenthesis, parallel figures). Not ``builders.chunking.split_sentences``: a semicolon ends one
    here, and an abbreviation's period may too."""
    return re.split(r"(?<=[.;])\s+", text)


# "(2018: 372.0p)": a sentence's figures of an earlier year, in a parenthesis after this year's.
_EARLIER = re.compile(r"\((?:FY\s?)?(?P<year>(?:19|20)\d\d)\s*:\s*(?P<figures>[^)]*)\)")


def misdated(query: str, fact: str, passage: str) -> Optional[tuple[str, str]]:
    """(the figure, the year the search gives it) when ``query`` states one figure and one year, and a sentence of its
    fact or passage lists figures with their years ("respectively", in order) or an earlier year's in a parenthesis,
    and gives that figure to another year; None otherwise."""
    years = set(YEAR.findall(query))
    if len(years) != 1 or _EARLIER.search(query):
        return None
    (value, *more), (year,) = value_figures(query) or {""}, years
    if more or not value:
        return None
    for sentence in _sentences(f"{fact} {passage}"):
        for m in _EARLIER.finditer(sentence):
            before = {v for _, _, v in _figures(sentence[:m.start()])}
            if m.group("year") == year and value in before - {v for _, _, v in _figures(m.group("figures"))}:
                return value, year
        listed, dated = [v for _, _, v in _figures(sentence)], YEAR.findall(sentence)
        if ("respectively" in sentence and value in listed and year in dated and len(listed) == len(dated) > 1
                and listed.index(value) != dated.index(year)):
            return value, year
    return None


def misbound(query: str, measure: AbstractSet[str], fact: str, passage: str,
             stop: AbstractSet[str]) -> Optional[tuple[str, str]]:
    """(the search's figure, the figure its passage says its measure of) when ``query`` states one figure, none of
    its ``measure`` stems (singular, as ``singular``) is said of it, and half or more are said of another figure of
    its fact or passage; None otherwise, or when that figure's sentence lists figures in parallel."""
    (value, *more) = value_figures(query) or {""}
    if more or not value or not measure:
        return None
    for text in (fact, passage):
        own = said_of(text, value, stop) if text else None
        if own is None:
            continue
        if measure & own or any(value in value_figures(s) and _PARALLEL.search(s)
                                for s in _sentences(f"{fact} {passage}")):
            return None
        for other in (text, passage):
            for v in dict.fromkeys(v for _, _, v in _figures(other)):
                if v != value and len(measure & (said_of(other, v, stop) or set())) * 2 >= len(measure):
                    return value, v
        return None
    return None
