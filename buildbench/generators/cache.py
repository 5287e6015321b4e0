"""A content-addressed cache of LLM calls, so reruns are free and runs are reproducible.

SQLite in WAL mode: each call is committed as soon as it returns, so a run killed with -9 loses at most
the calls in flight, and a rerun replays everything else without touching the model.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter
from pathlib import Path
from typing import Optional

from ..errors import GenerationError
from .base import GenerationRequest, GenerationResult, LLMBackend


class LLMCache:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, model TEXT, request TEXT, result TEXT)"
        )

    def get(self, key: str) -> Optional[GenerationResult]:
        with self._lock:
            row = self._db.execute("SELECT result FROM calls WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        return GenerationResult(**{**data, "cached": True})

    def put(self, key: str, model: str, request: GenerationRequest, result: GenerationResult) -> None:
        data = {k: v for k, v in result.__dict__.items() if k != "cached"}
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?)",
                (key, model, json.dumps(request.__dict__, default=list), json.dumps(data)),
            )

    def totals(self) -> dict[str, int]:
        """Calls stored and their tokens: what the run's outputs cost, however many reruns it took."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(json_extract(result, '$.tokens_in')), 0), "
                "COALESCE(SUM(json_extract(result, '$.tokens_out')), 0) FROM calls"
            ).fetchone()
        return {"calls": row[0], "tokens_in": row[1], "tokens_out": row[2]}

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


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
