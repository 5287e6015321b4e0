"""Write a clustering task (MTEB v2 "fast" clustering layout) from chunks labelled by a document field.

Each row is one text and its cluster label (e.g. the chunk's document title, or a field of the document's
metadata such as a section or a topic). A model is scored on how well k-means over its embeddings, with as
many clusters as labels, recovers the labels; the main score is mteb's ``v_measure`` (mean over bootstrap
samples).

Layout of ``<out_dir>/``::

    data/test-00000-of-00001.parquet   sentences, labels   (config "default")
    README.md                          dataset card; its YAML ``configs:`` point `datasets` at data/
    task.json                          TaskInfo + type + counts; written last, so its presence means "complete"

This is the layout mteb v2's ``AbsTaskClustering`` reads: ``load_dataset(<folder>)``, split ``test``, one row
per text with ``sentences`` (str) and ``labels`` (str). (The legacy layout, one row per "cluster set" with
lists, is ``AbsTaskClusteringLegacy``'s.) mteb's v2 class embeds only 4% of the rows by default and draws
16,384 texts per bootstrap sample; the class built here embeds every row and draws as many texts per sample as
the task has (``max_documents_per_cluster`` in task.json), which is what a task of a few hundred chunks needs.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import InputError, QualityError, require
from .info import TaskInfo
from .layout import first_few
from .single_config import (
    check_texts,
    make_single_config_mteb_task,
    mean_chars,
    write_single_config_task,
)

log = logging.getLogger(__name__)

CLUSTERING = "Clustering"
CLUSTERING_MAIN_SCORE = "v_measure"
CLUSTERING_SCHEMA = pa.schema([("sentences", pa.string()), ("labels", pa.string())])
MIN_CLUSTER_SIZE = 2
MAX_DOCUMENTS_PER_CLUSTER = 16_384  # mteb's default size of one bootstrap sample
N_EXPERIMENTS = 10  # mteb's default number of bootstrap samples


def labels_from_metadata(chunks: pa.Table, documents: pa.Table, field: str) -> pa.Table:
    """Label each chunk by ``field`` of its document: columns ``id``, ``text``, ``label`` (chunk order).

    field: a column of ``chunks`` (e.g. "title"), else a column of ``documents``, else a key of the documents'
        ``metadata`` JSON; a dotted name ("meta.section") walks nested objects. Chunks are joined to documents
        on ``chunks.doc_id == documents.id``.
    Chunks whose document or value is missing or empty get no row (their count is logged). Raises InputError
    when the field is found nowhere.
    """
    for name in ("id", "text"):
        if name not in chunks.column_names:
            raise InputError(f"chunks table has no '{name}' column (has: {', '.join(chunks.column_names)})")
    ids = chunks.column("id").to_pylist()
    texts = chunks.column("text").to_pylist()
    if field in chunks.column_names:
        values = chunks.column(field).to_pylist()
    else:
        if "doc_id" not in chunks.column_names:
            raise InputError("chunks table has no 'doc_id' column to join documents on")
        if "id" not in documents.column_names:
            raise InputError("documents table has no 'id' column")
        by_doc = _document_values(documents, field)
        values = [by_doc.get(d) for d in chunks.column("doc_id").to_pylist()]
    labels = [_label_text(v) for v in values]
    keep = [i for i, label in enumerate(labels) if label]
    if len(keep) < len(ids):
        log.info("clustering labels: %d of %d chunks have no '%s' and are left out", len(ids) - len(keep), len(ids),
                 field)
    return pa.table(
        {
            "id": pa.array([ids[i] for i in keep], pa.string()),
            "text": pa.array([texts[i] for i in keep], pa.string()),
            "label": pa.array([labels[i] for i in keep], pa.string()),
        }
    )


def _document_values(documents: pa.Table, field: str) -> dict[str, Any]:
    doc_ids = documents.column("id").to_pylist()
    if field in documents.column_names:
        return dict(zip(doc_ids, documents.column(field).to_pylist()))
    if "metadata" not in documents.column_names:
        raise InputError(f"'{field}' is neither a chunk nor a document column, and documents have no metadata")
    out: dict[str, Any] = {}
    found = False
    for doc_id, raw in zip(doc_ids, documents.column("metadata").to_pylist()):
        meta = _parse_metadata(raw)
        value: Any = meta
        for part in field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            found = True
        out[doc_id] = value
    if not found:
        raise InputError(f"no document has '{field}' in its columns or metadata")
    return out


def _parse_metadata(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    try:
        meta = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _label_text(value: Any) -> str | None:
    if value is None or isinstance(value, (list, dict)):
        return None
    text = str(value).strip()
    return text or None


def clustering_table(
    texts: Sequence[str], labels: Sequence[str], min_cluster_size: int = MIN_CLUSTER_SIZE
) -> tuple[pa.Table, dict[str, int]]:
    """The rows of a clustering task and what was dropped; raises QualityError when no task can be made.

    Repeated texts keep their first label (mteb also drops repeats); labels with fewer than
    ``min_cluster_size`` texts are dropped (a singleton cluster says nothing about a model). At least two
    labels must remain.
    """
    if len(texts) != len(labels):
        raise InputError(f"{len(texts)} texts but {len(labels)} labels")
    table = pa.table({"sentences": pa.array(list(texts), pa.string()),
                      "labels": pa.array([None if v is None else str(v) for v in labels], pa.string())})
    check_texts(table, ("sentences",))
    label_list = table.column("labels").to_pylist()
    unlabelled = [i for i, v in enumerate(label_list) if v is None or not v.strip()]
    if unlabelled:
        raise QualityError(f"{len(unlabelled)} texts have no label: rows {first_few(unlabelled)}")
    seen: set[str] = set()
    rows: list[tuple[str, str]] = []
    for text, label in zip(table.column("sentences").to_pylist(), label_list):
        if text in seen:
            continue
        seen.add(text)
        rows.append((text, label))
    sizes = Counter(label for _, label in rows)
    kept_labels = {label for label, n in sizes.items() if n >= min_cluster_size}
    if len(kept_labels) < 2:
        raise QualityError(
            f"a clustering task needs at least 2 labels with {min_cluster_size} or more texts each; "
            f"{len(kept_labels)} of {len(sizes)} labels have that many "
            f"(largest: {', '.join(f'{k!r}={n}' for k, n in sizes.most_common(3)) or 'none'})"
        )
    kept = [(t, label) for t, label in rows if label in kept_labels]
    dropped = {
        "duplicate_texts": len(texts) - len(rows),
        "small_cluster_texts": len(rows) - len(kept),
        "small_clusters": len(sizes) - len(kept_labels),
    }
    out = pa.table(
        {"sentences": pa.array([t for t, _ in kept], pa.string()), "labels": pa.array([lb for _, lb in kept], pa.string())},
        schema=CLUSTERING_SCHEMA,
    )
    return out, dropped


def write_clustering_task(
    out_dir: Path,
    texts: Sequence[str],
    labels: Sequence[str],
    info: TaskInfo,
    min_cluster_size: int = MIN_CLUSTER_SIZE,
) -> Path:
    """Validate labelled texts and write them as a Clustering task; returns ``out_dir``.

    texts, labels: one label per text (e.g. ``labels_from_metadata(...)["text"/"label"]``). See
    ``clustering_table`` for what is dropped and when QualityError is raised (empty text, missing label, fewer
    than 2 labels with ``min_cluster_size`` texts).
    """
    table, dropped = clustering_table(texts, labels, min_cluster_size)
    sizes = Counter(table.column("labels").to_pylist())
    counts: dict[str, Any] = {
        "texts": table.num_rows,
        "labels": len(sizes),
        "texts_per_label": {"min": min(sizes.values()), "mean": round(table.num_rows / len(sizes), 3),
                            "max": max(sizes.values())},
        "mean_text_chars": mean_chars(table, "sentences"),
        "dropped": dropped,
    }
    per_sample = min(table.num_rows, MAX_DOCUMENTS_PER_CLUSTER)
    facts = [
        ("Texts", counts["texts"]),
        ("Labels (clusters)", counts["labels"]),
        ("Texts per label", (f"{counts['texts_per_label']['mean']:g} on average (min {min(sizes.values())}, "
                             f"max {max(sizes.values())})")),
        ("Mean text length (chars)", counts["mean_text_chars"]),
        ("Left out", (f"{dropped['duplicate_texts']} repeated texts, {dropped['small_cluster_texts']} texts of "
                      f"{dropped['small_clusters']} labels with fewer than {min_cluster_size} texts")),
        ("Texts per bootstrap sample", per_sample),
    ]
    explanation = (
        "Each row is a text (`sentences`) and its cluster label (`labels`). A model's embeddings are clustered "
        "with k-means into as many clusters as there are labels, on bootstrap samples of the texts, and the "
        "clusters are compared to the labels with the V-measure (`v_measure`, mean over samples)."
    )
    write_single_config_task(
        out_dir, table, info,
        task_type=CLUSTERING, main_score=CLUSTERING_MAIN_SCORE, counts=counts, facts=facts,
        explanation=explanation, task_categories=["text-classification"], task_ids=["topic-classification"],
        factory="make_mteb_clustering_task",
        extra={"max_documents_per_cluster": per_sample, "n_experiments": N_EXPERIMENTS},
    )
    log.info("wrote clustering task %s to %s: %d texts in %d labels", info.name, out_dir, table.num_rows, len(sizes))
    return Path(out_dir)


def make_mteb_clustering_task(task_dir: Path, name: str | None = None, revision: str = "local"):
    """An mteb v2 ``AbsTaskClustering`` instance over the task written in ``task_dir``.

    Every row is embedded (mteb's default embeds 4%), and each of the bootstrap samples draws as many texts
    as task.json records (with replacement, as mteb does).
    """
    abstasks = require("mteb.abstasks", "eval", "Evaluating with mteb")

    def attrs(record: dict[str, Any]) -> dict[str, Any]:
        texts = int(record.get("counts", {}).get("texts", MAX_DOCUMENTS_PER_CLUSTER))
        return {
            "max_fraction_of_documents_to_embed": None,
            "max_document_to_embed": None,
            "max_documents_per_cluster": int(record.get("max_documents_per_cluster",
                                                        min(texts, MAX_DOCUMENTS_PER_CLUSTER))),
            "n_clusters": int(record.get("n_experiments", N_EXPERIMENTS)),
        }

    return make_single_config_mteb_task(
        task_dir, CLUSTERING, abstasks.AbsTaskClustering, attrs,
        name=name, revision=revision, category="t2c", annotations_creators="derived",
        task_subtypes=["Thematic clustering"],
    )
