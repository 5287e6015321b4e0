"""chunk: sentence-aware chunking with a size budget and overlap (a map stage, shard by shard)."""

from __future__ import annotations

from dataclasses import replace

import pyarrow as pa

from ..builders import chunk_documents
from ..builders.context import document_context
from ..engine.stage import StageContext
from ..records import Chunk, Document, Drop, from_table, to_table

CONFIG_KEYS = ("domain.chunking",)


def run_shard(shard: pa.Table, ctx: StageContext) -> tuple[pa.Table, list[Drop]]:
    documents = from_table(shard, Document)
    # A chunk carries its document's human title (its heading line), not a file stem: retrievers read it with
    # the text (mteb joins title and text), and queries name the entity it gives.
    documents = [replace(d, title=document_context(d.text, d.title, d.metadata).title or d.title) for d in documents]
    chunks, drops = chunk_documents(documents, ctx.config.domain.chunking, stage=ctx.stage)
    ctx.stats["chunks"] += len(chunks)
    return to_table(chunks, Chunk), drops
