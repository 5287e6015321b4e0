"""Drops queries that do not have the form of their style: a request that states a fact instead of asking for
one, a question without a question mark or with two, a keyword search written as a question, a question or search
in its document's voice ("our"), a question after a part of a whole ("How much of ..."), a demonstrative that
points at nothing the query names ("these notes"), a hypothetical ("if the fab was acquired"), an open "how".

A pack's query style may declare its ``form`` (``keywords``, ``question`` or ``request``); the style's
instruction asks for it, and a small writer often ignores it. Read on 284 reviewer-labelled queries
(benchmarks/query_labels/, all builds), a request with no word of need ("Cloud infrastructure costs for the year
2018 are expected to be $9.5 million.") restates its fact, and was good 0 times in 5; a keyword search written as
a question was wrong.

A question or request that asks two things ("..., and how much ...") is checked by quality.support
(``asks_two_things``), after the support checks, so that a draft with an invented term keeps its redraft.

Two more, read on 294 labelled queries of every build after the first (with the persona-matched sample build's
50): a question or keyword search in its document's first person ("How much of our net income is associated with
the increase in our interest income?") was good 2 times in 13; a request may say "we" and "our" of the person
asking ("We are benchmarking ... against our own bank lines"), so it is not checked. A question that opens with
"How much of" was good 2 times in 14 (questions as a whole: 42 in 110): the writer invents the whole and its part.

Three more, read on 481 distinct labelled queries of every build (benchmarks/query_labels/): a demonstrative
that points back at the passage ("Why are these notes due June 15, 2021 ...?", "equity interests in this investee
company") was good 0 times in 13; a question about a case its passage does not state ("What is the impact on
Micron's revenues if the 200 mm fab was acquired ...?") 0 in 6; an open "how" ("How does Ashgrove Regional Bancorp
reduce its cost of capital?", "How did the change affect our business?") 2 in 16. Questions and requests as a
whole: 86 in 276.

Inside a request the same two asks ("I need to know how much of the $53 million ...", "I need to know how the
Council will proceed with ...") were good 2 times in 13, of 1,105 distinct labelled queries of every build
(requests as a whole: 102 in 253), so requests are checked for both too. A request that is a bare question ("What
is the expected revenue of Brightwater Utilities Corp. in 2025?"), naming no situation or need as its style asks,
was good 6 times in 26.

One more, read on 1,012 distinct labelled queries of every build: a question that names one of its words twice
("What is the CET1 ratio of Central Bank of Veloria's capital ratio?", "What is the recoverable amount of the
carrying amount of the asset?"), and passed the checks above, was good 5 times in 32, against 119 in 254 for the
questions that pass them all. Keyword searches repeat a measure to list its figures ("cash and cash equivalents")
and are not checked; requests were good 21 times in 63 with a repeat, 77 in 176 without, too weak a signal.

Caught on every draft (``stages.generate_queries``): a draft that fails it is its slot's last, and filter_queries
drops it with the reason (another draft of such a slot was good 6 times in 16 about the same fact, 10 in 24 about a
spare fact). A repeated word, and a search that states a figure twice or runs past 15 words, are the exception:
garbled wording, whose slot is drafted again about the same fact.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

from ..builders.context import YEAR
from ..records import Drop
from .asks import ASKS_AS_A_PERSON, PERSON_NEED
from .base import FilterResult, check_aligned
from .numbers import FIGURE
from .support import DOCUMENT_WORDS, FIGURE_WORDS, PREFIX, QUERY_WORDS, word_stems

KEYWORDS = "keywords"
FORMS = (KEYWORDS, "question", "request")
SENTENCE_FORMS = FORMS[1:]  # written as sentences: a question or a request


def style_forms(styles) -> dict[str, Optional[str]]:
    """Each query style's form (a pack's ``query_styles``), by style id; None for a style with no form."""
    return {s.id: s.form for s in styles}


# What makes a request ask: a person's need, or a question inside it.
_NEED = re.compile(PERSON_NEED + r"|\b(?:help|find|check|confirm|whether)\b|\?"
                   r"|^(?:what|how|which|why|when|where|who|is|are|does|do|did|can|could)\b", re.IGNORECASE)


# The document's first person: "our net income" is the filing talking, not someone searching it.
_DOCUMENT_VOICE = re.compile(r"\b(?:we|our)\b", re.IGNORECASE)
# A question after a part of a whole: a small writer makes the whole up ("How much of the SEK 0.84 billion was
# spent on grid upgrades" when all of it was).
_PART_OF = re.compile(r"^how much of\b", re.IGNORECASE)
# "these notes", "this investee company": the writer points back at its passage; a searcher has nothing to point
# at; nor has a benchmark a "now" for "this year" to point at. A demonstrative whose noun the query named before
# ("... and the reason for this decision") is fine.
_DEMONSTRATIVE = re.compile(r"\b(?:this|these|those)\s+([^\W_][\w'’\-]*)", re.IGNORECASE)
_NOT_A_NOUN = frozenset("of is are was were that which who in for to".split())
# A case its passage does not state: "What is the impact on revenue if the fab was acquired ...?"
_HYPOTHETICAL = re.compile(r"^(?:if|suppose|supposing|assuming)\b|\bif\b(?=.*\?\s*$)", re.IGNORECASE)
# An open "how" (not "how much", "how many"): how a company does something or how one thing affected another.
_OPEN_HOW = re.compile(r"^how (?:does|do|did|is|are|was|were|can|could|will|would|has|have|should)\b",
                       re.IGNORECASE)
# The same two asks inside a request: "I need to know how much of the $53 million ...", "I need to know how the
# Council will proceed with ...". Of 13 labelled requests that ask so, 2 were good.
_NEED_TO = r"\b(?:know|understand|find out|see|learn|explain|determine|assess|confirm|check)\s+"
_REQUEST_PART_OF = re.compile(rf"(?:^|{_NEED_TO})how much of\b", re.IGNORECASE)
_REQUEST_OPEN_HOW = re.compile(_NEED_TO + r"how\s+(?!much\b|many\b|long\b|often\b|far\b|high\b|low\b|large\b|"
                               r"big\b|quickly\b|soon\b)", re.IGNORECASE)


# Lower-case words only (a capitalised one is part of a name: "Central Bank of Veloria" and "Velorian"), of four
# letters or more, that ask something; units and spans ("basis points", "years") list figures.
_LOWER_WORD = re.compile(r"(?<![\w'’-])[a-z][\w'’-]{3,}")
_REPEATABLE = QUERY_WORDS | DOCUMENT_WORDS | FIGURE_WORDS | frozenset("basis points years months".split())


def _repeated(text: str) -> Optional[str]:
    """The first asking word of ``text`` whose stem it names twice ("ratio ... ratio"), or None."""
    seen = set()
    for word in _LOWER_WORD.findall(text):
        if word in _REPEATABLE:
            continue
        stem = word[:PREFIX]
        if stem in seen:
            return word
        seen.add(stem)
    return None


# A search that states a figure twice ("North Carolina Creating Jobs Credit 7% investment tax credit 7% tax credit",
# "$35 million related to severance and $35 million related to facility exit costs") or runs past 15 words (it
# copies a sentence: "increase in net sales to EMS $1.7 million increase in OEM sales in the Americas region, a
# $0.8 million ..."): of the distinct labelled keyword searches of every build, 17 of the 40 with a figure twice
# were good (none of the sample's 3) and 8 of the 21 of more than 15 words, against 1,175 of 1,629 for the rest.
MAX_SEARCH_WORDS = 15


def _figure_twice(text: str) -> Optional[str]:
    """The first figure (not a year) that ``text`` states twice, or None."""
    seen = set()
    for number in FIGURE.findall(text):
        value = number.replace(",", "").rstrip(".")
        if YEAR.fullmatch(value):
            continue
        if value in seen:
            return number
        seen.add(value)
    return None


def _dangling(text: str) -> Optional[str]:
    """The first demonstrative phrase of ``text`` that points at nothing the query has named ("these notes")."""
    for m in _DEMONSTRATIVE.finditer(text):
        noun = m.group(1).lower()
        if noun not in _NOT_A_NOUN and noun[:PREFIX] not in word_stems(text[:m.start()]):
            return m.group(0)
    return None


def form_problem(text: str, form: Optional[str]) -> Optional[tuple[str, str]]:
    """(reason, detail) when ``text`` does not have the ``form`` of its style; None when it does (or no form)."""
    if not form:
        return None
    text = text.strip()
    if form in (KEYWORDS, "question") and _DOCUMENT_VOICE.search(text):
        return "document_voice", "it speaks as its document does (we, our), not as someone searching it"
    dangling = _dangling(text)
    if dangling:
        return "dangling_reference", f"{dangling!r} points back at its passage, which a searcher does not have"
    if form == KEYWORDS:
        if text.endswith("?"):
            return "not_keywords", "a keyword search written as a question"
        twice = _figure_twice(text)
        if twice:
            return "repeated_figure", f"it states {twice} twice, a garbled search"
        if len(text.split()) > MAX_SEARCH_WORDS:
            return "long_search", f"{len(text.split())} words, more than a search of {MAX_SEARCH_WORDS}"
        return None
    if (form == "question" and _PART_OF.match(text)) or (form == "request" and _REQUEST_PART_OF.search(text)):
        return "part_of", "it asks how much of a whole is a part, a relation a small writer invents"
    if (form == "question" and _HYPOTHETICAL.search(text)) or (form == "request" and _HYPOTHETICAL.match(text)):
        return "hypothetical", "it asks what would follow in a case its passage does not state"
    if _OPEN_HOW.match(text) or (form == "request" and _REQUEST_OPEN_HOW.search(text)):
        return "open_how", "it asks how something is done or bears on another, an account a small writer invents"
    if text.count("?") > 1:
        return "two_questions", "it asks two questions; a query asks one"
    repeated = _repeated(text) if form == "question" else None
    if repeated:
        return "repeated_term", f"it names {repeated!r} twice, a garbled question"
    if form == "question" and not text.endswith("?"):
        return "not_a_question", "a question style query that does not end with a question mark"
    if form == "request" and not _NEED.search(text):
        return "not_a_request", "it states something and asks for nothing (no need, no question)"
    if form == "request" and text.endswith("?") and not ASKS_AS_A_PERSON.search(text):
        return "bare_question", "a request style query that is a bare question, with no situation or need"
    return None


class FormFilter:
    """Drop a query whose text does not have its style's form (``refs`` = the form of each query's style, or
    None for a style that declares none). Reasons: ``two_questions``, ``not_a_question``, ``not_a_request``,
    ``bare_question``, ``not_keywords``, ``document_voice``, ``part_of``, ``dangling_reference``, ``hypothetical``,
    ``open_how``, ``repeated_term``, ``repeated_figure``, ``long_search``."""

    name = "form"

    def __init__(self, stage: Optional[str] = None):
        if stage:
            self.name = stage

    def apply(self, ids: Sequence[str], texts: Sequence[str],
              refs: Sequence[Optional[str]] | None = None) -> FilterResult:
        if refs is None:
            raise ValueError("FormFilter needs refs: the form of each query's style")
        check_aligned(ids, texts, refs)
        keep, drops = [], []
        for item_id, text, form in zip(ids, texts, refs):
            problem = form_problem(text, form)
            keep.append(problem is None)
            if problem:
                drops.append(Drop(self.name, item_id, *problem))
        return FilterResult(keep, drops)
