"""hub.unpack: submitted files are written into an empty folder only after every name, type and declared size
passed; a refused archive or file set leaves the folder empty and nothing outside it is touched.

(validate_submission on archives, which goes through the same extractor, is tested in test_validate*.)
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from buildbench.errors import InputError
from buildbench.hub.safety import Limits
from buildbench.hub.unpack import extract_archive, materialise_files
from tests.hub.submission_tasks import files_under, tar_with


def test_archive_links_and_absolute_members_are_refused(tmp_path: Path):
    link = tar_with(tmp_path / "link.tar.gz", {"task.json": b"{}"}, link=("README.md", "/etc/passwd"))
    with pytest.raises(InputError, match="README.md is a link"):
        extract_archive(link, tmp_path / "t1")
    for i, (name, reason) in enumerate([("/tmp/evil.txt", "is an absolute path"),
                                        ("..\\evil.txt", "holds a backslash")]):
        zpath = tmp_path / f"bad{i}.zip"
        with zipfile.ZipFile(zpath, "w") as zf:
            zf.writestr("task.json", "{}")
            zf.writestr(name, "x")
        with pytest.raises(InputError, match=reason):
            extract_archive(zpath, tmp_path / f"z{i}")
        assert files_under(tmp_path / f"z{i}") == set()
    assert files_under(tmp_path / "t1") == set() and not Path("/tmp/evil.txt").exists()



def test_materialise_refuses_traversal_before_writing(tmp_path: Path):
    target = tmp_path / "inbox" / "task"
    files = {"task.json": b"{}", "corpus/../../../x.parquet": b"PAR1"}
    with pytest.raises(InputError) as err:
        materialise_files(files, target)
    assert str(err.value) == ("refused submission file: the name 'corpus/../../../x.parquet' has a '..' component "
                              "(path traversal)")
    assert files_under(tmp_path) == {"inbox", "inbox/task"}



def test_archive_members_declaring_more_than_the_cap(tmp_path: Path):
    archive = tar_with(tmp_path / "big.tar.gz", {"a.txt": b"a" * 600, "b.txt": b"b" * 600, "c.txt": b"c"})
    with pytest.raises(InputError) as err:
        extract_archive(archive, tmp_path / "t", Limits(max_file_bytes=1000, max_total_bytes=1000))
    assert str(err.value) == "refused submission: its members declare 1.2 KB, above the 1000 bytes limit"
    assert files_under(tmp_path / "t") == set()



def test_finding_15_declared_total_of_a_zip_is_checked_before_extracting(tmp_path: Path):
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i in range(3):
            zf.writestr(f"part{i}.txt", os.urandom(450_000).hex())  # hardly compressible: no ratio alarm
    target = tmp_path / "target"
    with pytest.raises(InputError) as err:
        extract_archive(archive, target, Limits(max_file_bytes=1_000_000, max_total_bytes=2_000_000))
    assert str(err.value) == "refused submission: its members declare 2.6 MB, above the 1.9 MB limit"
    assert files_under(target) == set()
