"""Write a pair-classification task (MTEB v2 layout) from the queries, qrels and mined hard negatives.

Each row is a (query, passage) pair: label 1 when the passage is one of the query's relevant passages (qrels),
0 when it is one of the query's mined hard negatives. A model is scored on how well the similarity of the two
embeddings separates the two labels; the main score is mteb's ``max_ap`` (the best average precision over
cosine, dot, euclidean, manhattan and the model's own similarity).

Layout of ``<out_dir>/``::

    data/test-00000-of-00001.parquet   sentence1, sentence2, labels, query-id, corpus-id   (config "default")
    README.md                          dataset card; its YAML ``configs:`` point `datasets` at data/
    task.json                          TaskInfo + type + counts; written last, so its presence means "complete"

This is the layout mteb v2 reads for ``AbsTaskPairClassification``: ``load_dataset(<folder>)`` (config
"default"), split ``test``, one row per pair with columns ``sentence1``, ``sentence2``, ``labels`` (0/1). (mteb
v1 stored a whole split in one row of lists; v2 still accepts that, but only when a split has exactly one row,
so one row per pair is the v2 form.) The ``query-id``/``corpus-id`` columns trace each pair back to the
retrieval task; mteb ignores them.

The single-config writing, card and mteb-class helpers it shares with the clustering and STS writers live in
``single_config``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
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

PAIR_CLASSIFICATION = "PairClassification"
PAIR_MAIN_SCORE = "max_ap"

PAIR_SCHEMA = sentence_pair_schema("labels", pa.int64())


# -- rows


def pair_rows(
    queries: Mapping[str, str],
    qrels: Mapping[str, Sequence[str]],
    negatives: Mapping[str, Sequence[str]],
    texts: Mapping[str, str],
    negatives_per_positive: int = 1,
    seed: int = 0,
) -> pa.Table:
    """Balanced (query, passage) pairs: each positive comes with ``negatives_per_positive`` hard negatives.

    queries: query id -> text; only these queries are used (qrels/negatives of other ids are ignored).
    qrels: query id -> its relevant passage ids (positives only).
    negatives: query id -> its mined hard negatives, best first. A negative that is also a positive of the
        query, or whose text equals one of the positives' texts, is skipped: it would be a pair with both labels.
    texts: passage id -> text.
    Per query, ``min(#positives, #negatives // negatives_per_positive)`` positives are kept (in qrels order),
    so the ratio of labels is exactly 1 : negatives_per_positive; a query without negatives contributes
    nothing. Which negatives are used is drawn with a per-query RNG seeded from ``seed`` and the query id, so a
    query's pairs do not depend on the other queries. Rows are ordered by query id, positives first.
    Raises QualityError when a used passage id has no text.
    """
    if negatives_per_positive < 1:
        raise InputError(f"negatives_per_positive must be at least 1, got {negatives_per_positive}")
    rows: dict[str, list] = {name: [] for name in PAIR_SCHEMA.names}
    missing: list[str] = []
    skipped_queries = 0

    def add(qid: str, cid: str, label: int) -> None:
        text = texts.get(cid)
        if text is None:
            missing.append(cid)
            return
        for name, value in zip(PAIR_SCHEMA.names, (queries[qid], text, label, qid, cid)):
            rows[name].append(value)

    for qid in sorted(queries):
        positives = list(dict.fromkeys(qrels.get(qid) or []))
        positive_set = set(positives)
        positive_texts = {texts[c] for c in positives if c in texts}
        pool = [
            c for c in dict.fromkeys(negatives.get(qid) or [])
            if c not in positive_set and texts.get(c, None) not in positive_texts
        ]
        n_pos = min(len(positives), len(pool) // negatives_per_positive)
        if n_pos == 0:
            skipped_queries += 1
            continue
        rng = random.Random(f"{seed}:{qid}")
        chosen = rng.sample(pool, n_pos * negatives_per_positive)
        for cid in positives[:n_pos]:
            add(qid, cid, 1)
        for cid in chosen:
            add(qid, cid, 0)
    if missing:
        raise QualityError(f"{len(set(missing))} passage ids of the pairs have no text: {first_few(missing)}")
    if skipped_queries:
        log.info("pair classification: %d of %d queries have no usable positive/negative pair", skipped_queries,
                 len(queries))
    return pa.Table.from_pydict(rows, schema=PAIR_SCHEMA)


# -- checks and writing


def check_pairs(table: pa.Table) -> None:
    """The rules of a pair-classification split; the first one broken raises QualityError in one line."""
    if table.num_rows < 2:
        raise QualityError(f"a pair-classification task needs at least 2 pairs, got {table.num_rows}")
    check_texts(table, ("sentence1", "sentence2"))
    labels = table.column("labels").to_pylist()
    if None in labels:
        raise QualityError(f"{labels.count(None)} pairs have no label")
    bad = sorted({v for v in labels if v not in (0, 1)})
    if bad:
        raise QualityError(f"pair labels must be 0 or 1, found {first_few(bad)}")
    for value, name in ((1, "positive"), (0, "negative")):
        if value not in labels:
            raise QualityError(f"the pairs have no {name} (label {value}) pair: both labels are needed")
    keys = list(zip(table.column("sentence1").to_pylist(), table.column("sentence2").to_pylist()))
    label_of: dict[tuple[str, str], set[int]] = {}
    for key, label in zip(keys, labels):
        label_of.setdefault(key, set()).add(label)
    conflicting = [k for k, v in label_of.items() if len(v) > 1]
    if conflicting:
        raise QualityError(
            f"{len(conflicting)} (sentence1, sentence2) pairs carry both labels: "
            f"{first_few(f'{a[:40]!r}/{b[:40]!r}' for a, b in conflicting)}"
        )


def pair_counts(table: pa.Table) -> dict[str, Any]:
    labels = table.column("labels").to_pylist()
    return {
        "pairs": table.num_rows,
        "positives": labels.count(1),
        "negatives": labels.count(0),
        "queries": len(set(table.column("query-id").to_pylist())),
        "mean_sentence1_chars": mean_chars(table, "sentence1"),
        "mean_sentence2_chars": mean_chars(table, "sentence2"),
    }


def write_pair_classification_task(out_dir: Path, rows: pa.Table, info: TaskInfo) -> Path:
    """Validate pairs (from ``pair_rows``) and write them as a PairClassification task; returns ``out_dir``.

    rows: columns ``sentence1``, ``sentence2``, ``labels`` (0/1), and optionally ``query-id``, ``corpus-id``
    (written as "" when missing). Raises QualityError when a text is empty, a label is not 0/1, only one label
    occurs, or the same pair carries both labels.
    """
    table = conform(rows, PAIR_SCHEMA, optional=("query-id", "corpus-id"))
    check_pairs(table)
    counts = pair_counts(table)
    ratio = counts["negatives"] / max(1, counts["positives"])
    facts = [
        ("Pairs", counts["pairs"]),
        ("Positive pairs (label 1)", counts["positives"]),
        ("Negative pairs (label 0)", counts["negatives"]),
        ("Negatives per positive", round(ratio, 3)),
        ("Queries", counts["queries"]),
        ("Mean query length (chars)", counts["mean_sentence1_chars"]),
        ("Mean passage length (chars)", counts["mean_sentence2_chars"]),
    ]
    explanation = (
        "Each row pairs a search query (`sentence1`) with a passage (`sentence2`). `labels` is 1 when the "
        "passage answers the query (it is in the retrieval task's qrels) and 0 when it is a hard negative mined "
        "for the query: a passage a retriever ranks high that does not answer it. A model is scored on how well "
        "the similarity of the two embeddings separates the labels (average precision at the best similarity "
        "function, `max_ap`)."
    )
    write_single_config_task(
        out_dir, table, info,
        task_type=PAIR_CLASSIFICATION, main_score=PAIR_MAIN_SCORE, counts=counts, facts=facts,
        explanation=explanation, task_categories=["text-classification"],
        task_ids=["semantic-similarity-classification"], factory="make_mteb_pair_task",
    )
    log.info("wrote pair-classification task %s to %s: %d pairs (%d positive)", info.name, out_dir,
             counts["pairs"], counts["positives"])
    return Path(out_dir)


def make_mteb_pair_task(task_dir: Path, name: str | None = None, revision: str = "local"):
    """An mteb ``AbsTaskPairClassification`` instance over the task written in ``task_dir``.

    sentence1 is encoded as a query and sentence2 as a document, so models with query/passage prompts use
    them as they would in retrieval.
    """
    abstasks = require("mteb.abstasks", "eval", "Evaluating with mteb")
    types = require("mteb.types", "eval", "Evaluating with mteb")
    return make_single_config_mteb_task(
        task_dir, PAIR_CLASSIFICATION, abstasks.AbsTaskPairClassification,
        {"input1_prompt_type": types.PromptType.query, "input2_prompt_type": types.PromptType.document},
        name=name, revision=revision, category="t2t", annotations_creators="LM-generated",
    )
