"""generate_queries: answer-first, persona-conditioned InPars few-shot query writing with the LLM (a map stage over
the plan): each slot names its document and the fact its query must ask for."""

from __future__ import annotations

import pyarrow as pa

from ..engine.stage import StageContext
from ..generators.recipes import PersonaQueryRecipe
from ..records import Drop, Query, to_table
from .common import QUERY_WRITER, call_llm, check_role, chunk_texts, llm_keys, make_llm, short_hash

# PersonaQueryRecipe reads the pack's personas, styles, difficulties, few-shot examples, name and languages.
CONFIG_KEYS = ("seed", *llm_keys(QUERY_WRITER), "domain.few_shot", "domain.personas", "domain.query_styles",
               "domain.difficulties", "domain.name", "domain.language", "domain.recipes.query_language",
               "domain.recipes.persona")
check = check_role(QUERY_WRITER, lambda pack: pack.recipes.persona)


def run_shard(shard: pa.Table, ctx: StageContext) -> tuple[pa.Table, list[Drop]]:
    cfg = ctx.config
    llm = make_llm(ctx, QUERY_WRITER)
    recipe = ctx.service("recipe.persona", lambda: PersonaQueryRecipe(cfg.domain, cfg.domain.generator, cfg.seed))
    texts = chunk_texts(ctx)
    slots = shard.to_pylist()
    requests = [recipe.build_request(s, texts[s["chunk_id"]]) for s in slots]
    results = call_llm(ctx, llm, requests)
    queries, drops = [], []
    for slot, req, res in zip(slots, requests, results):
        parsed = recipe.parse(res)
        if parsed.text is None:
            drops.append(Drop(ctx.stage, slot["slot_id"], parsed.drop_reason, parsed.detail))
            continue
        queries.append(Query(
            id=f"q-{short_hash(slot['slot_id'])}",
            text=parsed.text, chunk_ids=[slot["chunk_id"]], recipe=recipe.name, persona=slot["persona"],
            style=slot["style"], difficulty=slot["difficulty"], language=cfg.domain.query_language,
            backend=llm.name, model=llm.model_id,
            prompt_hash=req.prompt_hash, cache_key=res.cache_key,
            # Answer-first: the fact the query was written to ask for is its answer and citation.
            answer=slot.get("fact") or "", citations=[slot["fact"]] if slot.get("fact") else [],
        ))
    ctx.stats["queries"] += len(queries)
    return to_table(queries, Query), drops
