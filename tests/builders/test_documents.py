"""documents: records to Documents (ids, titles, metadata, provenance) and the collector (unique ids, max_docs,
the stage that labels drops)."""

import json

import pytest

from buildbench.builders.documents import Collector, RecordFields, record_document
from buildbench.builders.normalize import stable_id
from buildbench.domain_pack import ReaderConfig
from buildbench.errors import ConfigError
from buildbench.records import Document

from .conftest import read, reasons, write

FIELDS = RecordFields(id="_id", title="title", text="text")


def test_id_falls_back_to_id_then_to_a_stable_hash(tmp_path):
    rows = [{"id": "plain-id", "text": "Uses the id column."}, {"text": "Has no id at all."}]
    path = write(tmp_path / "c.jsonl", "\n".join(json.dumps(r) for r in rows))
    first = read([str(path)], ReaderConfig())
    assert first.documents[0].id == "plain-id"
    assert first.documents[1].id == stable_id("c.jsonl", "Has no id at all.")
    assert [d.id for d in read([str(path)], ReaderConfig()).documents] == [d.id for d in first.documents]


def test_duplicate_ids_across_files_keep_the_first(tmp_path):
    write(tmp_path / "a.jsonl", json.dumps({"_id": "same", "text": "First copy."}))
    b = write(tmp_path / "b.jsonl", json.dumps({"_id": "same", "text": "Second copy."}))
    result = read([str(tmp_path)])
    assert [d.text for d in result.documents] == ["First copy."]
    assert reasons(result) == {f"{b}#line1": "duplicate_id"}


def test_a_record_becomes_a_document_with_its_metadata_and_provenance():
    sink = Collector(None, stage="ingest")
    rec = {"_id": " r1 ", "title": "  Repo   rates ", "text": "Repo rates  spiked.", "desk": "rates",
           "metadata": json.dumps({"date": "2019-09-17", "format": "record's own"}), "record": "shadowed"}
    doc = record_document(rec, "f.jsonl#line1", FIELDS, source="f.jsonl", rel="f.jsonl",
                          provenance={"format": "jsonl", "record": 0}, sink=sink)
    assert doc == Document(id="r1", text="Repo rates spiked.", title="Repo rates", source="f.jsonl",
                           metadata={"date": "2019-09-17", "format": "jsonl", "desk": "rates", "record": 0})
    assert sink.result.skipped == []


def test_bad_records_are_skipped_with_the_collectors_stage():
    sink = Collector(None, stage="some_stage")
    for i, rec in enumerate([["a list"], {"text": {"nested": 1}}, {"text": "  "}, {"body": "no text field"}]):
        assert record_document(rec, f"r{i}", FIELDS, source="s", rel="s", provenance={}, sink=sink) is None
    assert [(d.stage, d.item_id, d.reason) for d in sink.result.skipped] == [
        ("some_stage", "r0", "bad_record"), ("some_stage", "r1", "bad_record"),
        ("some_stage", "r2", "empty_record"), ("some_stage", "r3", "empty_record")]
    assert "no 'text' field (fields: body)" in sink.result.skipped[3].detail


def test_a_negative_max_docs_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="max_docs must be 0 or more, not -1"):
        Collector(-1, stage="ingest")
    with pytest.raises(ConfigError, match="max_docs"):  # before any spec is looked at
        read([str(tmp_path / "missing.txt")], max_docs=-1)
