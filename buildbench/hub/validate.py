"""Validate a community-submitted task folder before anyone loads it: safety first, then data, then value.

``validate_task(task_dir, registry)`` returns a ``ValidationReport``: one ``Check`` (id, passed, reason) per
rule, in this order, so a report reads from "is it safe to open" to "is it worth adding":

Untrusted-input safety (nothing is parsed until these pass; ``folder_safety_checks``):

- ``paths``: every entry is a regular file or folder (no symlinks, devices, fifos) and every relative name is
  plain: no ``..``, no absolute path, no backslash, no control character (path traversal);
- ``extensions``: only data and text files (``ALLOWED_EXTENSIONS``); loader scripts, executables and pickles
  (``.py``, ``.so``, ``.pkl``, ``.npy``, ``.pt``, ...) are refused: loading them runs code;
- ``sizes``: per-file, total and file-count caps (``Limits``), from ``lstat`` alone.

Card and headers (parsed with bounded, non-executing readers):

- ``card_yaml``: README.md has a YAML header that ``yaml.safe_load`` reads as a mapping; python tags
  (``!!python/object``) and aliases are refused with a reason rather than left to the loader's error;
- ``card_paths``: every ``configs[].data_files`` / ``data_dir`` path stays inside the folder, names an allowed
  file type and is not a URL (a card pointing at ``../../x`` or another repo is refused);
- ``declared_sizes``: sizes the card declares (``dataset_info`` ``num_bytes``, ``download_size``,
  ``dataset_size``) and the uncompressed sizes Parquet footers declare stay under the caps;
- ``card_html``: no ``<script``, ``<iframe``, ``javascript:`` or ``on...=`` handler in the card (HTML
  injection on a dataset page), also after decoding HTML entities;
- ``metadata``: task.json is a JSON object naming the task.

Data (only once the above pass):

- ``schema``: the corpus, queries and qrels configs (and top_ranked for reranking tasks) exist, are listed in
  the card, and have the MTEB columns with string ids/texts and integer scores;
- ``ids``: ids are non-empty and unique, and no (query, document) pair is judged twice;
- the quality rules of ``buildbench.tasks.rules`` (empty splits, text lengths, duplicate texts, a relevant
  document per query, dangling qrels), one check each under the rule's own name;
- ``language``: at least ``Limits.min_language_match`` of a seeded sample of queries and of documents are
  detected (FastLangDetector) as the declared language;
- ``license``: declared (card ``license`` or task.json), not "unknown", the two not contradicting;
- ``overlap``: at most ``Limits.max_overlap_fraction`` of the queries (and of sampled documents) are
  near-identical (MinHash) to those of a task already in the registry, compared on the registry's stored
  fingerprints; other versions of the same task (same repo) are not compared, and a task name registered from
  another repo is refused;
- ``baselines``: random nDCG@10 <= ``Limits.max_random_ndcg`` (else the corpus is too small to rank) and
  BM25 nDCG@10 < ``Limits.max_bm25_ndcg`` (else the task is saturated by lexical matching).

``materialise_files`` and ``extract_archive`` write submitted files into a folder with the same name checks,
never following links and never writing outside it.
"""

from __future__ import annotations

import html
import json
import logging
import os
import random
import re
import stat
import tarfile
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ..errors import InputError, MissingDependencyError
from .card import split_header

log = logging.getLogger(__name__)

# Data and text only. Everything else, and in particular anything `datasets`, Python or a shell would load
# or run (.py loader scripts, .so, .pkl/.pickle/.joblib/.npy/.pt/.bin pickles), is refused by default.
ALLOWED_EXTENSIONS = (".parquet", ".json", ".md", ".jsonl", ".txt")
# Git metadata a hub repo may hold; plain text, and git runs no filter for it unless the reader configured one.
ALLOWED_NAMES = (".gitattributes",)
_ACCEPTED = ", ".join(ALLOWED_EXTENSIONS)
CARD = "README.md"
TASK_JSON = "task.json"
BASE_CONFIGS = ("corpus", "queries", "default")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_UNKNOWN_LICENSES = ("", "unknown", "none", "n/a", "other-unknown")

# Patterns a dataset page must not carry: they run script in a reader's browser if a renderer lets them through.
_HTML_INJECTION = (
    ("<script", re.compile(r"<\s*script\b", re.IGNORECASE)),
    ("<iframe", re.compile(r"<\s*iframe\b", re.IGNORECASE)),
    ("javascript:", re.compile(r"javascript\s*:", re.IGNORECASE)),
    ("an on...= event handler", re.compile(r"<[a-z][^>]*?[\s/\"']on[a-z]+\s*=", re.IGNORECASE | re.DOTALL)),
)


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


@dataclass(frozen=True)
class Check:
    id: str
    passed: bool
    reason: str
    skipped: bool = False  # not run because an earlier check failed; counts as not passed


@dataclass
class ValidationReport:
    task_dir: Path
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed and not c.skipped]

    def check(self, check_id: str) -> Check:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_dir": str(self.task_dir),
            "ok": self.ok,
            "checks": [{"id": c.id, "passed": c.passed, "skipped": c.skipped, "reason": c.reason} for c in self.checks],
        }


def format_report(report: ValidationReport) -> str:
    """One line per check (PASS / FAIL / SKIP, id, reason) and a verdict line."""
    lines = []
    width = max((len(c.id) for c in report.checks), default=0)
    for c in report.checks:
        mark = "SKIP" if c.skipped else "PASS" if c.passed else "FAIL"
        lines.append(f"{mark}  {c.id:<{width}}  {' '.join(c.reason.split())}")
    n_failed = len(report.failed)
    n_skipped = sum(1 for c in report.checks if c.skipped)
    verdict = (
        f"{report.task_dir}: all {len(report.checks)} checks passed"
        if report.ok
        else f"{report.task_dir}: rejected, {n_failed} check(s) failed"
        + (f", {n_skipped} not run" if n_skipped else "")
    )
    lines.append(verdict)
    return "\n".join(lines)


# -- names and files


def unsafe_name_reason(name: str) -> str | None:
    """Why a relative file name from a submission is unsafe to create, or None when it is a plain name.

    Refused: empty names and components, ``.`` / ``..`` components (path traversal), absolute paths and drive
    letters, backslashes (a second separator on Windows and in some archive tools) and control characters.
    """
    if not name:
        return "an empty file name"
    if _CONTROL.search(name):
        return f"the name {name!r} holds a control character"
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


def _human(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"  # pragma: no cover


@dataclass
class _Listing:
    files: list[tuple[str, int]] = field(default_factory=list)  # (relative posix name, size)
    bad_paths: list[str] = field(default_factory=list)


def _walk(task_dir: Path) -> _Listing:
    """Every entry under ``task_dir`` from ``lstat`` only: links are reported, never followed."""
    out = _Listing()
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
            elif stat.S_ISREG(st.st_mode):
                out.files.append((name, st.st_size))
            else:
                out.bad_paths.append(f"{name} is not a regular file (device, fifo or socket)")
    out.files.sort()
    return out


def folder_safety_checks(task_dir: Path, limits: Limits = Limits()) -> tuple[list[Check], list[tuple[str, int]]]:
    """The ``paths``, ``extensions`` and ``sizes`` checks of a folder, and its (name, size) files."""
    listing = _walk(Path(task_dir))
    return _safety_checks(listing, limits), listing.files


def _safety_checks(listing: _Listing, limits: Limits) -> list[Check]:
    checks = [
        Check("paths", False, "; ".join(listing.bad_paths)) if listing.bad_paths
        else Check("paths", True, f"{len(listing.files)} regular files, plain relative names, no links")
    ]
    bad_ext = [r for r in (forbidden_extension_reason(n) for n, _ in listing.files) if r]
    checks.append(
        Check("extensions", False, "; ".join(bad_ext) + f" (only {_ACCEPTED} files are accepted)") if bad_ext
        else Check("extensions", True, f"only {_ACCEPTED} files")
    )
    problems = [
        f"{name} is {_human(size)}, above the {_human(limits.max_file_bytes)} per-file limit"
        for name, size in listing.files if size > limits.max_file_bytes
    ]
    total = sum(size for _, size in listing.files)
    if total > limits.max_total_bytes:
        problems.append(f"the files total {_human(total)}, above the {_human(limits.max_total_bytes)} limit")
    if len(listing.files) > limits.max_files:
        problems.append(f"{len(listing.files)} files, above the {limits.max_files} file limit")
    checks.append(
        Check("sizes", False, "; ".join(problems)) if problems
        else Check("sizes", True, f"{len(listing.files)} files, {_human(total)} in total")
    )
    return checks


# -- what a submission is made of


def generated_module_names(task_name: str) -> re.Pattern:
    """The file names ``compile_task`` gives the mteb task module of ``task_name`` (``<Class>_task[_mteb...].py``).

    That module is derived from metadata.json and pinned to a repo and revision, so it is rebuilt at publish
    time and never part of a submission; any other Python file is refused.
    """
    from ..tasks.metadata import class_name

    return re.compile(rf"^{re.escape(class_name(task_name))}_task(?:_mteb)*\.py$")


def _task_name(task_dir: Path, limits: Limits) -> str | None:
    path = task_dir / TASK_JSON
    try:
        if path.is_symlink() or not path.is_file():
            return None
        record = json.loads(_read_small(path, limits))
    except (InputError, OSError, ValueError):
        return None
    name = record.get("name") if isinstance(record, dict) else None
    return name if isinstance(name, str) and name else None


def submission_listing(task_dir: Path, limits: Limits = Limits()) -> tuple[_Listing, list[str]]:
    """What of a local task folder is submitted, and what is left out (dot-files such as the atomic writers'
    temp files, and buildbench's compiled mteb module, see ``generated_module_names``)."""
    task_dir = Path(task_dir)
    listing = _walk(task_dir)
    name = _task_name(task_dir, limits)
    generated = generated_module_names(name) if name else None
    kept, left_out = [], []
    for rel, size in listing.files:
        if any(part.startswith(".") for part in rel.split("/")) or (generated and generated.match(rel)):
            left_out.append(rel)
        else:
            kept.append((rel, size))
    return _Listing(kept, listing.bad_paths), left_out


def submission_files(task_dir: Path, limits: Limits = Limits()) -> dict[str, bytes]:
    """{relative name: bytes} of what ``submit`` uploads; InputError when the folder is not safe to read."""
    listing, _ = submission_listing(task_dir, limits)
    failed = [c for c in _safety_checks(listing, limits) if not c.passed]
    if failed:
        raise InputError(f"{task_dir} cannot be submitted: " + "; ".join(c.reason for c in failed))
    return {rel: _read_no_follow(Path(task_dir) / rel) for rel, _ in listing.files}


def _read_no_follow(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


# -- writing untrusted files


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
                raise InputError(f"submission file {name} is above the {_human(limits.max_file_bytes)} per-file limit")
            if budget[0] > limits.max_total_bytes:
                raise InputError(f"the submission is above the {_human(limits.max_total_bytes)} total limit")
            fh.write(chunk)


def _check_member(name: str, limits: Limits, count: int) -> None:
    problem = unsafe_name_reason(name)
    if problem:
        raise InputError(f"refused submission file: {problem}")
    problem = forbidden_extension_reason(name)
    if problem:
        raise InputError(f"refused submission file: {problem} (only {_ACCEPTED} files are accepted)")
    if count > limits.max_files:
        raise InputError(f"the submission has more than {limits.max_files} files")


def materialise_files(files: Mapping[str, bytes], target: Path, limits: Limits = Limits()) -> Path:
    """Write submitted ``{relative name: bytes}`` under ``target`` (created; must be empty) and return it.

    Every name is checked (``unsafe_name_reason``, ``forbidden_extension_reason``) before anything is written,
    so a refused submission leaves ``target`` empty; then each file is created exclusively, without following
    links, and checked to resolve inside ``target``. Raises InputError naming the first refused file.
    """
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    if any(root.iterdir()):
        raise InputError(f"{target} is not empty; submissions are materialised into an empty folder")
    for count, name in enumerate(files, start=1):
        _check_member(name, limits, count)
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


def extract_archive(archive: Path, target: Path, limits: Limits = Limits()) -> Path:
    """Extract a .tar(.gz/.bz2/.xz) or .zip submission under ``target`` with the checks of ``materialise_files``.

    Members are checked first (names, types, declared sizes): links, devices and any unsafe or refused name
    reject the whole archive before a byte is written. Sizes are enforced again while writing, since an
    archive header can lie. Python's own ``extractall`` is never used.
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    if any(root.iterdir()):
        raise InputError(f"{target} is not empty; submissions are extracted into an empty folder")
    budget = [0]
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            for count, info in enumerate(infos, start=1):
                _check_member(info.filename, limits, count)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise InputError(f"refused submission file: {info.filename} is a symbolic link")
                _check_declared(info.filename, info.file_size, limits)
            for info in infos:
                with zf.open(info) as fh:
                    _create(root, info.filename, _chunks(fh), limits, budget)
        return target
    try:
        tf = tarfile.open(archive, "r:*")
    except tarfile.TarError as exc:
        raise InputError(f"{archive} is neither a zip nor a tar archive ({exc})") from None
    with tf:
        files, declared = [], 0
        # Members are read one header at a time and checked before the next is looked for: moving past a
        # member means decompressing it, so a member declaring terabytes is refused before that happens.
        for count, m in enumerate(tf, start=1):
            if m.isdir():
                if unsafe_name_reason(m.name.rstrip("/")):
                    raise InputError(f"refused submission file: {unsafe_name_reason(m.name.rstrip('/'))}")
                continue
            if not m.isfile():
                kind = "a link" if (m.issym() or m.islnk()) else "not a regular file"
                raise InputError(f"refused submission file: {m.name} is {kind}")
            _check_member(m.name, limits, count)
            _check_declared(m.name, m.size, limits)
            declared += m.size
            if declared > limits.max_total_bytes:
                raise InputError(f"refused submission: its members declare more than {_human(limits.max_total_bytes)}")
            files.append(m)
        for m in files:
            fh = tf.extractfile(m)
            assert fh is not None  # a regular file always has a reader
            with fh:
                _create(root, m.name, _chunks(fh), limits, budget)
    return target


def _check_declared(name: str, size: int, limits: Limits) -> None:
    if size > limits.max_file_bytes:
        raise InputError(
            f"refused submission file: {name} declares {_human(size)}, above the {_human(limits.max_file_bytes)} "
            "per-file limit"
        )


# -- card


@dataclass
class _Card:
    header: dict[str, Any] | None = None
    text: str = ""


def _read_small(path: Path, limits: Limits) -> str:
    size = os.lstat(path).st_size
    if size > limits.max_card_bytes:
        raise InputError(f"{path.name} is {_human(size)}, above the {_human(limits.max_card_bytes)} limit for it")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path.name} is not UTF-8 ({exc.reason} at byte {exc.start})") from None


def _unsafe_yaml_reason(header: str) -> str | None:
    """Tags and aliases in a YAML header, found by the scanner (which builds no objects)."""
    try:
        for token in yaml.scan(header, Loader=yaml.SafeLoader):
            if isinstance(token, yaml.TagToken):
                handle, suffix = token.value
                tag = f"{handle or ''}{suffix}"
                line = token.start_mark.line + 2  # +1 for 1-based, +1 for the opening '---'
                if "python" in tag.lower():
                    return (
                        f"{CARD} YAML header uses the tag '{tag}' (line {line}): python tags build arbitrary "
                        "objects and are refused; the header is read with yaml.safe_load only"
                    )
                return f"{CARD} YAML header uses the tag '{tag}' (line {line}); explicit tags are refused"
            if isinstance(token, (yaml.AliasToken, yaml.AnchorToken)):
                line = token.start_mark.line + 2
                return (
                    f"{CARD} YAML header uses anchors/aliases (line {line}); they are refused because they can "
                    "expand a small header into a huge document"
                )
    except yaml.YAMLError as exc:
        return f"{CARD} YAML header is not valid YAML: {' '.join(str(exc).split())}"
    return None


def _check_card_yaml(task_dir: Path, limits: Limits) -> tuple[Check, _Card]:
    path = task_dir / CARD
    if not path.is_file():
        return Check("card_yaml", False, f"no {CARD} dataset card"), _Card()
    try:
        text = _read_small(path, limits)
    except InputError as exc:
        return Check("card_yaml", False, str(exc)), _Card()
    raw, _ = split_header(text)
    card = _Card(text=text)
    if raw is None:
        return Check("card_yaml", False, f"{CARD} has no YAML header (between '---' lines)"), card
    problem = _unsafe_yaml_reason(raw)
    if problem:
        return Check("card_yaml", False, problem), card
    try:
        header = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        return Check("card_yaml", False, f"{CARD} YAML header is not valid YAML: {' '.join(str(exc).split())}"), card
    if not isinstance(header, dict):
        return Check("card_yaml", False, f"{CARD} YAML header is a {type(header).__name__}, not a mapping"), card
    card.header = header
    return Check("card_yaml", True, f"{CARD} YAML header read with yaml.safe_load ({len(header)} keys)"), card


def _check_card_html(card: _Card) -> Check:
    if not card.text:
        return Check("card_html", False, f"no {CARD} to check", skipped=True)
    for text, how in ((card.text, ""), (html.unescape(card.text), " after decoding HTML entities")):
        for label, pattern in _HTML_INJECTION:
            m = pattern.search(text)
            if m:
                line = text.count("\n", 0, m.start()) + 1
                return Check(
                    "card_html", False,
                    f"{CARD} contains {label} (line {line}{how}): script or HTML injection on the dataset page",
                )
    return Check("card_html", True, f"{CARD} has no script, iframe, javascript: URL or event handler")


def _data_file_patterns(config: Mapping[str, Any]) -> list[str]:
    """Every path string of one card ``configs`` entry (data_files in any of its shapes, and data_dir)."""
    out: list[str] = []

    def add(value: Any) -> None:
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            for v in value:
                add(v)
        elif isinstance(value, Mapping):
            if "path" in value:
                add(value["path"])
            else:  # {split: path} form
                for v in value.values():
                    add(v)
        elif value is not None:
            out.append(repr(value))  # not a path at all; reported as such below

    add(config.get("data_files"))
    if config.get("data_dir") is not None:
        add(config.get("data_dir"))
    return out


def _card_configs(header: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    configs = header.get("configs") or []
    return [c for c in configs if isinstance(c, Mapping)] if isinstance(configs, list) else []


def _check_card_paths(task_dir: Path, header: Mapping[str, Any]) -> Check:
    configs = header.get("configs")
    if configs is not None and not isinstance(configs, list):
        return Check("card_paths", False, f"{CARD} configs is a {type(configs).__name__}, not a list")
    problems = []
    root = task_dir.resolve()
    n = 0
    for config in _card_configs(header):
        name = config.get("config_name", "?")
        for pattern in _data_file_patterns(config):
            n += 1
            if _URL.match(pattern):
                problems.append(f"config '{name}' reads {pattern!r}, a URL outside this submission")
                continue
            problem = unsafe_name_reason(pattern.rstrip("/"))
            if problem:
                problems.append(f"config '{name}' data path: {problem}")
                continue
            if not (root / pattern).resolve().is_relative_to(root):
                problems.append(f"config '{name}' data path {pattern!r} leaves the folder")
                continue
            suffix = PurePosixPath(pattern).suffix.lower()
            if suffix and "*" not in suffix and suffix not in ALLOWED_EXTENSIONS:
                problems.append(f"config '{name}' data path {pattern!r} names a '{suffix}' file")
    if problems:
        return Check("card_paths", False, "; ".join(problems))
    return Check("card_paths", True, f"{n} card data paths, all inside the folder")


def _declared_numbers(header: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(where, value) of every size the card's ``dataset_info`` declares."""
    info = header.get("dataset_info")
    blocks = info if isinstance(info, list) else [info] if isinstance(info, Mapping) else []
    out = []
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        cfg = block.get("config_name", "default")
        for key in ("download_size", "dataset_size"):
            if key in block:
                out.append((f"{key} of config '{cfg}'", block[key]))
        splits = block.get("splits") or []
        if isinstance(splits, Mapping):
            splits = [{"name": k, **v} if isinstance(v, Mapping) else {"name": k} for k, v in splits.items()]
        for split in splits if isinstance(splits, list) else []:
            if isinstance(split, Mapping) and "num_bytes" in split:
                out.append((f"num_bytes of config '{cfg}' split '{split.get('name', '?')}'", split["num_bytes"]))
    return out


def _parquet_declared_bytes(path: Path) -> int:
    """The uncompressed size a Parquet file's footer declares, after checking its magic bytes."""
    import pyarrow.parquet as pq

    size = os.lstat(path).st_size
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(max(0, size - 8))
        tail = fh.read(8)
    if size < 12 or head != b"PAR1" or tail[4:] != b"PAR1":
        raise InputError(f"{path.name} is not a Parquet file (no PAR1 magic)")
    footer = int.from_bytes(tail[:4], "little")
    if footer > size - 12:
        raise InputError(f"{path.name} declares a {footer}-byte footer in a {size}-byte file")
    meta = pq.read_metadata(path)
    total = 0
    for i in range(meta.num_row_groups):
        rg = meta.row_group(i)
        total += max(rg.total_byte_size, sum(rg.column(j).total_uncompressed_size for j in range(rg.num_columns)))
    return total


def _check_declared_sizes(task_dir: Path, header: Mapping[str, Any], files: list[tuple[str, int]],
                          limits: Limits) -> Check:
    problems = []
    declared_total = 0
    for where, value in _declared_numbers(header):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            problems.append(f"{CARD} dataset_info {where} is {value!r}, not a byte count")
            continue
        if where.startswith("num_bytes"):
            declared_total += value
        if value > limits.max_total_bytes:
            problems.append(
                f"{CARD} dataset_info declares {where} = {value} ({_human(value)}), above the "
                f"{_human(limits.max_total_bytes)} limit"
            )
    if declared_total > limits.max_total_bytes and not problems:
        problems.append(
            f"{CARD} dataset_info splits declare {_human(declared_total)} in total, above the "
            f"{_human(limits.max_total_bytes)} limit"
        )
    uncompressed = 0
    for name, _ in files:
        if not name.lower().endswith(".parquet"):
            continue
        try:
            declared = _parquet_declared_bytes(task_dir / name)
        except (InputError, OSError) as exc:
            problems.append(str(exc))
            continue
        except Exception as exc:  # pyarrow's footer parser: any failure means an unreadable file
            problems.append(f"{name} has an unreadable Parquet footer ({type(exc).__name__}: {exc})")
            continue
        uncompressed += declared
        if declared > limits.max_total_bytes:
            problems.append(
                f"{name} declares {declared} bytes ({_human(declared)}) of uncompressed data in its footer, "
                f"above the {_human(limits.max_total_bytes)} limit"
            )
    if uncompressed > limits.max_total_bytes and not any("uncompressed" in p for p in problems):
        problems.append(
            f"the Parquet footers declare {_human(uncompressed)} of uncompressed data in total, above the "
            f"{_human(limits.max_total_bytes)} limit"
        )
    if problems:
        return Check("declared_sizes", False, "; ".join(problems))
    return Check("declared_sizes", True, f"declared sizes within limits ({_human(uncompressed)} uncompressed Parquet)")


_TEXT_FIELDS = ("name", "description", "domain", "language", "eval_lang", "license", "revision", "reference", "type")


def _check_metadata(task_dir: Path, limits: Limits) -> tuple[Check, dict[str, Any] | None]:
    path = task_dir / TASK_JSON
    if not path.is_file():
        return Check("metadata", False, f"no {TASK_JSON}"), None
    try:
        record = json.loads(_read_small(path, limits))
    except InputError as exc:
        return Check("metadata", False, str(exc)), None
    except json.JSONDecodeError as exc:
        return Check("metadata", False, f"{TASK_JSON} is not valid JSON ({exc.msg}, line {exc.lineno})"), None
    if not isinstance(record, dict):
        return Check("metadata", False, f"{TASK_JSON} is a {type(record).__name__}, not an object"), None
    if not isinstance(record.get("name"), str) or not record["name"].strip():
        return Check("metadata", False, f"{TASK_JSON} has no task name"), record
    problems = [f"{key} is {type(record[key]).__name__}, not a string" for key in _TEXT_FIELDS
                if key in record and record[key] is not None and not isinstance(record[key], str)]
    if isinstance(record.get("type"), str) and record["type"] not in ("Retrieval", "Reranking"):
        problems.append(f"type is '{record['type']}', not Retrieval or Reranking")
    if problems:
        return Check("metadata", False, f"{TASK_JSON}: " + "; ".join(problems)), record
    return Check("metadata", True, f"{TASK_JSON} names task '{record['name']}'"), record


# -- data


def _check_schema(task_dir: Path, header: Mapping[str, Any], record: Mapping[str, Any]) -> Check:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..tasks.assemble import CONFIGS, SPLIT, TOP_RANKED

    configs = list(BASE_CONFIGS) + ([TOP_RANKED] if record.get("type") == "Reranking" else [])
    card_names = {c.get("config_name") for c in _card_configs(header)}
    problems = []
    missing_in_card = [c for c in configs if c not in card_names]
    if missing_in_card:
        problems.append(f"{CARD} configs lack {', '.join(missing_in_card)}")
    text_types = (pa.types.is_string, pa.types.is_large_string)

    def is_text(t: pa.DataType) -> bool:
        return any(f(t) for f in text_types)

    expected = {
        "corpus": {"id": is_text, "text": is_text, "title": is_text},
        "queries": {"id": is_text, "text": is_text},
        "default": {"query-id": is_text, "corpus-id": is_text, "score": pa.types.is_integer},
        TOP_RANKED: {"query-id": is_text, "corpus-ids": lambda t: (pa.types.is_list(t) or pa.types.is_large_list(t))
                     and is_text(t.value_type)},
    }
    optional = {("corpus", "title")}
    for config in configs:
        folder = CONFIGS[config][0]
        paths = sorted((task_dir / folder).glob(f"{SPLIT}-*.parquet"))
        if not paths:
            problems.append(f"config '{config}' has no {folder}/{SPLIT}-*.parquet")
            continue
        for path in paths:
            rel = path.relative_to(task_dir).as_posix()
            try:
                schema = pq.read_schema(path)
            except Exception as exc:  # any footer/schema parse failure
                problems.append(f"{rel} cannot be read ({type(exc).__name__})")
                continue
            for column, ok in expected[config].items():
                if column not in schema.names:
                    if (config, column) not in optional:
                        problems.append(f"{rel} has no '{column}' column")
                    continue
                typ = schema.field(column).type
                if not ok(typ):
                    want = "an integer" if column == "score" else "a list of strings" if column == "corpus-ids" else "a string"
                    problems.append(f"{rel} column '{column}' is {typ}, not {want}")
    if problems:
        return Check("schema", False, "; ".join(problems))
    return Check("schema", True, f"configs {', '.join(configs)} have the MTEB columns and types")


def _check_ids(corpus, queries, qrels) -> Check:
    from ..tasks.assemble import _duplicates, _first_few

    problems = []
    for name, table in (("corpus", corpus), ("queries", queries)):
        ids = table.column("id").to_pylist()
        empty = sum(1 for i in ids if i is None or not str(i).strip())
        if empty:
            problems.append(f"{name}: {empty} rows without an id")
        dup = _duplicates([i for i in ids if i])
        if dup:
            problems.append(f"{name}: {len(set(dup))} duplicate ids: {_first_few(dup)}")
    pairs = _duplicates(list(zip(qrels.column("query-id").to_pylist(), qrels.column("corpus-id").to_pylist())))
    if pairs:
        problems.append(f"qrels: {len(set(pairs))} (query, document) pairs judged twice: "
                        f"{_first_few(f'{q}->{c}' for q, c in pairs)}")
    if None in qrels.column("score").to_pylist():
        problems.append("qrels: rows without a score")
    if problems:
        return Check("ids", False, "; ".join(problems))
    return Check("ids", True, f"{corpus.num_rows} document and {queries.num_rows} query ids, unique and non-empty")


def _iso639_1(code: Any) -> str | None:
    from ..tasks.info import _EVAL_LANGS

    if not isinstance(code, str) or not code.strip():
        return None
    code = code.strip()
    for iso1, mteb in _EVAL_LANGS.items():
        if code == mteb:
            return iso1
    return code.split("-")[0].split("_")[0].lower()


def declared_languages(header: Mapping[str, Any] | None, record: Mapping[str, Any] | None) -> tuple[list[str], str | None]:
    """(ISO 639-1 codes the task declares, a contradiction or None). task.json's language wins when both exist."""
    card = (header or {}).get("language")
    card_codes = [c for c in (_iso639_1(x) for x in (card if isinstance(card, list) else [card])) if c]
    task_code = _iso639_1((record or {}).get("language"))
    if task_code and card_codes and task_code not in card_codes:
        return [task_code], f"task.json says '{task_code}' but {CARD} says {', '.join(card_codes)}"
    return ([task_code] if task_code else card_codes), None


def _sample(texts: list[str], n: int, seed: int = 0) -> list[str]:
    texts = [t for t in texts if t and t.strip()]
    if len(texts) <= n:
        return texts
    return random.Random(seed).sample(texts, n)


def _check_language(corpus, queries, header, record, limits: Limits) -> Check:
    from ..quality.language import FastLangDetector

    languages, conflict = declared_languages(header, record)
    if conflict:
        return Check("language", False, conflict)
    if not languages:
        return Check("language", False, f"no language declared ({TASK_JSON} language or {CARD} language)")
    detector = FastLangDetector()
    problems, summary = [], []
    for name, table in (("queries", queries), ("corpus", corpus)):
        sample = _sample(table.column("text").to_pylist(), limits.language_sample)
        detected = Counter(lang for lang, _ in detector.detect(sample))
        match = sum(n for lang, n in detected.items() if lang in languages)
        share = match / max(1, len(sample))
        summary.append(f"{name} {match}/{len(sample)}")
        if share < limits.min_language_match:
            top = ", ".join(f"{lang} {n}" for lang, n in detected.most_common(3))
            problems.append(
                f"{name}: {match} of {len(sample)} sampled texts ({share:.0%}) are detected as "
                f"{'/'.join(languages)}, below {limits.min_language_match:.0%} (detected: {top})"
            )
    if problems:
        return Check("language", False, "; ".join(problems))
    return Check("language", True, f"declared {'/'.join(languages)}: {', '.join(summary)} sampled texts match")


def declared_license(header: Mapping[str, Any] | None, record: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """(license, contradiction or None) from the card's ``license`` and task.json's."""
    card = (header or {}).get("license")
    if isinstance(card, list):
        card = card[0] if len(card) == 1 else ", ".join(map(str, card)) if card else None
    task = (record or {}).get("license")
    card = str(card).strip() if card is not None else None
    task = str(task).strip() if task is not None else None
    if card and task and card.lower() != task.lower():
        return card, f"{CARD} declares license '{card}' but {TASK_JSON} declares '{task}'"
    return card or task, None


def _check_license(header, record) -> Check:
    license, conflict = declared_license(header, record)
    if conflict:
        return Check("license", False, conflict)
    if license is None or license.lower() in _UNKNOWN_LICENSES:
        shown = "no license" if not license else f"license '{license}'"
        return Check("license", False, f"{shown} declared ({CARD} license or {TASK_JSON} license); "
                     "a submission needs a known license")
    return Check("license", True, f"license '{license}'")


def _check_overlap(task_dir: Path, name: str, registry, limits: Limits, repo: str | None) -> Check:
    from .registry import compute_fingerprints, near_duplicate_mask

    if registry is None:
        return Check("overlap", True, "no registry given: overlap with registered tasks not checked")
    mine = compute_fingerprints(task_dir)
    problems, compared = [], 0
    for entry in registry.latest("task"):
        if repo is not None and entry.name == name and entry.repo != repo:
            problems.append(f"task name '{name}' is already registered from {entry.repo}")
        # Earlier versions of this very task are not compared: with a repo, those published there; without one
        # (a local check before submitting), those of the same name.
        if (entry.repo == repo) if repo is not None else (entry.name == name):
            continue
        theirs = registry.fingerprints(entry.name, entry.version)
        if theirs is None:
            continue
        compared += 1
        for what, a, b in (("queries", mine.queries, theirs.queries), ("documents", mine.corpus, theirs.corpus)):
            if len(a) == 0 or len(b) == 0:
                continue
            hits = int(near_duplicate_mask(a, b, limits.overlap_jaccard).sum())
            if hits / len(a) > limits.max_overlap_fraction:
                problems.append(
                    f"{hits} of {len(a)} {what} ({hits / len(a):.1%}) are near-identical (MinHash Jaccard >= "
                    f"{limits.overlap_jaccard:g}) to {what} of registered task '{entry.name}' {entry.version} "
                    f"(> {limits.max_overlap_fraction:.0%})"
                )
    if problems:
        return Check("overlap", False, "; ".join(problems))
    return Check("overlap", True, f"no overlap above {limits.max_overlap_fraction:.0%} with {compared} registered task(s)")


def _check_baselines(task_dir: Path, limits: Limits) -> Check:
    from ..tasks.evaluate import evaluate_task

    scores = evaluate_task(task_dir, ["random", "bm25"])
    rnd, bm25 = scores["random"]["ndcg_at_10"], scores["bm25"]["ndcg_at_10"]
    problems = []
    if rnd > limits.max_random_ndcg:
        problems.append(
            f"random nDCG@10 is {rnd:.3f} (> {limits.max_random_ndcg:g}): the corpus is too small or too many "
            "documents are relevant for a ranking to mean anything"
        )
    if bm25 >= limits.max_bm25_ndcg:
        problems.append(f"BM25 nDCG@10 is {bm25:.3f} (>= {limits.max_bm25_ndcg:g}): the task is saturated by "
                        "word overlap")
    if problems:
        return Check("baselines", False, "; ".join(problems))
    return Check("baselines", True, f"random nDCG@10 {rnd:.3f}, BM25 nDCG@10 {bm25:.3f}")


# -- the whole validation


_DATA_CHECKS = ("schema", "ids", "empty_splits", "min_text_length", "duplicate_corpus_texts", "duplicate_query_texts",
                "relevant_document", "dangling_qrels", "language", "overlap", "baselines")
_ALL_AFTER_SAFETY = ("extensions", "sizes", "card_yaml", "card_paths", "declared_sizes", "card_html", "metadata",
                     *_DATA_CHECKS[:2], "license", *_DATA_CHECKS[2:])


def validate_task(task_dir: Path, registry=None, *, limits: Limits = Limits(),
                  repo: str | None = None) -> ValidationReport:
    """Every check on the submitted folder ``task_dir``; see the module docstring for the list and order.

    registry: a ``buildbench.hub.registry.Registry`` to check overlap against (None: not checked).
    repo: the dataset repo the task is submitted to. Registered versions from that repo are not compared for
        overlap, and a task name registered from another repo is refused. Without it (a local check), the
        registered versions of a task with the same name are the ones not compared.
    Never raises on bad content: each problem is a failed check with its reason. Checks that would have to
    read what an earlier safety check refused are reported as skipped.
    """
    task_dir = Path(task_dir)
    report = ValidationReport(task_dir)
    if not task_dir.is_dir():
        report.checks.append(Check("paths", False, f"{task_dir} is not a folder"))
        return report
    safety, files = folder_safety_checks(task_dir, limits)
    report.checks += safety
    if not all(c.passed for c in safety):
        report.checks += [Check(i, False, "not run: the folder failed the file safety checks", skipped=True)
                          for i in _ALL_AFTER_SAFETY[2:]]
        return report

    yaml_check, card = _check_card_yaml(task_dir, limits)
    report.checks.append(yaml_check)
    header = card.header or {}
    card_ok = yaml_check.passed
    if card_ok:
        paths_check = _check_card_paths(task_dir, header)
    else:
        paths_check = Check("card_paths", False, "not run: the card header could not be read", skipped=True)
    report.checks.append(paths_check)
    sizes_check = _check_declared_sizes(task_dir, header, files, limits)
    report.checks.append(sizes_check)
    report.checks.append(_check_card_html(card))
    meta_check, record = _check_metadata(task_dir, limits)
    report.checks.append(meta_check)
    record = record or {}

    readable = card_ok and paths_check.passed and sizes_check.passed and meta_check.passed
    if not readable:
        why = "not run: the card, its data paths, declared sizes or task.json failed"
        report.checks += [Check(i, False, why, skipped=True) for i in _DATA_CHECKS[:2]]
        report.checks.append(_check_license(header, record))
        report.checks += [Check(i, False, why, skipped=True) for i in _DATA_CHECKS[2:]]
        return report

    schema_check = _check_schema(task_dir, header, record)
    report.checks.append(schema_check)
    if not schema_check.passed:
        why = "not run: the data does not have the MTEB schema"
        report.checks.append(Check("ids", False, why, skipped=True))
        report.checks.append(_check_license(header, record))
        report.checks += [Check(i, False, why, skipped=True) for i in _DATA_CHECKS[2:]]
        return report

    from ..tasks.evaluate import load_task
    from ..tasks.rules import check_quality_rules

    try:
        corpus, queries, qrels = load_task(task_dir)
    except Exception as exc:  # a footer that parses over data pages that do not: refused, never raised
        report.checks.append(Check("ids", False, f"the data cannot be read: {_error(exc)}"))
        report.checks.append(_check_license(header, record))
        report.checks += [Check(i, False, "not run: the data cannot be read", skipped=True) for i in _DATA_CHECKS[2:]]
        return report
    ids_check = _check_ids(corpus, queries, qrels)
    report.checks.append(ids_check)
    report.checks.append(_check_license(header, record))
    rules = check_quality_rules(task_dir)
    report.checks += [Check(r.rule, r.passed, r.message) for r in rules]
    report.checks.append(_guarded("language", _check_language, corpus, queries, header, record, limits))
    report.checks.append(_guarded("overlap", _check_overlap, task_dir, str(record["name"]), registry, limits, repo))
    if ids_check.passed and all(r.passed for r in rules):
        report.checks.append(_guarded("baselines", _check_baselines, task_dir, limits))
    else:
        report.checks.append(Check("baselines", False, "not run: ids or quality rules failed", skipped=True))
    return report


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def _guarded(check_id: str, fn, *args) -> Check:
    """Run one content check; an exception on odd content (a language code bm25s chokes on, say) is a failed
    check with the error as its reason, so a hostile submission cannot crash the reviewer's command."""
    try:
        return fn(*args)
    except MissingDependencyError:
        raise
    except Exception as exc:
        log.debug("%s check raised", check_id, exc_info=True)
        return Check(check_id, False, f"the check could not run on this data: {_error(exc)}")


def validate_submission(path: Path, registry=None, *, limits: Limits = Limits(),
                        repo: str | None = None) -> ValidationReport:
    """``validate_task`` on what would be submitted from ``path``: a task folder (without the files
    ``submission_listing`` leaves out), or a .tar/.zip archive extracted safely into a temporary folder."""
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="buildbench-submission-") as tmp:
        staged = Path(tmp) / "task"
        if path.is_dir():
            listing, left_out = submission_listing(path, limits)
            safety = _safety_checks(listing, limits)
            if not left_out or not all(c.passed for c in safety):
                return validate_task(path, registry, limits=limits, repo=repo)
            log.info("%s: left out of the submission: %s", path, ", ".join(left_out))
            staged.mkdir()
            budget = [0]
            for rel, _ in listing.files:
                _create(staged.resolve(), rel, [_read_no_follow(path / rel)], limits, budget)
        else:
            try:
                extract_archive(path, staged, limits)
            except InputError as exc:
                report = ValidationReport(path, [Check("paths", False, str(exc))])
                report.checks += [Check(i, False, "not run: the archive was refused", skipped=True)
                                  for i in _ALL_AFTER_SAFETY]
                return report
        report = validate_task(staged, registry, limits=limits, repo=repo)
        report.task_dir = path
        return report


def read_card_header(task_dir: Path, limits: Limits = Limits()) -> dict[str, Any]:
    """The YAML header of a (validated) folder's card, read with the same safe reader; {} when absent."""
    check, card = _check_card_yaml(Path(task_dir), limits)
    return card.header or {}


__all__ = [
    "ALLOWED_EXTENSIONS",
    "Check",
    "Limits",
    "ValidationReport",
    "declared_languages",
    "declared_license",
    "extract_archive",
    "folder_safety_checks",
    "format_report",
    "generated_module_names",
    "materialise_files",
    "read_card_header",
    "submission_files",
    "submission_listing",
    "unsafe_name_reason",
    "validate_submission",
    "validate_task",
]
