"""Read documents from files, folders, globs and Hub datasets.

``read_documents`` is the ingest step. An input that cannot be used is skipped and the run goes on; the skip
is recorded as a ``Drop`` with a reason code, so the run's report says what was left out and why:

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

import csv
import io
import json
import logging
import math
import os
import re
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

from ..config import HubSource, ReaderConfig
from ..errors import ConfigError, InputError
from ..records import Document, Drop
from .normalize import normalize_text, normalize_title, stable_id

log = logging.getLogger(__name__)

STAGE = "ingest"

# Extension -> format name. The format name is what lands in ``metadata["format"]``.
FORMATS: dict[str, str] = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
}

HUB_PREFIX = "hf://datasets/"
_HUB_ADDRESS = re.compile(r"^hf://datasets/(?P<name>[^:@\s]+)(?::(?P<config>[^:@\s]+))?(?:@(?P<revision>\S+))?$")
_GLOB_MAGIC = re.compile(r"[*?[]")


@dataclass
class IngestResult:
    """What ``read_documents`` produced: the documents, the inputs it skipped, and notes on ones it used."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[Drop] = field(default_factory=list)
    warnings: list[Drop] = field(default_factory=list)


@dataclass(frozen=True)
class _Fields:
    id: str
    title: str
    text: str

    @classmethod
    def from_config(cls, cfg: ReaderConfig) -> "_Fields":
        return cls(cfg.id_field, cfg.title_field, cfg.text_field)


@dataclass(frozen=True)
class _FileInput:
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


class _Collector:
    """Accumulates one ingest: documents (unique ids, capped by max_docs), skips and warnings."""

    def __init__(self, max_docs: Optional[int]):
        self.result = IngestResult()
        self.max_docs = max_docs
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
        self.result.skipped.append(Drop(stage=STAGE, item_id=item_id, reason=reason, detail=detail))

    def warn(self, item_id: str, reason: str, detail: str) -> None:
        self.result.warnings.append(Drop(stage=STAGE, item_id=item_id, reason=reason, detail=detail))


# ---------------------------------------------------------------------------------------------- public API


def read_documents(specs: list[str], cfg: ReaderConfig, max_docs: Optional[int] = None) -> IngestResult:
    """Read every document the input specs name, in a deterministic order.

    Args:
        specs: each one a file, a folder (read recursively; hidden files and folders are ignored), a glob
            (``docs/**/*.md``) or a Hub dataset ``hf://datasets/NAME[:config][@revision]`` (split ``train``;
            use ``read_hub`` with a ``HubSource`` for another split). Specs are read in the given order, the
            files of one spec sorted by path; a file named by two specs is read once.
        cfg: field names for record formats (JSONL/JSON/CSV/Parquet/Hub) and the per-file size cap.
        max_docs: stop once this many documents are read; ``None`` reads everything.

    Returns:
        The documents, the skipped inputs and the warnings. An input that cannot be used never stops the
        run; if nothing at all is readable the result is empty and the caller decides.

    Raises:
        InputError: a spec matches nothing, or a Hub dataset cannot be streamed.
    """
    if max_docs is not None and max_docs < 0:
        raise ConfigError(f"max_docs must be 0 or more, not {max_docs}")
    inputs = _resolve(specs)  # every spec is checked before any file is read
    sink = _Collector(max_docs)
    fields = _Fields.from_config(cfg)
    for inp in inputs:
        if sink.full:
            break
        if isinstance(inp, str):
            name, config, revision = _parse_hub(inp)
            _read_hub_into(sink, inp, name, config, revision, "train", fields)
        else:
            _read_file_into(sink, inp, cfg, fields)
    res = sink.result
    log.info("read %d documents from %d inputs (%d skipped, %d warnings)",
             len(res.documents), len(inputs), len(res.skipped), len(res.warnings))
    return res


def read_hub(source: Union[str, HubSource], cfg: ReaderConfig, max_docs: Optional[int] = None) -> IngestResult:
    """Stream one Hub dataset into documents.

    ``source`` is an address ``hf://datasets/NAME[:config][@revision]`` (split ``train``, field names from
    ``cfg``) or a domain pack's ``HubSource``, whose split and field names win over ``cfg`` where it sets them.

    Raises:
        InputError: the dataset cannot be streamed (offline, unknown name, no such split or text field),
            with a one-line message naming the dataset.
    """
    if max_docs is not None and max_docs < 0:
        raise ConfigError(f"max_docs must be 0 or more, not {max_docs}")
    fields = _Fields.from_config(cfg)
    if isinstance(source, HubSource):
        name, config, revision, split = source.dataset, source.config, source.revision, source.split
        fields = _Fields(source.id_field or fields.id, source.title_field or fields.title, source.text_field)
        address = hub_address(source)
    else:
        name, config, revision = _parse_hub(source)
        split, address = "train", source
    sink = _Collector(max_docs)
    _read_hub_into(sink, address, name, config, revision, split, fields)
    return sink.result


def hub_address(source: HubSource) -> str:
    """The ``hf://`` address of a pack's Hub source, as used in ``Document.source``."""
    address = HUB_PREFIX + source.dataset
    if source.config:
        address += f":{source.config}"
    if source.revision:
        address += f"@{source.revision}"
    return address


# ---------------------------------------------------------------------------------------- spec resolution


def _resolve(specs: list[str]) -> list[Union[str, _FileInput]]:
    out: list[Union[str, _FileInput]] = []
    seen: set[Union[str, Path]] = set()
    for spec in specs:
        if spec.startswith("hf://"):
            _parse_hub(spec)  # a malformed address fails now, before any reading
            if spec not in seen:
                seen.add(spec)
                out.append(spec)
            continue
        for inp in _expand(spec):
            key = inp.path.resolve()
            if key not in seen:
                seen.add(key)
                out.append(inp)
    return out


def _expand(spec: str) -> list[_FileInput]:
    path = Path(spec).expanduser()
    if path.is_file():
        return [_FileInput(path, path.name)]
    if path.is_dir():
        files = _walk(path)
        if not files:
            raise InputError(f"'{spec}' is a folder with no files in it")
        return files
    if _GLOB_MAGIC.search(spec):
        base = _glob_base(path)
        matches: list[_FileInput] = []
        # Path.glob needs a relative pattern; the non-magic prefix is its anchor.
        pattern = str(path.relative_to(base)) if base != Path(".") else str(path)
        # Path.glob matches dotfiles with "*" (shell globs do not); only a pattern that asks for them gets them.
        want_hidden = any(part.startswith(".") for part in Path(pattern).parts)
        for hit in base.glob(pattern):
            if not want_hidden and any(part.startswith(".") for part in hit.relative_to(base).parts):
                continue
            if hit.is_file():
                matches.append(_FileInput(hit, hit.relative_to(base).as_posix()))
            elif hit.is_dir():
                matches.extend(_FileInput(f.path, f"{hit.relative_to(base).as_posix()}/{f.rel}") for f in _walk(hit))
        if not matches:
            raise InputError(f"no file matches '{spec}'")
        return sorted(matches, key=lambda f: f.rel)
    raise InputError(f"no such file or folder: '{spec}'")


def _walk(folder: Path) -> list[_FileInput]:
    files = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder)
        # Hidden files and folders are editor and VCS droppings (.git, .DS_Store), never documents.
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            files.append(_FileInput(p, rel.as_posix()))
    return sorted(files, key=lambda f: f.rel)


def _glob_base(path: Path) -> Path:
    plain = []
    for part in path.parts:
        if _GLOB_MAGIC.search(part):
            break
        plain.append(part)
    return Path(*plain) if plain else Path(".")


def _parse_hub(address: str) -> tuple[str, Optional[str], Optional[str]]:
    m = _HUB_ADDRESS.match(address)
    if not m:
        raise InputError(f"'{address}' is not a Hub dataset address; expected hf://datasets/NAME[:config][@revision]")
    return m["name"], m["config"], m["revision"]


# --------------------------------------------------------------------------------------------- file reading


def _read_file_into(sink: _Collector, inp: _FileInput, cfg: ReaderConfig, fields: _Fields) -> None:
    item = str(inp.path)
    fmt = FORMATS.get(inp.path.suffix.lower())
    if fmt is None:
        sink.skip(item, "unsupported", f"buildbench does not read '{inp.path.suffix or 'extensionless'}' files "
                                       f"(supported: {', '.join(sorted(FORMATS))})")
        return
    try:
        size = inp.path.stat().st_size
        if size > cfg.max_file_bytes:
            raise UnreadableInput("too_large", f"{size:,} bytes is over max_file_bytes={cfg.max_file_bytes:,}")
        if size == 0:
            raise UnreadableInput("empty", "the file is empty")
        reader = _READERS[fmt]
        docs = reader(inp, fmt, fields, sink)
        for doc, doc_item in docs:
            sink.add(doc, doc_item)
            if sink.full:
                docs.close()
                break
    except UnreadableInput as skip:
        sink.skip(item, skip.reason, skip.detail)
    except OSError as exc:
        sink.skip(item, "unreadable", f"cannot read the file ({exc.strerror or exc})")
    except Exception as exc:
        # A parser bug on one odd file (lxml, pypdf, pyarrow) must not cost the user the whole ingest; the
        # traceback goes to the debug log for whoever reports it.
        log.debug("reading %s failed", item, exc_info=True)
        sink.skip(item, "unreadable", f"{fmt} reader failed ({_one_line(exc)})")


DocStream = Iterator[tuple[Document, str]]  # (document, item id for a drop that concerns it)


def _file_document(inp: _FileInput, fmt: str, text: str, title: str, metadata: dict[str, Any]) -> Document:
    text = normalize_text(text)
    if not text:
        raise UnreadableInput("empty", "no text left after normalisation")
    return Document(
        id=stable_id(inp.rel, text),
        text=text,
        title=normalize_title(title) or inp.path.stem,
        source=str(inp.path),
        metadata={**metadata, "format": fmt},
    )


def _read_text(inp: _FileInput, fmt: str, fields: _Fields, sink: _Collector) -> DocStream:
    text, meta = _decode_file(inp, sink)
    title = ""
    if fmt == "markdown":
        text, title = strip_markdown(text)
    yield _file_document(inp, fmt, text, title, meta), str(inp.path)


def _read_html(inp: _FileInput, fmt: str, fields: _Fields, sink: _Collector) -> DocStream:
    import trafilatura

    html, meta = _decode_file(inp, sink)
    text = trafilatura.extract(html, output_format="txt", include_comments=False, include_tables=True,
                               favor_recall=True)
    if not text:
        # trafilatura returns nothing for pages below its minimum size; a short page is still a document.
        text = trafilatura.html2txt(html) or ""
    # The page's <title> is what its author named it; trafilatura's guess (often the first <h1>) is the
    # fallback for pages without one.
    m = re.search(r"<title[^>]*>(.*?)</title>", html, re.I | re.S)
    title = _unescape_html(m.group(1)).strip() if m else ""
    if not title:
        info = trafilatura.extract_metadata(html)
        title = info.title if info is not None and info.title else ""
    yield _file_document(inp, fmt, text, title, meta), str(inp.path)


def _read_pdf(inp: _FileInput, fmt: str, fields: _Fields, sink: _Collector) -> DocStream:
    from pypdf import PdfReader

    data = inp.path.read_bytes()
    if b"%PDF-" not in data[:1024]:
        raise UnreadableInput("corrupt_pdf", "no %PDF- header: not a PDF file")
    item = str(inp.path)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except Exception as exc:  # pypdf raises a DependencyError for AES without `cryptography`
                raise UnreadableInput("encrypted_pdf", f"encrypted, and pypdf cannot decrypt it ({_one_line(exc)})") from None
            if not opened:
                raise UnreadableInput("encrypted_pdf", "encrypted with a password")
        pages = reader.pages
        n_pages = len(pages)
        if n_pages == 0:
            raise UnreadableInput("corrupt_pdf", "the PDF has no pages")
    except UnreadableInput:
        raise
    except Exception as exc:
        raise UnreadableInput("corrupt_pdf", f"pypdf cannot parse it ({_one_line(exc)})") from None
    texts = []
    for i in range(n_pages):
        try:
            texts.append(pages[i].extract_text() or "")
        except Exception as exc:
            sink.warn(item, "pdf_page", f"page {i + 1} of {n_pages} could not be extracted ({_one_line(exc)})")
    if not texts:
        raise UnreadableInput("corrupt_pdf", f"none of its {n_pages} pages could be extracted")
    text = "\n\n".join(_unwrap_pdf_lines(t) for t in texts)
    if not normalize_text(text):
        raise UnreadableInput("empty", f"no extractable text in {n_pages} pages (a scanned PDF needs OCR first)")
    title = ""
    try:
        title = (reader.metadata.title or "") if reader.metadata else ""
    except Exception:  # broken info dictionaries are common and only cost us the title
        title = ""
    yield _file_document(inp, fmt, text, str(title), {"pages": n_pages}), item


def _read_jsonl(inp: _FileInput, fmt: str, fields: _Fields, sink: _Collector) -> DocStream:
    text, meta = _decode_file(inp, sink)
    yield from _jsonl_records(inp, fmt, text, fields, sink, meta)


def _jsonl_records(inp: _FileInput, fmt: str, text: str, fields: _Fields, sink: _Collector,
                   meta: dict[str, Any]) -> DocStream:
    # split("\n"), not splitlines(): JSON strings may hold a raw U+2028, which splitlines() would cut.
    index = 0
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        item = f"{inp.path}#line{lineno}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            sink.skip(item, "bad_record", f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        doc = _record_document(rec, item, fields, source=str(inp.path), rel=inp.rel,
                               provenance={**meta, "format": fmt, "record": index, "line": lineno}, sink=sink)
        index += 1
        if doc is not None:
            yield doc, item


def _read_json(inp: _FileInput, fmt: str, fields: _Fields, sink: _Collector) -> DocStream:
    text, meta = _decode_file(inp, sink)
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        # Many ".json" files are really one object per line; read them as such, reporting bad lines.
        yield from _jsonl_records(inp, fmt, text, fields, sink, meta)
        return
    records = data if isinstance(data, list) else [data]
    for index, rec in enumerate(records):
        item = f"{inp.path}#record{index}"
        doc = _record_document(rec, item, fields, source=str(inp.path), rel=inp.rel,
                               provenance={**meta, "format": fmt, "record": index}, sink=sink)
        if doc is not None:
            yield doc, item


def _read_csv(inp: _FileInput, fmt: str, fields: _Fields, sink: _Collector) -> DocStream:
    text, meta = _decode_file(inp, sink)
    _raise_csv_field_limit()
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if fmt == "tsv" else ",")
    columns = reader.fieldnames or []
    if fields.text not in columns:
        raise UnreadableInput("missing_field", f"no '{fields.text}' column (columns: {', '.join(columns) or 'none'})")
    index = 0
    while True:
        item = f"{inp.path}#record{index}"
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The csv module cannot resynchronise after a malformed row, so the rest of the file is lost.
            sink.skip(item, "bad_record", f"malformed CSV ({exc}); the rest of the file was not read")
            return
        row.pop(None, None)  # cells beyond the header
        doc = _record_document(row, item, fields, source=str(inp.path), rel=inp.rel,
                               provenance={**meta, "format": fmt, "record": index}, sink=sink)
        index += 1
        if doc is not None:
            yield doc, item


def _read_parquet(inp: _FileInput, fmt: str, fields: _Fields, sink: _Collector) -> DocStream:
    import pyarrow.parquet as pq

    try:
        pfile = pq.ParquetFile(inp.path)
        columns = pfile.schema_arrow.names
    except Exception as exc:
        raise UnreadableInput("corrupt_parquet", f"pyarrow cannot read it ({_one_line(exc)})") from None
    if fields.text not in columns:
        raise UnreadableInput("missing_field", f"no '{fields.text}' column (columns: {', '.join(columns) or 'none'})")
    index = 0
    batches = pfile.iter_batches(batch_size=1024)  # bounded memory, and max_docs stops it early
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as exc:
            raise UnreadableInput("corrupt_parquet", f"pyarrow failed after {index} records ({_one_line(exc)})") from None
        for row in batch.to_pylist():
            item = f"{inp.path}#record{index}"
            doc = _record_document(row, item, fields, source=str(inp.path), rel=inp.rel,
                                   provenance={"format": fmt, "record": index}, sink=sink)
            index += 1
            if doc is not None:
                yield doc, item


_READERS: dict[str, Callable[[_FileInput, str, _Fields, _Collector], DocStream]] = {
    "text": _read_text,
    "markdown": _read_text,
    "html": _read_html,
    "pdf": _read_pdf,
    "jsonl": _read_jsonl,
    "json": _read_json,
    "csv": _read_csv,
    "tsv": _read_csv,
    "parquet": _read_parquet,
}


# ------------------------------------------------------------------------------------------------ records


def _record_document(rec: Any, item: str, fields: _Fields, *, source: str, rel: str,
                     provenance: dict[str, Any], sink: _Collector) -> Optional[Document]:
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


# ------------------------------------------------------------------------------------------------- decoding


def _decode_file(inp: _FileInput, sink: _Collector) -> tuple[str, dict[str, Any]]:
    """The file's text, and metadata naming its encoding when that is not UTF-8."""
    text, encoding = decode_bytes(inp.path.read_bytes())
    if encoding not in ("utf-8", "utf-8-sig"):
        if encoding not in ("utf-16", "utf-32"):  # BOM-marked: unambiguous, not worth a warning
            sink.warn(str(inp.path), "not_utf8", f"decoded as {encoding}, not UTF-8")
        return text, {"encoding": encoding}
    return text, {}


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode a text file's bytes; returns ``(text, encoding)``.

    UTF-8 first (and BOM-marked UTF-8/16/32). Otherwise charset-normalizer's best guess when it is
    confident, else cp1252 (the usual encoding of Western text that is not UTF-8) when the result looks like
    text. Raises ``UnreadableInput`` with reason ``binary`` or ``undecodable``.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError:
                break
    if b"\x00" in data:
        raise UnreadableInput("binary", "contains NUL bytes: not a text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_at = exc.start
    else:
        _check_not_binary(text)
        return text, "utf-8"

    guessed = _guess_encoding(data)
    if guessed is None:
        raise UnreadableInput("undecodable", f"not UTF-8 (invalid byte at offset {bad_at}) and no other encoding fits")
    text, encoding = guessed
    _check_not_binary(text)
    return text, encoding


# charset-normalizer's "chaos" is the share of the decoded text that looks like mojibake; above this the
# guess is not one we would stake a corpus on.
_MAX_CHAOS = 0.2


def _guess_encoding(data: bytes) -> Optional[tuple[str, str]]:
    # cp1252 goes first: on short Western text charset-normalizer often prefers a Baltic or Central European
    # code page with the same chaos score (a French latin-1 file comes back as cp1257, é misread), while a
    # plausible cp1252 reading is almost always the right one.
    try:
        cp1252_text: Optional[str] = data.decode("cp1252")
    except UnicodeDecodeError:
        cp1252_text = None
    if cp1252_text is not None and _looks_western(cp1252_text):
        return cp1252_text, "cp1252"

    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None or best.chaos > _MAX_CHAOS:
        return None
    try:
        return data.decode(best.encoding), best.encoding
    except (UnicodeDecodeError, LookupError):
        return None


def _looks_western(text: str) -> bool:
    """cp1252 decodes almost any bytes; accept it only when the result reads like Western text.

    Real Latin-script text is mostly ASCII, and its non-ASCII characters are letters (é, ü) or
    typographic punctuation (’ “ € –), each next to ASCII letters rather than in long runs.
    """
    if not text:
        return False
    non_ascii = [c for c in text if ord(c) > 127]
    if len(non_ascii) > 0.3 * len(text):
        return False
    allowed = sum(1 for c in non_ascii if c.isalpha() or c in "’‘“”€–—…•«»°£§©®™·")
    if non_ascii and allowed < 0.9 * len(non_ascii):
        return False
    # Long runs of accented letters are mojibake of a multi-byte encoding, not a Western language.
    return re.search(r"[^\x00-\x7f]{4,}", text) is None


def _check_not_binary(text: str) -> None:
    sample = text[:65536]
    controls = sum(1 for c in sample if ord(c) < 32 and c not in "\t\n\r\f")
    if controls > 0.01 * max(len(sample), 1):
        raise UnreadableInput("binary", f"{controls} control characters in the first {len(sample)}: not a text file")


# ----------------------------------------------------------------------------------------- format helpers

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_RULE_OR_UNDERLINE = re.compile(r"^ {0,3}(?:=+|-{2,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,}|(?:-[ \t]*){3,})[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*$")
_LINK_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]+\S+.*$")
_INLINE = [
    (re.compile(r"<!--.*?-->", re.S), ""),
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images keep their alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links keep their words
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),
    (re.compile(r"`([^`]+)`"), r"\1"),
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"\1"),
    # Underscores only at word edges: snake_case identifiers in prose must survive.
    (re.compile(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])"), r"\1"),
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), r"\1"),
]


def strip_markdown(text: str) -> tuple[str, str]:
    """Markdown to plain text, and its title (front-matter ``title:``, else the first heading, else "").

    Only obvious syntax goes: heading marks, emphasis, link and image syntax, bullets, quotes, rules and
    code fences. The words of headings and code stay, so nothing a query could be written about is lost.
    """
    title = ""
    fm = _FRONT_MATTER.match(text.replace("\r\n", "\n"))
    if fm:
        m = re.search(r"^title:[ \t]*(.+?)[ \t]*$", fm.group(1), re.M)
        if m:
            title = m.group(1).strip("'\"")
        text = text.replace("\r\n", "\n")[fm.end():]
    out: list[str] = []
    in_fence = False
    for line in text.replace("\r\n", "\n").split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            out.append(line)
            continue
        heading = _ATX_HEADING.match(line)
        if heading:
            words = _strip_inline(heading.group(2) or "")
            if words and not title:
                title = words
            out.append(words)
            continue
        if _RULE_OR_UNDERLINE.match(line) or _TABLE_RULE.match(line) or _LINK_DEF.match(line):
            prev = out[-1].strip() if out else ""
            if prev and not title and line.strip().startswith(("=", "-")):
                title = prev  # setext heading: the line above the underline
            if prev:
                out.append("")  # an underline or rule also ends the paragraph above it
            continue
        line = re.sub(r"^[ \t]*(?:>[ \t]?)+", "", line)  # block quotes
        line = re.sub(r"^([ \t]*)[-*+][ \t]+", r"\1", line)  # bullets
        out.append(_strip_inline(line))
    return "\n".join(out), title


def _strip_inline(line: str) -> str:
    for pattern, repl in _INLINE:
        line = pattern.sub(repl, line)
    return line


def _unwrap_pdf_lines(text: str) -> str:
    """Undo the layout line breaks pypdf keeps: a break before a lowercase word continues the sentence."""
    text = re.sub(r"(?<=[a-z])-\n(?=[a-z])", "", text)  # a word hyphenated across lines
    return re.sub(r"(?<=[^\s.!?:])[ \t]*\n(?=[ \t]*[a-z(])", " ", text)


def _unescape_html(s: str) -> str:
    import html

    return html.unescape(re.sub(r"<[^>]+>", "", s))


def _one_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0]}" if msg else type(exc).__name__


_csv_limit_raised = False


def _raise_csv_field_limit() -> None:
    """The csv module refuses cells over 128 KiB by default; a document's text is often longer."""
    global _csv_limit_raised
    if not _csv_limit_raised:
        limit = sys.maxsize
        while True:
            try:
                csv.field_size_limit(limit)
                break
            except OverflowError:  # C long is 32 bits on Windows
                limit //= 2
        _csv_limit_raised = True


# ------------------------------------------------------------------------------------------------------ Hub


def _read_hub_into(sink: _Collector, address: str, name: str, config: Optional[str], revision: Optional[str],
                   split: str, fields: _Fields) -> None:
    """Stream records from the Hub into ``sink`` until the dataset ends or max_docs is reached."""
    import datasets

    def fail(exc: BaseException) -> InputError:
        return InputError(_hub_error(name, exc))

    try:
        stream = datasets.load_dataset(name, config, split=split, revision=revision, streaming=True)
        rows = iter(stream)
    except Exception as exc:
        raise fail(exc) from None
    index = 0
    while not sink.full:
        try:
            row = next(rows)
        except StopIteration:
            break
        except Exception as exc:
            raise fail(exc) from None
        if index == 0 and isinstance(row, dict) and fields.text not in row:
            raise InputError(f"Hub dataset '{name}' has no '{fields.text}' field "
                             f"(fields: {', '.join(map(str, row))}); set the source's text_field")
        item = f"{address}#record{index}"
        doc = _record_document(row, item, fields, source=address, rel=address,
                               provenance={"format": "hub", "split": split, "record": index}, sink=sink)
        index += 1
        if doc is not None:
            sink.add(doc, item)


def _hub_error(name: str, exc: BaseException) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    if not offline:
        try:
            from huggingface_hub import constants

            offline = bool(constants.HF_HUB_OFFLINE)
        except Exception:  # pragma: no cover - huggingface_hub ships with datasets
            pass
    if offline:
        return (f"cannot stream Hub dataset '{name}': offline mode (HF_HUB_OFFLINE is set); "
                f"pass local files or folders instead")
    return f"cannot stream Hub dataset '{name}': {_one_line(exc)}"
