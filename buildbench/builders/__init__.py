"""Sources to documents to chunks.

``sources`` reads files, folders, globs and Hub datasets (``hub``) into normalised ``Document`` records, one
file by its format (``formats``: text, ``markdown``, HTML, PDF, JSON, CSV, Parquet) after decoding its bytes
(``encoding``); ``documents`` holds what the readers share (the result, skip reasons, records to documents).
``chunking`` cuts documents into sentence-aligned ``Chunk`` records; ``normalize`` holds the text
canonicalisation and stable ids both rely on.
"""

from .chunking import chunk_document, chunk_documents, split_sentences
from .documents import IngestResult
from .hub import hub_address, read_hub
from .normalize import normalize_text, stable_id
from .sources import read_documents

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
