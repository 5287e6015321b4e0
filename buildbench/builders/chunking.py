"""Sentence-aware chunking of normalised documents.

A chunk is a run of whole sentences, never more than ``max_chars`` long, and a slice of its document's text:
``doc.text[chunk.start:chunk.end] == chunk.text``. Sentences never cross a paragraph break ("\\n\\n").
Consecutive chunks share their boundary sentences (``overlap_sentences``), so a query written about a fact
that straddles a boundary still has a chunk that contains it.

The sentence splitter is a regex with an abbreviation list rather than a model: it is deterministic, has no
download, and the cases that matter for finance text ("U.S.", "Inc.", "No. 5", "approx.", "2.5%") are few
and known.
"""

from __future__ import annotations

import logging
import re
from typing import Iterable

from ..domain_pack import ChunkingConfig
from ..errors import ConfigError
from ..records import Chunk, Document, Drop

log = logging.getLogger(__name__)

# A period after one of these (case-insensitive, without its period) does not end a sentence.
ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof sr jr st mt rev gov sen rep gen col capt lt sgt hon messrs
    inc corp co cos ltd llc plc bros assn dept div univ govt intl natl mfg
    approx est ca cf vs viz al resp incl excl
    jan feb mar apr jun jul aug sep sept oct nov dec
    pct yr yrs qtr bbl
    ave blvd rd
    """.split()
)
# These are abbreviations only before a number ("No. 5", "p. 12"); "said no. The ..." still ends a sentence.
NUMBER_ABBREVIATIONS = frozenset("no nos vol vols p pp ch sec secs art arts fig figs eq eqs para paras tab".split())

_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
# Sentence-final punctuation, then closing quotes or brackets, then whitespace.
_SENTENCE_END = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s)")
_DOTTED_ACRONYM = re.compile(r"(?:[A-Za-z]\.){2,}")  # U.S., e.g., i.e., a.m., U.S.A.
_OPENERS = "\"'([{\u201c\u2018"
# A line break after one of these continues the sentence on the next line (hard-wrapped text).
_SOFT_LINE_END = ",;-\u2013\u2014(/&"


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the sentences of ``text``, in order, without surrounding blanks.

    A sentence ends at ``.``, ``!`` or ``?`` (plus closing quotes or brackets) followed by whitespace and a
    word that does not start lowercase, unless the period belongs to an abbreviation, a dotted acronym
    ("U.S."), an initial ("J. Powell") or a list number at the start of a line. A line break also ends a
    sentence (headings, list items), unless the next line starts lowercase or the line ends with a comma,
    semicolon, dash or similar: that is hard-wrapped text. A paragraph break always ends a sentence.
    """
    spans: list[tuple[int, int]] = []
    for p_start, p_end in _paragraphs(text):
        start = p_start
        for cut in _sentence_cuts(text, p_start, p_end) + [p_end]:
            s, e = _trim(text, start, cut)
            if s < e:
                spans.append((s, e))
            start = cut
    return spans


def chunk_document(doc: Document, cfg: ChunkingConfig) -> list[Chunk]:
    """Split one document into chunks of whole sentences.

    Args:
        doc: a document whose text is already normalised (``normalize_text``).
        cfg: ``max_chars`` is the hard size budget of a chunk; ``overlap_sentences`` is how many sentences
            at the end of a chunk start the next one (fewer when they would not fit with a new sentence);
            ``min_chars`` is not applied here (see ``chunk_documents``).

    Returns:
        All chunks, ids ``f"{doc.id}-c{position}"``. A document that fits in ``max_chars`` is one chunk
        whose text is the (stripped) document text. A sentence longer than ``max_chars`` is cut at word
        boundaries, or inside a word only when a single word is longer than the budget.
    """
    _check(cfg)
    text = doc.text
    start, end = _trim(text, 0, len(text))
    if start >= end:
        return []
    if end - start <= cfg.max_chars:
        return [_make_chunk(doc, 0, start, end)]

    units: list[tuple[int, int]] = []
    for s, e in split_sentences(text):
        units.extend(_split_long(text, s, e, cfg.max_chars) if e - s > cfg.max_chars else [(s, e)])

    groups: list[list[int]] = []
    current: list[int] = []
    for k, (_, unit_end) in enumerate(units):
        if current and unit_end - units[current[0]][0] > cfg.max_chars:
            groups.append(current)
            overlap = current[-cfg.overlap_sentences:] if cfg.overlap_sentences else []
            # Overlap never pushes a chunk over budget, and the new chunk always gets the new unit, so the
            # loop always advances.
            while overlap and unit_end - units[overlap[0]][0] > cfg.max_chars:
                overlap = overlap[1:]
            current = list(overlap)
        current.append(k)
    if current:
        groups.append(current)
    return [_make_chunk(doc, pos, units[g[0]][0], units[g[-1]][1]) for pos, g in enumerate(groups)]


def chunk_documents(docs: Iterable[Document], cfg: ChunkingConfig, stage: str) -> tuple[list[Chunk], list[Drop]]:
    """Chunk every document, dropping chunks shorter than ``cfg.min_chars``.

    Each dropped chunk is a ``Drop(stage=stage, reason="too_short")``, ``stage`` naming the calling stage. This includes a document that is
    one short chunk as a whole: a passage under ``min_chars`` gives a query too little to be about.
    Positions (and so ids) are assigned before dropping, so a chunk's id does not depend on ``min_chars``.
    """
    _check(cfg)
    kept: list[Chunk] = []
    drops: list[Drop] = []
    n_docs = 0
    for doc in docs:
        n_docs += 1
        for chunk in chunk_document(doc, cfg):
            if len(chunk.text) < cfg.min_chars:
                drops.append(Drop(stage=stage, item_id=chunk.id, reason="too_short",
                                  detail=f"{len(chunk.text)} characters, under min_chars={cfg.min_chars}"))
            else:
                kept.append(chunk)
    log.info("chunked %d documents into %d chunks (%d too short)", n_docs, len(kept), len(drops))
    return kept, drops


# --------------------------------------------------------------------------------------------------- helpers


def _check(cfg: ChunkingConfig) -> None:
    if cfg.max_chars < 1:
        raise ConfigError(f"chunking.max_chars must be at least 1, not {cfg.max_chars}")
    if cfg.overlap_sentences < 0:
        raise ConfigError(f"chunking.overlap_sentences must be 0 or more, not {cfg.overlap_sentences}")
    if cfg.min_chars < 0:
        raise ConfigError(f"chunking.min_chars must be 0 or more, not {cfg.min_chars}")


def _make_chunk(doc: Document, position: int, start: int, end: int) -> Chunk:
    return Chunk(id=f"{doc.id}-c{position}", doc_id=doc.id, text=doc.text[start:end], title=doc.title,
                 position=position, start=start, end=end)


def _paragraphs(text: str) -> list[tuple[int, int]]:
    spans = []
    start = 0
    for m in _PARAGRAPH_BREAK.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return spans


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _next_visible(text: str, i: int, end: int) -> int:
    while i < end and text[i].isspace():
        i += 1
    return i


def _sentence_cuts(text: str, p_start: int, p_end: int) -> list[int]:
    """Positions inside one paragraph where a sentence ends (the next one starts after the blanks)."""
    cuts = set()
    for m in _SENTENCE_END.finditer(text, p_start, p_end):
        nxt = _next_visible(text, m.end(), p_end)
        if nxt >= p_end or text[nxt].islower():
            continue
        if _ends_sentence(text, p_start, m.start(), m.group(0), text[nxt]):
            cuts.add(m.end())
    i = text.find("\n", p_start, p_end)
    while i != -1:
        before = text[p_start:i].rstrip()
        nxt = _next_visible(text, i, p_end)
        if before and nxt < p_end and not text[nxt].islower() and before[-1] not in _SOFT_LINE_END:
            cuts.add(i)
        i = text.find("\n", i + 1, p_end)
    return sorted(cuts)


def _ends_sentence(text: str, p_start: int, punct_at: int, punct: str, next_char: str) -> bool:
    marks = punct.rstrip("\"'\u201d\u2019)]")
    if marks != ".":
        return True  # "!", "?", "?!" and ellipses end sentences
    word_start = punct_at
    while word_start > p_start and not text[word_start - 1].isspace():
        word_start -= 1
    token = text[word_start:punct_at + 1].lstrip(_OPENERS)  # the word with its period: "U.S.", "Inc."
    core = token[:-1]
    if _DOTTED_ACRONYM.fullmatch(token):
        return False
    if core.lower() in ABBREVIATIONS:
        return False
    if core.lower() in NUMBER_ABBREVIATIONS and next_char.isdigit():
        return False
    if len(core) == 1 and core.isupper():
        return False  # an initial: "J. Powell"
    if core.isdigit():
        line_start = text.rfind("\n", p_start, word_start) + 1 or p_start
        if not text[max(line_start, p_start):word_start].strip():
            return False  # a numbered list item: "1. Rates"
    return True


def _split_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Cut one over-long sentence into pieces of at most max_chars, at the last blank inside each budget."""
    pieces = []
    while end - start > max_chars:
        limit = start + max_chars
        cut = -1
        for i in range(limit, start, -1):  # text[limit] being blank means the piece may use the full budget
            if text[i].isspace():
                cut = i
                break
        if cut == -1:
            cut = limit  # one word longer than the budget (a URL, a table row without spaces)
        s, e = _trim(text, start, cut)
        if s < e:
            pieces.append((s, e))
        start = _next_visible(text, cut, end)
    if start < end:
        pieces.append(_trim(text, start, end))
    return pieces
