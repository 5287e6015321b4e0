"""Sources to documents to chunks.

``readers`` turns files, folders, globs and Hub datasets into normalised ``Document`` records; ``chunking``
cuts documents into sentence-aligned ``Chunk`` records; ``normalize`` holds the text canonicalisation and
stable ids both rely on.
"""

from .chunking import chunk_document, chunk_documents, split_sentences
from .normalize import normalize_text, stable_id
from .readers import IngestResult, hub_address, read_documents, read_hub

__all__ = [
    "IngestResult",
    "chunk_document",
    "chunk_documents",
    "hub_address",
    "normalize_text",
    "read_documents",
    "read_hub",
    "split_sentences",
    "stable_id",
]
