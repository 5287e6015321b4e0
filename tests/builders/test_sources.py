"""sources: files, folders and globs resolved in a fixed order, each file read once, max_docs, and the real FOMC
corpus read end to end."""

import json

import pytest

from buildbench.builders import read_documents
from buildbench.builders.normalize import stable_id
from buildbench.domain_pack import ReaderConfig
from buildbench.errors import InputError

from .conftest import CFG, FOMC, read, write


def test_folders_are_recursive_sorted_and_skip_hidden_files(tmp_path):
    write(tmp_path / "b.txt", "Doc b.")
    write(tmp_path / "a" / "z.txt", "Doc a/z.")
    write(tmp_path / "a" / "deeper" / "y.md", "Doc a/deeper/y.")
    write(tmp_path / ".git" / "config.txt", "not a document")
    write(tmp_path / ".DS_Store.txt", "not a document either")
    result = read([str(tmp_path)])
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
    result = read([str(tmp_path / "**" / "*.txt"), str(tmp_path / "r2.txt"), str(tmp_path / "*.md")])
    assert [d.text for d in result.documents] == ["Text two.", "Text three.", "Markdown one."]
    assert [d.text for d in read([str(tmp_path / ".cache" / "*.txt")]).documents] == ["Hidden."]


def test_spec_matching_nothing_raises_naming_it(tmp_path):
    write(tmp_path / "a.txt", "Something.")
    missing = str(tmp_path / "nope" / "file.txt")
    with pytest.raises(InputError, match="nope/file.txt"):
        read([str(tmp_path), missing])
    with pytest.raises(InputError, match=r"no file matches .*\*\.pdf"):
        read([str(tmp_path / "*.pdf")])
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(InputError, match="empty_dir"):
        read([str(tmp_path / "empty_dir")])


def test_max_docs_caps_across_files_and_inside_a_file(tmp_path):
    write(tmp_path / "a.txt", "Alpha.")
    write(tmp_path / "b.jsonl", "\n".join(json.dumps({"_id": f"b{i}", "text": f"Row {i}."}) for i in range(10)))
    write(tmp_path / "c.txt", "Gamma.")
    result = read([str(tmp_path)], max_docs=4)
    assert [d.id for d in result.documents][1:] == ["b0", "b1", "b2"]
    assert len(read([str(tmp_path)], max_docs=0).documents) == 0
    assert len(read([str(tmp_path)]).documents) == 12


@pytest.mark.skipif(not FOMC.exists(), reason="FOMC passages not present on this machine")
def test_fomc_passages_read_with_ids_and_metadata():
    result = read([str(FOMC)], ReaderConfig())
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


def test_drops_carry_the_stage_name_passed_in(tmp_path):
    write(tmp_path / "a.docx", b"PK\x03\x04 not read")
    result = read_documents([str(tmp_path)], CFG, stage="my_ingest")
    assert [(d.stage, d.reason) for d in result.skipped] == [("my_ingest", "unsupported")]
