"""Write an STS task (MTEB v2 layout) from the LLM judge's graded (query, passage) labels.

Each row is a judged (query, passage) pair and its grade: the judge's relevance label, 0 (unrelated) to 3
(answers it fully). A model is scored on how well the cosine similarity of the two embeddings correlates with
the grades; the main score is mteb's ``cosine_spearman``.

Layout of ``<out_dir>/``::

    data/test-00000-of-00001.parquet   sentence1, sentence2, score, query-id, corpus-id   (config "default")
    README.md                          dataset card; its YAML ``configs:`` point `datasets` at data/
    task.json                          TaskInfo + type + counts + min_score/max_score; written last

This is the layout mteb v2 reads for ``AbsTaskSTS``: ``load_dataset(<folder>)``, split ``test``, one row per
pair with ``sentence1``, ``sentence2`` and a numeric ``score``; the task class declares ``min_score`` and
``max_score`` (mteb normalises scores with them; correlations do not change). A pair judged more than once
gets the mean of its labels.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import InputError, QualityError, require
from .info import TaskInfo
from .layout import first_few
from .single_config import (
    check_texts,
    conform,
    make_single_config_mteb_task,
    mean_chars,
    sentence_pair_schema,
    write_single_config_task,
)

log = logging.getLogger(__name__)

STS = "STS"
STS_MAIN_SCORE = "cosine_spearman"
MIN_SCORE = 0
MAX_SCORE = 3

STS_SCHEMA = sentence_pair_schema("score", pa.float64())


def sts_rows(
    queries: Mapping[str, str],
    judgements: pa.Table | Iterable[tuple[str, str, int]],
    texts: Mapping[str, str],
) -> pa.Table:
    """Graded pairs from judgements: sentence1 = query text, sentence2 = passage text, score = label.

    judgements: the run's judgements table (``query_id``, ``passage_id``, ``label``; other columns ignored) or
        (query id, passage id, label) tuples. Judgements of queries not in ``queries`` and rows without a label
        are skipped; a pair judged more than once gets the mean label. Rows are ordered by (query id, passage
        id). Raises QualityError when a judged passage has no text.
    """
    if isinstance(judgements, pa.Table):
        for name in ("query_id", "passage_id", "label"):
            if name not in judgements.column_names:
                raise InputError(f"judgements table has no '{name}' column")
        triples = zip(*(judgements.column(n).to_pylist() for n in ("query_id", "passage_id", "label")))
    else:
        triples = iter(judgements)
    grades: dict[tuple[str, str], list[float]] = {}
    for qid, pid, label in triples:
        if qid in queries and label is not None:
            grades.setdefault((qid, pid), []).append(float(label))
    missing = [pid for _, pid in grades if pid not in texts]
    if missing:
        raise QualityError(f"{len(set(missing))} judged passage ids have no text: {first_few(missing)}")
    keys = sorted(grades)
    return pa.table(
        {
            "sentence1": [queries[q] for q, _ in keys],
            "sentence2": [texts[p] for _, p in keys],
            "score": [sum(grades[k]) / len(grades[k]) for k in keys],
            "query-id": [q for q, _ in keys],
            "corpus-id": [p for _, p in keys],
        },
        schema=STS_SCHEMA,
    )


def check_sts(table: pa.Table, min_score: float, max_score: float) -> None:
    """The rules of an STS split; the first one broken raises QualityError in one line."""
    if min_score >= max_score:
        raise InputError(f"min_score ({min_score}) must be below max_score ({max_score})")
    if table.num_rows < 2:
        raise QualityError(f"an STS task needs at least 2 pairs, got {table.num_rows}")
    check_texts(table, ("sentence1", "sentence2"))
    scores = table.column("score").to_pylist()
    if None in scores:
        raise QualityError(f"{scores.count(None)} pairs have no score")
    outside = sorted({s for s in scores if not min_score <= s <= max_score})
    if outside:
        raise QualityError(f"scores must lie in [{min_score:g}, {max_score:g}], found {first_few(outside)}")
    if len(set(scores)) < 2:
        raise QualityError(f"every pair has the score {scores[0]:g}: correlation with it is undefined")


def write_sts_task(
    out_dir: Path, rows: pa.Table, info: TaskInfo, min_score: float = MIN_SCORE, max_score: float = MAX_SCORE
) -> Path:
    """Validate graded pairs (from ``sts_rows``) and write them as an STS task; returns ``out_dir``.

    rows: columns ``sentence1``, ``sentence2``, ``score``, and optionally ``query-id``, ``corpus-id``.
    Raises QualityError when a text is empty, a score is missing or outside [min_score, max_score], or all
    scores are equal.
    """
    table = conform(rows, STS_SCHEMA, optional=("query-id", "corpus-id"))
    check_sts(table, min_score, max_score)
    scores = table.column("score").to_pylist()
    distribution: dict[str, int] = {}
    for s in sorted(scores):
        distribution[f"{s:g}"] = distribution.get(f"{s:g}", 0) + 1
    counts: dict[str, Any] = {
        "pairs": table.num_rows,
        "queries": len(set(table.column("query-id").to_pylist())),
        "scores": distribution,
        "mean_score": round(sum(scores) / len(scores), 3),
        "mean_sentence1_chars": mean_chars(table, "sentence1"),
        "mean_sentence2_chars": mean_chars(table, "sentence2"),
    }
    facts = [
        ("Pairs", counts["pairs"]),
        ("Queries", counts["queries"]),
        ("Score range", f"{min_score:g} to {max_score:g}"),
        ("Pairs per score", distribution),
        ("Mean score", counts["mean_score"]),
        ("Mean query length (chars)", counts["mean_sentence1_chars"]),
        ("Mean passage length (chars)", counts["mean_sentence2_chars"]),
    ]
    explanation = (
        "Each row pairs a search query (`sentence1`) with a passage (`sentence2`) and the relevance grade an "
        f"LLM judge gave the pair (`score`, {min_score:g} = unrelated to {max_score:g} = answers it fully; the mean "
        "when judged more than once). A model is scored on the Spearman correlation between the cosine "
        "similarity of the two embeddings and the grades (`cosine_spearman`)."
    )
    write_single_config_task(
        out_dir, table, info,
        task_type=STS, main_score=STS_MAIN_SCORE, counts=counts, facts=facts, explanation=explanation,
        task_categories=["sentence-similarity"], task_ids=["semantic-similarity-scoring"],
        factory="make_mteb_sts_task", extra={"min_score": min_score, "max_score": max_score},
    )
    log.info("wrote STS task %s to %s: %d pairs", info.name, out_dir, table.num_rows)
    return Path(out_dir)


def make_mteb_sts_task(task_dir: Path, name: str | None = None, revision: str = "local"):
    """An mteb ``AbsTaskSTS`` instance over the task written in ``task_dir``, with its score bounds."""
    abstasks = require("mteb.abstasks", "eval", "Evaluating with mteb")
    types = require("mteb.types", "eval", "Evaluating with mteb")

    def attrs(record: dict[str, Any]) -> dict[str, Any]:
        return {
            "min_score": record.get("min_score", MIN_SCORE),
            "max_score": record.get("max_score", MAX_SCORE),
            "input1_prompt_type": types.PromptType.query,
            "input2_prompt_type": types.PromptType.document,
        }

    return make_single_config_mteb_task(
        task_dir, STS, abstasks.AbsTaskSTS, attrs,
        name=name, revision=revision, category="t2t", annotations_creators="LM-generated",
    )
