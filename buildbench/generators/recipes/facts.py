"""Answer-first query writing: pick each chunk's salient sentences (facts) so a query can be written to ask for them.

A small query writer shown a whole chunk asks vague questions ("What was the company's plan?"). Shown one
specific sentence of the chunk, it asks for that sentence's content, and the query has a definite answer.
The salient sentences are chosen without an LLM: TF-IDF over the corpus of chunks (document frequency per
chunk), normalised by sentence length, with a bonus for what makes a query specific (numbers, amounts,
dates, named entities) and a penalty for fragments, run-ons, questions (their answer is the next sentence) and
boilerplate that recurs across chunks.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from ...builders.chunking import split_sentences
from ...builders.context import YEAR

MAX_TERMS = 5
MIN_WORDS = 6  # shorter: a heading or fragment, not a fact
MAX_WORDS = 70  # longer: a run-on or a table flattened into one "sentence"
SHORT_PENALTY = 0.3
LONG_PENALTY = 0.35
NUMBER_BONUS = 0.25  # per number, amount, percentage or date, up to MAX_NUMBER_BONUSES
MAX_NUMBER_BONUSES = 4
NAME_BONUS = 0.15  # per capitalised multi-word name or code ("Federal Open Market Committee", "HBX-214")
MAX_NAME_BONUSES = 3
# A sentence whose words are on average this much commoner than the corpus's is boilerplate ("The Committee
# will continue to monitor ..." recurs in chunk after chunk); its score shrinks with the square of the ratio.
BOILERPLATE_RATIO = 0.85
CUE_PENALTY = 0.3
# A sentence of many comma- or semicolon-separated items and hardly a number is an enumeration (a roll call, a
# list of cities): its many rare words inflate TF-IDF, but it makes a poor single answer. A list of figures
# ("CET1 of 10.67%, comprising 4.5%, 1.41%, ...") is a fact and keeps its score.
ENUMERATION_SEPARATORS = 8
ENUMERATION_PENALTY = 0.5
# A question asks; its answer is the next speaker's ("Analyst: any update on the $420 million that needed
# licenses?" of an earnings call). Written to ask for it, a query restates the question.
QUESTION_PENALTY = 0.2

# Function words carry no topic; the list stays small and English (words under 3 letters are dropped anyway).
STOP_WORDS = frozenset(
    """
    the and for are but not you all any can had her was one our out has him his how its may new now old see
    two who did get let put say she too use been from have into more most much must only over said same some
    such than that them then they this very were what when where which while will with would about above after
    again against also because before being below between both could does doing down during each even every
    few further here itself just like made make many might other ought ours ourselves own shall should since
    still their theirs there these those through under until upon what whom whose why within without yet your
    yours also per via among amongst across already although always another anyone anything around became
    become becomes else enough ever however indeed least less lot often once onto otherwise rather seem seems
    several something sometimes somewhat therefore thus together toward towards unless whether whereas
    """.split()
)
# Phrases that mark boilerplate even in a corpus too small for document frequencies to show it. The keywords
# are a fast substring test that spares most sentences the regex.
_BOILERPLATE_KEYWORDS = ("forward", "obligation", "monitor", "information", "reserved", "blank", "conjunction",
                         "offer to", "this page", "this document")
_BOILERPLATE = re.compile(
    r"forward-looking statements?|undertakes? no obligation|will continue to monitor|"
    r"for (?:more|further|additional) information|all rights reserved|intentionally left blank|"
    r"should be read in conjunction with|not (?:an )?offer to (?:sell|buy)|this (?:page|document) (?:is|has been)"
)

_TOKEN = re.compile(r"[a-z]+|\d+(?:[.,]\d+)*")
_MONTH = (r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
          r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\.?")
_NUM = r"\d+-\d/\d|\d/\d|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"  # "4-3/4", "1/2", "1,480", "4.75"
_SCALE = r"(?:\s?(?:million|billion|trillion|thousand|bn|mn|m|k)\b)?"
# Amounts, percentages and dates as written; longest forms first so "$400 million" is one mention, not two.
_NUMBER = re.compile(
    r"(?=[\dA-Z$€£¥])(?:"  # a cheap first-character test: most positions are lowercase letters or blanks
    rf"\d{{1,2}}(?:\s*[–-]\s*\d{{1,2}})?\s+{_MONTH}(?:\s+\d{{4}})?(?!\w)"
    rf"|{_MONTH}\s+\d{{1,2}}(?:\s*[–-]\s*\d{{1,2}})?(?:,\s+\d{{4}})?(?![\w.,]\d)"
    rf"|(?:[$€£¥]|\b(?:USD|EUR|GBP|JPY|CHF|CAD|AUD|SEK|NOK|DKK)\s?)(?:{_NUM}){_SCALE}"
    rf"|(?<![\w.,/-])(?:{_NUM})(?:[\s-]?(?:%|percent(?:age points?)?|per\s?cent|basis[\s-]points?|bps|bp|"
    rf"percentage[\s-]points?|million|billion|trillion|thousand|times|x)(?![\w])|(?![\w%])(?!,\d)(?!\.\d)))"
)
_DIGIT = re.compile(r"\d")
# Two or more capitalised words ("Federal Open Market Committee", "Ostmark Bank Group"), or a code with capitals
# and digits or several capitals ("CET1", "HBX-214", "LCR").
_NAME = re.compile(r"\b[A-Z][\w'’&.-]*(?:\s+(?:of\s+(?:the\s+)?|&\s+)?[A-Z][\w'’&.-]*)+")
_CODE = re.compile(r"\b(?:[A-Z]{2,}\d*|[A-Z]+\d+[A-Z\d]*|[A-Z]{1,5}-\d+[A-Z\d]*)\b")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Fact:
    text: str  # one sentence of the chunk, verbatim (whitespace collapsed)
    score: float  # salience
    terms: tuple[str, ...]  # its top rare terms (lowercase), most salient first, at most 5
    numbers: tuple[str, ...]  # numbers/percentages/amounts it states, as written ("4.75 percent", "$400 million")


@dataclass
class _Sentence:
    text: str
    position: int
    words: int
    tokens: list[str]  # content tokens, in order
    numbers: tuple[str, ...]


def salient_facts(chunks: Mapping[str, str], k: int = 2,
                  skip: Mapping[str, str] | None = None) -> dict[str, list[Fact]]:
    """Up to ``k`` salient sentences of every chunk, best first, distinct.

    Args:
        chunks: chunk id -> text. The whole mapping is the corpus the document frequencies come from.
        k: facts per chunk; a chunk with fewer sentences gets fewer.
        skip: chunk id -> a line that is not a fact (the document title at the top of its first chunk).

    Returns:
        Chunk id -> facts, for every chunk (an empty list when a chunk has no sentence with a letter or digit).
        Deterministic: equal scores keep sentence order.
    """
    skip = skip or {}
    sentences = {cid: _sentences(text, skip.get(cid, "")) for cid, text in chunks.items()}
    df: Counter[str] = Counter()
    for sents in sentences.values():
        df.update({t for s in sents for t in s.tokens})
    idf = smoothed_idf(df, len(chunks))
    occurrences = sum(len(s.tokens) for sents in sentences.values() for s in sents)
    # fsum is exact, so the mean (and every score) does not depend on the order the chunks come in
    mean_idf = (math.fsum(idf[t] for sents in sentences.values() for s in sents for t in s.tokens) / occurrences
                if occurrences else 1.0)
    out: dict[str, list[Fact]] = {}
    for cid, sents in sentences.items():
        scored = sorted(((_score(s, idf, mean_idf), s) for s in sents), key=lambda x: (-x[0], x[1].position))
        out[cid] = [_fact(s, score, idf) for score, s in scored[:max(k, 0)]]
    return out


def smoothed_idf(df: Mapping[str, int], n: int) -> dict[str, float]:
    """Each term's rarity over ``n`` texts, from its document frequency: log((n + 1) / (df + 1)) + 1, never 0."""
    return {t: math.log((n + 1) / (c + 1)) + 1.0 for t, c in df.items()}


def _sentences(text: str, skip_line: str) -> list[_Sentence]:
    skip_norm = _SPACES.sub(" ", skip_line).strip().lstrip("#").strip().lower()
    seen: set[str] = set()
    out = []
    for start, end in split_sentences(text):
        sent = _SPACES.sub(" ", text[start:end]).strip()
        bare = sent.lstrip("# ")
        if skip_norm and bare.lower().startswith(skip_norm) and not bare[len(skip_norm):len(skip_norm) + 1].isalnum():
            sent = bare[len(skip_norm):].strip()  # the title, alone or run into the first sentence
        key = sent.lower()
        if not any(c.isalnum() for c in sent) or key in seen:
            continue
        seen.add(key)
        tokens = [t for t in _TOKEN.findall(key) if t[0].isdigit() or (len(t) >= 3 and t not in STOP_WORDS)]
        out.append(_Sentence(sent, len(out), len(sent.split()), tokens, numbers_in(sent)))
    return out


def numbers_in(sentence: str) -> tuple[str, ...]:
    """Numbers, amounts, percentages and dates as written; bare years are left out (the period says them)."""
    if not _DIGIT.search(sentence):
        return ()
    found = []
    for m in _NUMBER.finditer(sentence):
        mention = m.group(0).strip()
        if mention and not YEAR.fullmatch(mention):
            found.append(mention)
    return tuple(found)


def names_in(sentence: str) -> int:
    """Capitalised multi-word names and codes, not counting the sentence's first word ("The Committee")."""
    count = 0
    for m in _NAME.finditer(sentence):
        words = m.group(0).split()
        if m.start() == 0:
            words = words[1:]  # a capitalised sentence start is not a name by itself
        if sum(1 for w in words if w[0].isupper()) >= 2:
            count += 1
    count += sum(1 for m in _CODE.finditer(sentence) if m.start() > 0 and not YEAR.fullmatch(m.group(0)))
    return count


def _score(s: _Sentence, idf: dict[str, float], mean_idf: float) -> float:
    if not s.tokens:
        return 0.0
    tf = Counter(s.tokens)
    base = total_idf = 0.0
    for t, c in tf.items():
        base += (1.0 + math.log(c)) * idf[t]
        total_idf += c * idf[t]
    base /= math.sqrt(len(s.tokens))
    bonus = (1.0 + NUMBER_BONUS * min(len(s.numbers), MAX_NUMBER_BONUSES)
             + NAME_BONUS * min(names_in(s.text), MAX_NAME_BONUSES))
    score = base * bonus
    if s.words < MIN_WORDS:
        score *= SHORT_PENALTY
    elif s.words > MAX_WORDS:
        score *= LONG_PENALTY
    ratio = total_idf / len(s.tokens) / mean_idf
    if ratio < BOILERPLATE_RATIO:
        score *= (ratio / BOILERPLATE_RATIO) ** 2
    low = s.text.lower()
    if any(w in low for w in _BOILERPLATE_KEYWORDS) and _BOILERPLATE.search(low):
        score *= CUE_PENALTY
    if s.text.count(",") + s.text.count(";") >= ENUMERATION_SEPARATORS and len(s.numbers) < 2:
        score *= ENUMERATION_PENALTY
    if s.text.endswith("?"):
        score *= QUESTION_PENALTY
    return score


def _fact(s: _Sentence, score: float, idf: dict[str, float]) -> Fact:
    tf = Counter(t for t in s.tokens if t.isalpha())
    first = {}
    for i, t in enumerate(s.tokens):
        first.setdefault(t, i)
    ranked = sorted(tf, key=lambda t: (-(1.0 + math.log(tf[t])) * idf[t], first[t]))
    return Fact(text=s.text, score=score, terms=tuple(ranked[:MAX_TERMS]), numbers=s.numbers)
