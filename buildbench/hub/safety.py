"""Untrusted files, before anything parses them: limits, names, file types, listing and reading.

Shared by ``validate`` (the file checks), ``submit`` (what a folder submits, a pull request's files), the
registry (a registry repo's files) and archive uploads:

- ``Limits``: every cap and threshold of a validation;
- ``unsafe_name_reason`` / ``forbidden_extension_reason`` / ``check_member``: a relative name is plain (no
  ``..``, absolute path, backslash, control, bidi or invisible character) and names a data or text file
  (``ALLOWED_EXTENSIONS``; loader scripts, executables and pickles are refused: loading them runs code);
  ``NAME_PATTERN`` / ``NAME_RULE``: the task and benchmark names the registry accepts;
- ``list_folder``: every entry of a folder from ``lstat`` alone, links reported and never followed, and the
  ``paths`` / ``extensions`` / ``sizes`` checks of that listing; ``submission_listing`` / ``submission_files``:
  what of a task folder is submitted;
- ``open_no_follow`` / ``read_small`` / ``load_json``: submitted files are opened only with O_NOFOLLOW, small
  ones read whole under a cap, JSON nesting bounded before parsing;
- ``read_task_folder``: every file of a task folder (to hash or publish it), refusing the folder at the first
  symbolic link, hard link or device, each file checked to be the one that was listed;
- writing them into a folder (from bytes, a folder or an archive) is ``hub.unpack``, with these checks.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from ..errors import InputError
from ..tasks.layout import TASK_JSON
from .checks import Check
from .sanitize import unsafe_name_chars

# Data and text only. Everything else, and in particular anything `datasets`, Python or a shell would load
# or run (.py loader scripts, .so, .pkl/.pickle/.joblib/.npy/.pt/.bin pickles), is refused by default.
ALLOWED_EXTENSIONS = (".parquet", ".json", ".md", ".jsonl", ".txt")
# Git metadata a hub repo may hold; plain text, and git runs no filter for it unless the reader configured one.
ALLOWED_NAMES = (".gitattributes",)
_ACCEPTED = ", ".join(ALLOWED_EXTENSIONS)

# Task and benchmark names end up in file names, class names, registry rows, cards and PR titles.
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,127}$")
NAME_RULE = "must start with a letter and hold only letters, digits, '_', '-', '.' (at most 128 characters)"

_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class Limits:
    """The caps and thresholds of a validation; every knob of ``validate_task``.

    max_file_bytes / max_total_bytes / max_files: size caps of one file, of the folder, and the file count;
        also applied to sizes the card or Parquet footers declare (a 2 GB claim is refused before any read).
    max_card_bytes: README.md and task.json are read whole, so they get their own small cap.
    language_sample: queries and documents sampled (seeded) for language identification.
    min_language_match: share of the sample that must be detected as the declared language.
    overlap_jaccard: estimated Jaccard (MinHash) at which two texts count as near-identical.
    max_overlap_fraction: share of queries (or sampled documents) that may be near-identical to a registered
        task's before the submission is refused as overlapping or leaked.
    max_random_ndcg: a random ranking scoring above this means the corpus is too small to tell models apart.
    max_bm25_ndcg: BM25 at or above this means the queries are lexically saturated.
    max_rows: rows of all Parquet files together, from their metadata, before anything is decoded.
    max_values: leaf values of all Parquet column chunks together (a list column holds many per row).
    max_decoded_bytes: the size the Parquet data decodes to in memory (a dictionary-encoded string repeated
        millions of times is a few KB on disk); measured in batches of dictionary indices before any full read.
    max_nesting: bracket or indentation depth of task.json and of the card's YAML header (deeper documents
        exhaust the parsers' recursion).
    max_compression_ratio: an archive member above 1 MB that is this many times larger than its compressed
        size is refused before extraction (a zip bomb).
    """

    max_file_bytes: int = 200 * 1024**2
    max_total_bytes: int = 1024**3
    max_files: int = 1_000
    max_card_bytes: int = 1024**2
    language_sample: int = 200
    min_language_match: float = 0.9
    overlap_jaccard: float = 0.8
    max_overlap_fraction: float = 0.05
    max_random_ndcg: float = 0.1
    max_bm25_ndcg: float = 0.95
    max_rows: int = 2_000_000
    max_values: int = 20_000_000
    max_decoded_bytes: int = 1024**3
    max_nesting: int = 64
    max_compression_ratio: int = 100


def human_size(n: int) -> str:
    """``n`` bytes for a person: "512 bytes", "1.5 MB"."""
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"  # pragma: no cover


# -- names


def unsafe_name_reason(name: str) -> str | None:
    """Why a relative file name from a submission is unsafe to create, or None when it is a plain name.

    Refused: empty names and components, ``.`` / ``..`` components (path traversal), absolute paths and drive
    letters, backslashes (a second separator on Windows and in some archive tools), and control, bidi,
    zero-width and other invisible characters (``sanitize.unsafe_name_chars``: a name that displays as another).
    """
    if not name:
        return "an empty file name"
    hidden = unsafe_name_chars(name)
    if hidden:
        return f"the name {name!r} {hidden}"
    if "\\" in name:
        return f"the name {name!r} holds a backslash"
    if name.startswith("/") or _DRIVE.match(name):
        return f"the name {name!r} is an absolute path"
    parts = name.split("/")
    if ".." in parts:
        return f"the name {name!r} has a '..' component (path traversal)"
    if any(p in ("", ".") for p in parts):
        return f"the name {name!r} has an empty or '.' component"
    return None


def forbidden_extension_reason(name: str) -> str | None:
    """Why a file name's type is refused, or None for data and text files."""
    base = PurePosixPath(name).name
    if base in ALLOWED_NAMES:
        return None
    suffix = PurePosixPath(base).suffix.lower()
    if suffix in ALLOWED_EXTENSIONS:
        return None
    kind = {
        ".py": "a Python loader script", ".pyc": "compiled Python", ".pyo": "compiled Python",
        ".so": "a native library", ".dll": "a native library", ".dylib": "a native library",
        ".sh": "a shell script", ".bat": "a batch script", ".exe": "an executable",
        ".pkl": "a pickle", ".pickle": "a pickle", ".joblib": "a pickle (joblib)", ".npy": "a numpy array (pickle-capable)",
        ".npz": "numpy arrays (pickle-capable)", ".pt": "a torch pickle", ".pth": "a torch pickle",
        ".bin": "an opaque binary (often a torch pickle)", ".ckpt": "a checkpoint (pickle)",
    }.get(suffix, f"a '{suffix or 'extensionless'}' file")
    return f"{name} is {kind}"


def check_member(name: str, limits: Limits, count: int) -> None:
    """InputError unless the ``count``-th file of a submission has a plain name, an accepted type and fits the
    file-count cap."""
    problem = unsafe_name_reason(name)
    if problem:
        raise InputError(f"refused submission file: {problem}")
    problem = forbidden_extension_reason(name)
    if problem:
        raise InputError(f"refused submission file: {problem} (only {_ACCEPTED} files are accepted)")
    if count > limits.max_files:
        raise InputError(f"the submission has more than {limits.max_files} files")


# -- listing a folder


@dataclass
class Listing:
    files: list[tuple[str, int]] = field(default_factory=list)  # (relative posix name, size)
    bad_paths: list[str] = field(default_factory=list)


def list_folder(task_dir: Path) -> Listing:
    """Every entry under ``task_dir`` from ``lstat`` only: links are reported, never followed."""
    task_dir = Path(task_dir)
    out = Listing()
    stack = [""]
    while stack:
        rel = stack.pop()
        here = task_dir / rel if rel else task_dir
        try:
            names = sorted(os.listdir(here))
        except OSError as exc:
            out.bad_paths.append(f"{rel or '.'} cannot be listed ({exc.strerror})")
            continue
        for entry in names:
            name = f"{rel}/{entry}" if rel else entry
            problem = unsafe_name_reason(name)
            if problem:
                out.bad_paths.append(problem)
                continue
            st = os.lstat(task_dir / name)
            if stat.S_ISLNK(st.st_mode):
                out.bad_paths.append(f"{name} is a symbolic link")
            elif stat.S_ISDIR(st.st_mode):
                stack.append(name)
            elif stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                # The other name may be anywhere on the file system (a git checkout or cp -l can make one).
                out.bad_paths.append(
                    f"{name} has {st.st_nlink} hard links: a hard link may be a file outside the folder")
            elif stat.S_ISREG(st.st_mode):
                out.files.append((name, st.st_size))
            else:
                out.bad_paths.append(f"{name} is not a regular file (device, fifo or socket)")
    out.files.sort()
    return out


def paths_check(listing: Listing) -> Check:
    """``paths``: regular files and folders only, with plain relative names."""
    if listing.bad_paths:
        return Check("paths", False, "; ".join(listing.bad_paths))
    return Check("paths", True, f"{len(listing.files)} regular files, plain relative names, no links")


def extensions_check(listing: Listing) -> Check:
    """``extensions``: data and text files only."""
    bad = [r for r in (forbidden_extension_reason(n) for n, _ in listing.files) if r]
    if bad:
        return Check("extensions", False, "; ".join(bad) + f" (only {_ACCEPTED} files are accepted)")
    return Check("extensions", True, f"only {_ACCEPTED} files")


def sizes_check(listing: Listing, limits: Limits) -> Check:
    """``sizes``: the per-file, total and file-count caps, from ``lstat`` sizes."""
    problems = [
        f"{name} is {human_size(size)}, above the {human_size(limits.max_file_bytes)} per-file limit"
        for name, size in listing.files if size > limits.max_file_bytes
    ]
    total = sum(size for _, size in listing.files)
    if total > limits.max_total_bytes:
        problems.append(f"the files total {human_size(total)}, above the {human_size(limits.max_total_bytes)} limit")
    if len(listing.files) > limits.max_files:
        problems.append(f"{len(listing.files)} files, above the {limits.max_files} file limit")
    if problems:
        return Check("sizes", False, "; ".join(problems))
    return Check("sizes", True, f"{len(listing.files)} files, {human_size(total)} in total")


def listing_checks(listing: Listing, limits: Limits) -> list[Check]:
    """The ``paths``, ``extensions`` and ``sizes`` checks of a listing."""
    return [paths_check(listing), extensions_check(listing), sizes_check(listing, limits)]


# -- what a submission is made of


def generated_module_names(task_name: str) -> re.Pattern:
    """The file names ``compile_task`` gives the mteb task module of ``task_name`` (``<Class>_task[_mteb...].py``).

    That module is derived from metadata.json and pinned to a repo and revision, so it is rebuilt at publish
    time and never part of a submission; any other Python file is refused.
    """
    from ..tasks.metadata import class_name

    return re.compile(rf"^{re.escape(class_name(task_name))}_task(?:_mteb)*\.py$")


def _task_name(task_dir: Path, limits: Limits) -> str | None:
    try:
        record = load_json(task_dir / TASK_JSON, limits)
    except (InputError, OSError):
        return None
    name = record.get("name") if isinstance(record, dict) else None
    return name if isinstance(name, str) and name else None


def submission_listing(task_dir: Path, limits: Limits = Limits()) -> tuple[Listing, list[str]]:
    """What of a local task folder is submitted, and what is left out (dot-files such as the atomic writers'
    temp files, and buildbench's compiled mteb module, see ``generated_module_names``)."""
    task_dir = Path(task_dir)
    listing = list_folder(task_dir)
    name = _task_name(task_dir, limits)
    generated = generated_module_names(name) if name else None
    kept, left_out = [], []
    for rel, size in listing.files:
        if any(part.startswith(".") for part in rel.split("/")) or (generated and generated.match(rel)):
            left_out.append(rel)
        else:
            kept.append((rel, size))
    return Listing(kept, listing.bad_paths), left_out


def submission_files(task_dir: Path, limits: Limits = Limits()) -> dict[str, bytes]:
    """{relative name: bytes} of what ``submit`` uploads; InputError when the folder is not safe to read."""
    listing, _ = submission_listing(task_dir, limits)
    failed = [c for c in listing_checks(listing, limits) if not c.passed]
    if failed:
        raise InputError(f"{task_dir} cannot be submitted: " + "; ".join(c.reason for c in failed))
    return {rel: read_no_follow(Path(task_dir) / rel) for rel, _ in listing.files}


# -- reading untrusted files


# Never through a link; O_NONBLOCK so that a fifo put where a file was listed cannot hang the read (the fstat
# after the open refuses it).
_READ_NO_FOLLOW = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def open_no_follow(path: Path):
    """A binary reader of ``path`` that refuses to go through a symbolic link (ELOOP) or to open anything but
    a regular file: submitted files are read only this way."""
    try:
        fd = os.open(path, _READ_NO_FOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"{path.name} is a symbolic link") from None
        raise InputError(f"{path.name} cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputError(f"{path.name} is not a regular file")
    return os.fdopen(fd, "rb")


def read_no_follow(path: Path, limit: int | None = None) -> bytes:
    with open_no_follow(path) as fh:
        return fh.read() if limit is None else fh.read(limit)


def read_small(path: Path, limits: Limits) -> str:
    """A file read whole (README.md, task.json): at most ``Limits.max_card_bytes``, UTF-8, links unfollowed."""
    size = os.lstat(path).st_size
    if size > limits.max_card_bytes:
        raise InputError(f"{path.name} is {human_size(size)}, above the {human_size(limits.max_card_bytes)} limit for it")
    data = read_no_follow(path, limits.max_card_bytes + 1)
    if len(data) > limits.max_card_bytes:  # grew since lstat
        raise InputError(f"{path.name} is above the {human_size(limits.max_card_bytes)} limit for it")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path.name} is not UTF-8 ({exc.reason} at byte {exc.start})") from None


_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


def _json_depth(text: str) -> int:
    """The deepest bracket nesting of a JSON text (strings skipped), without parsing it: json.loads recurses
    once per level and a few thousand levels raise RecursionError."""
    depth = deepest = 0
    for m in _JSON_TOKENS.finditer(text):
        ch = m.group(0)
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def load_json(path: Path, limits: Limits) -> Any:
    """A small JSON file of a submission: size-capped, read without following links, nesting bounded before
    parsing. InputError (one line) for anything else."""
    text = read_small(path, limits)
    if _json_depth(text) > limits.max_nesting:
        raise InputError(f"{path.name} nests deeper than {limits.max_nesting} levels")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path.name} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except RecursionError:  # pragma: no cover - the depth scan above comes first
        raise InputError(f"{path.name} nests too deeply to be read") from None


# -- a whole task folder, to hash or publish


def _never_read(name: str) -> bool:
    """Dot-files and dot-folders (the atomic writers' temp files, a clone's .git) and ``__pycache__`` are never
    published, nor even looked into."""
    return name.startswith(".") or name == "__pycache__"


def read_task_folder(folder: Path, keep: Callable[[str], bool] = lambda rel: True) -> dict[str, bytes]:
    """Relative posix path -> bytes of every file under ``folder`` (those ``keep`` accepts), sorted by path.

    Walked with ``lstat`` only and each file opened with O_NOFOLLOW, then checked to be the very file that was
    listed: InputError naming the first symbolic link, hard link (``st_nlink > 1``) or non-regular entry.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{folder} is not a folder")
    files: dict[str, bytes] = {}
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        for name in sorted(os.listdir(root / rel_dir if rel_dir else root)):
            if _never_read(name):
                continue
            rel = f"{rel_dir}/{name}" if rel_dir else name
            st = os.lstat(root / rel)
            if stat.S_ISDIR(st.st_mode):
                stack.append(rel)
                continue
            _check_plain(rel, st)
            if keep(rel):
                files[rel] = _read_listed(root / rel, rel, st)
    return dict(sorted(files.items()))


def _check_plain(rel: str, st: os.stat_result) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise InputError(f"{rel} is a symbolic link; links are never followed")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{rel} is not a regular file (device, fifo or socket)")
    if st.st_nlink > 1:
        # Another name of the same file may be anywhere on the disk: refused rather than guessed about.
        raise InputError(f"{rel} is a hard link ({st.st_nlink} links); copy the file into the folder instead")


def _read_listed(path: Path, rel: str, listed: os.stat_result) -> bytes:
    try:
        fd = os.open(path, _READ_NO_FOLLOW)
    except OSError as exc:
        raise InputError(f"{rel} cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        # Swapped for something else between the listing and the open: refused.
        if (st.st_dev, st.st_ino) != (listed.st_dev, listed.st_ino):
            raise InputError(f"{rel} changed while it was being read")
        _check_plain(rel, st)
        return fh.read()


__all__ = [
    "ALLOWED_EXTENSIONS",
    "ALLOWED_NAMES",
    "Limits",
    "Listing",
    "NAME_PATTERN",
    "NAME_RULE",
    "check_member",
    "extensions_check",
    "forbidden_extension_reason",
    "generated_module_names",
    "human_size",
    "list_folder",
    "listing_checks",
    "load_json",
    "open_no_follow",
    "paths_check",
    "read_no_follow",
    "read_small",
    "read_task_folder",
    "sizes_check",
    "submission_files",
    "submission_listing",
    "unsafe_name_reason",
]
