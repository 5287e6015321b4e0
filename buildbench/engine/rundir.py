"""The run directory: Parquet datasets written shard by shard, the manifest, and atomic writes.

Layout of ``<out>/``::

    .buildbench-run          marker: this folder is a build-bench run folder (see ``RunDir``)
    manifest.json            config, config hash, package versions, per-stage status/hashes/counts/timings
    data/<dataset>/part-NNNNN.parquet
    drops/<stage>.parquet    every item a stage dropped, with its reason
    cache/                   LLM call cache, embedding cache
    task/                    the MTEB retrieval task
    task_reranking/          the reranking task (top_ranked candidate lists)
    task_downsampled/        the retrieval task over a downsampled corpus
    audit.jsonl              per-query audit: every filter drop and qrels repair decision
    report.json
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ConfigError

# The marker a run folder carries from its creation on. Only a folder with it (or an empty or new one, which
# gets it) is ever written to or deleted from: --out pointed at a folder of the user's must not cost them files.
MARKER = ".buildbench-run"
MARKER_FORMAT = 1
# What build-bench writes at the top of a run folder and may replace or delete on a rerun.
MANAGED_DIRS = ("data", "drops", "cache", "task")
MANAGED_DIR_PREFIX = "task_"
MANAGED_FILES = (MARKER, "manifest.json", "report.json", "report.html", "audit.jsonl", "compare.json",
                 "benchmark.json")
_GLOB_MAGIC = frozenset("*?[")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers never see half a file.

    The temp file is created with mode 0o666 and the process umask applied, as ``open()`` would: a file
    shared through a hub served by another user must be readable by them when the umask says so
    (``tempfile.mkstemp`` would make every file 0600).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 collisions of 48 random bits
        raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def make_temp_dir(parent: Path, prefix: str) -> Path:
    """A new uniquely named folder in ``parent`` with the umask's mode, to fill and then rename into place
    (``tempfile.mkdtemp`` makes it 0700, which a shared folder must not end up with)."""
    parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        path = parent / f"{prefix}{secrets.token_hex(6)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(parent))  # pragma: no cover


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def atomic_write_parquet(path: Path, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    atomic_write_bytes(path, sink.getvalue().to_pybytes())


# ---------------------------------------------------------------------------------------------- ownership


def _json_object(path: Path) -> dict:
    """The JSON object in a regular file (not a link), or {} when it is missing, unreadable or not an object:
    ownership is decided from what build-bench itself wrote there."""
    if path.is_symlink() or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def is_run_dir(root: str | Path) -> bool:
    """Whether ``root`` carries build-bench's run-folder marker (a regular file naming the tool)."""
    return _json_object(Path(root) / MARKER).get("tool") == "buildbench"


def is_build_bench_folder(root: str | Path) -> bool:
    """A marked run folder, or one an older build-bench version wrote (see ``claim_run_dir``)."""
    return is_run_dir(root) or _older_run_dir(Path(root))


def _older_run_dir(root: Path) -> bool:
    """A run folder written before the marker existed: its manifest.json is build-bench's."""
    data = _json_object(root / "manifest.json")
    return "config_hash" in data and isinstance(data.get("stages"), dict)


def _managed(name: str) -> bool:
    return name in MANAGED_DIRS or name in MANAGED_FILES or name.startswith(MANAGED_DIR_PREFIX)


def _spec_path(spec: str) -> Path:
    """The folder or file an input spec reads: a glob's fixed leading part (``proj/data/**/*.txt`` ->
    ``proj/data``), resolved through links."""
    parts = Path(spec).expanduser().parts
    fixed = []
    for part in parts:
        if _GLOB_MAGIC & set(part):
            break
        fixed.append(part)
    return Path(*fixed).resolve() if fixed else Path.cwd().resolve()


def check_inputs_outside(root: str | Path, inputs: Iterable[str]) -> None:
    """Refuse an input that is the run folder itself or lies in an area of it build-bench rewrites.

    ``--docs OUT/data/documents --out OUT`` would feed the build from a folder its first stage deletes.
    Hub addresses (``hf://``) are not paths and pass.
    """
    root_r = Path(root).expanduser().resolve()
    for spec in inputs:
        if str(spec).startswith("hf://"):
            continue
        path = _spec_path(str(spec))
        if path == root_r:
            raise ConfigError(f"--docs {spec} is the run folder {root} itself; put the documents elsewhere")
        if root_r in path.parents:
            area = path.relative_to(root_r).parts[0]
            if _managed(area):
                raise ConfigError(f"--docs {spec} is inside {area} of the run folder {root}, which build-bench "
                                  "rewrites on every build; put the documents outside it")


def claim_run_dir(root: str | Path, inputs: Iterable[str] = ()) -> Path:
    """Make sure ``root`` may be used as a run folder, then create and mark it; returns it.

    Accepted: a new folder, an empty one, a marked one, or one an older build-bench version wrote (no marker
    but its manifest.json); all but the marked one get the marker now. Anything else is refused with one
    line before anything is written, as are inputs inside the folder's managed areas (``check_inputs_outside``).
    """
    root = Path(root)
    try:
        if root.exists() and not root.is_dir():
            raise ConfigError(f"--out {root} is a file, not a folder; give a folder for the run")
        marked = root.is_dir() and is_run_dir(root)
        if root.is_dir() and not marked and any(root.iterdir()) and not _older_run_dir(root):
            raise ConfigError(f"--out {root} is not a build-bench run folder: it holds files and no {MARKER} "
                              "marker, and a build replaces what it finds there; give a new or empty folder")
    except OSError as exc:
        raise ConfigError(f"cannot read the run folder {root}: {exc.strerror or exc}") from None
    check_inputs_outside(root, inputs)
    if marked:
        return root
    try:
        root.mkdir(parents=True, exist_ok=True)
        from .. import __version__

        atomic_write_json(root / MARKER, {"tool": "buildbench", "format": MARKER_FORMAT, "version": __version__})
    except OSError as exc:
        raise ConfigError(f"cannot create the run folder {root}: {exc.strerror or exc}") from None
    return root


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def files_hash(paths: Iterable[Path], root: Path) -> str:
    """A set of files, by their paths under ``root`` and their contents, as 16 hex digits."""
    h = hashlib.sha256()
    for path in paths:
        h.update(path.relative_to(root).as_posix().encode())
        h.update(file_sha256(path).encode())
    return h.hexdigest()[:16]


class RunDir:
    """A run folder, created and marked when needed (``claim_run_dir``); ``inputs`` are the build's --docs
    specs, refused when they lie inside the folder's managed areas. ``claim=False`` only names the folder's
    paths (nothing is checked, created or marked)."""

    def __init__(self, root: str | Path, inputs: Iterable[str] = (), *, claim: bool = True):
        self.root = claim_run_dir(root, inputs) if claim else Path(root)

    @classmethod
    def from_task_dir(cls, task_dir: str | Path) -> "RunDir":
        """The run folder a run's retrieval task folder (``<run>/task``) sits in, for its paths (cache,
        report, compare result); nothing is claimed or created (``is_build_bench_folder`` tells whether it is
        a run folder)."""
        return cls(Path(task_dir).resolve().parent, claim=False)

    # -- paths
    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def task_dir(self) -> Path:
        return self.root / "task"

    def variant_dir(self, variant: str) -> Path:
        """Where one task variant is written: the retrieval task in ``task/``, the others (reranking,
        downsampled) beside it in ``task_<variant>/``."""
        return self.task_dir if variant == "retrieval" else self.root / f"task_{variant}"

    @property
    def report_path(self) -> Path:
        return self.root / "report.json"

    @property
    def compare_path(self) -> Path:
        return self.root / "compare.json"

    def dataset_dir(self, name: str) -> Path:
        return self.root / "data" / name

    def shard_path(self, name: str, index: int) -> Path:
        return self.dataset_dir(name) / f"part-{index:05d}.parquet"

    def drops_path(self, stage: str) -> Path:
        return self.root / "drops" / f"{stage}.parquet"

    # -- datasets
    def shards(self, name: str) -> list[Path]:
        d = self.dataset_dir(name)
        return sorted(d.glob("part-*.parquet")) if d.exists() else []

    def has_dataset(self, name: str) -> bool:
        return (self.dataset_dir(name) / "_SUCCESS").exists()

    def iter_shards(self, name: str) -> Iterator[pa.Table]:
        for path in self.shards(name):
            yield pq.read_table(path)

    def read(self, name: str) -> pa.Table:
        tables = list(self.iter_shards(name))
        if not tables:
            raise FileNotFoundError(f"dataset '{name}' has no shards in {self.dataset_dir(name)}")
        return pa.concat_tables(tables)

    def write_shard(self, name: str, index: int, table: pa.Table) -> None:
        atomic_write_parquet(self.shard_path(name, index), table)

    def write(self, name: str, table: pa.Table, shard_rows: int = 10_000) -> None:
        """Replace a whole dataset (global stages)."""
        self.reset_dataset(name)
        n = max(1, -(-table.num_rows // shard_rows))
        for i in range(n):
            self.write_shard(name, i, table.slice(i * shard_rows, shard_rows))
        self.mark_complete(name)

    def reset_dataset(self, name: str) -> None:
        d = self.dataset_dir(name)
        # Defence in depth: delete only a real folder under data/ of a folder that is marked as a run folder.
        if d.is_symlink() or (self.root / "data").resolve() not in d.resolve().parents:
            raise ConfigError(f"refusing to delete {d}: not a dataset folder under {self.root / 'data'}")
        if not d.exists():
            return
        if not is_run_dir(self.root):
            raise ConfigError(f"refusing to delete {d}: {self.root} is not a marked build-bench run folder "
                              f"(no {MARKER})")
        shutil.rmtree(d)

    def mark_complete(self, name: str) -> None:
        atomic_write_text(self.dataset_dir(name) / "_SUCCESS", "")

    def dataset_hash(self, name: str) -> str:
        return files_hash(self.shards(name), self.dataset_dir(name))

    def file_hash(self, relative: str) -> Optional[str]:
        """The content hash of a file inside the run folder (labels/labels.jsonl), or None when it is absent."""
        path = self.root / relative
        return file_sha256(path)[:16] if path.is_file() else None

    # -- manifest
    def load_manifest(self) -> dict:
        if self.manifest_path.exists():
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        return {}

    def save_manifest(self, manifest: dict) -> None:
        atomic_write_json(self.manifest_path, manifest)
