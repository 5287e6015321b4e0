"""filter_queries: length, form, prompt-echo, copy, support, grounding, language, near-duplicate, round-trip and
easiness filters over the generated queries, cheapest first."""

from __future__ import annotations

import pyarrow as pa

from ..engine.stage import StageContext, StageResult
from ..quality import (
    CitationFilter,
    CopyFilter,
    EasinessFilter,
    LanguageFilter,
    LengthFilter,
    PromptEchoFilter,
    RoundTripFilter,
    SemanticDedup,
)
from ..quality.form import FormFilter, style_forms
from ..quality.support import SupportFilter
from ..quality.chain import Dedup, apply_filters
from .common import chunk_texts, embedding_cache, support_refs

CONFIG_KEYS = ("domain.filters", "domain.language", "domain.recipes.query_language", "domain.personas",
               "domain.query_styles", "domain.difficulties")


def run(ctx: StageContext) -> StageResult:
    pack = ctx.config.domain
    cfg = pack.filters
    table = pa.concat_tables([ctx.read("raw_queries"), ctx.read("qa_queries")])
    chunks = chunk_texts(ctx)
    corpus = ctx.read("chunks").select(["id", "title", "text"])
    ids, texts = table["id"].to_pylist(), table["text"].to_pylist()
    sources = table["chunk_ids"].to_pylist()  # every chunk a query was written from
    personas = {p.id: p.description for p in pack.personas}
    styles = {s.id: s.instruction for s in pack.query_styles}
    forms = style_forms(pack.query_styles)
    levels = {d.id: d.instruction for d in pack.difficulties}
    instructions = [f"{personas.get(p, '')} {styles.get(s, '')} {levels.get(d, '')}" for p, s, d in
                    zip(table["persona"].to_pylist(), table["style"].to_pylist(), table["difficulty"].to_pylist())]
    cache = embedding_cache(ctx)
    # Cheapest first; the retrieval-based checks run last, on what is left. Easiness is last of all because
    # its embedding percentile is taken over the queries that survive everything else.
    steps = [
        (LengthFilter(cfg.length, stage="query_length"), None),
        (FormFilter(stage="query_form"), [forms.get(s) for s in table["style"].to_pylist()]),
        (PromptEchoFilter(cfg.prompt_echo_max_overlap, stage="query_prompt_echo"), instructions),
        (CopyFilter(cfg.copy_filter, stage="query_copy"), [" ".join(chunks[c] for c in cs) for cs in sources]),
    ]
    if cfg.support.enabled:
        # A chunk's title names its document (entity, period): words a query may take from it.
        steps.append((SupportFilter(cfg.support.max_unsupported, stage="query_support",
                                    max_loose_pairs=cfg.support.max_loose_pairs),
                      support_refs(ctx, sources, table["answer"].to_pylist())))
    if cfg.grounding.enabled:
        steps.append((CitationFilter(cfg.grounding, stage="query_grounding"),
                      [(c, [chunks[x] for x in cs]) for c, cs in zip(table["citations"].to_pylist(), sources)]))
    if cfg.language.enabled:
        steps.append((LanguageFilter(pack.query_language, cfg.language, stage="query_language"), None))
    if cfg.query_dedup.enabled:
        steps.append((Dedup(cfg.query_dedup, "query_dedup", parallel=ctx.parallel), None))
    if cfg.semantic_dedup.enabled:
        steps.append((SemanticDedup(cfg.semantic_dedup, cache=cache, stage="query_semantic_dedup"), None))
    if cfg.round_trip.enabled:
        steps.append((RoundTripFilter(corpus, cfg.round_trip.retrievers, cfg.round_trip.k, cache=cache,
                                      language=pack.language, stage="query_round_trip"), sources))
    if cfg.easiness.enabled:
        steps.append((EasinessFilter(cfg.easiness, corpus, cache=cache, language=pack.language,
                                     stage="query_easiness"), sources))
    drops, keep, filters = apply_filters(steps, ids, texts)
    return StageResult(outputs={"queries": table.filter(pa.array(keep, pa.bool_()))}, drops=drops,
                       filters=filters)
