"""plan_queries: stratified persona x style x difficulty assignment of query slots to chunks."""

from __future__ import annotations

from ..engine.stage import StageContext, StageResult
from ..generators.recipes import plan_queries

# plan_queries reads the pack's personas, query styles and difficulties.
CONFIG_KEYS = ("queries_per_chunk", "max_queries", "seed", "domain.personas", "domain.query_styles",
               "domain.difficulties", "domain.recipes.persona")


def run(ctx: StageContext) -> StageResult:
    cfg = ctx.config
    ids = [i for t in ctx.iter_shards("chunks") for i in t["id"].to_pylist()]
    if not cfg.domain.recipes.persona:
        ids = []
    plan = plan_queries(ids, cfg.domain, cfg.queries_per_chunk, cfg.seed, max_queries=cfg.max_queries)
    return StageResult(outputs={"plan": plan}, stats={"slots": plan.num_rows})
