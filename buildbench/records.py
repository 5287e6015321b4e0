"""Typed records that cross stage boundaries, and their Arrow schemas.

Stages exchange Arrow tables (Parquet shards on disk); these dataclasses are the typed view of one row,
used where code handles single items (readers, recipes, filters' audit logs).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, TypeVar

import pyarrow as pa


@dataclass
class Document:
    id: str
    text: str
    title: str = ""
    source: str = ""  # file path or hf:// address it came from
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Chunk:
    id: str
    doc_id: str
    text: str
    title: str = ""
    position: int = 0  # index of the chunk inside its document
    start: int = 0  # character offsets into the normalised document text
    end: int = 0


@dataclass
class Query:
    id: str
    text: str
    chunk_ids: list[str]  # the positives: chunks the query was written from
    recipe: str = ""
    persona: str = ""
    style: str = ""
    difficulty: str = ""
    language: str = ""
    backend: str = ""
    model: str = ""
    prompt_hash: str = ""
    cache_key: str = ""
    answer: str = ""
    citations: list[str] = field(default_factory=list)


@dataclass
class Drop:
    """One item a stage or filter removed, and why. Every drop lands in the run's audit log."""

    stage: str
    item_id: str
    reason: str
    detail: str = ""


_METADATA_FIELDS = {"metadata"}

SCHEMAS: dict[type, pa.Schema] = {
    Document: pa.schema(
        [
            ("id", pa.string()),
            ("text", pa.string()),
            ("title", pa.string()),
            ("source", pa.string()),
            ("metadata", pa.string()),  # JSON: sources differ in their metadata keys
        ]
    ),
    Chunk: pa.schema(
        [
            ("id", pa.string()),
            ("doc_id", pa.string()),
            ("text", pa.string()),
            ("title", pa.string()),
            ("position", pa.int32()),
            ("start", pa.int64()),
            ("end", pa.int64()),
        ]
    ),
    Query: pa.schema(
        [
            ("id", pa.string()),
            ("text", pa.string()),
            ("chunk_ids", pa.list_(pa.string())),
            ("recipe", pa.string()),
            ("persona", pa.string()),
            ("style", pa.string()),
            ("difficulty", pa.string()),
            ("language", pa.string()),
            ("backend", pa.string()),
            ("model", pa.string()),
            ("prompt_hash", pa.string()),
            ("cache_key", pa.string()),
            ("answer", pa.string()),
            ("citations", pa.list_(pa.string())),
        ]
    ),
    Drop: pa.schema(
        [
            ("stage", pa.string()),
            ("item_id", pa.string()),
            ("reason", pa.string()),
            ("detail", pa.string()),
        ]
    ),
}

R = TypeVar("R")


def to_table(records: Iterable[Any], cls: type) -> pa.Table:
    """Records of one class to an Arrow table with that class's schema."""
    schema = SCHEMAS[cls]
    rows = []
    for rec in records:
        row = dataclasses.asdict(rec)
        for key in _METADATA_FIELDS & row.keys():
            row[key] = json.dumps(row[key], sort_keys=True, ensure_ascii=False)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=schema)


def from_table(table: pa.Table, cls: type[R]) -> list[R]:
    """An Arrow table back to records; unknown columns are ignored."""
    names = {f.name for f in dataclasses.fields(cls)}
    out = []
    for row in table.to_pylist():
        kwargs = {k: v for k, v in row.items() if k in names}
        for key in _METADATA_FIELDS & kwargs.keys():
            kwargs[key] = json.loads(kwargs[key]) if kwargs[key] else {}
        out.append(cls(**kwargs))
    return out


def empty_table(cls: type) -> pa.Table:
    return SCHEMAS[cls].empty_table()
