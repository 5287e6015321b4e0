"""generate_queries: answer-first, persona-conditioned InPars few-shot query writing with the LLM (a map stage over
the plan): each slot names its document and the fact its query must ask for. A draft that fails the form, copy or
support check, loops or is cut off is written again, up to ``generator.drafts`` times."""

from __future__ import annotations

import pyarrow as pa

from ..engine.stage import StageContext
from ..generators.recipes import PersonaQueryRecipe
from ..records import Drop, Query, to_table
from ..quality import CopyFilter
from ..quality.form import form_problem
from ..quality.support import SupportFilter
from .common import (
    QUERY_WRITER,
    call_llm,
    check_role,
    chunk_texts,
    llm_keys,
    make_llm,
    short_hash,
    support_refs,
)

# PersonaQueryRecipe reads the pack's personas, styles, difficulties, few-shot examples, name and languages.
CONFIG_KEYS = ("seed", *llm_keys(QUERY_WRITER), "domain.few_shot", "domain.personas", "domain.query_styles",
               "domain.difficulties", "domain.name", "domain.language", "domain.recipes.query_language",
               "domain.recipes.persona", "domain.filters.support", "domain.filters.copy_filter")
check = check_role(QUERY_WRITER, lambda pack: pack.recipes.persona)


def run_shard(shard: pa.Table, ctx: StageContext) -> tuple[pa.Table, list[Drop]]:
    cfg = ctx.config
    llm = make_llm(ctx, QUERY_WRITER)
    recipe = ctx.service("recipe.persona", lambda: PersonaQueryRecipe(cfg.domain, cfg.domain.generator, cfg.seed))
    texts = chunk_texts(ctx)
    slots = shard.to_pylist()
    filters = cfg.domain.filters
    # The per-query checks filter_queries applies (form, copy, then support), run on each draft so that a
    # failing slot gets another try.
    copy = CopyFilter(filters.copy_filter)
    support = (SupportFilter(filters.support.max_unsupported, max_loose_pairs=filters.support.max_loose_pairs)
               if filters.support.enabled else None)
    refs = support_refs(ctx, [[s["chunk_id"]] for s in slots], [s.get("fact") or "" for s in slots])
    forms = {s.id: s.form for s in cfg.domain.query_styles}

    def problem(i: int, text: str):
        return (form_problem(text, forms.get(slots[i]["style"])) or copy.check(text, texts[slots[i]["chunk_id"]])
                or (support.check(text, *refs[i]) if support else None))

    final, drops = {}, []
    pending, drafts = list(range(len(slots))), max(1, cfg.domain.generator.drafts)
    for draft in range(drafts):
        requests = [recipe.build_request(slots[i], texts[slots[i]["chunk_id"]], draft) for i in pending]
        retry = []
        for i, req, res in zip(pending, requests, call_llm(ctx, llm, requests)):
            parsed = final[i] = (req, res, recipe.parse(res))
            if draft + 1 == drafts:
                continue
            text = parsed[2].text
            if text is None and parsed[2].drop_reason == "llm_error":
                continue  # the backend's failure, not the draft's: left to its retries and to a rerun
            why = (parsed[2].drop_reason, parsed[2].detail) if text is None else problem(i, text)
            if why:
                retry.append(i)
                drops.append(Drop(ctx.stage, slots[i]["slot_id"], "redrafted",
                                  f"draft {draft + 1} failed {why[0]} ({why[1]}): {text or ''!r}"))
        ctx.stats[f"drafts_{draft + 1}"] += len(pending)
        pending = retry
        if not pending:
            break
    queries = []
    for i, slot in enumerate(slots):
        req, res, parsed = final[i]
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
