"""Persona-conditioned InPars few-shot queries: the plan of slots, the prompt, and parsing.

A recipe builds requests and parses results; it never sees which backend runs them.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Optional

import pyarrow as pa

from ...builders.context import period_marks
from ...domain_pack import DomainPack, GeneratorConfig
from ...quality.form import KEYWORDS
from ...quality.numbers import figures
from ...quality.support import QUERY_WORDS, word_stems
from ..base import GenerationRequest, GenerationResult
from .facts import smoothed_idf
from .templates import derive_seed, language_name, template

PLAN_SCHEMA = pa.schema(
    [
        ("slot_id", pa.string()),
        ("chunk_id", pa.string()),
        ("persona", pa.string()),
        ("style", pa.string()),
        ("difficulty", pa.string()),
        ("seed", pa.int64()),
        # Answer-first: what the searcher knows (from the document, not the LLM) and the fact asked about.
        ("document", pa.string()),
        ("entity", pa.string()),
        ("period", pa.string()),
        ("fact", pa.string()),
        # Other facts of the chunk, best first, that no other slot of it asks about: for a redraft after a fact
        # problem (stages.generate_queries.NEXT_FACT_REDRAFT).
        ("spare_facts", pa.list_(pa.string())),
    ]
)


def plan_queries(chunk_ids: list[str], pack: DomainPack, queries_per_chunk: int, seed: int,
                 max_queries: Optional[int] = None, documents: Optional[dict[str, dict]] = None,
                 facts: Optional[dict[str, list[str]]] = None,
                 salience: Optional[dict[str, float]] = None,
                 texts: Optional[dict[str, str]] = None) -> pa.Table:
    """Assign each (chunk, slot) a persona, style and difficulty, stratified so the mix is balanced.

    The persona x style x difficulty grid is shuffled once (seeded) and dealt out in turn, so every
    combination is used before any repeats. Rows are ordered by style so prompts that share a few-shot
    prefix run back to back.

    max_queries: a query budget for large corpora: a seeded sample of chunks gets queries, the rest stay in
        the corpus as distractors (which is also what makes a downsampled corpus smaller than the full one).
    salience: chunk id -> the score of its best fact. With a budget, the sample is drawn from the chunks whose
        best fact scores at least the median (when they are enough): a table's lead-in or a paragraph of
        boilerplate has nothing a query could single it out by. Of those, a chunk of a document that names no one
        is drawn only when one of its facts states a figure (again when they are enough), and gets a slot per such
        fact only (up to ``queries_per_chunk``); more such chunks are drawn until the budget is spent or they run
        out (a chunk without one would keep nothing, so the budget is left unspent rather than spent on it).
    texts: chunk id -> its text. When given, each slot goes to a persona whose interests its chunk and fact
        speak to (``match_personas``), not to the next one dealt.
    documents: chunk id -> {"document": the line naming its document (title, entity, period, section),
        "entity": ..., "period": ...}.
    facts: chunk id -> its salient sentences, best first; a chunk's n-th slot asks about its n-th fact (the
        last one again when it has fewer), so two queries of a chunk ask different things, and keeps every
        ``queries_per_chunk``-th fact after those as its spares (a keyword search's, only those that state a
        figure). The facts that state a figure come first.
    """
    documents, facts = documents or {}, facts or {}
    rng = random.Random(seed)
    budget = max_queries is not None and len(chunk_ids) * queries_per_chunk > max_queries

    # A document that names no one is singled out by a figure only (quality.support, unanchored): over two
    # tatqa_dev builds (seeds 0 and 14), none of the 88 slots that asked such a chunk about a fact without a
    # figure kept its query. A budget is spent on its facts that state one.
    def named(chunk_id: str) -> bool:
        return bool(documents.get(chunk_id, {}).get("entity"))

    def facts_with_figure(chunk_id: str) -> int:
        return sum(1 for f in facts.get(chunk_id) or () if figures(f))

    def slots_of(chunk_id: str) -> int:
        if not budget or named(chunk_id):
            return queries_per_chunk
        # A chunk with none is drawn only when too few others are left, and keeps its slots.
        return min(queries_per_chunk, facts_with_figure(chunk_id)) or queries_per_chunk

    if budget:
        keep = -(-max_queries // queries_per_chunk)
        pool = sorted(chunk_ids)
        if salience:
            scores = sorted(salience.get(c, 0.0) for c in pool)
            askable = [c for c in pool if salience.get(c, 0.0) >= scores[len(scores) // 2]]
            pool = askable if len(askable) >= keep else pool
        anchored = [c for c in pool if named(c) or facts_with_figure(c)]
        pool = anchored if len(anchored) >= keep else pool
        draw = random.Random(derive_seed(seed, "budget"))
        chunk_ids = draw.sample(pool, keep)
        # Chunks with fewer slots leave budget over: more are drawn, in a seeded order, until it is spent or the
        # pool runs out.
        drawn = set(chunk_ids)
        rest = [c for c in pool if c not in drawn]
        draw.shuffle(rest)
        slots = sum(map(slots_of, chunk_ids))
        for c in rest:
            if slots >= max_queries:
                break
            chunk_ids.append(c)
            slots += slots_of(c)
    grid = list(itertools.product([p.id for p in pack.personas], [s.id for s in pack.query_styles],
                                  [d.id for d in pack.difficulties]))
    rng.shuffle(grid)
    deal = itertools.cycle(grid)
    keyword = keyword_style(pack)
    rows = []
    for chunk_id in sorted(chunk_ids):
        # Facts that state a figure first (stable, so salience orders each group). A document that names no one
        # can be singled out by a figure only (quality.support, unanchored); in a named one, a sentence without a
        # figure yields topic searches several chunks fit ("Tallis Mutual ransomware coverage 2025"): over the
        # labelled sample builds of seeds 0-10 its kept queries were good 35 times in 76, and 96 of the bundled
        # sample's 98 chunks have a fact with a figure to ask instead.
        own = sorted(facts.get(chunk_id) or [""], key=lambda f: not figures(f))
        doc = documents.get(chunk_id)
        searches_only = bool(keyword) and doc is not None and keyword_only(doc.get("entity", ""),
                                                                            doc.get("period", ""))
        for slot in range(slots_of(chunk_id)):
            persona, style, difficulty = next(deal)
            style = keyword if searches_only else style
            slot_id = f"{chunk_id}#{slot}"
            spares = own[queries_per_chunk + slot::queries_per_chunk]
            if style == keyword:
                # A search redrafted about a spare sentence without a figure names a topic ("Ashgrove Regional
                # Bancorp deposit base"): over six labelled sample builds of one code, such searches were good 5
                # times in 12, against 61 in 68 for spares with a figure. The slot ends rather than ask one.
                spares = [f for f in spares if figures(f)]
            rows.append(dict(slot_id=slot_id, chunk_id=chunk_id, persona=persona, style=style,
                             difficulty=difficulty, seed=derive_seed(seed, slot_id),
                             fact=own[min(slot, len(own) - 1)], spare_facts=spares,
                             **{k: documents.get(chunk_id, {}).get(k, "") for k in ("document", "entity", "period")}))
    if max_queries is not None:
        rows = rows[:max_queries]
    if texts:
        match_personas(rows, pack, texts, seed)
    # Slots that share a few-shot prefix (style, and whether the document names its entity) run back to back.
    rows.sort(key=lambda r: (r["style"], not r["entity"], r["chunk_id"], r["slot_id"]))
    return pa.Table.from_pylist(rows, schema=PLAN_SCHEMA)


def keyword_style(pack: DomainPack) -> str | None:
    """The id of the pack's keyword-search style, or None when it has none (then no slot is made one)."""
    return next((s.id for s in pack.query_styles if s.form == KEYWORDS), None)


def keyword_only(entity: str, period: str) -> bool:
    """Whether only a keyword search can single out a passage of a document: one that names no one (``entity``)
    and whose ``period`` dates no quarter or month. A question or request must not state its answer's figure
    (quality.support, states_answer), so there nothing anchors it (unanchored), while a keyword search names its
    fact's figure. Over three tatqa_dev builds (seeds 0, 14, 15) 2 of the 351 question and request slots of such
    documents kept a query, against 66 of 179 keyword slots; the plan makes their slots keyword searches."""
    return not entity and not period_marks(period)


def match_personas(rows: list[dict], pack: DomainPack, texts: dict[str, str], seed: int,
                   spread: float = 1.5) -> None:
    """Give each slot a persona whose interests its chunk and fact speak to, in place.

    A persona dealt at random asks about what its chunk does not hold: a tax adviser on a wind-farm paragraph, a
    retail investor on a CET1 table. On 77 labelled queries of the bundled sample, a slot's fit (below) relative
    to the other personas' told good from bad with AUC 0.61 (0.63 for questions and requests), and the personas
    that fit better than most were good 76% of the time against 63%. Fit: the words a persona's description
    shares with the chunk, and again with the fact, each weighted by its rarity across the chunks (idf), so
    "covenant" counts for more than "risk". Greedy by fit; each persona takes at most ``spread`` times its even
    share of slots, so the mix stays broad, and two slots of a chunk keep two personas. A slot that fits no one
    keeps the persona it was dealt when it can.
    """
    chunks = {r["chunk_id"] for r in rows}
    stems = {c: word_stems(texts.get(c, "")) for c in chunks}
    df = Counter(s for c in chunks for s in stems[c])
    idf = smoothed_idf(df, len(chunks))
    generic = word_stems(" ".join(QUERY_WORDS))
    wants = {p.id: word_stems(p.description) - generic for p in pack.personas}
    cap = math.ceil(spread * len(rows) / len(wants))
    tie = random.Random(derive_seed(seed, "personas"))
    pairs = []
    for i, row in enumerate(rows):
        fact = word_stems(row["fact"])
        for p, words in wants.items():
            fit = sum(idf[s] for s in words & stems[row["chunk_id"]]) + sum(idf.get(s, 1.0) for s in words & fact)
            if fit > 0:
                pairs.append((-fit, tie.random(), i, p))
    uses, taken, chosen = Counter(), {}, {}
    for _, _, i, p in sorted(pairs):
        key = (rows[i]["chunk_id"], p)
        if i in chosen or uses[p] >= cap or key in taken:
            continue
        chosen[i], taken[key] = p, i
        uses[p] += 1
    for i, row in enumerate(rows):
        if i in chosen:
            continue
        free = [p for p in wants if (row["chunk_id"], p) not in taken]
        p = row["persona"] if row["persona"] in free and uses[row["persona"]] < cap else min(
            free, key=lambda q: (uses[q], tie.random()))
        chosen[i], taken[(row["chunk_id"], p)] = p, i
        uses[p] += 1
    for i, row in enumerate(rows):
        row["persona"] = chosen[i]


_PREFIXES = re.compile(r"^(query|search query|q)\s*[:\-]\s*", re.IGNORECASE)


def clean_query(text: str) -> str:
    """The first line of the model's answer, without labels, quotes or list marks."""
    line = text.strip().split("\n", 1)[0].strip()
    line = _PREFIXES.sub("", line)
    line = line.strip().strip("\"'`“”‘’").strip()
    line = re.sub(r"^[-*•\d.)\s]+(?=\w)", "", line) if re.match(r"^[-*•]|\d+[.)]\s", line) else line
    return re.sub(r"\s+", " ", line).strip()


def repeats(text: str, n: int = 4) -> bool:
    """Whether a word n-gram occurs twice: a degenerate loop, not a query."""
    words = re.findall(r"\w[\w.,%$-]*", text.lower())
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return len(grams) != len(set(grams))


def _examples_end(prompt: str) -> int:
    """Where the instructions and few-shot examples end: after the last example's query line and the blank line
    after it (a cut between two newlines would split the tokens the full prompt has there, and llama.cpp would
    re-read the prefix's end depending on the previous call)."""
    last = prompt.rfind("\nQuery:")
    example = prompt.rfind("\nQuery: ", 0, last)
    if example < 0:
        return 0
    end = prompt.index("\n", example + 1) + 1
    while prompt[end] == "\n":
        end += 1
    return end


def about(entity: str, period: str) -> str:
    """Whom and when a fact is about, as the writer is told: "Crestline Semiconductor, fiscal 2025". A document
    that names no one says so: left out, the line lets a 270M writer borrow the last example's company."""
    return ", ".join(x for x in (entity or UNNAMED, period) if x)


UNNAMED = "the company (not named)"


def _about_document(document: str, named: bool = True) -> str:
    """An example's entity and period, read from its document line as the build reads real documents."""
    from ...builders.context import document_context

    ctx = document_context("", title=document)
    return about(ctx.entity if named else "", ctx.period)


def document_line(title: str, entity: str = "", period: str = "", section: str = "") -> str:
    """What a searcher knows of a passage's document, in one line: "Entity - Title (period): section"."""
    line = title or entity
    if entity and entity.lower() not in line.lower():
        line = f"{entity} - {line}"
    # "fiscal 2025" adds nothing to "... (Fiscal Year 2025)": a period whose years the line names is left out.
    if period and not all(y in line for y in re.findall(r"\d{4}", period) or [period]):
        line += f" ({period})"
    if section and section.lower() not in line.lower():
        line += f": {section}"
    return line


@dataclass
class ParsedQuery:
    text: Optional[str]
    drop_reason: Optional[str] = None
    detail: str = ""


class PersonaQueryRecipe:
    """InPars few-shot prompts for base models, conditioned on a persona and a query style."""

    name = "inpars-persona"
    template_name = "inpars_persona.j2"

    def __init__(self, pack: DomainPack, gen: GeneratorConfig, seed: int, max_passage_chars: int = 1500):
        self.pack = pack
        self.gen = gen
        self.max_passage_chars = max_passage_chars
        self.personas = {p.id: p.description for p in pack.personas}
        self.styles = {s.id: s.instruction for s in pack.query_styles}
        self.difficulties = {d.id: d.instruction for d in pack.difficulties}
        # Named in the prompt only when queries are wanted in another language than the documents.
        self.query_language = (language_name(pack.query_language) if pack.query_language != pack.language
                               else None)
        self.examples = self._pick_examples(seed)

    def _pick_examples(self, seed: int) -> dict[tuple[str, bool], list[dict]]:
        """Few-shot examples per (style, whether the slot's document names its entity): same-style examples first,
        fixed for the run (a shared prefix). For a document that names no one the examples show the same facts
        with an unnamed "About" and queries that single their fact out by its figure or term instead."""
        out = {}
        for style in self.styles:
            rng = random.Random(derive_seed(seed, "few-shot", style))
            same = [e for e in self.pack.few_shot if e.style == style]
            other = [e for e in self.pack.few_shot if e.style != style]
            rng.shuffle(same)
            rng.shuffle(other)
            picked = (same + other)[: self.gen.few_shot]
            rng.shuffle(picked)
            out[style, True] = [self._example(e, named=True) for e in picked]
            # A pack without unnamed queries shows its named ones to every slot.
            unnamed = [e for e in (same + other) if e.unnamed_query][: self.gen.few_shot]
            rng.shuffle(unnamed)
            out[style, False] = [self._example(e, named=False) for e in unnamed] or out[style, True]
        return out

    def _example(self, e, named: bool) -> dict:
        return dict(persona=self.personas[e.persona], style=self.styles[e.style],
                    difficulty=self.difficulties[e.difficulty], about=_about_document(e.document, named),
                    fact=" ".join((e.fact or e.passage).split()), query=e.query if named else e.unnamed_query)

    def build_request(self, slot: dict, passage: str, draft: int = 0, lead: str = "") -> GenerationRequest:
        """The prompt for a plan slot: its document line and fact (the passage itself when it has no fact).
        A later ``draft`` (the earlier one failed its checks) rotates the examples and samples with its own seed,
        hotter. A ``lead`` starts the query for the writer, which writes the rest (``parse`` puts it back)."""
        fact = slot.get("fact") or passage
        if len(fact) > self.max_passage_chars:
            fact = fact[: self.max_passage_chars].rsplit(" ", 1)[0] + " ..."
        examples = self.examples[slot["style"], bool(slot.get("entity"))]
        # A small writer that strays copies the example closest to its slot; a redraft rotates the examples so
        # another one comes last (one more shared prefix per draft, still read once per batch).
        shift = draft % len(examples) if examples else 0
        prompt = template(self.template_name).render(
            domain=self.pack.name,
            examples=examples[shift:] + examples[:shift],
            # The entity and period only: given the whole title line, a 270M writer copies it as the query.
            about=about(slot.get("entity", ""), slot.get("period", "")),
            persona=self.personas[slot["persona"]],
            style=self.styles[slot["style"]],
            difficulty=self.difficulties[slot["difficulty"]],
            # Only when queries are wanted in another language than the documents (a cross-lingual task).
            language=self.query_language,
            fact=" ".join(fact.split()),
        )
        return GenerationRequest(
            prompt=f"{prompt} {lead}" if lead else prompt,
            prefix_chars=_examples_end(prompt),  # the instructions and few-shot examples
            max_tokens=self.gen.max_tokens,
            temperature=self.gen.temperature if draft == 0 else self.gen.redraft_temperature,
            top_p=self.gen.top_p,
            stop=("\n",),
            seed=int(slot["seed"]) if draft == 0 else derive_seed(int(slot["seed"]), "draft", draft),
        )

    def parse(self, result: GenerationResult, lead: str = "") -> ParsedQuery:
        """The query of a result; ``lead`` is the start its request gave the writer."""
        if result.error:
            return ParsedQuery(None, "llm_error", result.error)
        # A lead is the query's start: cleaned with it, and nothing when the writer added nothing to it.
        text = clean_query(f"{lead}{result.text}") if lead and result.text.strip() else clean_query(result.text)
        if not text:
            return ParsedQuery(None, "empty_output", f"model wrote {result.text[:80]!r}")
        # A small model that loops or runs out of tokens writes no query: "... 15-year benefit 15-year benefit",
        # "... grant date fair value $7.47, $".
        if result.finish_reason == "length":
            return ParsedQuery(None, "truncated", f"stopped at max_tokens: {text[-80:]!r}")
        if repeats(text):
            return ParsedQuery(None, "repetition", f"model repeated itself: {text[:120]!r}")
        return ParsedQuery(text)
