"""ingest: documents from a folder of text files; unreadable inputs skipped with a reason; none readable is an
InputError that names what was skipped."""

from __future__ import annotations

import pytest

from buildbench.errors import InputError

from .conftest import PASSAGES, make_cfg, run_global


def test_reads_a_folder_and_skips_what_it_cannot_read(tmp_path, rundir):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in PASSAGES[:3]:
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    (folder / "empty.txt").write_text("", encoding="utf-8")
    result, _ = run_global("ingest", make_cfg(tmp_path / "run", docs=[str(folder)]), rundir)
    docs = result.outputs["documents"].to_pylist()
    assert sorted(d["text"] for d in docs) == sorted(t for _, t in PASSAGES[:3])
    assert all(d["source"].endswith(".txt") for d in docs)
    assert [(d.stage, d.item_id.endswith("empty.txt")) for d in result.drops] == [("ingest", True)]
    assert result.stats["documents"] == 3 and result.stats["skipped_inputs"] == 1
    assert result.stats["bundled_sample"] == 0
    assert rundir.has_dataset("ingest_warnings")


def test_nothing_readable_is_an_input_error_naming_the_skipped_inputs(tmp_path, rundir):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "empty.txt").write_text("", encoding="utf-8")
    with pytest.raises(InputError, match=r"no readable documents in .*docs: 1 input skipped: .*empty\.txt: "):
        run_global("ingest", make_cfg(tmp_path / "run", docs=[str(folder)]), rundir)
