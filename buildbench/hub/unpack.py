"""Writing untrusted files into an empty folder, with the name, type and size checks of ``hub.safety``:

- ``materialise_files``: from ``{relative name: bytes}`` (a pull request's files, a registry repo's files);
- ``copy_files``: from a folder, each file read with O_NOFOLLOW (the private copy ``validate`` checks);
- ``extract_archive``: from a .tar(.gz/.bz2/.xz) or .zip, checked whole (names, duplicates, links, declared
  sizes, a zip's compression ratios and declared total) before its first byte is written.

Every file is created exclusively, without following links, checked to resolve inside the folder and capped
while it is written (an archive header can lie); a refused submission leaves the folder empty.
"""

from __future__ import annotations

import lzma
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

from ..errors import InputError
from .safety import Limits, check_member, human_size, open_no_follow, unsafe_name_reason
from .sanitize import clean_line


def _inside(root: Path, name: str) -> Path:
    target = (root / name).resolve()
    if not target.is_relative_to(root):
        raise InputError(f"submission file {name!r} would be written outside {root}")
    return target


def _create(root: Path, name: str, data: Iterable[bytes], limits: Limits, budget: list[int]) -> None:
    """Create ``root/name`` exclusively (no overwrite, no link following) from chunks, within the caps."""
    target = _inside(root, name)
    # Create folders one at a time so a pre-existing link on the way is noticed, not followed.
    parent = root
    for part in PurePosixPath(name).parts[:-1]:
        parent = parent / part
        if parent.is_symlink() or (parent.exists() and not parent.is_dir()):
            raise InputError(f"submission file {name!r}: {parent.relative_to(root)} is not a plain folder")
        parent.mkdir(exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(target, flags, 0o644)
    written = 0
    with os.fdopen(fd, "wb") as fh:
        for chunk in data:
            written += len(chunk)
            budget[0] += len(chunk)
            if written > limits.max_file_bytes:
                raise InputError(f"submission file {name} is above the {human_size(limits.max_file_bytes)} per-file limit")
            if budget[0] > limits.max_total_bytes:
                raise InputError(f"the submission is above the {human_size(limits.max_total_bytes)} total limit")
            fh.write(chunk)


def _empty_target(target: Path, what: str) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    if any(root.iterdir()):
        raise InputError(f"{target} is not empty; submissions are {what} into an empty folder")
    return root


def materialise_files(files: Mapping[str, bytes], target: Path, limits: Limits = Limits()) -> Path:
    """Write submitted ``{relative name: bytes}`` under ``target`` (created; must be empty) and return it.

    Every name is checked (``unsafe_name_reason``, ``forbidden_extension_reason``) before anything is written,
    so a refused submission leaves ``target`` empty; then each file is created exclusively, without following
    links, and checked to resolve inside ``target``. Raises InputError naming the first refused file.
    """
    target = Path(target)
    root = _empty_target(target, "materialised")
    for count, name in enumerate(files, start=1):
        check_member(name, limits, count)
    budget = [0]
    for name, data in files.items():
        _create(root, name, [data], limits, budget)
    return target


def _chunks(fh, size: int = 1 << 20):
    while True:
        chunk = fh.read(size)
        if not chunk:
            return
        yield chunk


def copy_files(source: Path, names: Iterable[str], target: Path, limits: Limits = Limits()) -> Path:
    """Copy the files ``names`` (relative, as a ``Listing`` gives them) of ``source`` into the new folder
    ``target``: each read with O_NOFOLLOW and created exclusively, within the caps. Whatever reads the copy
    afterwards cannot be sent through a link that appeared in ``source`` after it was listed."""
    target = Path(target)
    target.mkdir()
    root, budget = target.resolve(), [0]
    for rel in names:
        with open_no_follow(Path(source) / rel) as fh:
            _create(root, rel, _chunks(fh), limits, budget)
    return target


# -- archives


def extract_archive(archive: Path, target: Path, limits: Limits = Limits()) -> Path:
    """Extract a .tar(.gz/.bz2/.xz) or .zip submission under ``target`` with the checks of ``materialise_files``.

    Members are checked first (names, types, duplicates, declared sizes, and for a zip the compression ratio
    of each member and the total its central directory declares): links, devices, a name that appears twice
    and any unsafe or refused name reject the whole archive before a byte is written. Sizes are enforced
    again while writing, since an archive header can lie. Python's own ``extractall`` is never used. Every
    refusal, including an archive that is missing or corrupt, is an InputError with a one-line reason.
    """
    archive, target = Path(archive), Path(target)
    if not os.path.lexists(archive):
        raise InputError(f"{archive} does not exist")
    if not archive.is_file():
        raise InputError(f"{archive} is neither a folder nor a zip or tar archive")
    root = _empty_target(target, "extracted")
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, root, limits)
        else:
            _extract_tar(archive, root, limits)
    except BaseException as exc:
        _empty_folder(root)  # a refused archive leaves nothing behind, not even the members written before
        if isinstance(exc, (tarfile.TarError, zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError,
                            RuntimeError, NotImplementedError, ValueError)) and not isinstance(exc, InputError):
            # A corrupt, truncated, encrypted or oddly compressed archive: refused, never a traceback.
            raise InputError(f"{archive} cannot be extracted ({type(exc).__name__}: "
                             f"{clean_line(str(exc), 200)})") from None
        raise
    return target


def _empty_folder(root: Path) -> None:
    """Remove what an extraction wrote into ``root`` (checked empty before it started), links unfollowed."""
    for child in root.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _admit_member(name: str, is_dir: bool, not_plain: str | None, size: int, seen: set[str],
                  limits: Limits) -> bool:
    """Check one archive member before anything is written: InputError when it is refused, False for a folder
    (nothing to write). ``not_plain``: what the member is when it is not a regular file (a link, a device)."""
    problem = unsafe_name_reason(name)
    if problem:
        raise InputError(f"refused submission file: {problem}")
    if is_dir:
        return False
    if not_plain:
        raise InputError(f"refused submission file: {name} is {not_plain}")
    if name in seen:
        raise InputError(f"refused submission: the archive holds {name} twice")
    seen.add(name)
    check_member(name, limits, len(seen))
    if size > limits.max_file_bytes:
        raise InputError(f"refused submission file: {name} declares {human_size(size)}, above the "
                         f"{human_size(limits.max_file_bytes)} per-file limit")
    return True


def _check_declared_total(declared: int, limits: Limits) -> None:
    if declared > limits.max_total_bytes:
        raise InputError(f"refused submission: its members declare {human_size(declared)}, above the "
                         f"{human_size(limits.max_total_bytes)} limit")


def _extract_zip(archive: Path, root: Path, limits: Limits) -> None:
    with zipfile.ZipFile(archive) as zf:
        files, declared, seen = [], 0, set()
        for info in zf.infolist():
            name = info.filename.rstrip("/") if info.is_dir() else info.filename
            link = "a symbolic link" if stat.S_ISLNK(info.external_attr >> 16) else None
            if not _admit_member(name, info.is_dir(), link, info.file_size, seen, limits):
                continue
            files.append(info)
            # A zip bomb compresses a run of identical bytes about 1000 times; real data files (Parquet is
            # already compressed) stay far below the ratio.
            ratio_cap = limits.max_compression_ratio * max(1, info.compress_size)
            if info.file_size > (1 << 20) and info.file_size > ratio_cap:
                raise InputError(
                    f"refused submission file: {name} declares {human_size(info.file_size)} compressed into "
                    f"{human_size(info.compress_size)}, more than {limits.max_compression_ratio} times smaller "
                    "(a zip bomb?)"
                )
            declared += info.file_size
        # The central directory declares every size: the total is refused before the first byte is written.
        _check_declared_total(declared, limits)
        budget = [0]
        for info in files:
            with zf.open(info) as fh:
                _create(root, info.filename, _chunks(fh), limits, budget)


def _extract_tar(archive: Path, root: Path, limits: Limits) -> None:
    try:
        tf = tarfile.open(archive, "r:*")
    except tarfile.TarError:
        raise InputError(f"{archive} is neither a zip nor a tar archive") from None
    with tf:
        files, declared, seen = [], 0, set()
        # Members are read one header at a time and checked before the next is looked for: moving past a
        # member means decompressing it, so a member declaring terabytes is refused before that happens.
        for m in tf:
            name = m.name.rstrip("/") if m.isdir() else m.name
            not_plain = None if m.isdir() or m.isfile() else "a link" if (m.issym() or m.islnk()) else \
                "not a regular file"
            if not _admit_member(name, m.isdir(), not_plain, m.size, seen, limits):
                continue
            files.append(m)
            declared += m.size
            _check_declared_total(declared, limits)
        budget = [0]
        for m in files:
            fh = tf.extractfile(m)
            assert fh is not None  # a regular file always has a reader
            with fh:
                _create(root, m.name, _chunks(fh), limits, budget)


__all__ = ["copy_files", "extract_archive", "materialise_files"]
