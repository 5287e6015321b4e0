"""Finding 9 (inputs): when no document survives ingest, the one-line error names each skipped input and its
reason, instead of pointing at a report.json that was never written."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from buildbench.cli import main
from buildbench.errors import InputError
from tests.builders.conftest import make_pdf


def one_line_error(capsys, docs: list[Path], out: Path) -> str:
    code = main(["--domain", "finance", "--no-progress", "--until", "ingest", "--out", str(out),
                 "--docs", *map(str, docs)])
    assert code == InputError.exit_code
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    err = [line for line in stderr.splitlines() if line.startswith("build-bench:")]  # log lines aside
    assert len(err) == 1 and err[0].startswith("build-bench: error:"), err
    assert "see the report" not in err[0] and not (out / "report.json").exists()
    return err[0]


def big_text(tmp: Path) -> Path:
    path = tmp / "big.txt"
    with open(path, "wb") as fh:  # sparse: 200 MB on paper, nothing on disk
        fh.truncate(200_000_000)
    return path


def csv_without_text(tmp: Path) -> Path:
    path = tmp / "table.csv"
    path.write_text("title,body\nRates,The committee kept rates unchanged.\n")
    return path


def corrupt_pdf(tmp: Path) -> Path:
    path = tmp / "report.pdf"
    path.write_bytes(make_pdf([["The committee kept rates unchanged."]])[:60] + b"\x00garbage")
    return path


def gzip_file(tmp: Path) -> Path:
    path = tmp / "corpus.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"text": "The committee kept rates unchanged."}\n'))
    return path


def nul_bytes(tmp: Path) -> Path:
    path = tmp / "notes.txt"
    path.write_bytes(b"The committee\x00kept rates\x00unchanged.\n" * 10)
    return path


CASES = {
    "big_text": (big_text, "too_large", "200,000,000 bytes"),
    "csv_without_text": (csv_without_text, "missing_field", "no 'text' column"),
    "corrupt_pdf": (corrupt_pdf, "corrupt_pdf", ""),
    "gzip_file": (gzip_file, "unsupported", "compressed file ('.gz'): decompress it first"),
    "nul_bytes": (nul_bytes, "binary", "NUL bytes"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_finding_09_no_readable_input_names_the_file_and_reason(case, tmp_path, capsys):
    make, reason, detail = CASES[case]
    docs = tmp_path / "docs"
    docs.mkdir()
    path = make(docs)
    line = one_line_error(capsys, [path], tmp_path / "run")
    assert str(path) in line and reason in line and detail in line


def test_finding_09_many_skipped_inputs_are_summarised(tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    paths = [make(docs) for make, _, _ in CASES.values()]
    extra = docs / "more"
    extra.mkdir()
    for i in range(6):
        paths.append(extra / f"empty{i}.md")
        paths[-1].write_text("")
    line = one_line_error(capsys, [docs], tmp_path / "run")
    assert "11 inputs skipped" in line and str(docs) in line
    # The first five by name and reason, then a count of the rest.
    assert sum(str(p) in line for p in paths) == 5 and "and 6 more" in line
