"""Drops queries whose words their passage does not support, or that ask about nothing of their fact.

A small writer that strays from its passage does not paraphrase, it invents: "is the term loan a good debt or
a bad debt", "net pension income" for a funded-status sentence, a CET1 ratio for a media group. Each invented
content word is one the passage (its title included) does not hold, so the share of such words is a cheap,
model-free signal. Read on 50 kept queries of the bundled-sample build (benchmarks/query_labels/): of the
queries a reviewer called good, 17 of 19 have at most a quarter of their content words unsupported; of the
others, 17 of 31 have more. Words are compared by their first five letters, so "auditor" supports "audit" and
"borrowing" supports "borrowings".

An answer-first query that names only its document ("Kestrel Aerospace Components 2025") fits every passage
of that document: it is dropped when none of its content words, other than those naming the document's
entity and period, comes from the fact it was written to ask about.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

from ..builders.context import YEAR
from ..records import Drop
from .base import FilterResult, check_aligned

_WORD = re.compile(r"[^\W_][\w'’\-.%$]*")
PREFIX = 5
# Words any query may use without the passage holding them: question and request words, and the generic
# nouns a searcher adds ("impact", "information"). Kept short: each one is a word the check cannot see.
QUERY_WORDS = frozenset("""
a an and are as at be been by can could did do does for from had has have how i if in into is it its me my
need needs of on or our should tell than that the their them there these they this to was we were what when
where whether which who why will with would you your about after before between during over under per
know find explain understand looking look want information details detail much many main key company
company's fund's bank's firm's year year's
""".split())
# When a fact holds is document context (the period the writer is told): never an invented term, though still
# not a word about the fact.
PERIOD_WORDS = frozenset("""
january february march april may june july august september october november december jan feb mar apr jun jul
aug sep sept oct nov dec quarter quarterly fiscal first second third fourth half annual q1 q2 q3 q4 fy h1 h2
""".split())
_PERIOD_STEMS = frozenset(w[:PREFIX] for w in PERIOD_WORDS)


def _words(text: str) -> list[str]:
    return [w.strip(".'’-").lower() for w in _WORD.findall(text) if len(w.strip(".'’-")) > 2]


def _stems(text: str) -> set[str]:
    return {w[:PREFIX] for w in _words(text)}


class SupportFilter:
    """Drop a query (``refs`` = (passage with its title, fact, words naming the document) of each query):

    - ``unsupported_terms``: more than ``max_unsupported`` of its content words are not in its passage;
    - ``off_fact``: it has a fact, and none of its content words outside the document's name is in the fact.
    """

    name = "support"

    def __init__(self, max_unsupported: float = 0.25, stage: Optional[str] = None):
        self.max_unsupported = max_unsupported
        if stage:
            self.name = stage

    def apply(self, ids: Sequence[str], texts: Sequence[str],
              refs: Sequence[tuple[str, str, str]] | None = None) -> FilterResult:
        if refs is None:
            raise ValueError("SupportFilter needs refs: (passage, fact, document name) of each query")
        check_aligned(ids, texts, refs)
        keep, drops = [], []
        for item_id, text, (passage, fact, naming) in zip(ids, texts, refs):
            drop = self.check(text, passage, fact, naming)
            keep.append(drop is None)
            if drop is not None:
                drops.append(Drop(self.name, item_id, *drop))
        return FilterResult(keep, drops)

    def check(self, query: str, passage: str, fact: str = "", naming: str = "") -> Optional[tuple[str, str]]:
        # The words that ask something: not question words, and not the document's name and period, which
        # would otherwise dilute an invented term ("Ardent Media Group plc CET1 impairment charge").
        name = _stems(naming)
        asking = [w for w in _words(query) if w not in QUERY_WORDS and w[:PREFIX] not in name]
        # A year the passage and its title never state is invented ("FOMC rate hike 2025" for a 1994 statement).
        known_years = set(YEAR.findall(f"{passage} {naming}"))
        years = [w for w in asking if w.isdigit()]
        content = [w for w in asking if not w.isdigit()]
        if not content and not [y for y in years if y not in known_years]:
            return ("off_fact", "it names only its document and period") if fact else None
        content += [y for y in years if YEAR.fullmatch(y) and y not in known_years]  # stated ones do not dilute
        known = _stems(passage) | _PERIOD_STEMS | known_years
        unsupported = [w for w in content if w[:PREFIX] not in known]
        share = len(unsupported) / len(content)
        if share > self.max_unsupported:
            return ("unsupported_terms", f"{len(unsupported)} of its {len(content)} content words are not in its "
                    f"passage ({', '.join(unsupported[:6])}; max share {self.max_unsupported:.2f})")
        if fact:
            if not any(w[:PREFIX] in _stems(fact) for w in content if not w.isdigit()):
                return ("off_fact", "none of its words beyond the document's name and period comes from the fact "
                        "it was written to ask about")
        return None
