import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from buildbench.builders.normalize import stable_id
from buildbench.builders.readers import IngestResult, decode_bytes, hub_address, read_documents, read_hub
from buildbench.config import HubSource, ReaderConfig
from buildbench.errors import InputError
from buildbench.records import Document, to_table, from_table

from .conftest import make_pdf

CFG = ReaderConfig()
FOMC = Path("/work/shared/data/fomc/passages.jsonl")


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


# ------------------------------------------------------------------------------------------- plain formats


def test_text_file_is_normalised_with_stable_id(tmp_path):
    path = write(tmp_path / "notes" / "outlook.txt", "  Growth   slowed.\r\n\r\n\r\n\r\nExports\tfell.  \n")
    first = only_doc(read_documents([str(path)], CFG))
    assert first.text == "Growth slowed.\n\nExports fell."
    assert first.title == "outlook"
    assert first.source == str(path)
    assert first.metadata == {"format": "text"}
    assert first.id == stable_id("outlook.txt", first.text)
    # The id depends on the path relative to the spec, not where the folder lives.
    moved = write(tmp_path / "elsewhere" / "outlook.txt", path.read_text())
    assert only_doc(read_documents([str(moved)], CFG)).id == first.id
    assert only_doc(read_documents([str(path)], CFG)).id == first.id


def test_markdown_keeps_heading_words_and_takes_title(tmp_path):
    md = (
        "# Quarterly *credit* review\n\n"
        "Spreads on **high-yield** bonds widened, see [the chart](https://example.org/c.png).\n\n"
        "## Outlook\n\n"
        "- Defaults stay low\n"
        "- `snake_case_name` is kept\n\n"
        "> Quoted remark from a trader.\n\n"
        "---\n"
        "![yield curve](curve.png)\n"
    )
    doc = only_doc(read_documents([str(write(tmp_path / "review.md", md))], CFG))
    assert doc.title == "Quarterly credit review"
    assert doc.metadata["format"] == "markdown"
    assert doc.text.startswith("Quarterly credit review\n\nSpreads on high-yield bonds widened, see the chart.")
    assert "Outlook" in doc.text and "Defaults stay low" in doc.text
    assert "snake_case_name is kept" in doc.text
    assert "Quoted remark from a trader." in doc.text
    assert "yield curve" in doc.text
    for syntax in ("#", "**", "](", "- Defaults", "> Quoted", "---", "`"):
        assert syntax not in doc.text


def test_markdown_without_heading_uses_file_stem(tmp_path):
    doc = only_doc(read_documents([str(write(tmp_path / "memo_2024.md", "Plain *memo* text.\n"))], CFG))
    assert doc.title == "memo_2024"
    assert doc.text == "Plain memo text."


def test_html_main_text_and_title(tmp_path):
    html = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>Rate decision &amp; outlook</title></head>
<body><nav><a href="/">Home</a> | <a href="/about">About us</a></nav>
<article><h1>Rate decision</h1>
<p>The central bank held its policy rate at 4.5% on Wednesday.</p>
<p>Officials signalled that cuts remain possible later in the year if inflation cools.</p></article>
<footer>Copyright 2024 Example Bank</footer></body></html>"""
    doc = only_doc(read_documents([str(write(tmp_path / "page.html", html))], CFG))
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
    doc = only_doc(read_documents([str(write(tmp_path / "minutes.pdf", data))], CFG))
    assert doc.title == "Minutes of the meeting"
    assert doc.metadata == {"format": "pdf", "pages": 2}
    # The layout break before a lowercase line is a wrapped sentence, so it becomes a space.
    # A hyphen at a line end before a lowercase word joins the word again.
    assert doc.text == ("Inflation expectations remained well anchored, and the Committee kept the target range "
                        "unchanged.\nParticipants saw risks as roughly balanced.\n\nTreasury yields rose on the second page.")


def test_pdf_without_title_uses_stem(tmp_path):
    doc = only_doc(read_documents([str(write(tmp_path / "fed-note.pdf", make_pdf([["A one page note."]])))], CFG))
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
    result = read_documents([str(tmp_path)], CFG)
    assert [d.text for d in result.documents] == ["Confidential liquidity figures."]
    assert result.documents[0].source == str(open_pdf)
    assert reasons(result) == {str(locked): "encrypted_pdf"}


def test_pdf_without_a_text_layer_is_empty(tmp_path):
    path = write(tmp_path / "scan.pdf", make_pdf([[], []]))
    result = read_documents([str(path)], CFG)
    assert reasons(result) == {str(path): "empty"}
    assert "OCR" in result.skipped[0].detail
    no_pages = write(tmp_path / "nopages.pdf", make_pdf([]))
    assert reasons(read_documents([str(no_pages)], CFG)) == {str(no_pages): "corrupt_pdf"}


def test_markdown_front_matter_title_and_setext_heading(tmp_path):
    md = "---\ntitle: 'Liquidity note'\nauthor: desk\n---\nSetext heading\n==============\n\nBody text.\n"
    doc = only_doc(read_documents([str(write(tmp_path / "n.md", md))], CFG))
    assert doc.title == "Liquidity note"
    assert doc.text == "Setext heading\n\nBody text."


def test_tsv_is_read_like_csv(tmp_path):
    path = write(tmp_path / "t.tsv", "_id\ttext\n1\tTabs separate, commas do not.\n")
    doc = only_doc(read_documents([str(path)], CFG))
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
    result = read_documents([str(tmp_path)], CFG)
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
    result = read_documents([str(path)], ReaderConfig(max_file_bytes=100))
    assert result.documents == []
    assert reasons(result) == {str(path): "too_large"}
    assert "200 bytes" in result.skipped[0].detail


def test_latin1_file_is_decoded_with_a_warning(tmp_path):
    text = "Le café de la réunion fut apprécié, même über alles.\nDéjà vu à Zürich."
    path = write(tmp_path / "note.txt", text.encode("latin-1"))
    result = read_documents([str(path)], CFG)
    doc = only_doc(result)
    assert doc.text == text
    assert doc.metadata["encoding"] == "cp1252"
    assert result.skipped == []
    [warning] = result.warnings
    assert warning.item_id == str(path) and warning.reason == "not_utf8"
    assert warning.detail == "decoded as cp1252, not UTF-8"


def test_cp1252_typographic_quotes_are_decoded():
    text = "The Fed’s “dot plot” moved – again."
    assert decode_bytes(text.encode("cp1252")) == (text, "cp1252")
    assert decode_bytes(text.encode("utf-8")) == (text, "utf-8")
    assert decode_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))[0] == text


def test_other_encodings_go_through_charset_normalizer():
    text = "Центральный банк повысил ключевую ставку до семи процентов годовых, сообщил регулятор."
    decoded, encoding = decode_bytes(text.encode("koi8-r"))
    assert decoded == text
    assert encoding == "koi8_r"


def test_all_inputs_bad_gives_an_empty_result_not_an_error(tmp_path):
    write(tmp_path / "x.bin", b"\x00\x01")
    write(tmp_path / "y.txt", b"")
    result = read_documents([str(tmp_path)], CFG)
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
    result = read_documents([str(path)], cfg)
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
    result = read_documents([str(path)], ReaderConfig())
    assert [(d.id, d.title, d.text) for d in result.documents] == [
        ("d0", "Repo market", "Overnight repo rates spiked in September."),
        ("d1", "", "Reserve balances declined."),
    ]
    assert result.skipped == [] and result.warnings == []


def test_id_falls_back_to_id_then_to_a_stable_hash(tmp_path):
    rows = [{"id": "plain-id", "text": "Uses the id column."}, {"text": "Has no id at all."}]
    path = write(tmp_path / "c.jsonl", "\n".join(json.dumps(r) for r in rows))
    first = read_documents([str(path)], ReaderConfig())
    assert first.documents[0].id == "plain-id"
    assert first.documents[1].id == stable_id("c.jsonl", "Has no id at all.")
    assert [d.id for d in read_documents([str(path)], ReaderConfig()).documents] == [d.id for d in first.documents]


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
    result = read_documents([str(tmp_path / "*.json")], cfg)
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
    result = read_documents([str(path)], ReaderConfig(id_field="ref", title_field="headline", text_field="article"))
    c1, gold = result.documents
    assert (c1.id, c1.title, c1.text) == ("c1", "Oil", "Brent crude rose, then fell.\nA second line.")
    assert c1.metadata == {"desk": "commodities", "format": "csv", "record": 0}
    assert gold.id == stable_id("news.csv", "Gold held steady.") and gold.metadata["record"] == 2
    assert reasons(result) == {f"{path}#record1": "empty_record"}


def test_csv_without_the_text_column_is_skipped_once(tmp_path):
    path = write(tmp_path / "wrong.csv", "id,body\n1,Some text.\n2,More text.\n")
    result = read_documents([str(path)], CFG)
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
    result = read_documents([str(path)], ReaderConfig(id_field="pid", title_field="name", text_field="passage"))
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
    doc = only_doc(read_documents([str(path)], ReaderConfig(id_field="id")))
    assert (doc.id, doc.text, doc.title) == ("x1", "Some passage.", "T")
    assert doc.metadata == {"date": "2020", "n": 3, "source": "s", "format": "parquet", "record": 0}


def test_corrupt_parquet_is_skipped(tmp_path):
    path = write(tmp_path / "broken.parquet", b"PAR1 this is not really parquet")
    assert reasons(read_documents([str(path)], CFG)) == {str(path): "corrupt_parquet"}


def test_duplicate_ids_across_files_keep_the_first(tmp_path):
    write(tmp_path / "a.jsonl", json.dumps({"_id": "same", "text": "First copy."}))
    b = write(tmp_path / "b.jsonl", json.dumps({"_id": "same", "text": "Second copy."}))
    result = read_documents([str(tmp_path)], CFG)
    assert [d.text for d in result.documents] == ["First copy."]
    assert reasons(result) == {f"{b}#line1": "duplicate_id"}


# ----------------------------------------------------------------------------------- specs and ordering


def test_folders_are_recursive_sorted_and_skip_hidden_files(tmp_path):
    write(tmp_path / "b.txt", "Doc b.")
    write(tmp_path / "a" / "z.txt", "Doc a/z.")
    write(tmp_path / "a" / "deeper" / "y.md", "Doc a/deeper/y.")
    write(tmp_path / ".git" / "config.txt", "not a document")
    write(tmp_path / ".DS_Store.txt", "not a document either")
    result = read_documents([str(tmp_path)], CFG)
    assert [d.text for d in result.documents] == ["Doc a/deeper/y.", "Doc a/z.", "Doc b."]
    assert result.skipped == []
    # Ids hash the path relative to the folder given.
    assert result.documents[1].id == stable_id("a/z.txt", "Doc a/z.")


def test_globs_and_a_file_named_twice_is_read_once(tmp_path):
    write(tmp_path / "r1.md", "Markdown one.")
    write(tmp_path / "r2.txt", "Text two.")
    write(tmp_path / "sub" / "r3.txt", "Text three.")
    write(tmp_path / "sub" / "r4.md", "Markdown four.")
    write(tmp_path / ".cache" / "hidden.txt", "Hidden.")
    result = read_documents([str(tmp_path / "**" / "*.txt"), str(tmp_path / "r2.txt"), str(tmp_path / "*.md")], CFG)
    assert [d.text for d in result.documents] == ["Text two.", "Text three.", "Markdown one."]
    assert [d.text for d in read_documents([str(tmp_path / ".cache" / "*.txt")], CFG).documents] == ["Hidden."]


def test_spec_matching_nothing_raises_naming_it(tmp_path):
    write(tmp_path / "a.txt", "Something.")
    missing = str(tmp_path / "nope" / "file.txt")
    with pytest.raises(InputError, match="nope/file.txt"):
        read_documents([str(tmp_path), missing], CFG)
    with pytest.raises(InputError, match=r"no file matches .*\*\.pdf"):
        read_documents([str(tmp_path / "*.pdf")], CFG)
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(InputError, match="empty_dir"):
        read_documents([str(tmp_path / "empty_dir")], CFG)


def test_max_docs_caps_across_files_and_inside_a_file(tmp_path):
    write(tmp_path / "a.txt", "Alpha.")
    write(tmp_path / "b.jsonl", "\n".join(json.dumps({"_id": f"b{i}", "text": f"Row {i}."}) for i in range(10)))
    write(tmp_path / "c.txt", "Gamma.")
    result = read_documents([str(tmp_path)], CFG, max_docs=4)
    assert [d.id for d in result.documents][1:] == ["b0", "b1", "b2"]
    assert len(read_documents([str(tmp_path)], CFG, max_docs=0).documents) == 0
    assert len(read_documents([str(tmp_path)], CFG).documents) == 12


# ------------------------------------------------------------------------------------------------------- Hub


def test_hub_offline_is_one_clear_input_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets
    import huggingface_hub.constants

    # The flags are read at import time; set them too in case another test imported datasets first.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(InputError) as err:
        read_documents(["hf://datasets/example-org/finance-notes:default@main"], CFG, max_docs=5)
    message = str(err.value)
    assert "example-org/finance-notes" in message and "offline" in message
    assert "\n" not in message and err.value.__cause__ is None
    with pytest.raises(InputError, match="example-org/finance-notes"):
        read_hub(HubSource(dataset="example-org/finance-notes", split="test", text_field="body"), CFG)


def test_malformed_hub_address_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="hf://datasets/NAME"):
        read_documents(["hf://datasets/"], CFG)


def test_hub_address_round_trip():
    src = HubSource(dataset="org/data", config="en", revision="v1.0")
    assert hub_address(src) == "hf://datasets/org/data:en@v1.0"
    assert hub_address(HubSource(dataset="org/data")) == "hf://datasets/org/data"


# ----------------------------------------------------------------------------------------- real corpus


@pytest.mark.skipif(not FOMC.exists(), reason="FOMC passages not present on this machine")
def test_fomc_passages_read_with_ids_and_metadata():
    result = read_documents([str(FOMC)], ReaderConfig())
    assert len(result.documents) == 888
    assert result.skipped == [] and result.warnings == []
    raw = [json.loads(line) for line in FOMC.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert [d.id for d in result.documents] == [r["_id"] for r in raw]
    assert len({d.id for d in result.documents}) == 888
    for doc, rec in zip(result.documents[:50], raw[:50]):
        assert doc.title == rec["title"]
        for key, value in rec["metadata"].items():
            assert doc.metadata[key] == value
        assert doc.metadata["format"] == "jsonl"
        assert doc.source == str(FOMC)
