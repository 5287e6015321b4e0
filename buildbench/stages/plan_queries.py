"""plan_queries: stratified persona x style x difficulty assignment of query slots to chunks, answer-first.

Each slot also gets what its query is about: a salient sentence of the chunk (TF-IDF against the corpus, with
numbers and names counting for more) and the line naming the chunk's document (title, entity, period, section),
both taken from the documents themselves, never from the LLM. Under a query budget (``max_queries``), the chunks
that get queries are drawn from those whose best fact scores at least the median: a table's lead-in or a
paragraph of boilerplate has nothing a query could single it out by.
"""

from __future__ import annotations

import json

from ..builders.context import document_context, section_of
from ..engine.stage import StageContext, StageResult
from ..generators.recipes import plan_queries
from ..generators.recipes.facts import salient_facts
from ..generators.recipes.persona import document_line

# plan_queries reads the pack's personas, query styles and difficulties.
CONFIG_KEYS = ("queries_per_chunk", "max_queries", "seed", "domain.personas", "domain.query_styles",
               "domain.difficulties", "domain.recipes.persona")


def run(ctx: StageContext) -> StageResult:
    cfg = ctx.config
    chunks = [r for t in ctx.iter_shards("chunks") for r in t.select(["id", "doc_id", "text", "start"]).to_pylist()]
    ids = [c["id"] for c in chunks] if cfg.domain.recipes.persona else []
    documents = {}
    for t in ctx.iter_shards("documents_clean"):
        for d in t.select(["id", "text", "title", "metadata"]).to_pylist():
            documents[d["id"]] = d
    lines, titles = {}, {}
    for c in chunks:
        doc = documents.get(c["doc_id"])
        if doc is None:
            continue
        meta = doc["metadata"]
        meta = json.loads(meta) if isinstance(meta, str) and meta else (meta or {})
        about = document_context(doc["text"], doc["title"] or "", meta)
        titles[c["id"]] = about.title
        lines[c["id"]] = {"document": document_line(about.title, about.entity, about.period,
                                                    section_of(doc["text"], c["start"], about.title)),
                          "entity": about.entity, "period": about.period}
    wanted = set(ids)
    # Two spare facts per slot (for a redraft after a fact problem); a chunk of an unnamed document asks first
    # about the ones that state a figure.
    facts = salient_facts({c["id"]: c["text"] for c in chunks}, k=3 * max(cfg.queries_per_chunk, 1),
                          skip={k: v for k, v in titles.items() if v})
    plan = plan_queries(ids, cfg.domain, cfg.queries_per_chunk, cfg.seed, max_queries=cfg.max_queries,
                        documents=lines, facts={k: [f.text for f in v] for k, v in facts.items() if k in wanted},
                        salience={k: v[0].score for k, v in facts.items() if k in wanted and v},
                        texts={c["id"]: c["text"] for c in chunks})
    with_document = sum(bool(x) for x in plan["document"].to_pylist())
    return StageResult(outputs={"plan": plan}, stats={"slots": plan.num_rows, "slots_with_document": with_document,
                                                      "slots_with_fact": sum(bool(x) for x in plan["fact"].to_pylist())})
