"""chunk: sentence-aware chunking with a size budget and overlap (a map stage, shard by shard)."""

from __future__ import annotations

import pyarrow as pa

from ..builders import chunk_documents
from ..engine.stage import StageContext
from ..records import Chunk, Document, Drop, from_table, to_table

CONFIG_KEYS = ("domain.chunking",)


def run_shard(shard: pa.Table, ctx: StageContext) -> tuple[pa.Table, list[Drop]]:
    chunks, drops = chunk_documents(from_table(shard, Document), ctx.config.domain.chunking, stage=ctx.stage)
    ctx.stats["chunks"] += len(chunks)
    return to_table(chunks, Chunk), drops
