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
``hf://ORG/NAME`` (downloaded through the hub's ``Publisher``); ``add`` / ``add_task`` stage entries;
``save`` writes fingerprints first and ``registry.parquet`` last (atomically), so a reader never sees an entry
whose fingerprints are missing; a repo-backed registry is saved as one commit.

Fingerprints use ``buildbench.quality.dedup``'s MinHash (character 5-grams, 128 permutations, seed 1): the
same signatures a new submission is compared with in ``hub.validate`` (``near_duplicate_mask``).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, field_validator

from ..config import DedupConfig
from ..engine.rundir import atomic_write_parquet, atomic_write_text
from ..errors import InputError

log = logging.getLogger(__name__)

REGISTRY_PARQUET = "registry.parquet"
FINGERPRINTS_DIR = "fingerprints"
CARD = "README.md"

# Signatures must be computed identically at registration and at validation; these are part of the format.
FINGERPRINT_CONFIG = DedupConfig(shingle="char", ngram=5, num_perm=128)
FINGERPRINT_SEED = 1
MAX_FINGERPRINT_QUERIES = 5_000
MAX_FINGERPRINT_DOCUMENTS = 5_000

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,127}$")
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

FINGERPRINT_SCHEMA = pa.schema([
    ("task", pa.string()),
    ("version", pa.string()),
    ("kind", pa.string()),  # "query" or "document"
    ("minhash", pa.list_(pa.uint32())),
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
        if not _NAME_RE.match(v):
            raise ValueError(f"name '{v}' must start with a letter and hold only letters, digits, '_', '-', '.'")
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


@dataclass
class Fingerprints:
    """MinHash signatures (rows of uint32, ``FINGERPRINT_CONFIG.num_perm`` wide) of queries and documents."""

    queries: np.ndarray
    corpus: np.ndarray

    def to_table(self, task: str, version: str) -> pa.Table:
        rows = [("query", s) for s in self.queries] + [("document", s) for s in self.corpus]
        return pa.table(
            {
                "task": pa.array([task] * len(rows), pa.string()),
                "version": pa.array([version] * len(rows), pa.string()),
                "kind": pa.array([k for k, _ in rows], pa.string()),
                "minhash": pa.array([s.tolist() for _, s in rows], pa.list_(pa.uint32())),
            },
            schema=FINGERPRINT_SCHEMA,
        )

    @classmethod
    def from_table(cls, table: pa.Table) -> "Fingerprints":
        width = FINGERPRINT_CONFIG.num_perm
        kinds = table.column("kind").to_pylist()
        sigs = table.column("minhash").to_pylist()

        def stack(kind: str) -> np.ndarray:
            rows = [s for k, s in zip(kinds, sigs) if k == kind and s is not None and len(s) == width]
            return np.array(rows, dtype=np.uint32).reshape(len(rows), width)

        return cls(queries=stack("query"), corpus=stack("document"))


def text_signatures(texts: list[str]) -> np.ndarray:
    """MinHash signatures of the texts that have any shingle (texts without one cannot be compared)."""
    from ..quality.dedup import MinHashDedup

    if not texts:
        return np.empty((0, FINGERPRINT_CONFIG.num_perm), np.uint32)
    sigs, nonempty = MinHashDedup(FINGERPRINT_CONFIG, seed=FINGERPRINT_SEED).signatures(texts)
    return sigs[nonempty]


def _sample(texts: list[str], n: int) -> list[str]:
    if len(texts) <= n:
        return texts
    idx = np.random.default_rng(0).choice(len(texts), size=n, replace=False)
    return [texts[i] for i in sorted(idx)]


def compute_fingerprints(task_dir: Path, *, max_queries: int = MAX_FINGERPRINT_QUERIES,
                         max_documents: int = MAX_FINGERPRINT_DOCUMENTS) -> Fingerprints:
    """Signatures of up to ``max_queries`` queries and ``max_documents`` document texts (seeded samples)."""
    from ..tasks.evaluate import load_task

    corpus, queries, _ = load_task(Path(task_dir))
    q = [t for t in queries.column("text").to_pylist() if t]
    d = [t for t in corpus.column("text").to_pylist() if t]
    return Fingerprints(queries=text_signatures(_sample(q, max_queries)),
                        corpus=text_signatures(_sample(d, max_documents)))


def near_duplicate_mask(candidate: np.ndarray, reference: np.ndarray, threshold: float) -> np.ndarray:
    """For each candidate signature, whether some reference signature estimates Jaccard >= ``threshold``.

    LSH bands (``lsh_params``: 99% recall at the threshold) propose pairs; each proposed pair is kept when the
    share of equal signature positions, the MinHash estimate of Jaccard, reaches the threshold. Only signatures
    are compared: the registered texts are never needed.
    """
    from ..quality.dedup import lsh_params

    out = np.zeros(len(candidate), dtype=bool)
    if len(candidate) == 0 or len(reference) == 0:
        return out
    width = reference.shape[1]
    bands, rows = lsh_params(threshold, width)
    buckets: dict[tuple[int, bytes], list[int]] = {}
    for j, sig in enumerate(reference):
        for b in range(bands):
            buckets.setdefault((b, sig[b * rows:(b + 1) * rows].tobytes()), []).append(j)
    for i, sig in enumerate(candidate):
        cands: set[int] = set()
        for b in range(bands):
            cands.update(buckets.get((b, sig[b * rows:(b + 1) * rows].tobytes()), ()))
        if cands:
            idx = np.fromiter(cands, dtype=np.int64)
            if ((reference[idx] == sig).mean(axis=1) >= threshold).any():
                out[i] = True
    return out


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
        if root.exists() and not root.is_dir():
            raise InputError(f"registry {root} is not a folder")
        return cls(root, _read_entries(root / REGISTRY_PARQUET))

    @classmethod
    def _load_repo(cls, url: str) -> "Registry":
        from .publish import parse_target
        from .validate import Limits, materialise_files

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
        return Fingerprints.from_table(pq.read_table(path))

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
        from .validate import declared_languages, declared_license, read_card_header
        from .versioning import task_content_hash

        task_dir = Path(task_dir)
        record = json.loads((task_dir / "task.json").read_text(encoding="utf-8"))
        header = read_card_header(task_dir)
        languages, _ = declared_languages(header, record)
        license, _ = declared_license(header, record)
        entry = RegistryEntry(
            kind="task", name=str(record["name"]), repo=repo, version=version, revision=revision,
            content_hash=task_content_hash(task_dir), languages=languages, license=license or "",
        )
        return self.add(entry, compute_fingerprints(task_dir))

    def save(self, message: str = "Update the registry") -> None:
        """Write pending fingerprints, then ``registry.parquet`` (the commit point), then the card.

        Every file is written atomically (temp file + rename). A repo-backed registry is then published as
        one commit holding the whole registry folder.
        """
        for rel, table in self._pending.items():
            atomic_write_parquet(self._inside(rel), table)
        self._pending.clear()
        atomic_write_parquet(self.root / REGISTRY_PARQUET, self._table())
        atomic_write_text(self.root / CARD, self.render_card())
        if self._repo is not None:
            publisher, repo_id = self._repo
            files = {p.relative_to(self.root).as_posix(): p.read_bytes()
                     for p in sorted(self.root.rglob("*")) if p.is_file() and not p.name.startswith(".")}
            publisher.ensure_repo(repo_id)
            publisher.publish(repo_id, files, message)
        log.info("registry %s: %d entries saved", self.source, len(self._entries))

    def _table(self) -> pa.Table:
        cols = {name: [getattr(e, name) for e in self._entries] for name in SCHEMA.names}
        return pa.table(cols, schema=SCHEMA)

    def render_card(self) -> str:
        import yaml

        from ..tasks.assemble import _cell

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
        for e in self._entries:
            lines.append("| " + " | ".join(_cell(v) for v in (
                e.kind, e.name, e.version, e.repo, e.revision[:12] or "-", ", ".join(e.languages) or "-",
                e.license or "-", e.accepted_at)) + " |")
        head = yaml.safe_dump(header, sort_keys=False, allow_unicode=True, width=1000)
        return f"---\n{head}---\n\n" + "\n".join(lines) + "\n"


def _read_entries(path: Path) -> list[RegistryEntry]:
    if not path.is_file():
        return []
    table = pq.read_table(path)
    missing = [n for n in SCHEMA.names if n not in table.column_names]
    if missing:
        raise InputError(f"{path} is not a buildbench registry (missing columns: {', '.join(missing)})")
    return [RegistryEntry(**{k: (v if v is not None else ([] if k == "languages" else "")) for k, v in row.items()})
            for row in table.select(SCHEMA.names).to_pylist()]


def format_registry(registry: Registry) -> str:
    """The registry's tasks and benchmarks as a plain-text table, newest version per line."""
    rows = [("kind", "name", "version", "repo", "languages", "license", "accepted")]
    for e in registry.entries():
        rows.append((e.kind, e.name, e.version, e.repo, ",".join(e.languages) or "-", e.license or "-",
                     e.accepted_at))
    if len(rows) == 1:
        return f"registry {registry.source}: no tasks or benchmarks yet"
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)


__all__ = [
    "Fingerprints",
    "Registry",
    "RegistryEntry",
    "compute_fingerprints",
    "format_registry",
    "near_duplicate_mask",
    "text_signatures",
    "version_key",
]
