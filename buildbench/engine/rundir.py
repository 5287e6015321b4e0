"""The run directory: Parquet datasets written shard by shard, the manifest, and atomic writes.

Layout of ``<out>/``::

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

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def atomic_write_parquet(path: Path, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    atomic_write_bytes(path, sink.getvalue().to_pybytes())


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class RunDir:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

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
        if d.exists():
            shutil.rmtree(d)

    def mark_complete(self, name: str) -> None:
        atomic_write_text(self.dataset_dir(name) / "_SUCCESS", "")

    def dataset_hash(self, name: str) -> str:
        h = hashlib.sha256()
        for path in self.shards(name):
            h.update(path.name.encode())
            h.update(file_sha256(path).encode())
        return h.hexdigest()[:16]

    # -- manifest
    def load_manifest(self) -> dict:
        if self.manifest_path.exists():
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        return {}

    def save_manifest(self, manifest: dict) -> None:
        atomic_write_json(self.manifest_path, manifest)
