"""dedup_chunks: exact duplicate chunks across documents (a paragraph repeated verbatim in two statements whose
other paragraphs differ): one copy stays, or the corpus would hold an unlabelled twin of a positive."""

from __future__ import annotations

import pyarrow as pa

from ..engine.stage import StageContext, StageResult
from ..quality import ExactDedup
from ..quality.chain import apply_filters

CONFIG_KEYS: tuple[str, ...] = ()


def run(ctx: StageContext) -> StageResult:
    table = ctx.read("chunks_raw")
    drops, keep, filters = apply_filters([(ExactDedup(stage="chunk_dedup"), None)], table["id"].to_pylist(),
                                         table["text"].to_pylist())
    return StageResult(outputs={"chunks": table.filter(pa.array(keep, pa.bool_()))}, drops=drops,
                       filters=filters)
