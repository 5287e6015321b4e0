"""The LLM call cache of a distributed build: one writer per file, each worker its own segment under
cache/llm/, every reader merging the main file and all segments; the driver folds segments into the main file."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

from buildbench.generators.base import GenerationRequest, GenerationResult
from buildbench.generators.cache import (CachedLLM, LLMCache, checkpoint_main, fold_segments, segments_dir,
                                         use_worker_segment)


class Backend:
    name = "b"
    model_id = "b-v1"

    def __init__(self):
        self.seen: list[str] = []

    def generate(self, requests):
        self.seen += [r.prompt for r in requests]
        return [GenerationResult(text=r.prompt.upper(), tokens_in=3, tokens_out=1) for r in requests]


def ask(cache: LLMCache, *prompts: str) -> Backend:
    backend = Backend()
    CachedLLM(backend, cache, batch_size=1).generate([GenerationRequest(prompt=p) for p in prompts])
    return backend


def segment_files(main):
    return sorted(p.name for p in segments_dir(main).glob("*.sqlite")) if segments_dir(main).exists() else []


def test_segments_are_written_apart_and_read_by_everyone(tmp_path):
    main = tmp_path / "cache" / "llm.sqlite"
    ask(LLMCache(main), "a")  # the driver's calls: the main file, as before
    checkpoint_main(main)  # what the Ray executor does before a stage: workers read the main file as immutable
    w1, w2 = LLMCache(main, segment="w1"), LLMCache(main, segment="w2")
    assert ask(w1, "a", "b").seen == ["b"]  # the main file's call is a hit for a worker
    assert ask(w2, "b", "c").seen == ["c"]  # so is another worker's, found on the miss
    assert segment_files(main) == ["w1.sqlite", "w2.sqlite"]
    driver = LLMCache(main)
    assert ask(driver, "a", "b", "c").seen == []
    assert driver.totals() == {"calls": 3, "tokens_in": 9, "tokens_out": 3} and len(driver) == 3


def test_a_worker_without_calls_leaves_no_file(tmp_path):
    main = tmp_path / "llm.sqlite"
    LLMCache(main, segment="idle").get("nothing")
    assert segment_files(main) == [] and not main.exists()


def test_process_segment_applies_to_caches_opened_after(tmp_path):
    main = tmp_path / "llm.sqlite"
    use_worker_segment("me")
    try:
        cache = LLMCache(main)
        ask(cache, "x")
    finally:
        use_worker_segment(None)
    assert cache.is_segment and segment_files(main) == ["me.sqlite"] and not main.exists()
    assert not LLMCache(main, segment="").is_segment


def test_fold_moves_segments_into_the_main_file_once(tmp_path):
    main = tmp_path / "llm.sqlite"
    ask(LLMCache(main, segment="w1"), "a", "b")
    ask(LLMCache(main, segment="w2"), "b", "c")  # "b" is a hit: w2 reads w1
    ask(LLMCache(main, segment="w3"), "d")
    assert fold_segments(main) == 4
    assert segment_files(main) == [] and fold_segments(main) == 0
    with sqlite3.connect(main) as db:  # the main file alone, as an older build-bench reads it
        assert db.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 4
    assert ask(LLMCache(main), "a", "b", "c", "d").seen == []


def test_an_older_run_s_cache_file_is_read(tmp_path):
    main = tmp_path / "llm.sqlite"
    old = LLMCache(main)
    ask(old, "kept from before")
    old.close()
    assert ask(LLMCache(main, segment="w"), "kept from before").seen == []


def test_workers_read_the_checkpointed_main_file_as_immutable(tmp_path):
    main = tmp_path / "llm.sqlite"
    driver = LLMCache(main)
    ask(driver, "p")  # still in the write-ahead log while the driver's connection is open
    checkpoint_main(main)
    worker = LLMCache(main, segment="w")
    assert ask(worker, "p").seen == []


def test_a_killed_worker_s_stored_calls_survive(tmp_path):
    """A worker process killed with SIGKILL after two calls: both are in its segment for the next reader."""
    main = tmp_path / "cache" / "llm.sqlite"
    code = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {os.getcwd()!r})
        from pathlib import Path
        from buildbench.generators.base import GenerationRequest, GenerationResult
        from buildbench.generators.cache import CachedLLM, LLMCache, use_worker_segment

        class B:
            name, model_id = "b", "b-v1"
            def generate(self, requests):
                return [GenerationResult(text=r.prompt.upper(), tokens_in=3, tokens_out=1) for r in requests]

        use_worker_segment("doomed")
        llm = CachedLLM(B(), LLMCache(Path({str(main)!r})), batch_size=1)
        llm.generate([GenerationRequest(prompt="one"), GenerationRequest(prompt="two")])
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert segment_files(main) == ["doomed.sqlite"]
    assert ask(LLMCache(main, segment="next"), "one", "two", "three").seen == ["three"]
    assert fold_segments(main) == 3
