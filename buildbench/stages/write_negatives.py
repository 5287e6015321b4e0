"""write_negatives: LLM-written hard negatives (passages that look relevant to a query but do not answer it),
added to the corpus marked synthetic."""

from __future__ import annotations

from ..domain_pack import CopyConfig
from ..engine.stage import StageContext, StageResult
from ..generators.recipes import HardNegativeRecipe
from ..quality import CopyFilter
from ..records import Document, Drop, Query, empty_table, from_table, to_table
from .common import NEGATIVE_WRITER, check_role, chunk_texts, llm_keys, make_llm, track_llm

# HardNegativeRecipe reads the pack's language.
CONFIG_KEYS = ("seed", "domain.recipes.hard_negatives", *llm_keys(NEGATIVE_WRITER), "domain.language")
check = check_role(NEGATIVE_WRITER, lambda pack: pack.recipes.hard_negatives)


def run(ctx: StageContext) -> StageResult:
    pack = ctx.config.domain
    n = pack.recipes.hard_negatives
    if not n:
        return StageResult(outputs={"negatives": empty_table(Document)})
    llm = make_llm(ctx, NEGATIVE_WRITER)
    recipe = HardNegativeRecipe.from_pack(llm, pack, seed=ctx.config.seed, negatives_per_query=n)
    queries = from_table(ctx.read("queries"), Query)
    texts = chunk_texts(ctx)
    with track_llm(ctx, llm):
        passages, drops = recipe.write(queries, texts)
    ctx.stats.update({f"recipe.{k}": v for k, v in recipe.stats.items()})
    # A "negative" that repeats its query's positive would be an unlabelled relevant passage: drop it.
    positives = {q.id: " ".join(texts[c] for c in q.chunk_ids) for q in queries}
    copies = CopyFilter(CopyConfig(max_overlap=0.5, ngram=3), stage="negative_copy").apply(
        [p.id for p in passages], [p.text for p in passages],
        [positives[p.metadata["negative_for"]] for p in passages])
    passages = [p for p, k in zip(passages, copies.keep) if k]
    drops += [Drop(d.stage, d.item_id, "copies_positive", d.detail) for d in copies.drops]
    # Corpus rows marked synthetic: their metadata names the recipe and the query they were written for.
    docs = [Document(id=p.id, text=p.text, title=p.title, source="llm", metadata=p.metadata) for p in passages]
    return StageResult(outputs={"negatives": to_table(docs, Document)}, drops=drops)
