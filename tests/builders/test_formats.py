"""formats: each file format to documents, and every way a whole file is skipped with its reason."""

import json

import pyarrow as pa
import pyarrow.parquet as pq

from buildbench.builders.normalize import stable_id
from buildbench.domain_pack import ReaderConfig
from buildbench.records import Document, from_table, to_table

from .conftest import make_pdf, only_doc, read, reasons, write

# ------------------------------------------------------------------------------------------- plain formats


def test_text_file_is_normalised_with_stable_id(tmp_path):
    path = write(tmp_path / "notes" / "outlook.txt", "  Growth   slowed.\r\n\r\n\r\n\r\nExports\tfell.  \n")
    first = only_doc(read([str(path)]))
    assert first.text == "Growth slowed.\n\nExports fell."
    assert first.title == "outlook"
    assert first.source == str(path)
    assert first.metadata == {"format": "text"}
    assert first.id == stable_id("outlook.txt", first.text)
    # The id depends on the path relative to the spec, not where the folder lives.
    moved = write(tmp_path / "elsewhere" / "outlook.txt", path.read_text())
    assert only_doc(read([str(moved)])).id == first.id
    assert only_doc(read([str(path)])).id == first.id


def test_html_main_text_and_title(tmp_path):
    html = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>Rate decision &amp; outlook</title></head>
<body><nav><a href="/">Home</a> | <a href="/about">About us</a></nav>
<article><h1>Rate decision</h1>
<p>The central bank held its policy rate at 4.5% on Wednesday.</p>
<p>Officials signalled that cuts remain possible later in the year if inflation cools.</p></article>
<footer>Copyright 2024 Example Bank</footer></body></html>"""
    doc = only_doc(read([str(write(tmp_path / "page.html", html))]))
    assert doc.title == "Rate decision & outlook"
    assert doc.metadata["format"] == "html"
    assert "The central bank held its policy rate at 4.5% on Wednesday." in doc.text
    assert "Officials signalled that cuts remain possible" in doc.text
    assert "About us" not in doc.text and "<p>" not in doc.text


def test_pdf_pages_are_extracted_and_joined(tmp_path):
    data = make_pdf(
        [["Inflation expectations remained well anchored, and", "the Committee kept the target range unchanged.",
          "Participants saw risks as roughly bal-", "anced."],
         ["Treasury yields rose on the second page."]],
        title="Minutes of the meeting",
    )
    doc = only_doc(read([str(write(tmp_path / "minutes.pdf", data))]))
    assert doc.title == "Minutes of the meeting"
    assert doc.metadata == {"format": "pdf", "pages": 2}
    # The layout break before a lowercase line is a wrapped sentence, so it becomes a space.
    # A hyphen at a line end before a lowercase word joins the word again.
    assert doc.text == ("Inflation expectations remained well anchored, and the Committee kept the target range "
                        "unchanged.\nParticipants saw risks as roughly balanced.\n\nTreasury yields rose on the second page.")


def test_pdf_without_title_uses_stem(tmp_path):
    doc = only_doc(read([str(write(tmp_path / "fed-note.pdf", make_pdf([["A one page note."]])))]))
    assert doc.title == "fed-note"
    assert doc.text == "A one page note."


def encrypt(pdf: bytes, user_password: str) -> bytes:
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=user_password, owner_password="owner-pw", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_encrypted_pdfs(tmp_path):
    plain = make_pdf([["Confidential liquidity figures."]])
    locked = write(tmp_path / "locked.pdf", encrypt(plain, "secret"))
    # Encrypted for permissions only (empty user password): every viewer opens it, so do we.
    open_pdf = write(tmp_path / "open.pdf", encrypt(plain, ""))
    result = read([str(tmp_path)])
    assert [d.text for d in result.documents] == ["Confidential liquidity figures."]
    assert result.documents[0].source == str(open_pdf)
    assert reasons(result) == {str(locked): "encrypted_pdf"}


def test_pdf_without_a_text_layer_is_empty(tmp_path):
    path = write(tmp_path / "scan.pdf", make_pdf([[], []]))
    result = read([str(path)])
    assert reasons(result) == {str(path): "empty"}
    assert "OCR" in result.skipped[0].detail
    no_pages = write(tmp_path / "nopages.pdf", make_pdf([]))
    assert reasons(read([str(no_pages)])) == {str(no_pages): "corrupt_pdf"}


def test_tsv_is_read_like_csv(tmp_path):
    path = write(tmp_path / "t.tsv", "_id\ttext\n1\tTabs separate, commas do not.\n")
    doc = only_doc(read([str(path)]))
    assert (doc.id, doc.text, doc.metadata["format"]) == ("1", "Tabs separate, commas do not.", "tsv")


# ------------------------------------------------------------------------------------- unreadable inputs


def test_every_bad_input_is_skipped_with_its_reason_and_the_run_goes_on(tmp_path):
    good = make_pdf([["Real content survives."]])
    files = {
        "a_good.txt": "A readable document.",
        "b_truncated.pdf": good[: len(good) // 2],
        "c_not_really.pdf": "just some text pretending to be a PDF",
        "d_binary.txt": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
        "e_empty.txt": b"",
        "f_blank.md": "   \n\n\t  \n",
        "g_report.docx": b"PK\x03\x04 not read",
        "h_undecodable.txt": bytes(range(0x80, 0x100)) * 4,
        "i_good.pdf": good,
    }
    for name, content in files.items():
        write(tmp_path / name, content)
    result = read([str(tmp_path)])
    assert [d.text for d in result.documents] == ["A readable document.", "Real content survives."]
    assert reasons(result) == {
        str(tmp_path / "b_truncated.pdf"): "corrupt_pdf",
        str(tmp_path / "c_not_really.pdf"): "corrupt_pdf",
        str(tmp_path / "d_binary.txt"): "binary",
        str(tmp_path / "e_empty.txt"): "empty",
        str(tmp_path / "f_blank.md"): "empty",
        str(tmp_path / "g_report.docx"): "unsupported",
        str(tmp_path / "h_undecodable.txt"): "undecodable",
    }
    for drop in result.skipped:
        assert drop.stage == "ingest"
        assert drop.detail and "\n" not in drop.detail
    assert "'.docx'" in next(d.detail for d in result.skipped if d.reason == "unsupported")


def test_file_over_the_size_cap_is_skipped(tmp_path):
    path = write(tmp_path / "big.txt", "x" * 200)
    result = read([str(path)], ReaderConfig(max_file_bytes=100))
    assert result.documents == []
    assert reasons(result) == {str(path): "too_large"}
    assert "200 bytes" in result.skipped[0].detail


def test_all_inputs_bad_gives_an_empty_result_not_an_error(tmp_path):
    write(tmp_path / "x.bin", b"\x00\x01")
    write(tmp_path / "y.txt", b"")
    result = read([str(tmp_path)])
    assert result.documents == []
    assert sorted(d.reason for d in result.skipped) == ["empty", "unsupported"]


# ------------------------------------------------------------------------------------------- record files


def test_jsonl_with_custom_fields_and_bad_lines(tmp_path):
    lines = [
        json.dumps({"doc_id": "r1", "heading": "First", "body": "Bank lending tightened.", "sector": "banks"}),
        json.dumps({"doc_id": "r2", "heading": "Second", "body": "Mortgage rates eased.",
                    "metadata": {"date": "2024-05-01"}}),
        '{"doc_id": "r3", "body": "unterminated',
        json.dumps({"doc_id": "r4", "heading": "Empty", "body": "   "}),
        "",
        json.dumps({"doc_id": "r5", "heading": "No body here"}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"doc_id": 6, "body": "Numeric ids become strings."}),
    ]
    path = write(tmp_path / "corpus.jsonl", "\n".join(lines) + "\n")
    cfg = ReaderConfig(id_field="doc_id", title_field="heading", text_field="body")
    result = read([str(path)], cfg)
    assert [d.id for d in result.documents] == ["r1", "r2", "6"]
    r1, r2, r6 = result.documents
    assert (r1.title, r1.text, r1.source) == ("First", "Bank lending tightened.", str(path))
    assert r1.metadata == {"sector": "banks", "format": "jsonl", "record": 0, "line": 1}
    assert r2.metadata == {"date": "2024-05-01", "format": "jsonl", "record": 1, "line": 2}
    assert r6.title == "" and r6.metadata["line"] == 8
    assert reasons(result) == {
        f"{path}#line3": "bad_record",
        f"{path}#line4": "empty_record",
        f"{path}#line6": "empty_record",
        f"{path}#line7": "bad_record",
    }
    assert "'body'" in next(d.detail for d in result.skipped if d.item_id.endswith("#line6"))


def test_beir_corpus_jsonl_works_as_is(tmp_path):
    rows = [
        {"_id": "d0", "title": "Repo market", "text": "Overnight repo rates spiked in September."},
        {"_id": "d1", "title": "", "text": "Reserve balances declined."},
    ]
    path = write(tmp_path / "corpus.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    result = read([str(path)], ReaderConfig())
    assert [(d.id, d.title, d.text) for d in result.documents] == [
        ("d0", "Repo market", "Overnight repo rates spiked in September."),
        ("d1", "", "Reserve balances declined."),
    ]
    assert result.skipped == [] and result.warnings == []


def test_json_list_and_json_lines_in_a_json_file(tmp_path):
    listed = write(tmp_path / "a.json", json.dumps([
        {"key": "j1", "content": "Credit card delinquencies rose."},
        {"key": "j2", "content": ""},
        "stray string",
        {"key": "j3", "content": "Auto loans slowed.", "region": "EU"},
    ]))
    lined = write(tmp_path / "b.json", json.dumps({"key": "k1", "content": "Line one."}) + "\n{oops\n"
                  + json.dumps({"key": "k2", "content": "Line three."}) + "\n")
    cfg = ReaderConfig(id_field="key", text_field="content")
    result = read([str(tmp_path / "*.json")], cfg)
    assert [d.id for d in result.documents] == ["j1", "j3", "k1", "k2"]
    assert result.documents[1].metadata == {"region": "EU", "format": "json", "record": 3}
    assert reasons(result) == {
        f"{listed}#record1": "empty_record",
        f"{listed}#record2": "bad_record",
        f"{lined}#line2": "bad_record",
    }


def test_csv_with_custom_fields_and_extra_columns(tmp_path):
    csv_text = ('ref,headline,article,desk\n'
                'c1,Oil,"Brent crude rose, then fell.\nA second line.",commodities\n'
                'c2,Empty,,rates\n'
                ',No id,Gold held steady.,metals\n')
    path = write(tmp_path / "news.csv", csv_text)
    result = read([str(path)], ReaderConfig(id_field="ref", title_field="headline", text_field="article"))
    c1, gold = result.documents
    assert (c1.id, c1.title, c1.text) == ("c1", "Oil", "Brent crude rose, then fell.\nA second line.")
    assert c1.metadata == {"desk": "commodities", "format": "csv", "record": 0}
    assert gold.id == stable_id("news.csv", "Gold held steady.") and gold.metadata["record"] == 2
    assert reasons(result) == {f"{path}#record1": "empty_record"}


def test_csv_without_the_text_column_is_skipped_once(tmp_path):
    path = write(tmp_path / "wrong.csv", "id,body\n1,Some text.\n2,More text.\n")
    result = read([str(path)])
    assert result.documents == []
    assert reasons(result) == {str(path): "missing_field"}
    assert "columns: id, body" in result.skipped[0].detail


def test_parquet_with_custom_fields_and_typed_metadata(tmp_path):
    import datetime

    table = pa.table({
        "pid": ["p1", "p2", "p3"],
        "name": ["Bonds", "Equities", None],
        "passage": ["Bond yields fell.", None, "Stocks rallied on earnings."],
        "published": [datetime.date(2024, 1, 2), datetime.date(2024, 1, 3), datetime.date(2024, 1, 4)],
        "score": [0.5, 1.0, float("nan")],
    })
    path = tmp_path / "data.parquet"
    pq.write_table(table, path)
    result = read([str(path)], ReaderConfig(id_field="pid", title_field="name", text_field="passage"))
    p1, p3 = result.documents
    assert (p1.id, p1.title, p1.text) == ("p1", "Bonds", "Bond yields fell.")
    assert p1.metadata == {"published": "2024-01-02", "score": 0.5, "format": "parquet", "record": 0}
    assert (p3.id, p3.title, p3.metadata["record"], p3.metadata["score"]) == ("p3", "", 2, None)
    assert reasons(result) == {f"{path}#record1": "empty_record"}
    # Metadata must survive the Arrow boundary the pipeline puts documents through.
    assert from_table(to_table(result.documents, Document), Document) == result.documents


def test_buildbench_documents_parquet_reads_back_with_its_metadata(tmp_path):
    docs = [Document(id="x1", text="Some passage.", title="T", source="s", metadata={"date": "2020", "n": 3})]
    path = tmp_path / "documents.parquet"
    pq.write_table(to_table(docs, Document), path)
    doc = only_doc(read([str(path)], ReaderConfig(id_field="id")))
    assert (doc.id, doc.text, doc.title) == ("x1", "Some passage.", "T")
    assert doc.metadata == {"date": "2020", "n": 3, "source": "s", "format": "parquet", "record": 0}


def test_corrupt_parquet_is_skipped(tmp_path):
    path = write(tmp_path / "broken.parquet", b"PAR1 this is not really parquet")
    assert reasons(read([str(path)])) == {str(path): "corrupt_parquet"}
