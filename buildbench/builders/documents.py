"""What every reader shares: the ingest's result, the collector that builds it, and records to ``Document``.

An input that cannot be used is skipped and the run goes on; the skip is recorded as a ``Drop`` with a reason
code, so the run's report says what was left out and why:

============== =========================================================================================
reason          meaning
============== =========================================================================================
binary          NUL bytes or mostly control characters: not a text file
undecodable     not UTF-8, and no other encoding decodes it to plausible text
empty           no text left after normalisation (includes empty files and PDFs without a text layer)
too_large       the file is over ``ReaderConfig.max_file_bytes``
unsupported     the file's extension is not one buildbench reads
corrupt_pdf     pypdf cannot parse the PDF
encrypted_pdf   the PDF is encrypted and does not open with an empty password
corrupt_parquet pyarrow cannot read the Parquet file
missing_field   a CSV/Parquet file has no column named like ``ReaderConfig.text_field``
bad_record      a malformed JSON line, or a record that is not an object / whose text is not a string
empty_record    a record whose text field is missing or empty; the rest of its file is still read
duplicate_id    a document whose id an earlier document already has (ids must be unique in a corpus)
unreadable      the operating system refused to read the file, or its parser failed unexpectedly
============== =========================================================================================

Warnings are inputs that were used but deserve a look: ``not_utf8`` (decoded with another encoding, named
in the detail) and ``pdf_page`` (one page of a PDF could not be extracted).

Item ids of drops are the file path, ``path#lineN`` for a JSONL line (1-based, as editors number lines) and
``path#recordN`` for a record of a JSON list, CSV or Parquet file (0-based, as ``metadata["record"]``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Optional

from ..domain_pack import ReaderConfig
from ..errors import ConfigError
from ..records import Document, Drop
from .normalize import normalize_text, normalize_title, stable_id


@dataclass
class IngestResult:
    """What ``read_documents`` produced: the documents, the inputs it skipped, and notes on ones it used."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[Drop] = field(default_factory=list)
    warnings: list[Drop] = field(default_factory=list)


@dataclass(frozen=True)
class RecordFields:
    """The field names a record's id, title and text are read from."""

    id: str
    title: str
    text: str

    @classmethod
    def from_config(cls, cfg: ReaderConfig) -> "RecordFields":
        return cls(cfg.id_field, cfg.title_field, cfg.text_field)


@dataclass(frozen=True)
class FileInput:
    path: Path  # as found from the spec; Document.source and drop ids use it
    rel: str  # relative to the spec's folder (or the file name): the part of the path that goes into ids


class UnreadableInput(Exception):
    """A whole input cannot be used; ``reason`` is one of the codes above.

    Format readers raise it and the read loop turns it into a skip, so it never reaches callers of
    ``read_documents``; ``decode_bytes`` raises it to whoever calls it directly.
    """

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Collector:
    """Accumulates one ingest: documents (unique ids, capped by max_docs), skips and warnings.

    ``stage`` labels its drops: the name of the stage that reads, passed in by the caller.
    """

    def __init__(self, max_docs: Optional[int], stage: str):
        if max_docs is not None and max_docs < 0:
            raise ConfigError(f"max_docs must be 0 or more, not {max_docs}")
        self.result = IngestResult()
        self.max_docs = max_docs
        self.stage = stage
        self._id_origin: dict[str, str] = {}

    @property
    def full(self) -> bool:
        return self.max_docs is not None and len(self.result.documents) >= self.max_docs

    def add(self, doc: Document, item_id: str) -> None:
        first = self._id_origin.get(doc.id)
        if first is not None:
            self.skip(item_id, "duplicate_id", f"id '{doc.id}' was already taken by {first}")
            return
        self._id_origin[doc.id] = item_id
        self.result.documents.append(doc)

    def skip(self, item_id: str, reason: str, detail: str) -> None:
        self.result.skipped.append(Drop(stage=self.stage, item_id=item_id, reason=reason, detail=detail))

    def warn(self, item_id: str, reason: str, detail: str) -> None:
        self.result.warnings.append(Drop(stage=self.stage, item_id=item_id, reason=reason, detail=detail))


def one_line(exc: BaseException) -> str:
    """An exception as ``Type: first line``, for a skip's detail or a one-line error."""
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0]}" if msg else type(exc).__name__


def record_document(rec: Any, item: str, fields: RecordFields, *, source: str, rel: str,
                    provenance: dict[str, Any], sink: Collector) -> Optional[Document]:
    """One record (JSON object, CSV row, Parquet/Hub row) to a Document, or None after recording a skip.

    The record's id/title/text fields become the Document's; a ``metadata`` object (or a JSON string of
    one, as buildbench's own Parquet output stores it) and every other field go into ``metadata``. The
    reader's provenance keys (``format``, ``record``, ``line``, ``split``, ``encoding``) are written last and
    win over a record field of the same name.
    """
    if not isinstance(rec, dict):
        sink.skip(item, "bad_record", f"a record must be an object, not {type(rec).__name__}")
        return None
    raw_text = rec.get(fields.text)
    if _is_missing(raw_text):
        if fields.text not in rec:
            keys = ", ".join(list(map(str, rec))[:8])
            sink.skip(item, "empty_record", f"no '{fields.text}' field (fields: {keys or 'none'})")
        else:
            sink.skip(item, "empty_record", f"the '{fields.text}' field is empty")
        return None
    if isinstance(raw_text, bool) or not isinstance(raw_text, (str, int, float, Decimal)):
        sink.skip(item, "bad_record", f"the '{fields.text}' field is a {type(raw_text).__name__}, not text")
        return None
    text = normalize_text(str(raw_text))
    if not text:
        sink.skip(item, "empty_record", f"the '{fields.text}' field has no text after normalisation")
        return None

    id_key = fields.id if not _is_missing(rec.get(fields.id)) else "id"
    raw_id = rec.get(id_key)
    doc_id = "" if _is_missing(raw_id) else str(raw_id).strip()
    if not doc_id:
        id_key = None
        doc_id = stable_id(rel, text)
    raw_title = rec.get(fields.title)
    title = "" if _is_missing(raw_title) else normalize_title(str(raw_title))

    metadata: dict[str, Any] = {}
    nested = rec.get("metadata")
    if isinstance(nested, str):
        try:
            nested = json.loads(nested) if nested.strip() else {}
        except json.JSONDecodeError:
            pass  # a plain string stays under its own key below
    if isinstance(nested, dict):
        metadata.update({str(k): _jsonable(v) for k, v in nested.items()})
    used = {fields.text, fields.title, id_key}
    if isinstance(nested, dict):
        used.add("metadata")
    for key, value in rec.items():
        if key not in used:
            metadata[str(key)] = _jsonable(value)
    metadata.update(provenance)
    return Document(id=doc_id, text=text, title=title, source=source, metadata=metadata)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _jsonable(value: Any) -> Any:
    """Metadata is stored as JSON; turn what Parquet and the Hub hand back (dates, decimals, bytes) into it."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return str(value)
