"""One file to documents, by its extension: text, Markdown, HTML, PDF, JSONL/JSON, CSV/TSV and Parquet.

``read_file`` checks the size cap, picks the format's reader and turns whatever makes the whole file unusable
into a skip with its reason (see ``documents``); record formats skip single bad records and read on.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import sys
from typing import Any, Callable, Iterator

from ..domain_pack import ReaderConfig
from ..records import Document
from .documents import Collector, FileInput, RecordFields, UnreadableInput, one_line, record_document
from .encoding import decode_file
from .markdown import strip_markdown
from .normalize import normalize_text, normalize_title, stable_id

log = logging.getLogger(__name__)

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

# Archives and compressed files are not read (a .jsonl.gz would need its own size limits): named in the skip.
COMPRESSED = {".gz", ".bz2", ".xz", ".zst", ".zip", ".tar", ".tgz", ".7z", ".lz4"}


def read_file(sink: Collector, inp: FileInput, cfg: ReaderConfig, fields: RecordFields) -> None:
    """Read one file's documents into ``sink``, or record why it was skipped; stops when ``sink`` is full."""
    item = str(inp.path)
    fmt = FORMATS.get(inp.path.suffix.lower())
    if fmt is None:
        if inp.path.suffix.lower() in COMPRESSED:
            sink.skip(item, "unsupported", f"a compressed file ('{inp.path.suffix}'): decompress it first")
            return
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
        sink.skip(item, "unreadable", f"{fmt} reader failed ({one_line(exc)})")


DocStream = Iterator[tuple[Document, str]]  # (document, item id for a drop that concerns it)


def _file_document(inp: FileInput, fmt: str, text: str, title: str, metadata: dict[str, Any]) -> Document:
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


def _read_text(inp: FileInput, fmt: str, fields: RecordFields, sink: Collector) -> DocStream:
    text, meta = decode_file(inp, sink)
    title = ""
    if fmt == "markdown":
        text, title = strip_markdown(text)
    yield _file_document(inp, fmt, text, title, meta), str(inp.path)


def _read_html(inp: FileInput, fmt: str, fields: RecordFields, sink: Collector) -> DocStream:
    import trafilatura

    html, meta = decode_file(inp, sink)
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


def _read_pdf(inp: FileInput, fmt: str, fields: RecordFields, sink: Collector) -> DocStream:
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
                raise UnreadableInput("encrypted_pdf", f"encrypted, and pypdf cannot decrypt it ({one_line(exc)})") from None
            if not opened:
                raise UnreadableInput("encrypted_pdf", "encrypted with a password")
        pages = reader.pages
        n_pages = len(pages)
        if n_pages == 0:
            raise UnreadableInput("corrupt_pdf", "the PDF has no pages")
    except UnreadableInput:
        raise
    except Exception as exc:
        raise UnreadableInput("corrupt_pdf", f"pypdf cannot parse it ({one_line(exc)})") from None
    texts = []
    for i in range(n_pages):
        try:
            texts.append(pages[i].extract_text() or "")
        except Exception as exc:
            sink.warn(item, "pdf_page", f"page {i + 1} of {n_pages} could not be extracted ({one_line(exc)})")
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


def _read_jsonl(inp: FileInput, fmt: str, fields: RecordFields, sink: Collector) -> DocStream:
    text, meta = decode_file(inp, sink)
    yield from _jsonl_records(inp, fmt, text, fields, sink, meta)


def _jsonl_records(inp: FileInput, fmt: str, text: str, fields: RecordFields, sink: Collector,
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
        doc = record_document(rec, item, fields, source=str(inp.path), rel=inp.rel,
                              provenance={**meta, "format": fmt, "record": index, "line": lineno}, sink=sink)
        index += 1
        if doc is not None:
            yield doc, item


def _read_json(inp: FileInput, fmt: str, fields: RecordFields, sink: Collector) -> DocStream:
    text, meta = decode_file(inp, sink)
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        # Many ".json" files are really one object per line; read them as such, reporting bad lines.
        yield from _jsonl_records(inp, fmt, text, fields, sink, meta)
        return
    records = data if isinstance(data, list) else [data]
    for index, rec in enumerate(records):
        item = f"{inp.path}#record{index}"
        doc = record_document(rec, item, fields, source=str(inp.path), rel=inp.rel,
                              provenance={**meta, "format": fmt, "record": index}, sink=sink)
        if doc is not None:
            yield doc, item


def _read_csv(inp: FileInput, fmt: str, fields: RecordFields, sink: Collector) -> DocStream:
    text, meta = decode_file(inp, sink)
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
        doc = record_document(row, item, fields, source=str(inp.path), rel=inp.rel,
                              provenance={**meta, "format": fmt, "record": index}, sink=sink)
        index += 1
        if doc is not None:
            yield doc, item


def _read_parquet(inp: FileInput, fmt: str, fields: RecordFields, sink: Collector) -> DocStream:
    import pyarrow.parquet as pq

    try:
        pfile = pq.ParquetFile(inp.path)
        columns = pfile.schema_arrow.names
    except Exception as exc:
        raise UnreadableInput("corrupt_parquet", f"pyarrow cannot read it ({one_line(exc)})") from None
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
            raise UnreadableInput("corrupt_parquet", f"pyarrow failed after {index} records ({one_line(exc)})") from None
        for row in batch.to_pylist():
            item = f"{inp.path}#record{index}"
            doc = record_document(row, item, fields, source=str(inp.path), rel=inp.rel,
                                  provenance={"format": fmt, "record": index}, sink=sink)
            index += 1
            if doc is not None:
                yield doc, item


_READERS: dict[str, Callable[[FileInput, str, RecordFields, Collector], DocStream]] = {
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


def _unwrap_pdf_lines(text: str) -> str:
    """Undo the layout line breaks pypdf keeps: a break before a lowercase word continues the sentence."""
    text = re.sub(r"(?<=[a-z])-\n(?=[a-z])", "", text)  # a word hyphenated across lines
    return re.sub(r"(?<=[^\s.!?:])[ \t]*\n(?=[ \t]*[a-z(])", " ", text)


def _unescape_html(s: str) -> str:
    import html

    return html.unescape(re.sub(r"<[^>]+>", "", s))


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
