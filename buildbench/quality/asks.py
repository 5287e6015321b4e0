"""What a query asks of its fact, and whether the fact can answer it.

``quality.support``'s filter checks these last, so a draft that fails an earlier check keeps that reason (and its
redraft), and a draft that fails only one of them is its slot's last. Read on the 530 distinct labelled sample
queries that carry their fact (benchmarks/query_labels/, all builds; 313 of the 497 others are good), then on the
six labelled builds of the code before them (``spares_all_*``), rebuilt with them (``asks_all_*``):
- ``asks_when``: it asks when, and its fact states no time the query does not already name (a month, quarter or
  half, a date or a span of days; a year only when the query names none, since the fact's other year is most often
  a comparison): "I need to know when in 2025 BCE net earnings will be 12.6% of adjusted EBITDA". In the six
  builds it dropped 4 kept queries, all wrong.
- ``asks_why``: it asks why, or for a reason, rationale or purpose, and its fact states no cause ("because",
  "driven by", "to fund" ...): "What was the key reason for the general availability of Pellucid Copilot?". Good 3
  times in 11; in the six builds, 1 of 5.
- ``asks_two_things``: it asks a second thing after "and" ("..., and how much the utilization fee was"), most often
  one its passage does not answer. Good 6 times in 21; in the six builds, 1 of 6.

A fourth, ``asks_value`` ("what is ...", "how much ..." of a fact that states no figure), was read on every
labelled build (1 good in 32) and checked on two builds of a seed no rule was read on (``value_all_*``;
benchmarks/README.md has the tables). A "since" of time ("since 2017") is no cause, ``asks_hypothetical`` drops a
"what would" of a fact that states no case or estimate (0 good in 6), and ``asks_comparison`` a question or request
that compares two things other than a thing with its earlier period (2 good in 21). Then ``asks_other_year`` and
``states_answer`` (see each), ``opposite_direction``, and last ``asks_whole_year`` and ``presumes_negated``.
``names_speaker`` is a wording check that ``quality.support`` runs with its own (a redraft asks about the same fact).
"""

from __future__ import annotations

import re
from typing import Optional

from ..builders.context import DATE_NUMBERS, YEAR, period_marks
from .numbers import figures, value_figures
from .words import PREFIX


# Asks a fact must answer (see the module's docstring): when, why, and a second ask after "and".
_ASKS_WHEN = re.compile(r"^when\b|\b(?:know|tell me|find out|confirm|check|understand|see|explain) when\b|\bwhen in\b",
                        re.IGNORECASE)
_TIME_SPAN = re.compile(r"\b\d+\s+(?:business\s+|calendar\s+)?(?:days?|weeks?|months?|years?)\b|\bwithin\b|\bby mid\b|"
                        r"\bon any day\b|\b(?:each|every|per) (?:day|week|month|quarter|year)\b|\b(?:annually|monthly|"
                        r"quarterly|weekly|daily)\b", re.IGNORECASE)
_ASKS_WHY = re.compile(r"\bwhy\b|\breasons?\b|\brationale\b|\bpurpose\b|\bmotivation\b", re.IGNORECASE)
# A "since" of time ("has managed it since 2017", "since inception") states no cause.
_SINCE_CAUSE = (r"since(?!\s+(?:\d|inception|(?:its|the|our)\s+(?:\d|inception|launch|start|peak)|"
                r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b))")
_CAUSE = re.compile(r"\b(?:because|due to|driven|drive[sn]?|reflect\w*|owing to|as a result|result\w* (?:of|from)|"
                    r"attributable|led by|caus\w*|primarily|mainly|largely|in order to|so that|thanks to|help\w*|"
                    rf"amid|given|{_SINCE_CAUSE}|aim\w*|intend\w*|purpose|reasons?|"
                    r"to (?:fund|finance|refinance|repay|reduce|"
                    r"support|discourage|encourage|protect|bring|improve|lower|meet|address|cover|maintain|return|"
                    r"comply|avoid|offset|hedge|preserve|strengthen))\b", re.IGNORECASE)
_SECOND_ASK = re.compile(r",?\s+(?:and|as well as)\s+(?:how|what|when|whether|why|which|who|where|if)\b",
                         re.IGNORECASE)


# "What is ...", "How much ...": from a small writer, a question for a value. Of 32 labelled questions and
# requests that ask so of a fact stating no figure, 1 was good; a typical one asks "What is the Fund's net
# investment income for the month of April 2025?" of "The Fund intends to distribute ... its net investment income
# monthly".
_ASKS_VALUE = re.compile(r"\bhow (?:much|many)\b|\bwhat (?:is|was|were|are|will be)\b", re.IGNORECASE)


# "How much would a 60.5% non-GAAP gross margin increase in Q4 2025?": a small writer copies the frame of a
# sensitivity question onto a fact that states no case, estimate or condition. Of 6 labelled questions and requests
# asking what "would" be of such a fact, none was good (1 of 2 where the fact states one). "I would like" is the
# searcher's own.
_ASKS_WOULD = re.compile(r"(?<!\bi )(?<!\bwe )\bwould\b(?!\s+like\b)", re.IGNORECASE)
_CONDITION = re.compile(r"\b(?:would|could|might|if|assum\w*|estimat\w*|sensitiv\w*|scenario)\b", re.IGNORECASE)


# "I need to know whether Northwind Logistics' 2025 average revenue per loaded mile is higher than the average number
# of tractors in service": a small writer sets two things of its fact side by side that no one would compare. Of 21
# labelled questions and requests (seeds 0-17) that ask how one thing compares with another, 2 were good ("whether
# Lumen Foods' Level III facility fee is the same as the Level II facility fee"); of 14 that compare with a year or
# an earlier period ("... higher or lower than the 2024 revenue", "... lower than the prior quarter"), 5 were good.
_ASKS_COMPARISON = re.compile(r"\b(?:difference between|differ(?:s|ed)? from|the same as|(?:higher|lower|greater|"
                              r"larger|smaller|bigger) than|higher or lower|lower or higher|more or less|larger or "
                              r"smaller|compar(?:e|ed|ing)? (?:with|to))\b", re.IGNORECASE)
_EARLIER_PERIOD = re.compile(rf"{YEAR.pattern}|\b(?:prior|previous|preceding|last|same) (?:year|quarter|period|month|"
                             r"fiscal)|\ba year (?:ago|earlier|before)\b|\bquarter\b|\byear[- ]end\b", re.IGNORECASE)


def unanswered_ask(query: str, fact: str) -> Optional[tuple[str, str]]:
    """(reason, detail) when ``query`` asks its ``fact`` something the fact cannot answer: when (no time the query
    does not already name), why (no cause), a second thing after "and", a value (no figure), what would be (no
    case or estimate), or, as a question or request, how two things compare other than a thing with an earlier
    period of itself; None otherwise."""
    second = _SECOND_ASK.search(query)
    if second:
        return ("asks_two_things", f"it asks a second thing ({second.group(0).strip()!r} ...), which its fact "
                "rarely answers as well")
    if _ASKS_WHEN.search(query):
        # A query that names a year asks when within it; a fact's other year is then a comparison ("up from
        # $259 million in Q4 2018"), not the answer.
        new_marks = period_marks(fact) - period_marks(query)
        new_years = not YEAR.search(query) and YEAR.search(fact)
        if not (new_marks or new_years or DATE_NUMBERS.search(fact) or _TIME_SPAN.search(fact)):
            return ("asks_when", "it asks when, and its fact states no time the query does not already name")
    why = _ASKS_WHY.search(query)
    if why and not _CAUSE.search(fact):
        return ("asks_why", f"it asks {why.group(0).lower()!r}, and its fact states no cause or purpose")
    value = _ASKS_VALUE.search(query)
    if value and not figures(fact):
        return ("asks_value", f"it asks {value.group(0).lower()!r}, and its fact states no figure")
    if _ASKS_WOULD.search(query) and not _CONDITION.search(fact):
        return ("asks_hypothetical", "it asks what would be, and its fact states no case, estimate or condition")
    compared = _ASKS_COMPARISON.search(query)
    if compared and _in_words(query) and not _EARLIER_PERIOD.search(query, compared.start()):
        return ("asks_comparison", f"it asks how two things compare ({compared.group(0).lower()!r}), not one thing "
                "with an earlier period of itself")
    return None


# A person's need ("I need", "we are looking for"): what a request has and a bare question ("What is the expected
# revenue of ... in 2025?") lacks. Of 26 labelled requests that end with a question mark and name no need, 6 were
# good (102 of 253 requests).
PERSON_NEED = (r"\b(?:i|we)(?:'m|'d| am| are| need| want| would| must| have to| require| plan| will need)\b"
               r"|\b(?:need|needs|looking for|trying to)\b")
ASKS_AS_A_PERSON = re.compile(PERSON_NEED, re.IGNORECASE)


def _is_question(query: str) -> bool:
    return query.rstrip().endswith("?")


def _in_words(query: str) -> bool:
    """Whether ``query`` is a question or a request, not a keyword search."""
    return _is_question(query) or bool(ASKS_AS_A_PERSON.search(query))


# A question or request asks its fact, the answer it was written for. A year that neither the fact nor its
# document's title states points it at a period its passage only compares with ("How much debt-to-capital ratio did
# Granite Peak Homebuilders have in 2024?" of a year-end 2025 ratio; "... A- rating ... will be affirmed in 2024" of
# a March 2025 action). A keyword search adds its report's year to a fact that names none: of the 24 labelled ones
# naming a year so, 22 were good, against none of the 4 questions and requests (seeds 0-11, read on seed 11).
def asks_other_year(query: str, fact: str, naming: str = "") -> Optional[tuple[str, str]]:
    """(reason, detail) when ``query`` is a question or request naming a year that neither its ``fact`` nor its
    document's title (``naming``) states; None otherwise."""
    if not _in_words(query):
        return None
    other = set(YEAR.findall(query)) - set(YEAR.findall(fact)) - set(YEAR.findall(naming))
    if other:
        return ("asks_other_year", f"a question or request about {', '.join(sorted(other))}, which neither its fact "
                "nor its title states")
    return None


# "What was the net sales of $1.4 billion in fiscal 2019?": a question (it ends with "?"; a request or a keyword
# search does not) that states a figure of its fact asks for what it already says, or garbles the figure into its
# ask ("What is the $74 million increase in contract labor costs on ...'s Payer Mix?"). Of 26 labelled questions of
# sixteen builds (the sample and tatqa_dev, seeds 0-7) that did, 9 were good, against 75 of the sample's 98 that did
# not (on tatqa_dev, whose excerpts name no one, every question names a figure). In three new draws (seeds 8-10) it
# dropped 18 questions, 7 of them good. A request names its figure to check it ("I need to know whether ... CET1
# capital was EUR 18.9 billion"): 7 of 9 good.
def states_answer(query: str, fact: str) -> Optional[tuple[str, str]]:
    """(reason, detail) when ``query`` is a question that states a figure of its ``fact``; None otherwise."""
    stated = value_figures(query) & value_figures(fact) if _is_question(query) else set()
    if stated:
        return ("states_answer", f"a question that states {', '.join(sorted(stated))} of its fact: it asks for what "
                "it says, or garbles the figure into its ask")
    return None


# "What does Granite Peak Homebuilders expect to increase its net new orders for 2025?" of "Net new orders ... were
# 10,036 homes, down 2%": a query that states one direction of change where its fact states only the other asks
# about a change that did not happen. Of the 1,025 distinct labelled sample queries that carry their fact (all
# builds, seeds 0-14), 7 did: 6 were wrong, the seventh asks "how much of the increase" in a limit its fact keeps,
# and none was a keyword search. "Up to" is a bound, not a rise.
_UP = re.compile(r"\b(?:increas\w*|ris(?:e|es|en|ing)|rose|gr[eo]w(?:s|n|ing|th)?|higher|up(?!\s+(?:to|front)\b)|"
                 r"improv\w*)\b", re.IGNORECASE)
_DOWN = re.compile(r"\b(?:decreas\w*|declin\w*|fall(?:s|en|ing)?|fell|lower|down|drop\w*|reduc\w*)\b", re.IGNORECASE)


def opposite_direction(query: str, fact: str) -> Optional[tuple[str, str]]:
    """(reason, detail) when ``query`` states only a rise (or only a fall) and its ``fact`` states only the other;
    None otherwise."""
    rise, fall = _UP.search(query), _DOWN.search(query)
    if bool(rise) == bool(fall):  # neither, or both ("fell after an increase"): no one direction to contradict
        return None
    said, same, opposite = (rise, _UP, _DOWN) if rise else (fall, _DOWN, _UP)
    against = opposite.search(fact)
    if against and not same.search(fact):
        return ("opposite_direction", f"it says {said.group(0).lower()!r}, and its fact states only the other way "
                f"({against.group(0).lower()!r})")
    return None


# A turn of a transcript opens with its speaker ("Analyst, Larkspur Equity: You are lowering full-year EPS guidance
# to ...", "Jonas Wirtanen, Chief Financial Officer: Adjusted EBITDA was ..."): who speaks, not what the turn is about.
# The writer takes the speaker for the subject: "What is the analyst's full-year EPS guidance for Meridian ...?" (the
# guidance is Meridian's, read back), "What was the adjusted EBITDA for Jonas Wirtanen's Q2 2025?". Of the labelled
# queries of every build whose fact is such a turn, the 9 questions and requests naming its speaker were all wrong
# (one, "What is the analyst's 2026 EBITDA guidance for Tidewater ...", read again: it had been called good), and so
# were the 3 keyword searches naming an analyst's firm ("Copperfield Research 3.4%"). Keyword searches naming a
# company's own speaker ("Miriam Castellanos $410 million Coyote Flats budget") were good 3 times in 5, and are left
# alone.
_TURN = re.compile(r"^\s*([A-Z][\w.'’-]*(?: [A-Z][\w.'’-]*){0,3}),\s*([^:\n]{2,60}):\s")
# A company speaker's label names a title ("Miriam Castellanos, Chief Financial Officer:"); "Dallas, Texas: ..." is
# no turn.
_TITLE = re.compile(r"\b(?:Chief|Officer|CEO|CFO|COO|CRO|President|Chair\w*|Director|Treasurer|Head|Vice|Manager|"
                    r"Governor|Partner|Relations|Secretary|Controller|Operator)\b")


def names_speaker(query: str, fact: str) -> Optional[tuple[str, str]]:
    """(reason, detail) when ``query`` names the speaker of the transcript turn its ``fact`` opens: an analyst or
    the analyst's firm in any query, a company's speaker in a question or request; None otherwise."""
    turn = _TURN.match(fact)
    if not turn:
        return None
    name, role = turn.group(1), turn.group(2).strip()
    analyst = name.lower() == "analyst"
    if not (analyst or _TITLE.search(role) and _in_words(query)):
        return None
    # An analyst's label is "Analyst, <firm>"; a company speaker's "<name>, <title>", named in full or by surname.
    said = [name, role] if analyst else [name, name.split()[-1]] if " " in name else [name]
    for who in said:
        if re.search(rf"\b{re.escape(who)}\b", query, re.IGNORECASE):
            return ("names_speaker", f"it names {who!r}, who speaks its fact, as if the fact were about them")
    return None


# A document that reports a quarter, a half or nine months (its title's period: "Q4 fiscal 2025", "nine months ended
# September 2025") gives that part's figures. A question or request naming only the period's year ("What is the total
# revenue for Crestline Semiconductor in fiscal 2025?" of a fourth-quarter call; "What data-center revenue guidance
# range did Crestline Semiconductor give for fiscal 2025?") asks for the year's, which its passage does not give,
# unless its fact speaks of the whole year ("full-year guidance") or names that year itself. Of the labelled questions
# and requests of every build that did, 19 were wrong or vague and 3 good ("What is the segment operating margin for
# Bluefin Seafoods Inc. in fiscal 2025?" of a nine-month margin).
_PART_PERIOD = re.compile(r"\b(?:Q[1-4]|quarter\w*|half|H[12]|(?:three|six|nine) months)\b", re.IGNORECASE)
_PART_WORD = re.compile(r"\b(?:Q[1-4]|first|second|third|fourth|quarter\w*|half|H[12]|months?)\b", re.IGNORECASE)
_WHOLE_YEAR = re.compile(r"\b(?:full[- ]year|for the year|fiscal year|annual\w*|year[- ]end|year ended)\b",
                         re.IGNORECASE)


def asks_whole_year(query: str, fact: str, period: str) -> Optional[tuple[str, str]]:
    """(reason, detail) when ``query`` is a question or request naming only the year of its document's ``period``,
    a part of a year, and its ``fact`` neither speaks of the whole year nor names that year; None otherwise."""
    if not _in_words(query) or not _PART_PERIOD.search(period):
        return None
    years = set(YEAR.findall(query))
    if not years or _PART_WORD.search(query) or not years <= set(YEAR.findall(period)):
        return None
    if _WHOLE_YEAR.search(fact) or years & set(YEAR.findall(fact)):
        return None
    return ("asks_whole_year", f"it asks about {', '.join(sorted(years))} as a whole, and its document reports "
            f"{period!r}")


# "What is the state's liability fund for Brightwater Utilities Corp.?" of "... but the state has no dedicated
# liability fund": a question or request that asks what or how much of a thing its fact names only under a negation
# presumes what the fact denies. One that asks whether ("I need to know if I can deduct the interest ...") or says
# the negation itself asks fairly, and is left alone. Of the labelled questions and requests of every build, 11 asked
# of words their fact holds only within four words after its "no", "not", "cannot" ...: 8 were wrong or vague, and 3
# were called good: that very liability-fund question in an early reading (later readings call it wrong), a question
# about cyber cover of a fact that excludes war ("does not apply to any loss arising from war"), and one asking what a
# covenant ratio measures of "shall not permit the Consolidated Fixed Charge Coverage Ratio, measured as ...".
_NEGATION = re.compile(r"(?:no|not|cannot|never|without|nor|neither|none)|\w+n[’']t", re.IGNORECASE)
_YES_NO = re.compile(r"\b(?:whether|if)\b|^(?:is|are|was|were|does|do|did|can|could|will|would|has|have|had|should)"
                     r"\b", re.IGNORECASE)
NEGATION_SCOPE = 4


def presumes_negated(query: str, fact: str) -> Optional[tuple[str, str]]:
    """(reason, detail) when ``query`` is a question or request, not a yes/no one and not negated itself, that names
    a word its ``fact`` holds only within ``NEGATION_SCOPE`` words after a negation; None otherwise."""
    words = re.findall(r"[\w'’-]+", query)
    if not _in_words(query) or _YES_NO.search(query) or any(_NEGATION.fullmatch(w) for w in words):
        return None
    negated, plain, scope = set(), set(), 0
    for token in re.findall(r"[\w'’-]+", fact):
        if _NEGATION.fullmatch(token):
            scope = NEGATION_SCOPE
            continue
        if len(token) > 3:
            (negated if scope else plain).add(token.lower()[:PREFIX])
        scope = max(0, scope - 1)
    denied = sorted({w for w in words if len(w) > 3 and w.lower()[:PREFIX] in negated - plain})
    if denied:
        return ("presumes_negated", f"it asks of {', '.join(repr(w) for w in denied)}, which its fact names only "
                "under a negation")
    return None
