"""The on-disk layout of a written retrieval task, shared by the writers, the mteb compiler and the readers.

Layout of ``<task_dir>/``::

    corpus/test-00000-of-00001.parquet    id, title, text           (config "corpus")
    queries/test-00000-of-00001.parquet   id, text                  (config "queries")
    qrels/test-00000-of-00001.parquet     query-id, corpus-id, score (config "default")
    top_ranked/test-00000-of-00001.parquet query-id, corpus-ids       (config "top_ranked"; reranking tasks only)
    README.md                             dataset card
    task.json                             TaskInfo + counts; written last, so its presence means "complete"

This module imports nothing else from ``buildbench.tasks``: every other module there (and evaluation, report
and hub) reads these names from here, so there is one place for each of them and no import cycle.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import InputError

SPLIT = "test"
MAIN_SCORE = "ndcg_at_10"

TOP_RANKED = "top_ranked"

# config name -> (folder, columns). The qrels are the "default" config because that is what mteb loads
# when it asks for relevance judgements. "top_ranked" is written only for reranking tasks.
CONFIGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "corpus": ("corpus", ("id", "title", "text")),
    "queries": ("queries", ("id", "text")),
    "default": ("qrels", ("query-id", "corpus-id", "score")),
    TOP_RANKED: ("top_ranked", ("query-id", "corpus-ids")),
}
BASE_CONFIGS = ("corpus", "queries", "default")

SCHEMAS: dict[str, pa.Schema] = {
    "corpus": pa.schema([("id", pa.string()), ("title", pa.string()), ("text", pa.string())]),
    "queries": pa.schema([("id", pa.string()), ("text", pa.string())]),
    "default": pa.schema([("query-id", pa.string()), ("corpus-id", pa.string()), ("score", pa.int64())]),
    TOP_RANKED: pa.schema([("query-id", pa.string()), ("corpus-ids", pa.list_(pa.string()))]),
}

RETRIEVAL = "Retrieval"
RERANKING = "Reranking"

TASK_JSON = "task.json"
SHARD_NAME = f"{SPLIT}-00000-of-00001.parquet"


def shard_path(task_dir: Path, config: str) -> Path:
    folder, _ = CONFIGS[config]
    return Path(task_dir) / folder / SHARD_NAME


def task_type(counts: dict[str, Any]) -> str:
    """"Reranking" when the task has candidate lists, else "Retrieval"."""
    return RERANKING if TOP_RANKED in counts else RETRIEVAL


def written_configs(counts: dict[str, Any]) -> list[str]:
    return list(BASE_CONFIGS) + ([TOP_RANKED] if TOP_RANKED in counts else [])


def read_task_record(task_dir: Path) -> dict[str, Any]:
    """task.json of a written task. Folders written before reranking existed have no "type": Retrieval."""
    path = Path(task_dir) / TASK_JSON
    if not path.exists():
        raise InputError(f"{task_dir} is not a complete buildbench task (no {TASK_JSON})")
    record = json.loads(path.read_text(encoding="utf-8"))
    record.setdefault("type", RETRIEVAL)
    return record


# -- helpers for the one-line error messages of every task check


def first_few(ids: Iterable[Any], n: int = 5) -> str:
    """The first ``n`` distinct ids, comma-separated, with "(+N more)" when there are more."""
    ids = list(dict.fromkeys(ids))  # unique, first-seen order
    shown = ", ".join(repr(i) if not isinstance(i, str) else i for i in ids[:n])
    return shown + (f" (+{len(ids) - n} more)" if len(ids) > n else "")


def duplicates(values: list) -> list:
    """Every value that was already seen earlier in ``values``, in order."""
    seen, dup = set(), []
    for v in values:
        if v in seen:
            dup.append(v)
        seen.add(v)
    return dup
