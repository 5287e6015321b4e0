"""generate_qa: YourBench summaries, then single-hop and multi-hop questions with answers and citations."""

from __future__ import annotations

from ..engine.stage import StageContext, StageResult
from ..generators.recipes import YourBenchRecipe, plan_multihop
from ..records import Chunk, Query, empty_table, from_table, to_table
from .common import QA_WRITER, check_role, llm_keys, make_llm, track_llm

# YourBenchRecipe reads the pack's language and query language.
CONFIG_KEYS = ("seed", "domain.recipes", *llm_keys(QA_WRITER), "domain.language")
check = check_role(QA_WRITER, lambda pack: pack.recipes.yourbench_single or pack.recipes.yourbench_multi)


def run(ctx: StageContext) -> StageResult:
    pack, seed = ctx.config.domain, ctx.config.seed
    wanted = pack.recipes
    if not (wanted.yourbench_single or wanted.yourbench_multi):
        return StageResult(outputs={"qa_queries": empty_table(Query)})
    llm = make_llm(ctx, QA_WRITER)
    recipe = YourBenchRecipe.from_pack(llm, pack, seed=seed)
    table = ctx.read("chunks")
    chunks = from_table(table, Chunk)
    queries: list[Query] = []
    with track_llm(ctx, llm):
        summaries, drops = recipe.summarize(chunks)
        by_doc = {s.doc_id: s.summary for s in summaries}
        if wanted.yourbench_single:
            q, d = recipe.single_hop(chunks, by_doc, questions_per_chunk=wanted.yourbench_single)
            queries += q
            drops += d
        if wanted.yourbench_multi:
            groups = plan_multihop(table, seed, max_per_doc=wanted.yourbench_multi)
            q, d = recipe.multi_hop(groups, {c.id: c for c in chunks}, by_doc)
            queries += q
            drops += d
    ctx.stats.update({f"recipe.{k}": v for k, v in recipe.stats.items()})
    return StageResult(outputs={"qa_queries": to_table(queries, Query)}, drops=drops)
