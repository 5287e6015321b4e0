"""The registry of accepted tasks and benchmarks: itself a Hub-layout dataset (a folder or a dataset repo).

Layout::

    registry.parquet                       one row per accepted task or benchmark version (config "default")
    fingerprints/task-<name>-<version>.parquet
                                           MinHash signatures of the task's queries and a document sample
                                           (config "fingerprints"), so overlap checks need no task download
    README.md                              card: YAML configs and a table of the entries

``registry.parquet`` columns: kind ("task" | "benchmark"), name, repo, version, revision (commit), content_hash
(``hub.versioning.content_hash`` of the data files, as the published card records it), accepted_at (ISO 8601, UTC), languages (list), license,
fingerprints (path of the entry's fingerprint file, "" for benchmarks).

``Registry.load(path_or_repo)`` reads a folder, or a repo given as ``file://HUB_ROOT/ORG/NAME`` or
``hf://ORG/NAME`` (downloaded through the hub's ``Publisher``); ``prepare_task`` checks and builds an entry
without changing anything, ``add`` / ``add_task`` stage entries; ``save`` writes fingerprints first and
``registry.parquet`` after them (atomically), so a reader never sees an entry whose fingerprints are missing; a
repo-backed registry is saved as one commit. A ``save`` that fails puts every file it wrote back as it was and
drops the entries staged since the last save, so a review can undo a registration it could not finish.

A registry folder is recognised by its marker ``.buildbench-registry`` (written first when a folder becomes a
registry) or its ``registry.parquet``. Any other existing non-empty folder is refused on load, before anything
is written: ``--registry`` pointed at a project folder must never overwrite its README.md.

Fingerprints are ``hub.fingerprints``' MinHash signatures: the same ones a new submission is compared with in
``hub.checks_data`` (``near_duplicate_mask``).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, field_validator

from ..engine.rundir import atomic_write_bytes, atomic_write_parquet
from ..errors import InputError, PublishError
from .fingerprints import Fingerprints, compute_fingerprints
from .safety import NAME_PATTERN, NAME_RULE
from .sanitize import clean_line

log = logging.getLogger(__name__)

REGISTRY_PARQUET = "registry.parquet"
FINGERPRINTS_DIR = "fingerprints"
CARD = "README.md"
MARKER = ".buildbench-registry"
MARKER_CONTENT = json.dumps({"tool": "buildbench", "kind": "registry"}) + "\n"

_VERSION_RE = re.compile(r"^v?[0-9A-Za-z][0-9A-Za-z.\-+]{0,63}$")

SCHEMA = pa.schema([
    ("kind", pa.string()),
    ("name", pa.string()),
    ("repo", pa.string()),
    ("version", pa.string()),
    ("revision", pa.string()),
    ("content_hash", pa.string()),
    ("accepted_at", pa.string()),
    ("languages", pa.list_(pa.string())),
    ("license", pa.string()),
    ("fingerprints", pa.string()),
])


def utc_now() -> str:
    return _dt.datetime.now(tz=_dt.timezone.utc).replace(microsecond=0).isoformat()


def version_key(version: str) -> tuple:
    """Sort key of a version string: ``v1.10.0`` after ``v1.9.0``; non-numeric parts compare as text."""
    parts = re.split(r"[.\-+]", version.lstrip("vV"))
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


class RegistryEntry(BaseModel):
    """One accepted version of a task or benchmark."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["task", "benchmark"]
    name: str
    repo: str
    version: str
    revision: str = ""
    content_hash: str = ""
    accepted_at: str = ""
    languages: list[str] = []
    license: str = ""
    fingerprints: str = ""

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        # Names come from submissions and end up in file names and a card: keep them plain.
        if not NAME_PATTERN.match(v):
            raise ValueError(f"name '{v}' {NAME_RULE}")
        return v

    @field_validator("version")
    @classmethod
    def _plain_version(cls, v: str) -> str:
        if not _VERSION_RE.match(v) or ".." in v:
            raise ValueError(f"version '{v}' is not a plain version string (e.g. v1.0.0)")
        return v

    @property
    def ref(self) -> str:
        return f"{self.repo}@{self.version}"


def _parquet_error(path: Path, exc: BaseException) -> InputError:
    text = " ".join(str(exc).split())
    reason = "not Parquet" if "magic bytes" in text else clean_line(text, 160)
    return InputError(f"{path} is not a readable registry file ({reason}); restore it from a backup or the "
                      "registry's repo")


def _read_parquet(path: Path) -> pa.Table:
    """A registry Parquet file, or one InputError naming it (a corrupt file must not end in a traceback)."""
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise _parquet_error(path, exc) from None


def fingerprint_path(kind: str, name: str, version: str) -> str:
    return f"{FINGERPRINTS_DIR}/{kind}-{name}-{version}.parquet"


class Registry:
    """Accepted tasks and benchmarks with their versions (see the module docstring for the layout).

    root: the folder the registry lives in (for a repo-backed registry, a private download of it).
    repo: ``(publisher, repo_id)`` when loaded from a hub repo; ``save`` then commits there.
    """

    def __init__(self, root: Path, entries: Optional[list[RegistryEntry]] = None, *, repo=None, source: str = ""):
        self.root = Path(root)
        self._entries: list[RegistryEntry] = list(entries or [])
        self._saved = len(self._entries)  # entries past this index are staged, not yet saved
        self._pending: dict[str, pa.Table] = {}
        self._repo = repo
        self.source = source or str(root)
        self._tmp: Optional[tempfile.TemporaryDirectory] = None

    # -- loading

    @classmethod
    def load(cls, path_or_repo: str | Path) -> "Registry":
        """A registry folder (missing: an empty registry that ``save`` creates), or a ``file://``/``hf://`` repo."""
        text = str(path_or_repo)
        if text.startswith(("hf://", "file://")):
            return cls._load_repo(text)
        root = Path(path_or_repo)
        _check_registry_folder(root)
        return cls(root, _read_entries(root / REGISTRY_PARQUET))

    @classmethod
    def _load_repo(cls, url: str) -> "Registry":
        from .targets import parse_target
        from .safety import Limits
        from .unpack import materialise_files

        publisher, repo_id = parse_target(url)
        tmp = tempfile.TemporaryDirectory(prefix="buildbench-registry-")
        names = [n for n in publisher.list_files(repo_id) if n == REGISTRY_PARQUET or n.startswith(FINGERPRINTS_DIR + "/")
                 or n == CARD]
        files = {}
        for name in names:
            data = publisher.read_file(repo_id, name)
            if data is not None:
                files[name] = data
        materialise_files(files, Path(tmp.name) / "registry", Limits())
        reg = cls(Path(tmp.name) / "registry", _read_entries(Path(tmp.name) / "registry" / REGISTRY_PARQUET),
                  repo=(publisher, repo_id), source=url)
        reg._tmp = tmp  # removed with the object
        return reg

    # -- reading

    def entries(self, kind: Optional[str] = None) -> list[RegistryEntry]:
        """Every entry (of ``kind``), in the order they were accepted."""
        return [e for e in self._entries if kind is None or e.kind == kind]

    def latest(self, kind: str = "task") -> list[RegistryEntry]:
        """The newest version of each name of ``kind``."""
        best: dict[str, RegistryEntry] = {}
        for e in self.entries(kind):
            if e.name not in best or version_key(e.version) > version_key(best[e.name].version):
                best[e.name] = e
        return list(best.values())

    def get(self, name: str, version: Optional[str] = None, kind: str = "task") -> Optional[RegistryEntry]:
        """The entry of ``name`` at ``version`` (newest when None), or None."""
        matches = [e for e in self.entries(kind) if e.name == name and (version is None or e.version == version)]
        return max(matches, key=lambda e: version_key(e.version)) if matches else None

    def find_repo(self, repo: str, version: str, kind: str = "task") -> Optional[RegistryEntry]:
        """The entry published in ``repo`` at ``version``, or None."""
        for e in self.entries(kind):
            if e.repo == repo and e.version == version:
                return e
        return None

    def fingerprints(self, name: str, version: Optional[str] = None) -> Optional[Fingerprints]:
        """The stored MinHash signatures of task ``name`` (newest version when None), or None."""
        entry = self.get(name, version, "task")
        if entry is None or not entry.fingerprints:
            return None
        if entry.fingerprints in self._pending:
            return Fingerprints.from_table(self._pending[entry.fingerprints])
        path = self._inside(entry.fingerprints)
        if not path.is_file():
            log.warning("registry %s: fingerprints of %s %s are missing (%s)", self.source, name, entry.version,
                        entry.fingerprints)
            return None
        table = _read_parquet(path)
        if any(n not in table.column_names for n in ("kind", "minhash")):
            raise _parquet_error(path, ValueError("no kind and minhash columns"))
        return Fingerprints.from_table(table)

    def _inside(self, rel: str) -> Path:
        root = self.root.resolve()
        path = (root / rel).resolve()
        if not path.is_relative_to(root):
            raise InputError(f"registry path {rel!r} leaves the registry folder")
        return path

    # -- writing

    def add(self, entry: RegistryEntry, fingerprints: Optional[Fingerprints] = None) -> RegistryEntry:
        """Stage ``entry`` (and a task's fingerprints) for ``save``; a (kind, name, version) is accepted once."""
        if any(e.kind == entry.kind and e.name == entry.name and e.version == entry.version for e in self._entries):
            raise InputError(f"{entry.kind} {entry.name} {entry.version} is already in the registry")
        entry = entry.model_copy()
        if not entry.accepted_at:
            entry.accepted_at = utc_now()
        if fingerprints is not None:
            entry.fingerprints = fingerprint_path(entry.kind, entry.name, entry.version)
            self._pending[entry.fingerprints] = fingerprints.to_table(entry.name, entry.version)
        self._entries.append(entry)
        return entry

    def add_task(self, task_dir: Path, *, repo: str, version: str, revision: str = "") -> RegistryEntry:
        """Register the task folder ``task_dir`` published at ``repo``@``version`` (commit ``revision``)."""
        staged = self.prepare_task(task_dir, repo=repo, version=version, revision=revision)
        return self.add(staged.entry, staged.fingerprints)

    def prepare_task(self, task_dir: Path, *, repo: str, version: str, revision: str = "") -> "StagedTask":
        """The entry and fingerprints ``add_task`` would stage, built and checked without changing anything:
        InputError when the name or version cannot be registered or the version is registered already."""
        from pydantic import ValidationError

        from .checks_card import declared_languages, declared_license, read_card_header
        from .versioning import task_content_hash

        task_dir = Path(task_dir)
        record = json.loads((task_dir / "task.json").read_text(encoding="utf-8"))
        header = read_card_header(task_dir)
        languages, _ = declared_languages(header, record)
        license, _ = declared_license(header, record)
        name = str(record.get("name"))
        if not NAME_PATTERN.match(name):
            # validate accepts any name; the registry's names end up in file names and cards.
            raise InputError(f"task name {clean_line(repr(name), 80)} cannot be registered: it {NAME_RULE}")
        try:
            entry = RegistryEntry(
                kind="task", name=name, repo=repo, version=version, revision=revision,
                content_hash=task_content_hash(task_dir), languages=languages, license=license or "",
            )
        except ValidationError as exc:
            reasons = "; ".join(str(e.get("msg", "")).removeprefix("Value error, ") for e in exc.errors())
            raise InputError(f"cannot register {name} {clean_line(version, 40)}: {clean_line(reasons)}") from None
        if any(e.kind == "task" and e.name == entry.name and e.version == entry.version for e in self._entries):
            raise InputError(f"task {entry.name} {entry.version} is already in the registry")
        return StagedTask(entry, compute_fingerprints(task_dir))

    def save(self, message: str = "Update the registry") -> None:
        """Write the marker (a new registry folder), pending fingerprints, ``registry.parquet``, then the card.

        Every file is written atomically (temp file + rename). A repo-backed registry is then published as
        one commit holding the whole registry folder. Any failure puts back every file this save wrote (and
        removes the folders it created), drops the entries staged since the last save, and is raised.
        """
        if self._repo is None:
            _check_registry_folder(self.root)
        undo = _Undo()
        try:
            if self._repo is None and not (self.root / MARKER).is_file():
                undo.write(self.root / MARKER, MARKER_CONTENT.encode())
            for rel, table in self._pending.items():
                undo.write(self._inside(rel), table)
            undo.write(self.root / REGISTRY_PARQUET, self._table())
            undo.write(self.root / CARD, self.render_card().encode("utf-8"))
            if self._repo is not None:
                publisher, repo_id = self._repo
                files = {p.relative_to(self.root).as_posix(): p.read_bytes()
                         for p in sorted(self.root.rglob("*")) if p.is_file() and not p.name.startswith(".")}
                publisher.ensure_repo(repo_id)
                publisher.publish(repo_id, files, message)
        except BaseException as exc:
            undo.restore()
            del self._entries[self._saved:]
            self._pending.clear()
            if isinstance(exc, OSError):  # a full disk, a read-only folder: one line, not a traceback
                raise PublishError(f"cannot write the registry {self.source} ({exc.strerror or exc}); "
                                   "nothing saved") from None
            raise
        self._pending.clear()
        self._saved = len(self._entries)
        log.info("registry %s: %d entries saved", self.source, len(self._entries))

    def check_writable(self) -> None:
        """PublishError when ``save`` could not write this registry's folder (checked before a review merges)."""
        if self._repo is not None:
            return  # a repo-backed registry writes a private download; its hub is checked when it commits
        _check_registry_folder(self.root)
        existing = next(p for p in (self.root, *self.root.parents) if p.exists())
        if not os.access(existing, os.W_OK):
            raise PublishError(f"cannot write the registry {self.source} ({existing} is not writable); "
                               "nothing was merged")

    def discard(self) -> None:
        """Drop the entries staged since the last save (nothing on disk changes)."""
        del self._entries[self._saved:]
        self._pending.clear()

    def _table(self) -> pa.Table:
        cols = {name: [getattr(e, name) for e in self._entries] for name in SCHEMA.names}
        return pa.table(cols, schema=SCHEMA)

    def render_card(self) -> str:
        import yaml

        from .sanitize import escape_markdown

        header = {
            "pretty_name": "buildbench registry",
            "tags": ["mteb", "buildbench", "registry"],
            "configs": [
                {"config_name": "default", "data_files": [{"split": "train", "path": REGISTRY_PARQUET}]},
                {"config_name": "fingerprints",
                 "data_files": [{"split": "train", "path": f"{FINGERPRINTS_DIR}/*.parquet"}]},
            ],
        }
        lines = [
            "# buildbench registry",
            "",
            "Accepted tasks and benchmarks, one row per version (`registry.parquet`). `fingerprints/` holds MinHash "
            "signatures of each task's queries and a document sample, used to check new submissions for overlap.",
            "",
            "| Kind | Name | Version | Repo | Revision | Languages | License | Accepted |",
            "|---|---|---|---|---|---|---|---|",
        ]
        # Every value but the kind came with a submission (a license may hold HTML or a Markdown link): each
        # cell is escaped for HTML and Markdown, so it shows as text and opens no new cell.
        for e in self._entries:
            lines.append("| " + " | ".join(escape_markdown(v) or "-" for v in (
                e.kind, e.name, e.version, e.repo, e.revision[:12], ", ".join(e.languages), e.license,
                e.accepted_at)) + " |")
        head = yaml.safe_dump(header, sort_keys=False, allow_unicode=True, width=1000)
        return f"---\n{head}---\n\n" + "\n".join(lines) + "\n"


@dataclass
class StagedTask:
    """What registering a task adds: its entry and its fingerprints (``Registry.prepare_task``)."""

    entry: RegistryEntry
    fingerprints: Fingerprints


class _Undo:
    """Files written through it, with what was there before, so a failed save can put everything back."""

    def __init__(self):
        self._before: list[tuple[Path, Optional[bytes]]] = []
        self._made_dirs: list[Path] = []

    def write(self, path: Path, content: bytes | pa.Table) -> None:
        missing = []
        parent = path.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        self._made_dirs += missing  # deepest first
        self._before.append((path, path.read_bytes() if path.is_file() else None))
        if isinstance(content, pa.Table):
            atomic_write_parquet(path, content)
        else:
            atomic_write_bytes(path, content)

    def restore(self) -> None:
        for path, before in reversed(self._before):
            try:
                if before is None:
                    path.unlink(missing_ok=True)
                else:
                    atomic_write_bytes(path, before)
            except OSError as exc:  # keep restoring the rest; the failure that led here is what is raised
                log.error("could not restore %s: %s", path, exc)
        for folder in self._made_dirs:
            try:
                folder.rmdir()
            except OSError:
                pass


def _check_registry_folder(root: Path) -> None:
    """Refuse a path that is not a registry folder, a new folder or an empty one (InputError, one line)."""
    if root.exists() and not root.is_dir():
        raise InputError(f"registry {root} is not a folder")
    if not root.exists() or (root / MARKER).is_file() or (root / REGISTRY_PARQUET).is_file():
        return
    try:
        empty = next(os.scandir(root), None) is None
    except OSError as exc:
        raise InputError(f"registry {root} cannot be read ({exc.strerror})") from None
    if not empty:
        raise InputError(f"{root} is not a buildbench registry (no {REGISTRY_PARQUET}) and is not empty; pass a "
                         "registry folder, a new or empty folder, or a registry repo")


def _read_entries(path: Path) -> list[RegistryEntry]:
    from pydantic import ValidationError

    if not path.is_file():
        return []
    table = _read_parquet(path)
    missing = [n for n in SCHEMA.names if n not in table.column_names]
    if missing:
        raise InputError(f"{path} is not a buildbench registry (missing columns: {', '.join(missing)})")
    entries = []
    for number, row in enumerate(table.select(SCHEMA.names).to_pylist(), start=1):
        try:
            entries.append(RegistryEntry(**{k: (v if v is not None else ([] if k == "languages" else ""))
                                            for k, v in row.items()}))
        except ValidationError as exc:
            raise InputError(f"{path}: row {number} is not a valid registry entry "
                             f"({clean_line(exc.errors()[0].get('msg', ''), 160)})") from None
    return entries


def format_registry(registry: Registry) -> str:
    """The registry's tasks and benchmarks as a plain-text table, newest version per line."""
    rows = [("kind", "name", "version", "repo", "languages", "license", "accepted")]
    for e in registry.entries():
        # Licenses and languages come from submissions: shown on a terminal, so one clean line each.
        rows.append(tuple(clean_line(v, 80) for v in (e.kind, e.name, e.version, e.repo,
                                                      ",".join(e.languages) or "-", e.license or "-",
                                                      e.accepted_at)))
    if len(rows) == 1:
        return f"registry {registry.source}: no tasks or benchmarks yet"
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)


__all__ = [
    "Registry",
    "RegistryEntry",
    "StagedTask",
    "format_registry",
    "version_key",
]
