"""filter_documents: exact and MinHash near-duplicate removal and language check of documents.

With ``doc_dedup.method: bands`` the near-duplicate pass is the corpus-wide groupby on band keys
(``quality.dedup_bands``), whose signatures, band groupbys and exact checks run as the engine's pieces
(``ctx.parallel``: Ray tasks on the ray engine); the decision stays here, so both engines drop the same."""

from __future__ import annotations

import pyarrow as pa

from ..engine.stage import StageContext, StageResult
from ..quality import LanguageFilter
from ..quality.chain import Dedup, apply_filters

CONFIG_KEYS = ("domain.filters.doc_dedup", "domain.filters.language", "domain.language")


def run(ctx: StageContext) -> StageResult:
    pack = ctx.config.domain
    table = ctx.read("documents")
    steps = []
    if pack.filters.doc_dedup.enabled:
        steps.append((Dedup(pack.filters.doc_dedup, "doc_dedup", parallel=ctx.parallel), None))
    if pack.filters.language.enabled:
        steps.append((LanguageFilter(pack.language, pack.filters.language, stage="doc_language"), None))
    drops, keep, filters = apply_filters(steps, table["id"].to_pylist(), table["text"].to_pylist())
    return StageResult(outputs={"documents_clean": table.filter(pa.array(keep, pa.bool_()))}, drops=drops,
                       filters=filters)
