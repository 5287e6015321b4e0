"""A content-addressed cache of LLM calls, so reruns are free and runs are reproducible.

SQLite: each call is committed as soon as it returns, so a run killed with -9 loses at most the calls in
flight, and a rerun replays everything else without touching the model.

One file has one writer. A build on one machine writes ``cache/llm.sqlite`` (WAL mode, as it always has). Workers
of a distributed build (``engine.ray``) cannot share that file, so each worker process writes its own segment,
``cache/llm/<worker>.sqlite``, after ``use_worker_segment``. Every cache reads all of them: the main file, then
every segment, so a call any worker made (a killed one's too) is a hit for every later reader. The driver folds
the segments into the main file once their workers are gone (``LLMCache.compact``).
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import threading
from collections import Counter
from pathlib import Path
from typing import Optional

from ..errors import GenerationError
from .base import GenerationRequest, GenerationResult, LLMBackend

_SCHEMA = "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, model TEXT, request TEXT, result TEXT)"
_TOTALS = ("SELECT COUNT(*), COALESCE(SUM(json_extract(result, '$.tokens_in')), 0), "
           "COALESCE(SUM(json_extract(result, '$.tokens_out')), 0) FROM calls")

# The segment this process writes its calls to, when it is a worker of a distributed build (None: the main file).
_worker_segment: Optional[str] = None


def worker_name() -> str:
    """A name no other worker process has, now or later: host, pid and random bits (a restarted worker on the
    same host can get the pid of a dead one)."""
    host = re.sub(r"[^A-Za-z0-9_.-]+", "_", socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}-{os.urandom(3).hex()}"


def use_worker_segment(name: Optional[str]) -> None:
    """Make every LLMCache this process opens from now on write to the segment ``name`` (None: the main file)."""
    global _worker_segment
    _worker_segment = name


def segments_dir(main: Path) -> Path:
    """Where the workers' segments of the cache ``main`` (``cache/llm.sqlite``) live: ``cache/llm/``."""
    return main.parent / main.stem


def _connect(path: Path, wal: bool) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=60)
    # The main file keeps WAL (one process, readers never block it). A segment uses a rollback journal: readers
    # on other machines of a shared mount take file locks, which a network file system serves, while WAL's
    # shared-memory index only works among processes of one host.
    db.execute(f"PRAGMA journal_mode={'WAL' if wal else 'DELETE'}")
    db.execute("PRAGMA synchronous=NORMAL" if wal else "PRAGMA synchronous=FULL")
    return db


def _read_only(path: Path, immutable: bool = False) -> sqlite3.Connection:
    """A connection that only reads ``path``. ``immutable``: no locks and no WAL index at all, for the main file
    read by workers while the driver, its only writer, waits for them (``checkpoint`` made it whole first)."""
    if immutable:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True, check_same_thread=False)
    # Read-write on purpose: a segment whose writer was killed mid-transaction has a hot journal, which only a
    # connection that may write can roll back. Nothing is ever written through it.
    return sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=60)


class LLMCache:
    """The call cache of a run, ``path`` being its main file (``cache/llm.sqlite``).

    Writes go to the main file, or to this process's segment when ``use_worker_segment`` named one; ``segment``
    names another ("" is the main file whatever the process). Reads look in the file written to, then the main
    file, then every other segment, looking for new segments again on a miss (another worker may have started
    since).
    """

    def __init__(self, path: Path, segment: Optional[str] = None):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.main = path
        self.segments = segments_dir(path)
        name = _worker_segment if segment is None else (segment or None)
        self.path = path if name is None else self.segments / f"{name}.sqlite"
        self._lock = threading.Lock()
        self._db: Optional[sqlite3.Connection] = None
        self._readers: dict[Path, sqlite3.Connection] = {}
        if name is None:  # the main file is created at once, as before; a worker's segment at its first call
            self._db = self._open_writer()
        self._scan()

    @property
    def is_segment(self) -> bool:
        return self.path != self.main

    def _open_writer(self) -> sqlite3.Connection:
        if self.is_segment and not self.path.exists():
            # Made whole under a temporary name, then renamed: a reader never finds a segment without its table.
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            db = _connect(tmp, wal=False)
            db.execute(_SCHEMA)
            db.close()
            os.replace(tmp, self.path)
        db = _connect(self.path, wal=not self.is_segment)
        db.execute(_SCHEMA)
        return db

    def _scan(self) -> bool:
        """Open readers for files not yet read; True when there were new ones."""
        found = [self.main] if self.is_segment and self.main.exists() else []
        if self.segments.is_dir():
            found += sorted(p for p in self.segments.glob("*.sqlite") if not p.name.startswith("."))
        new = False
        for p in found:
            if p == self.path or p in self._readers:
                continue
            try:
                self._readers[p] = _read_only(p, immutable=p == self.main)
                new = True
            except sqlite3.Error:  # gone or not a database: not ours to judge, just not read
                continue
        return new

    def _lookup(self, db: sqlite3.Connection, key: str):
        return db.execute("SELECT result FROM calls WHERE key = ?", (key,)).fetchone()

    def _find(self, key: str):
        if self._db is not None:
            row = self._lookup(self._db, key)
            if row is not None:
                return row
        for attempt in range(2):
            for p, db in list(self._readers.items()):
                try:
                    row = self._lookup(db, key)
                except sqlite3.Error:  # deleted by a compaction, or unreadable: drop it, look again on a miss
                    db.close()
                    del self._readers[p]
                    continue
                if row is not None:
                    return row
            if attempt == 0 and not self._scan():
                return None
        return None

    def get(self, key: str) -> Optional[GenerationResult]:
        with self._lock:
            row = self._find(key)
        if row is None:
            return None
        data = json.loads(row[0])
        return GenerationResult(**{**data, "cached": True})

    def put(self, key: str, model: str, request: GenerationRequest, result: GenerationResult) -> None:
        data = {k: v for k, v in result.__dict__.items() if k != "cached"}
        with self._lock:
            if self._db is None:
                self._db = self._open_writer()
            self._db.execute(
                "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?)",
                (key, model, json.dumps(request.__dict__, default=list), json.dumps(data)),
            )

    def _all(self) -> list[sqlite3.Connection]:
        self._scan()
        return ([self._db] if self._db is not None else []) + list(self._readers.values())

    def totals(self) -> dict[str, int]:
        """Calls stored and their tokens: what the run's outputs cost, however many reruns it took (each
        request once, whichever files hold it)."""
        with self._lock:
            dbs = self._all()
            if len(dbs) == 1:
                row = dbs[0].execute(_TOTALS).fetchone()
                return {"calls": row[0], "tokens_in": row[1], "tokens_out": row[2]}
            seen: set[str] = set()
            total = Counter()
            for db in dbs:
                for key, tin, tout in db.execute("SELECT key, json_extract(result, '$.tokens_in'), "
                                                 "json_extract(result, '$.tokens_out') FROM calls"):
                    if key not in seen:
                        seen.add(key)
                        total["tokens_in"] += tin or 0
                        total["tokens_out"] += tout or 0
            return {"calls": len(seen), "tokens_in": total["tokens_in"], "tokens_out": total["tokens_out"]}

    def __len__(self) -> int:
        with self._lock:
            dbs = self._all()
            if len(dbs) == 1:
                return dbs[0].execute("SELECT COUNT(*) FROM calls").fetchone()[0]
            return len({key for db in dbs for (key,) in db.execute("SELECT key FROM calls")})

    def checkpoint(self) -> bool:
        """Move everything in the main file's write-ahead log into the file itself, so that workers can read it
        as an immutable file while no one writes it (call before handing a stage to workers). False when a
        reader held part of the log back: workers then miss those calls and make them again."""
        with self._lock:
            if self._db is None or self.is_segment:
                return True
            busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            return not busy

    def compact(self) -> int:
        """Fold every segment into the main file and delete it; the number of calls added. Only the main
        file's writer may do this, and only when no worker is writing (between stages)."""
        if self.is_segment:
            raise RuntimeError("only the main file of the LLM cache can take in the segments")
        added = 0
        with self._lock:
            for p, db in list(self._readers.items()):
                db.close()
                del self._readers[p]
            paths = sorted(p for p in self.segments.glob("*.sqlite") if not p.name.startswith(".")) \
                if self.segments.is_dir() else []
            for p in paths:
                before = self._db.total_changes
                # Attached, so SQLite copies the rows without holding a segment in memory.
                self._db.execute("ATTACH DATABASE ? AS seg", (str(p),))
                try:
                    self._db.execute("INSERT OR IGNORE INTO main.calls SELECT key, model, request, result "
                                     "FROM seg.calls")
                finally:
                    self._db.execute("DETACH DATABASE seg")
                added += self._db.total_changes - before
                # Deleted only once its calls are committed here: a crash in between leaves a copy, not a loss.
                for leftover in (p, p.with_name(p.name + "-journal")):
                    leftover.unlink(missing_ok=True)
        return added

    def close(self) -> None:
        with self._lock:
            for db in [self._db, *self._readers.values()]:
                if db is not None:
                    db.close()
            self._db = None
            self._readers.clear()


def checkpoint_main(main: Path) -> bool:
    """Make the main file whole (its write-ahead log moved in) before workers read it (``LLMCache.checkpoint``);
    True when absent."""
    if not Path(main).exists():
        return True
    cache = LLMCache(main, segment="")
    try:
        return cache.checkpoint()
    finally:
        cache.close()


def fold_segments(main: Path) -> int:
    """Fold the workers' segments into the main file once they are gone (``LLMCache.compact``); the calls added."""
    seg = segments_dir(Path(main))
    if not seg.is_dir() or not any(p for p in seg.glob("*.sqlite") if not p.name.startswith(".")):
        return 0
    cache = LLMCache(main, segment="")
    try:
        return cache.compact()
    finally:
        cache.close()


class CachedLLM:
    """Wraps a backend: cache hits never reach the model; every new result is stored at once.

    Failed calls (result.error set) are not cached, so a rerun tries them again; those a later run may get
    past are counted as ``retryable_failures``, which leaves the stage that made them to be rerun. A batch in
    which no call could reach the server at all raises GenerationError: the server is down or the address is
    wrong, and dropping every request with that reason would only hide it.
    """

    def __init__(self, backend: LLMBackend, cache: LLMCache, batch_size: int | None = None):
        self.backend = backend
        self.cache = cache
        # Backends that batch (vLLM) or run requests in parallel (openai) say how many they want at once.
        self.batch_size = batch_size or getattr(backend, "batch_size", 8)
        self.stats: Counter = Counter()

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def model_id(self) -> str:
        return self.backend.model_id

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        model = self.backend.model_id
        keys = [r.key(model) for r in requests]
        out: list[Optional[GenerationResult]] = [self.cache.get(k) for k in keys]
        misses = [i for i, r in enumerate(out) if r is None]
        self.stats["cache_hits"] += len(requests) - len(misses)
        # Small batches: each batch's results are committed before the next one starts.
        for start in range(0, len(misses), self.batch_size):
            idx = misses[start : start + self.batch_size]
            results = self.backend.generate([requests[i] for i in idx])
            if results and all(r.error and r.unreachable for r in results):
                self.stats["calls"] += len(results)
                self.stats["failures"] += len(results)
                self.stats["retryable_failures"] += len(results)
                raise GenerationError(f"the LLM server is unreachable: {results[0].error}")
            for i, res in zip(idx, results):
                res.cache_key = keys[i]
                self.stats["calls"] += 1
                self.stats["tokens_in"] += res.tokens_in
                self.stats["tokens_out"] += res.tokens_out
                self.stats["retries"] += int(res.extra.get("retries", 0))
                if res.error:
                    self.stats["failures"] += 1
                    self.stats["retryable_failures"] += int(res.retryable)
                else:
                    self.cache.put(keys[i], model, requests[i], res)
                out[i] = res
        for i, k in enumerate(keys):
            out[i].cache_key = k
        return out  # type: ignore[return-value]
