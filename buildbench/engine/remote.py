"""A run folder at an fsspec URL: ``--out s3://bucket/runs/finance`` (also ``gs://``, ``az://``, ``file://``, any
protocol fsspec knows, with its package installed: s3fs, gcsfs, adlfs).

    mirror = RunMirror("s3://bucket/runs/finance")
    local = mirror.pull()      # the remote run folder, copied into a local working copy
    ...                        # the build works in ``local`` as in any run folder
    mirror.push()              # after every finished shard and stage: what changed goes up, the manifest last

The remote folder is the truth. A build starts by copying it down whole into a fresh working copy (under
``$BUILDBENCH_RUN_CACHE``, default ``~/.cache/buildbench/runs``), so any machine can resume a run another one
began. It pushes after every finished shard and every finished stage: data files first, each uploaded to a
temporary name and moved into place, then ``manifest.json``, the completion marker a resume trusts. A build
killed or pre-empted loses at most the shard it was writing; its LLM cache goes up with each shard (a
consistent SQLite copy), so the redo repeats no cached call. Files the build deleted locally (the outputs of a
stage that reruns) are deleted remotely too, except ``labels/``, which people may add to at any time.

The driver is the only writer of the remote folder. Ray workers write into the working copy, so with
``--engine ray`` on several nodes the working copy must be on a mount they share (``BUILDBENCH_RUN_CACHE``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
import sqlite3
from pathlib import Path
from typing import Optional

from ..errors import BuildBenchError, ConfigError, MissingDependencyError
from ..redact import redact_url
from .rundir import MARKER

log = logging.getLogger(__name__)

CACHE_ENV = "BUILDBENCH_RUN_CACHE"
MANIFEST = "manifest.json"
KEEP_REMOTE = ("labels/",)  # never deleted remotely: people's labels may arrive while a build runs
SIDE_FILES = ("-wal", "-shm", "-journal")  # SQLite's own; the consistent copy replaces them
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_remote(out: str) -> bool:
    """Whether ``--out`` is a URL (``scheme://...``) rather than a local path."""
    return bool(_URL.match(str(out)))


def working_copy(url: str) -> Path:
    """The local working copy of a remote run folder: one per URL, under $BUILDBENCH_RUN_CACHE."""
    base = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "buildbench" / "runs")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", url.split("://", 1)[1])[-60:].strip("_") or "run"
    return base / f"{name}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


def local_root(out: str) -> Path:
    """Where a build with ``--out out`` works: the folder itself, or the working copy of a URL."""
    return working_copy(out) if is_remote(out) else Path(out)


class ProtocolNotInstalled(MissingDependencyError):
    """The URL's protocol needs a package that is not installed; fsspec's message names it (s3fs, gcsfs...)."""

    def __init__(self, message: str):
        BuildBenchError.__init__(self, message)


class RunMirror:
    def __init__(self, url: str, local: Optional[Path] = None):
        try:
            import fsspec

            self.fs, self.path = fsspec.core.url_to_fs(url)
        except ImportError as exc:  # fsspec names the package a protocol needs (s3fs, gcsfs, adlfs)
            raise ProtocolNotInstalled(f"--out {redact_url(url)}: {exc}") from None
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"--out {redact_url(url)} is not a run folder address fsspec can open: {exc}") \
                from None
        self.url = url
        self.local = Path(local) if local is not None else working_copy(url)
        self.path = self.path.rstrip("/")
        self._pushed: dict[str, tuple[int, int]] = {}  # relative path -> (size, mtime_ns) as last uploaded

    def _remote(self, rel: str) -> str:
        return f"{self.path}/{rel}"

    def _remote_files(self) -> dict[str, int]:
        if not self.fs.exists(self.path):
            return {}
        found = self.fs.find(self.path, detail=True)
        prefix = self.path + "/"
        return {p[len(prefix):]: int(info.get("size") or 0) for p, info in found.items()
                if p.startswith(prefix) and info.get("type", "file") == "file"}

    def pull(self) -> Path:
        """Copy the remote run folder into a fresh working copy and return it. A remote folder that holds files
        but no build-bench marker is refused, as a local one is."""
        remote = self._remote_files()
        if remote and MARKER not in remote:
            raise ConfigError(f"--out {redact_url(self.url)} is not a build-bench run folder: it holds files and "
                              f"no {MARKER} marker, and a build replaces what it finds there; give a new or empty one")
        if self.local.exists():
            shutil.rmtree(self.local)  # the remote folder is the truth
        self.local.mkdir(parents=True)
        for rel in sorted(remote):
            target = self.local / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
            self.fs.get_file(self._remote(rel), str(tmp))
            os.replace(tmp, target)
            st = target.stat()
            self._pushed[rel] = (st.st_size, st.st_mtime_ns)
        log.info("pulled %d files of %s into %s", len(remote), redact_url(self.url), self.local)
        return self.local

    def push(self) -> int:
        """Upload what changed since the last push (the manifest last) and delete what the build deleted;
        returns the number of files uploaded."""
        local = {}
        for path in self.local.rglob("*"):
            rel = path.relative_to(self.local).as_posix()
            if path.is_file() and not path.name.startswith(".") or rel == MARKER:
                if not rel.endswith(SIDE_FILES) and not path.name.endswith(".part"):
                    local[rel] = path
        changed = [rel for rel, p in local.items() if self._pushed.get(rel) != _stamp(p)]
        changed.sort(key=lambda rel: (rel == MANIFEST, rel))  # the completion marker goes up last
        for rel in changed:
            self._upload(rel, local[rel])
        gone = [rel for rel in self._pushed if rel not in local and not rel.startswith(KEEP_REMOTE)]
        for rel in gone:
            if self.fs.exists(self._remote(rel)):
                self.fs.rm(self._remote(rel))
            del self._pushed[rel]
        return len(changed)

    def _upload(self, rel: str, path: Path) -> None:
        stamp = _stamp(path)
        source, tmp_local = path, None
        if path.suffix == ".sqlite":  # a consistent copy, whatever a connection is doing right now
            tmp_local = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
            with sqlite3.connect(path) as src, sqlite3.connect(tmp_local) as dst:
                src.backup(dst)
            source = tmp_local
        target = self._remote(rel)
        tmp = f"{target}.{secrets.token_hex(4)}.part"
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        try:
            self.fs.put_file(str(source), tmp)
            self.fs.mv(tmp, target)
        finally:
            if tmp_local is not None:
                tmp_local.unlink(missing_ok=True)
        self._pushed[rel] = stamp


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns
