"""Fixture builders for the builders tests. Every fixture is generated in tmp_path from text written here."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pytest

from buildbench.builders import IngestResult, read_documents
from buildbench.domain_pack import ReaderConfig
from buildbench.records import Document

CFG = ReaderConfig()
STAGE = "ingest"  # the stage name the tests' reads label their drops with
FOMC = Path("/work/shared/data/fomc/passages.jsonl")


def read(specs: list[str], cfg: ReaderConfig = CFG, max_docs: Optional[int] = None) -> IngestResult:
    """``read_documents`` as the ingest stage calls it."""
    return read_documents(specs, cfg, max_docs, stage=STAGE)


def write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def reasons(result: IngestResult) -> dict[str, str]:
    return {d.item_id: d.reason for d in result.skipped}


def only_doc(result: IngestResult) -> Document:
    assert len(result.documents) == 1, (result.documents, result.skipped)
    return result.documents[0]


def make_pdf(pages: list[list[str]], title: str | None = None) -> bytes:
    """A minimal but valid PDF: one Helvetica text line per string, pages in order.

    Written by hand (objects, xref table with exact byte offsets, trailer) so the test depends on
    nothing but the PDF spec, and pypdf reads it back like any producer's file.
    """
    objs: list[bytes | None] = []

    def add(body: bytes | None) -> int:
        objs.append(body)
        return len(objs)

    catalog, pages_id = add(None), add(None)
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    kids = []
    for lines in pages:
        ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({escaped}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        content = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        kids.append(add(
            f"<< /Type /Page /Parent {pages_id} 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {content} 0 R >>".encode()
        ))
    objs[catalog - 1] = f"<< /Type /Catalog /Pages {pages_id} 0 R >>".encode()
    objs[pages_id - 1] = (f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] "
                          f"/Count {len(kids)} >>").encode()
    info = add(f"<< /Title ({title}) >>".encode()) if title else None

    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    trailer = f"<< /Size {len(objs) + 1} /Root {catalog} 0 R" + (f" /Info {info} 0 R" if info else "") + " >>"
    out += b"trailer\n" + trailer.encode() + b"\nstartxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


@pytest.fixture
def pdf_bytes():
    return make_pdf
