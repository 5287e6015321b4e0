"""hub.safety: one name rule, a folder listed without following anything, the file checks' reasons, and small
files read under a cap without following links."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from buildbench.errors import InputError
from buildbench.hub.checks_card import check_metadata
from buildbench.hub.manifest import BenchmarkManifest
from buildbench.hub.registry import RegistryEntry
from buildbench.hub.safety import (
    NAME_RULE,
    Limits,
    Listing,
    check_member,
    list_folder,
    load_json,
    paths_check,
    read_small,
    sizes_check,
    unsafe_name_reason,
)


def test_one_name_rule_for_validation_the_registry_and_benchmarks(tmp_path: Path):
    def metadata_reason(name: str) -> str:
        (tmp_path / "task.json").write_text(json.dumps({"name": name}), encoding="utf-8")
        check, _ = check_metadata(tmp_path, Limits())
        return check.reason

    bad = "Village Stories"
    with pytest.raises(ValidationError, match=re.escape(f"name '{bad}' {NAME_RULE}")):
        RegistryEntry(kind="task", name=bad, repo="acme/village", version="v1.0.0")
    with pytest.raises(ValidationError, match=re.escape(f"benchmark name '{bad}' {NAME_RULE}")):
        BenchmarkManifest(name=bad, version="1.0.0", tasks=["acme/village@v1.0.0"])
    assert metadata_reason(bad) == f"task.json: the task name '{bad}' {NAME_RULE}"

    good = "Village.Stories-2_Retrieval"
    assert RegistryEntry(kind="task", name=good, repo="acme/village", version="v1.0.0").name == good
    assert BenchmarkManifest(name=good, version="1.0.0", tasks=["acme/village@v1.0.0"]).name == good
    assert metadata_reason(good) == f"task.json names task '{good}'"
    # 128 characters at most, for all three alike
    assert metadata_reason("V" * 128) == f"task.json names task '{'V' * 128}'"
    assert metadata_reason("V" * 129) == f"task.json: the task name '{'V' * 129}' {NAME_RULE}"


def test_listing_reports_links_and_odd_entries_without_following_them(tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text('{"secret": 1}')
    task = tmp_path / "task"
    (task / "corpus").mkdir(parents=True)
    (task / "task.json").write_text("{}")
    (task / "corpus" / "notes.md").write_text("# notes")
    os.symlink(outside / "secret.json", task / "link.json")
    os.symlink(outside, task / "corpus" / "more")
    os.link(outside / "secret.json", task / "hard.json")
    os.mkfifo(task / "pipe.txt")
    hidden = "evil\u202etxt.json"
    (task / hidden).write_text("{}")

    listing = list_folder(task)
    assert listing.files == [("corpus/notes.md", 7), ("task.json", 2)]
    assert sorted(listing.bad_paths) == sorted([
        "corpus/more is a symbolic link",
        unsafe_name_reason(hidden),
        "hard.json has 2 hard links: a hard link may be a file outside the folder",
        "link.json is a symbolic link",
        "pipe.txt is not a regular file (device, fifo or socket)",
    ])
    assert unsafe_name_reason(hidden).startswith(f"the name {hidden!r} ")
    check = paths_check(listing)
    assert not check.passed and check.reason == "; ".join(listing.bad_paths)


def test_sizes_check_names_every_cap_it_exceeds():
    listing = Listing([("corpus/a.parquet", 300), ("corpus/b.parquet", 800)])
    check = sizes_check(listing, Limits(max_file_bytes=500, max_total_bytes=1000, max_files=1))
    assert not check.passed
    assert check.reason == ("corpus/b.parquet is 800 bytes, above the 500 bytes per-file limit; the files total "
                            "1.1 KB, above the 1000 bytes limit; 2 files, above the 1 file limit")
    assert sizes_check(listing, Limits()).reason == "2 files, 1.1 KB in total"


@pytest.mark.parametrize("name, reason", [
    ("corpus/../../x.parquet", "refused submission file: the name 'corpus/../../x.parquet' has a '..' component "
                               "(path traversal)"),
    ("loader.py", "refused submission file: loader.py is a Python loader script (only .parquet, .json, .md, "
                  ".jsonl, .txt files are accepted)"),
    ("corpus/x.npy", "refused submission file: corpus/x.npy is a numpy array (pickle-capable) (only .parquet, "
                     ".json, .md, .jsonl, .txt files are accepted)"),
])
def test_check_member_refuses_names_and_types(name: str, reason: str):
    with pytest.raises(InputError) as err:
        check_member(name, Limits(), 1)
    assert str(err.value) == reason
    check_member(".gitattributes", Limits(), 1)  # git metadata is plain text
    with pytest.raises(InputError, match="^the submission has more than 2 files$"):
        check_member("task.json", Limits(max_files=2), 3)


def test_small_files_are_read_under_a_cap_without_following_links(tmp_path: Path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100 + "]" * 100)
    with pytest.raises(InputError, match="^deep.json nests deeper than 64 levels$"):
        load_json(deep, Limits())
    expected: list = []
    for _ in range(99):
        expected = [expected]
    assert load_json(deep, Limits(max_nesting=100)) == expected

    big = tmp_path / "README.md"
    big.write_text("x" * 2048)
    with pytest.raises(InputError, match=r"^README.md is 2.0 KB, above the 1.0 KB limit for it$"):
        read_small(big, Limits(max_card_bytes=1024))

    os.symlink(big, tmp_path / "link.md")
    with pytest.raises(InputError, match="^link.md is a symbolic link$"):
        read_small(tmp_path / "link.md", Limits())
