"""What a searcher knows about a document: its title, the entity and period it is about, and a chunk's section.

Query writers see one chunk; a real searcher also knows which company, fund or central bank they are asking
about and for which period. Everything here is read from the document itself (metadata, title line, opening
text) with regexes, never from an LLM, so it is deterministic, fast (called once per chunk) and cannot invent
a name. When a field cannot be read with confidence it is "" rather than a guess.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

HEAD_CHARS = 500  # how much opening text is searched for an entity or a period
MAX_TITLE_CHARS = 200
MAX_HEADING_CHARS = 100
MAX_HEADING_WORDS = 12
MAX_NAME_WORDS = 8

ENTITY_KEYS = ("company", "entity", "issuer", "fund", "bank", "organization", "organisation", "name-of-company")
PERIOD_KEYS = ("period", "fiscal_year", "year", "date")
# A year standing alone (not part of a longer number): the one pattern the support filter, the facts and the
# report use for it.
YEAR = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)")

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
_MONTH_BY_PREFIX = {m[:3].lower(): m for m in MONTHS}
_ORDINAL_QUARTER = {"first": 1, "second": 2, "third": 3, "fourth": 4}

_MARK_QUARTER = re.compile(r"\bq([1-4])\b|\b(first|second|third|fourth)[\s-]+(?:fiscal\s+)?quarter", re.IGNORECASE)
_MARK_HALF = re.compile(r"\bh([12])\b|\b(first|second)[\s-]+half", re.IGNORECASE)
_MARK_MONTH = re.compile(r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)(?:[a-z]*)\b\.?", re.IGNORECASE)
_MARK_ISO = re.compile(r"(?<![\w-])(?:19|20)\d\d-(0[1-9]|1[0-2])(?:-\d\d)?(?![\w-])")


def period_marks(text: str) -> set[str]:
    """The quarters, halves and months a text names, canonical ("Q3", "third quarter" -> "q3"; "Sept." and
    "2025-09-30" -> "september"): what the support filter compares between a query and its passage."""
    marks = {f"q{m.group(1) or _ORDINAL_QUARTER[m.group(2).lower()]}" for m in _MARK_QUARTER.finditer(text)}
    marks |= {f"h{m.group(1) or _ORDINAL_QUARTER[m.group(2).lower()]}" for m in _MARK_HALF.finditer(text)}
    for m in _MARK_MONTH.finditer(text):
        word = m.group(0).rstrip(".").lower()
        month = _MONTH_BY_PREFIX[m.group(1).lower()]
        # Capitalised only ("we may" is no month), and a full name or a known short form ("Dec", not "decision")
        if m.group(0)[0].isupper() and word in (month.lower(), month[:3].lower(), "sept"):
            marks.add(month.lower())
    marks |= {MONTHS[int(m.group(1)) - 1].lower() for m in _MARK_ISO.finditer(text)}
    return marks


# Words that name a kind of organisation but no organisation: "the Company", "the Fund" must not become entities.
GENERIC_WORDS = frozenset(
    """
    the a an company companies group groups bank banks fund funds trust trusts partners partnership capital
    insurance reserve holdings holding corporation corp corp. inc inc. incorporated co co. ltd ltd. limited llc
    plc l.p. lp n.v. s.a. ag se ab bancorp issuer borrower registrant guarantor firm authority parent
    """.split()
)
# Leading words a capitalised run picks up at a sentence start ("The", "At", "Our") that are not part of a name.
_LEAD_WORDS = frozenset(
    """
    the a an at in on for by as our we its it this that these those their his her under from with to of and if
    when while during after before since also both each per all any some such
    """.split()
)
_CONNECTORS = frozenset({"of", "and", "&", "the", "de", "du", "la", "le", "van", "von", "for"})
# A word ending a sentence: a lower-case letter before its full stop, and not a dotted suffix ("Inc.", "Co.").
_SENTENCE_END = re.compile(r"[\w'’-]*[a-zà-ÿ][\w'’-]*\.")
_ABBREVIATIONS = {"inc.", "corp.", "co.", "ltd.", "bros.", "jr.", "sr.", "st.", "no."}
# A number or a fiscal period ("31", "2019", "FY19", "Q4"), and a month: words of a date.
_FISCAL_WORD = re.compile(r"\d{1,4}|FY\s*['’]?\d{2,4}|Q[1-4]|H[12]", re.IGNORECASE)
_PERIOD_WORD = re.compile(rf"{_FISCAL_WORD.pattern}|{'|'.join(MONTHS)}", re.IGNORECASE)
# Words that start a reference to a document's part, not a name: "ITEM NO. 2", "Note 14", "Part II".
_PART_WORDS = frozenset({"item", "note", "notes", "part", "section", "schedule", "exhibit", "appendix", "table"})
# A pronoun in a capitalised run makes it a phrase ("RATIFICATION OF KPMG AS OUR"), not a name.
_PRONOUNS = frozenset({"our", "we", "its", "their", "this", "these", "those", "his", "her"})
# Common nouns that, before a generic suffix, make an accounting term: "Working Capital", "Hedging Reserve".
_TERM_WORDS = frozenset(
    """
    working invested share human regulatory economic equity total additional venture tier net risk debt return
    revaluation hedging translation statutory general legal other retained rabbi paid-in contributed sinking
    pension mutual index hedge money market growth cost of on and employee benefit full whole wider
    entire consolidated combined enlarged
    """.split()
)

# --- compiled once: these run for every chunk of a corpus -------------------------------------------------------
_YEAR = r"(?:199\d|20[0-3]\d)"
_MONTH_NAME = (r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
               r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\.?")
_FISCAL = r"(?P<fiscal>fiscal(?:\s+year)?\s+|FY\s*['’]?)"
# "Q3 2025", "Q4 Fiscal 2025", "Q3 FY25", "3Q25"
_Q_NUM = re.compile(rf"\bQ(?P<q>[1-4])[\s'’-]*(?:of\s+)?{_FISCAL}?(?P<y>{_YEAR}|\d{{2}})\b"
                    rf"|\b(?P<q2>[1-4])Q[\s'’-]*(?P<y2>{_YEAR}|\d{{2}})\b", re.IGNORECASE)
# "third quarter of 2025", "Fourth Quarter Fiscal 2025", "third quarter of fiscal 2025", "second fiscal quarter 2025"
_Q_WORD = re.compile(rf"\b(?P<q>first|second|third|fourth)[\s-]+(?P<fq>fiscal\s+)?quarter\s+(?:of\s+|in\s+)?"
                     rf"{_FISCAL}?(?P<y>{_YEAR})\b", re.IGNORECASE)
_DAYS = r"\d{1,2}(?:\s*[–-]\s*\d{1,2})?"  # "9", "9–10"
_DATE = rf"(?:(?:{_DAYS}\s+)?(?P<m>{_MONTH_NAME})(?:\s+{_DAYS})?,?\s+(?P<y>{_YEAR}))"
# "year ended December 31, 2025", "fiscal year ended June 28, 2025", "nine months ended September 30, 2025"
_ENDED = re.compile(rf"\b(?P<fiscal>fiscal\s+)?(?P<span>year|quarter|(?:three|six|nine|twelve|\d{{1,2}})\s+months|"
                    rf"period)s?\s+ended\s+(?:on\s+)?{_DATE}", re.IGNORECASE)
_FISCAL_YEAR = re.compile(rf"\b(?:fiscal(?:\s+year)?\s+|FY\s*['’]?)(?P<y>{_YEAR}|\d{{2}})\b", re.IGNORECASE)
# A day of a month ("December 31", "30 June", "Jan. 1") or the short half of a split fiscal year ("2017/18"): a
# part of a date, not a figure a passage states.
DATE_NUMBERS = re.compile(rf"\b{_MONTH_NAME}\s+\d{{1,2}}\b|\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH_NAME}"
                          rf"|(?<=\b{_YEAR})/\d{{2}}\b")
# A day of a month with the day (or days: "9–10 April") captured.
_DAY_MONTH = re.compile(rf"\b(?P<d>{_DAYS})(?:st|nd|rd|th)?\s+(?P<m>{_MONTH_NAME})"
                        rf"|\b(?P<m2>{_MONTH_NAME})\s+(?P<d2>{_DAYS})(?:st|nd|rd|th)?\b")
_YEAR_NEXT = re.compile(rf",?\s+({YEAR.pattern})")
# How far after a day a passage's year may stand and still date it: "December 31, 2025 and 2024", "30 June and 31
# December 2025".
_DATE_YEARS_CHARS = 30


def dated_days(text: str, strict: bool = False) -> set[tuple[int, str, str]]:
    """The days ``text`` dates, as (day, month, year): "1 December 2025", "Dec. 1, 2025" -> (1, "December",
    "2025"). A passage's day takes every year in the next few words ("December 31, 2025 and 2024"); with ``strict``
    (a query's), only the year right after it."""
    out = set()
    for m in _DAY_MONTH.finditer(text):
        days = [int(d) for d in re.findall(r"\d+", m.group("d") or m.group("d2"))]
        month = _MONTH_BY_PREFIX[(m.group("m") or m.group("m2"))[:3].lower()]
        if strict:
            after = _YEAR_NEXT.match(text, m.end())
            years = [after.group(1)] if after else []
        else:
            years = YEAR.findall(text[m.end():m.end() + _DATE_YEARS_CHARS])
        out |= {(d, month, y) for d in days for y in years}
    return out


# Month names stay case-sensitive: "may 2025" in running text is rarely a month.
_MONTH_YEAR = re.compile(rf"\b{_DATE}\b")
# A bare year, but not inside an id ("TM-CY-2025-04", "2025A"), an amount, or a maturity ("due 2031").
_BARE_YEAR = re.compile(rf"(?<![\w$.,/-])(?<!due )(?<!Due )(?<!by )(?<!Series )(?P<y>{_YEAR})(?![\w-]|[.,]\d)"
                        rf"|(?<=Series )(?P<sy>{_YEAR})[A-Z]?\b")  # "Series 2025A" bonds: issued in 2025
_ISO_DATE = re.compile(rf"^\s*(?P<y>{_YEAR})-(?P<m>\d{{1,2}})(?:-\d{{1,2}})?")
_ISO_IN_TEXT = re.compile(rf"(?<![\w-])(?P<y>{_YEAR})-(?P<m>0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?![\w-])")

_SUFFIX_DOTTED = r"(?:Inc\.|Corp\.|Co\.|Ltd\.|L\.L\.C\.|L\.P\.|N\.V\.|S\.A\.)"
_LEGAL_PLAIN = r"Incorporated|Inc|Corporation|Corp|Company|plc|PLC|Ltd|Limited|LLC|LLP|LP|AG|SE|AB|ASA|GmbH"
LEGAL_FORM = rf"(?:{_SUFFIX_DOTTED}|{_LEGAL_PLAIN})"  # what one entity's documents write or leave out after its name
_SUFFIX_PLAIN = (rf"(?:{_LEGAL_PLAIN}|"
                 r"Group|Holdings|Bank|Bancorp|Bancshares|Fund|Trust|Partners|Capital|Insurance|Reserve|Authority)")
_MORE_SUFFIX = rf"(?!,?\s+(?:{_SUFFIX_DOTTED}|{_SUFFIX_PLAIN}(?![\w-])))"  # "Holdings S.A.", "Group plc" go on
_CAP_WORD = r"[A-Z][\w'’.&-]*"
# A run of capitalised words ending in a corporate or institutional suffix, not followed by more of the name
# ("Ostmark Bank" is not the name in "Ostmark Bank Group"). A dotted suffix ("Corp.") always ends the name.
_SUFFIX_NAME = re.compile(
    rf"(?<![\w&])(?P<name>{_CAP_WORD}(?:\s+(?:&\s+|and\s+)?{_CAP_WORD})*?,?\s+"
    rf"(?:{_SUFFIX_DOTTED}{_MORE_SUFFIX}"
    rf"|{_SUFFIX_PLAIN}(?:\s+[IVX]{{1,4}}\b)?(?![\w-])(?!\s+(?:&\s+)?[A-Z][a-z]){_MORE_SUFFIX}))"
)
_INSTITUTION = re.compile(
    r"(?P<name>(?:[A-Z][\w'’-]*\s+)*?(?:Bank|Monetary Authority|Reserve Bank|Central Bank)\s+of\s+(?:the\s+)?"
    r"[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*){0,2}"
    r"|Board of Governors of the Federal Reserve System|Federal Open Market Committee"
    r"|Federal Reserve(?: System| Board)?"
    r"|(?:Monetary Policy|Financial Policy|Financial Stability|Policy) (?:Council|Committee|Board)|FOMC)\b"
)
_TITLE_SEP = re.compile(r"\s[-–—]\s|:(?=\s|$)")
_PARENS = re.compile(r"\s*\([^()]*\)")
# Where a title's name part ends: a period ("Q4", "Fiscal 2025", "2025"), an instrument, a rating verb or a
# document type ("Earnings Call"). Everything from the first of these on is not the name.
_NAME_CUT = re.compile(
    r"\s+(?:Q[1-4]\b|FY\s*['’]?\d|(?:First|Second|Third|Fourth|Full|Half)[\s-](?:Quarter|Year|Half)\b|Fiscal\b|"
    rf"{_YEAR}\b|(?:Senior|Secured|Unsecured|Subordinated|Term Loan|Revenue Bonds|Revenue Notes|General Obligation|"
    r"Bonds|Notes|Debentures|Affirmed|Downgraded|Upgraded|Revised|Assigned|Placed|Earnings|Results Call|"
    r"Conference Call|Annual Report|Quarterly Report|Sustainability Report|Investor|Presentation|Prospectus|"
    r"Transcript|Press Release)\b).*$"
)
# A title part that names the document's kind, not who it is about ("Risk Factors", "MD&A", "Summary of Terms").
_DOC_KIND = re.compile(
    r"^(?:Risk Factors|Management['’]?s Discussion|MD&A|Item\s+\d|Form\s+\d|Report\b|Independent\b|Summary\b|"
    r"Loan Agreement|Credit Agreement|Credit Rating|Ratings?\b|Minutes\b|Notes?\b|Annual Report|Quarterly Report|"
    r"Interim Report|Press Release|News Release|(?:Summary\s+)?Prospectus|Official Statement|Offering\s+\w+|"
    r"Term Sheet|Transcript|Table of Contents|Executive Summary|Section\b|Part\b|Chapter\b|Appendix|Exhibit|"
    r"Schedule\b|Statement\b|Consolidated\b|Financial Statements|Letter\b|Memorandum|Overview|Introduction|"
    r"Highlights|Results\b|Earnings\b|(?:Monetary\s+)?Policy Statement)",
    re.IGNORECASE,
)
_LEADING_RUN = re.compile(rf"^{_CAP_WORD}(?:\s+(?:(?:&|and|of|the|for)\s+)*{_CAP_WORD})*")
# A file stem ("abl-facility-ironclad-2025") or an id ("doc-66da9179bdaeb8cc", "12345"): not a human title.
_STEM_OR_ID = re.compile(r"^(?:\S*[-_]\S*|[0-9a-fA-F]{8,}|\d+)$")
_HAS_LETTER = re.compile(r"[^\W\d_]")
_BULLET = re.compile(r"^(?:[-*•+]\s|\|)")
_HEADING_MARKS = re.compile(r"^#+\s*")


@dataclass(frozen=True)
class DocContext:
    title: str  # human title, or ""
    entity: str  # company / fund / bank / central bank / committee the document is about, or ""
    period: str  # the period the document is about: "fiscal 2025", "Q3 2025", "April 2025", "2019"..., or ""


def document_context(text: str, title: str = "", metadata: dict | None = None) -> DocContext:
    """The title, entity and period of one document, read from its metadata, title and opening text."""
    human_title = _human_title(text, title)
    meta = {str(k).lower(): v for k, v in (metadata or {}).items()}
    return DocContext(
        title=human_title,
        entity=_entity(text, human_title, meta),
        period=_period(text, human_title, meta),
    )


def section_of(text: str, start: int, title: str = "") -> str:
    """The nearest heading-like line that starts at or before ``start`` (a chunk's offset), or "".

    The document's own title line is not a section. A chunk that begins with a heading belongs to it.
    """
    offsets, headings = _headings(text, title)
    i = bisect_right(offsets, start)
    return headings[i - 1] if i else ""


# --- title ------------------------------------------------------------------------------------------------------
def _first_line(text: str) -> str:
    for line in text.split("\n", 20)[:20]:
        if line.strip():
            return line.strip()
    return ""


def _heading_title(line: str) -> str:
    """``line`` as a title if it reads as a heading (short, not a sentence), else ""."""
    line = _HEADING_MARKS.sub("", line).strip()
    if not line or len(line) > MAX_TITLE_CHARS or line.endswith(".") or not _HAS_LETTER.search(line):
        return ""
    return line


def _human_title(text: str, title: str) -> str:
    first = _first_line(text)
    from_text = _heading_title(first) if first != text.strip() else ""  # a title needs a body after it
    if from_text:
        return from_text
    title = " ".join(_HEADING_MARKS.sub("", title or "").split())
    if not title or _STEM_OR_ID.match(title):
        return ""
    return title


# --- entity -----------------------------------------------------------------------------------------------------
def _entity(text: str, title: str, meta: dict[str, Any]) -> str:
    for key in ENTITY_KEYS:
        for k in (key, key.replace("-", "_")):
            value = meta.get(k)
            if isinstance(value, str) and _clean_name(value):
                return _clean_name(value)
    if title:
        name = _entity_from_title(title)
        if name:
            return name
    return _first_name(text[:HEAD_CHARS])


def _clean_name(name: str) -> str:
    """Drop sentence-start words, a period and trailing punctuation; "" when only generic words, a date, a
    document part or an accounting term are left."""
    words = name.replace("\n", " ").split()
    # A run of capitalised words may cross a sentence end ("Texas. The Company"): the name is after it.
    ends = [i for i, w in enumerate(words[:-1])
            if _SENTENCE_END.fullmatch(w) and w.lower() not in _ABBREVIATIONS]
    words = words[ends[-1] + 1:] if ends else words
    # A leading fiscal period goes ("FY19 Group"), a month stays ("May Department Stores Co.").
    while words and (words[0].lower() in _LEAD_WORDS or _FISCAL_WORD.fullmatch(words[0].strip(",."))):
        words.pop(0)
    # "In February 2016, we granted ...", "At December 31, 2019, ...", "ITEM NO. 2 - RATIFICATION ...": a date or a
    # document part, not a name.
    if words and (words[0].lower().strip(".") in _PART_WORDS
                  or all(_PERIOD_WORD.fullmatch(w.strip(",.")) for w in words)):
        return ""
    # "RATIFICATION OF KPMG AS OUR": a pronoun makes a phrase of an upper-case heading, not a name.
    if any(w.lower() in _PRONOUNS for w in words):
        return ""
    # "Working Capital", "Invested Capital", "Hedging Reserve", "Rabbi Trust": an accounting term that ends in a
    # suffix, not an organisation.
    if len(words) > 1 and words[-1].lower() in GENERIC_WORDS and all(
            w.lower() in _TERM_WORDS for w in words[:-1]):
        return ""
    while words and words[-1].lower() in _CONNECTORS:
        words.pop()
    name = " ".join(words).strip(" ,;:-–—")
    if not name or all(w.lower().strip(",") in GENERIC_WORDS or w.lower() in _CONNECTORS for w in name.split()):
        return ""
    return name


def _looks_like_name(name: str) -> bool:
    words = name.split()
    if not words or len(words) > MAX_NAME_WORDS or not words[0][0].isupper():
        return False
    # "Marlow Chemicals plc": a lower-case legal suffix still ends a name
    return all(w[0].isupper() or w[0].isdigit() or w.lower() in _CONNECTORS or w.strip(".,") in _LOWER_SUFFIXES
               for w in words)


_LOWER_SUFFIXES = {"plc", "inc", "llc", "ltd", "co", "corp", "ag", "se", "sa", "nv", "ab", "asa", "spa"}


def _first_name(text: str) -> str:
    """The earliest non-generic organisation name in ``text`` (the longest one when two start together)."""
    found: list[tuple[int, int, str]] = []
    for pattern in (_SUFFIX_NAME, _INSTITUTION):
        for m in pattern.finditer(text):
            name = _clean_name(m.group("name"))
            if name:
                found.append((m.start() + m.group("name").find(name.split()[0]), -len(name), name))
                break  # the first good match of each pattern is enough
    return min(found)[2] if found else ""


def _entity_from_title(title: str) -> str:
    flat = " ".join(_PARENS.sub("", title).split())  # "(Ticker: SGLI)" must not split the title
    sep = _TITLE_SEP.search(flat)
    if sep is None:
        name = _first_name(flat)
        if name:
            return name
        cut = _NAME_CUT.sub("", flat)  # "Acme Widgets 2025 Annual Report": a name only if something was cut
        return _clean_name(cut) if cut != flat and _looks_like_name(cut) else ""
    prefix, rest = flat[:sep.start()].strip(), flat[sep.end():].strip()
    if not _DOC_KIND.match(prefix):
        name = _clean_name(_NAME_CUT.sub("", prefix))
        if name and _looks_like_name(name):
            return name
    # "Risk Factors: Ashgrove Regional Bancorp", "MD&A: Pellucid Software, Quarter Ended ...": the name follows
    name = _first_name(rest)
    if name:
        return name
    run = _LEADING_RUN.match(rest)
    if run:
        name = _clean_name(_NAME_CUT.sub("", run.group(0)))
        if name and _looks_like_name(name):
            return name
    return ""


# --- period -----------------------------------------------------------------------------------------------------
def _year(y: str) -> int | None:
    """A four-digit year; "25" -> 2025, "95" -> 1995; None outside 1990-2039."""
    n = int(y)
    if len(y) == 2:
        n += 2000 if n < 40 else 1900
    return n if 1990 <= n <= 2039 else None


def _fiscal_prefix(flag: str | None) -> str:
    return "fiscal " if flag else ""


def _period_candidates(s: str) -> list[tuple[int, int, str]]:
    """Every period form in ``s`` as (rank, position, normalised form); lower rank = more specific."""
    out: list[tuple[int, int, str]] = []
    for m in _Q_NUM.finditer(s):
        q, y = (m.group("q"), m.group("y")) if m.group("q") else (m.group("q2"), m.group("y2"))
        year = _year(y)
        if year:
            fiscal = m.group("fiscal") if m.group("q") else None
            out.append((0, m.start(), f"Q{q} {_fiscal_prefix(fiscal)}{year}"))
    for m in _Q_WORD.finditer(s):
        fiscal = m.group("fq") or m.group("fiscal")
        out.append((0, m.start(), f"Q{_ORDINAL_QUARTER[m.group('q').lower()]} {_fiscal_prefix(fiscal)}{m.group('y')}"))
    for m in _ENDED.finditer(s):
        month = _month(m.group("m"))
        if month is None:
            continue
        span = " ".join(m.group("span").lower().split())
        form = (f"{_fiscal_prefix(m.group('fiscal'))}{m.group('y')}" if span == "year"
                else f"{span} ended {month} {m.group('y')}")
        out.append((1, m.start(), form))
    for m in _FISCAL_YEAR.finditer(s):
        year = _year(m.group("y"))
        if year:
            out.append((2, m.start(), f"fiscal {year}"))
    for m in _MONTH_YEAR.finditer(s):
        month = _month(m.group("m"))
        if month:
            out.append((3, m.start(), f"{month} {m.group('y')}"))
    for m in _ISO_IN_TEXT.finditer(s):  # "FOMC policy statement, 2019-06-19"
        out.append((3, m.start(), f"{MONTHS[int(m.group('m')) - 1]} {m.group('y')}"))
    for m in _BARE_YEAR.finditer(s):
        out.append((4, m.start(), m.group("y") or m.group("sy")))
    return out


def _month(token: str) -> str | None:
    return _MONTH_BY_PREFIX.get(token.rstrip(".")[:3].lower())


def _period_of_title(s: str) -> str:
    found = _period_candidates(s)
    return min(found)[2] if found else ""


def _period_of_text(s: str) -> str:
    """Plain text mentions comparison periods too, so the most frequent form wins; full dates count as their year
    ("at December 31, 2025" says little about what the document covers)."""
    found = [(rank, pos, form) for rank, pos, form in _period_candidates(s) if rank != 3]
    if not found:
        return ""
    best_rank = min(rank for rank, _, _ in found)
    forms = [(pos, form) for rank, pos, form in found if rank == best_rank]
    counts = Counter(form for _, form in forms)
    first = {}
    for pos, form in sorted(forms):
        first.setdefault(form, pos)
    return min(counts, key=lambda f: (-counts[f], first[f]))


def _period_of_value(key: str, value: Any) -> str:
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        digits = str(value).strip()
        if len(digits) == 8 and _year(digits[:4]) and 1 <= int(digits[4:6]) <= 12:  # 20250409
            return f"{MONTHS[int(digits[4:6]) - 1]} {digits[:4]}"
        year = _year(digits) if len(digits) in (2, 4) else None
        if year is None:
            return ""
        return f"fiscal {year}" if key == "fiscal_year" else str(year)
    text = str(value).strip()
    if not text:
        return ""
    iso = _ISO_DATE.match(text)
    if iso and 1 <= int(iso.group("m")) <= 12:
        return f"{MONTHS[int(iso.group('m')) - 1]} {iso.group('y')}"
    form = _period_of_title(text)
    if form and key == "fiscal_year" and not form.startswith(("fiscal", "Q")):
        form = f"fiscal {form}" if form.isdigit() else form
    return form or (text if len(text) <= 40 and "\n" not in text else "")


def _period(text: str, title: str, meta: dict[str, Any]) -> str:
    for key in PERIOD_KEYS:
        form = _period_of_value(key, meta.get(key))
        if form:
            return form
    if title:
        form = _period_of_title(title)
        if form:
            return form
    return _period_of_text(text[:HEAD_CHARS])


# --- sections ---------------------------------------------------------------------------------------------------
def _norm_line(line: str) -> str:
    return " ".join(_HEADING_MARKS.sub("", line).split()).rstrip(":").strip().lower()


@lru_cache(maxsize=32)  # every chunk of one document asks about the same text: find its headings once
def _headings(text: str, title: str) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The start offsets of the heading lines, and the headings, in order."""
    skip = {_norm_line(title)} if title else set()
    first = _heading_title(_first_line(text))
    if first:
        skip.add(_norm_line(first))
    lines = text.split("\n")
    offsets: list[int] = []
    headings: list[str] = []
    offset = 0
    for i, raw in enumerate(lines):
        line_start, offset = offset, offset + len(raw) + 1
        line = raw.strip()
        if not _is_heading(lines, i, line) or _norm_line(line) in skip:
            continue
        offsets.append(line_start)
        headings.append(_HEADING_MARKS.sub("", line).rstrip(":").strip())
    return tuple(offsets), tuple(headings)


def _is_heading(lines: list[str], i: int, line: str) -> bool:
    if (not line or len(line) > MAX_HEADING_CHARS or line[-1] in ".;," or _BULLET.match(line)
            or not _HAS_LETTER.search(line)):
        return False
    if line.startswith("#"):
        return True
    words = line.split()
    if len(words) > MAX_HEADING_WORDS:
        return False
    if line.endswith(":") and len(words) > 6 and sum(w[0].isupper() for w in words) * 2 < len(words):
        return False  # "The following weaknesses were identified in management's assessment:" leads into a list
    blank_after = i + 1 >= len(lines) or not lines[i + 1].strip()
    prev = lines[i - 1].strip() if i > 0 else ""
    # A short line that is a paragraph of its own, or that follows a finished sentence and precedes a blank
    # line, is a heading; a short line inside running text is a wrapped sentence.
    if blank_after and (not prev or prev[-1] in ".!?:"):
        return True
    letters = [c for c in line if c.isalpha()]
    return len(letters) >= 4 and all(c.isupper() for c in letters)  # "LIQUIDITY AND CAPITAL RESOURCES"
