"""The export formats, each written atomically (a temp file in the same folder, then a rename) and each loadable
with ``datasets.load_dataset``:

- ``sentence-transformers``: ``<split>.parquet`` with columns ``anchor``, ``positive``, ``negative_1`` ..
  ``negative_K`` (the (anchor, positive, negative_1, ..., negative_n) columns sentence-transformers'
  ``MultipleNegativesRankingLoss`` takes; just ``anchor``, ``positive`` for K = 0), and the ids of every row in
  ``ids/<split>.parquet`` (``query_id``, ``positive_id``, ``negative_ids``), kept apart because the trainer
  feeds every column of the training file to the loss. ``load_dataset("parquet", data_files=...)``.
- ``beir``: ``corpus.jsonl`` (``_id``, ``title``, ``text``: the exported passages only), ``queries.jsonl``
  (``_id``, ``text``), ``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score`` with a header; every positive
  of a query) and ``hard_negatives.jsonl`` (``query_id``, ``negative_ids``). ``load_dataset("json", ...)`` and
  ``load_dataset("csv", delimiter="\\t", ...)``.
- ``jsonl``: ``<split>.jsonl``, one line per query in FlagEmbedding's layout, ``{"query", "pos": [...],
  "neg": [...]}``, with ``query_id``, ``pos_ids``, ``neg_ids``. ``load_dataset("json", data_files=...)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pyarrow as pa

from ..engine.rundir import atomic_write_parquet, atomic_write_text
from .triplets import Triplet

SENTENCE_TRANSFORMERS, BEIR, JSONL = "sentence-transformers", "beir", "jsonl"


def _jsonl(rows: Sequence[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def format_files(fmt: str, split: str) -> list[str]:
    """The files a format writes, relative to the export folder, in the order its writer writes them."""
    return {
        SENTENCE_TRANSFORMERS: [f"{split}.parquet", f"ids/{split}.parquet"],
        BEIR: ["corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv", "hard_negatives.jsonl"],
        JSONL: [f"{split}.jsonl"],
    }[fmt]


def negative_columns(k: int) -> list[str]:
    return [f"negative_{n}" for n in range(1, k + 1)]


def write_sentence_transformers(out: Path, split: str, triplets: Sequence[Triplet], k: int,
                                titles: Mapping[str, str]) -> list[str]:
    """``<split>.parquet`` (anchor, positive, negative_1..K) and ``ids/<split>.parquet``; every triplet must
    have at least ``k`` negatives (the first ``k`` are written)."""
    short = [t.query_id for t in triplets if len(t.negatives) < k]
    if short:
        raise ValueError(f"{len(short)} triplets have fewer than {k} negatives (first: {short[0]})")
    columns = {"anchor": [t.query for t in triplets], "positive": [t.positive for t in triplets]}
    for n, name in enumerate(negative_columns(k)):
        columns[name] = [t.negatives[n] for t in triplets]
    table = pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})
    ids = pa.table({
        "query_id": pa.array([t.query_id for t in triplets], pa.string()),
        "positive_id": pa.array([t.positive_id for t in triplets], pa.string()),
        "negative_ids": pa.array([list(t.negative_ids[:k]) for t in triplets], pa.list_(pa.string())),
    })
    files = format_files(SENTENCE_TRANSFORMERS, split)
    atomic_write_parquet(out / files[0], table)
    atomic_write_parquet(out / files[1], ids)
    return files


def write_beir(out: Path, split: str, triplets: Sequence[Triplet], k: int, titles: Mapping[str, str]) -> list[str]:
    """BEIR's corpus, queries and qrels of the exported triplets, and their hard negatives."""
    corpus: dict[str, str] = {}
    for t in triplets:
        for pid, text in zip((*t.positive_ids, *t.negative_ids[:k]), (t.positive, *t.other_positives, *t.negatives)):
            corpus.setdefault(pid, text)
    qrels = "query-id\tcorpus-id\tscore\n" + "".join(f"{t.query_id}\t{pid}\t1\n" for t in triplets
                                                     for pid in t.positive_ids)
    files = format_files(BEIR, split)
    atomic_write_text(out / files[0], _jsonl([{"_id": pid, "title": titles.get(pid, ""), "text": text}
                                              for pid, text in corpus.items()]))
    atomic_write_text(out / files[1], _jsonl([{"_id": t.query_id, "text": t.query} for t in triplets]))
    atomic_write_text(out / files[2], qrels)
    atomic_write_text(out / files[3], _jsonl([{"query_id": t.query_id, "negative_ids": list(t.negative_ids[:k])}
                                              for t in triplets]))
    return files


def write_jsonl(out: Path, split: str, triplets: Sequence[Triplet], k: int, titles: Mapping[str, str]) -> list[str]:
    """``<split>.jsonl`` in FlagEmbedding's layout, with ids."""
    rows = [{"query": t.query, "pos": [t.positive, *t.other_positives], "neg": list(t.negatives[:k]),
             "query_id": t.query_id, "pos_ids": list(t.positive_ids), "neg_ids": list(t.negative_ids[:k])}
            for t in triplets]
    files = format_files(JSONL, split)
    atomic_write_text(out / files[0], _jsonl(rows))
    return files


Writer = Callable[[Path, str, Sequence[Triplet], int, Mapping[str, str]], list[str]]

# name -> (writer, whether every row needs exactly K negatives)
FORMATS: dict[str, tuple[Writer, bool]] = {
    SENTENCE_TRANSFORMERS: (write_sentence_transformers, True),
    BEIR: (write_beir, False),
    JSONL: (write_jsonl, False),
}
