"""A small run folder as a build writes it, for the review page's tests: the datasets the queue reads
(queries, chunks, negatives, candidates) with their real schemas, written through RunDir (marker and shards are
real), and a manifest with the filters of the document and query stages."""

from __future__ import annotations

import json
from pathlib import Path

from buildbench.engine.rundir import RunDir
from buildbench.pipeline import FILTER_DOCUMENTS, FILTER_QUERIES
from buildbench.quality.mining import (
    NEGATIVE,
    POOL,
    SYNTHETIC,
    TOO_CLOSE,
    Candidate,
    candidates_table,
)
from buildbench.records import Chunk, Document, Query, to_table

SCRIPT_QUERY = "<script>window.__pwned=1</script><b>bold</b> rate decision"
IMG_PASSAGE = 'The statement said <img src=x onerror="window.__pwned=2"> the rate stays.'
DOC_FILTERS = ["doc_dedup", "doc_language"]
QUERY_FILTERS = ["query_length", "query_copy", "query_language", "query_round_trip"]
PERSONAS = ("analyst", "journalist")
STYLES = ("keyword", "question")
DIFFICULTIES = ("easy", "hard")
RECIPES = ("inpars-persona", "yourbench-single")


def chunk_text(i: int) -> str:
    return IMG_PASSAGE if i == 0 else f"Passage {i}: the committee kept the target range at {i} percent in meeting {i}."


def make_run(root: Path, n_queries: int = 8, n_chunks: int = 14) -> RunDir:
    rd = RunDir(root)  # creates and marks the run folder
    chunks = [Chunk(id=f"c{i}", doc_id=f"d{i // 2}", text=chunk_text(i), title=f"Statement {i // 2}", position=i % 2)
              for i in range(n_chunks)]
    queries = []
    for i in range(n_queries):
        queries.append(Query(
            id=f"q{i}", text=SCRIPT_QUERY if i == 0 else f"what rate did the committee set in meeting {i}?",
            chunk_ids=[f"c{i}"], recipe=RECIPES[(i // 4) % 2], persona=PERSONAS[i % 2], style=STYLES[(i // 2) % 2],
            difficulty=DIFFICULTIES[(i // 4) % 2], language="en", backend="local",
            model="gemma3-270m:gemma-3-270m-q4_k_m.gguf", answer=f"{i} percent"))
    negatives = [Document(id=f"neg-q{i}", text=f"A synthetic passage about meeting {i} that does not say the rate.",
                          title="synthetic", source="llm",
                          metadata={"negative_for": f"q{i}", "recipe": "hard_negatives"}) for i in (1, 2)]
    cands = []
    decisions = [TOO_CLOSE, NEGATIVE, NEGATIVE, NEGATIVE, POOL, POOL, POOL, POOL, POOL, POOL]
    for i in range(n_queries):
        others = [f"c{(i + k) % n_chunks}" for k in range(1, 11)]
        if i in (1, 2):
            others[3] = f"neg-q{i}"
        for rank, (pid, decision) in enumerate(zip(others, decisions), 1):
            decision = SYNTHETIC if pid.startswith("neg-") else decision
            cands.append(Candidate(f"q{i}", pid, score=0.9 - 0.05 * rank, positive_score=0.9, rank=rank,
                                   decision=decision, found_by=["llm"] if decision == SYNTHETIC else ["bm25", "minilm"]))
    rd.write("chunks", to_table(chunks, Chunk))
    rd.write("queries", to_table(queries, Query))
    rd.write("negatives", to_table(negatives, Document))
    rd.write("candidates", candidates_table(cands))
    filters = lambda names: [{"name": n, "in": 10, "kept": 9, "dropped": 1, "seconds": 0.01, "reasons": {}, "extra": {}}
                             for n in names]
    rd.save_manifest({"config_hash": "test", "stages": {FILTER_DOCUMENTS: {"filters": filters(DOC_FILTERS)},
                                                        FILTER_QUERIES: {"filters": filters(QUERY_FILTERS)}}})
    return rd


def read_labels(root: Path) -> list[dict]:
    path = root / "labels" / "labels.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] \
        if path.exists() else []


def start_cli(run: Path, *args: str, timeout: float = 60.0):
    """``python -m buildbench.cli label RUN ...`` as a subprocess; returns (process, the page's URL) once it has
    printed its ``review page: URL`` line."""
    import os
    import queue
    import subprocess
    import sys
    import threading

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "buildbench.cli", "label", str(run), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        proc.kill()
        raise AssertionError(f"no address line in {timeout} s: {proc.stderr.read()}") from None
    if not line.startswith("review page: http://127.0.0.1:"):
        proc.kill()
        raise AssertionError(f"unexpected first line {line!r}; stderr: {proc.stderr.read()}")
    return proc, line.split(": ", 1)[1].strip()
