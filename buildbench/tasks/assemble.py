"""Write a retrieval task in the MTEB v2 / Hugging Face layout, with its dataset card.

Layout of ``<out_dir>/``::

    corpus/test-00000-of-00001.parquet    id, title, text           (config "corpus")
    queries/test-00000-of-00001.parquet   id, text                  (config "queries")
    qrels/test-00000-of-00001.parquet     query-id, corpus-id, score (config "default")
    README.md                             dataset card; its YAML ``configs:`` tell `datasets` and mteb where each
                                          config's files are
    task.json                             TaskInfo + counts; written last, so its presence means "complete"

This is the layout mteb v2's ``RetrievalDatasetLoader`` reads: ``load_dataset(path, "corpus")``,
``load_dataset(path, "queries")`` and ``load_dataset(path, "default")`` for the qrels, split ``test``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from ..engine.rundir import atomic_write_json, atomic_write_parquet, atomic_write_text
from ..errors import InputError, QualityError
from .info import TaskInfo

log = logging.getLogger(__name__)

SPLIT = "test"
MAIN_SCORE = "ndcg_at_10"

# config name -> (folder, columns). The qrels are the "default" config because that is what mteb loads
# when it asks for relevance judgements.
CONFIGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "corpus": ("corpus", ("id", "title", "text")),
    "queries": ("queries", ("id", "text")),
    "default": ("qrels", ("query-id", "corpus-id", "score")),
}

SCHEMAS: dict[str, pa.Schema] = {
    "corpus": pa.schema([("id", pa.string()), ("title", pa.string()), ("text", pa.string())]),
    "queries": pa.schema([("id", pa.string()), ("text", pa.string())]),
    "default": pa.schema([("query-id", pa.string()), ("corpus-id", pa.string()), ("score", pa.int64())]),
}

TASK_JSON = "task.json"
SHARD_NAME = f"{SPLIT}-00000-of-00001.parquet"


def shard_path(task_dir: Path, config: str) -> Path:
    folder, _ = CONFIGS[config]
    return Path(task_dir) / folder / SHARD_NAME


def write_retrieval_task(out_dir: Path, corpus: pa.Table, queries: pa.Table, qrels: pa.Table, info: TaskInfo) -> Path:
    """Validate a retrieval task and write it under ``out_dir``; returns ``out_dir``.

    corpus: columns ``id``, ``text`` and optionally ``title`` (missing or null titles become "").
    queries: columns ``id``, ``text``.
    qrels: columns ``query-id``, ``corpus-id``, ``score`` (integer grade; > 0 means relevant).
    Extra columns are dropped. Raises QualityError, naming the first offending ids, when a qrel points at a
    missing document or query, a query has no relevant document, a text is empty, or an id repeats.
    """
    out_dir = Path(out_dir)
    tables = {
        "corpus": _conform(corpus, "corpus"),
        "queries": _conform(queries, "queries"),
        "default": _conform(qrels, "default"),
    }
    check_task(tables["corpus"], tables["queries"], tables["default"])
    counts = task_counts(tables["corpus"], tables["queries"], tables["default"])

    # task.json goes first and comes back last: a crash in between leaves a folder that readers refuse.
    (out_dir / TASK_JSON).unlink(missing_ok=True)
    for config, table in tables.items():
        path = shard_path(out_dir, config)
        # The card globs test-*.parquet; a shard left by an older layout would be read as part of this task.
        if path.parent.exists():
            for stale in path.parent.glob(f"{SPLIT}-*.parquet"):
                if stale.name != path.name:
                    stale.unlink()
        atomic_write_parquet(path, table)
    num_bytes = {config: table.nbytes for config, table in tables.items()}
    atomic_write_text(out_dir / "README.md", render_card(info, counts, num_bytes))
    atomic_write_json(out_dir / TASK_JSON, task_record(info, counts))
    log.info(
        "wrote task %s to %s: %d documents, %d queries, %d qrels",
        info.name, out_dir, counts["corpus"], counts["queries"], counts["qrels"],
    )
    return out_dir


# -- validation


def _conform(table: pa.Table, config: str) -> pa.Table:
    """Select and cast the columns of one config; a missing column is an input error, not a quality one."""
    schema = SCHEMAS[config]
    columns = []
    for field in schema:
        if field.name not in table.column_names:
            if config == "corpus" and field.name == "title":
                columns.append(pa.array([""] * table.num_rows, pa.string()))
                continue
            raise InputError(f"{config} table has no '{field.name}' column (has: {', '.join(table.column_names)})")
        col = table.column(field.name)
        if field.name == "title":
            col = pc.fill_null(col.cast(pa.string()), "")
        try:
            col = col.cast(field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(f"{config} column '{field.name}' cannot be read as {field.type}: {exc}") from None
        columns.append(col)
    return pa.Table.from_arrays([c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in columns],
                                schema=schema)


def _first_few(ids: Iterable[Any], n: int = 5) -> str:
    ids = list(dict.fromkeys(ids))  # unique, first-seen order
    shown = ", ".join(repr(i) if not isinstance(i, str) else i for i in ids[:n])
    return shown + (f" (+{len(ids) - n} more)" if len(ids) > n else "")


def _duplicates(values: list) -> list:
    seen, dup = set(), []
    for v in values:
        if v in seen:
            dup.append(v)
        seen.add(v)
    return dup


def _empty_ids(table: pa.Table) -> list[str]:
    ids = table.column("id").to_pylist()
    texts = table.column("text").to_pylist()
    return [i for i, t in zip(ids, texts) if t is None or not t.strip()]


def check_task(corpus: pa.Table, queries: pa.Table, qrels: pa.Table) -> None:
    """The rules every written task obeys. The first rule broken raises QualityError in one line."""
    corpus_ids = corpus.column("id").to_pylist()
    query_ids = queries.column("id").to_pylist()
    if corpus.num_rows == 0:
        raise QualityError("the corpus is empty")
    if queries.num_rows == 0:
        raise QualityError("there are no queries")
    for name, ids in (("corpus", corpus_ids), ("queries", query_ids)):
        if None in ids or "" in ids:
            raise QualityError(f"{name} has {sum(1 for i in ids if not i)} rows without an id")
        dup = _duplicates(ids)
        if dup:
            raise QualityError(f"{name} has {len(set(dup))} duplicate ids: {_first_few(dup)}")
    for name, table in (("corpus", corpus), ("queries", queries)):
        empty = _empty_ids(table)
        if empty:
            raise QualityError(f"{name} has {len(empty)} empty texts: {_first_few(empty)}")

    q_col = qrels.column("query-id").to_pylist()
    c_col = qrels.column("corpus-id").to_pylist()
    scores = qrels.column("score").to_pylist()
    if None in scores:
        raise QualityError(f"qrels have {scores.count(None)} rows without a score")
    corpus_set, query_set = set(corpus_ids), set(query_ids)
    dangling_docs = [c for c in c_col if c not in corpus_set]
    if dangling_docs:
        raise QualityError(
            f"qrels point at {len(set(dangling_docs))} corpus ids not in the corpus: {_first_few(dangling_docs)}"
        )
    dangling_queries = [q for q in q_col if q not in query_set]
    if dangling_queries:
        raise QualityError(
            f"qrels name {len(set(dangling_queries))} query ids not in the queries: {_first_few(dangling_queries)}"
        )
    pairs = _duplicates(list(zip(q_col, c_col)))
    if pairs:
        raise QualityError(
            f"qrels repeat {len(set(pairs))} (query, document) pairs: {_first_few(f'{q}->{c}' for q, c in pairs)}"
        )
    judged = {q for q, s in zip(q_col, scores) if s > 0}
    unjudged = [q for q in query_ids if q not in judged]
    if unjudged:
        raise QualityError(f"{len(unjudged)} queries have no relevant document: {_first_few(unjudged)}")


# -- statistics, card, task.json


def task_counts(corpus: pa.Table, queries: pa.Table, qrels: pa.Table) -> dict[str, Any]:
    def mean_len(table: pa.Table) -> float:
        lengths = pc.utf8_length(table.column("text"))
        return round(float(pc.mean(lengths).as_py() or 0.0), 1)

    relevant = pc.greater(qrels.column("score"), 0)
    n_relevant = int(pc.sum(relevant).as_py() or 0)
    return {
        "corpus": corpus.num_rows,
        "queries": queries.num_rows,
        "qrels": qrels.num_rows,
        "relevant_per_query": round(n_relevant / max(1, queries.num_rows), 3),
        "mean_document_chars": mean_len(corpus),
        "mean_query_chars": mean_len(queries),
    }


def size_category(n: int) -> str:
    """The Hugging Face ``size_categories`` bucket for ``n`` rows."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    for bound, label in bounds:
        if n < bound:
            return label
    return "n>1T" if n > 10**12 else "1B<n<10B"


def task_record(info: TaskInfo, counts: dict[str, Any]) -> dict[str, Any]:
    return {
        **info.model_dump(mode="json"),
        "eval_langs": [info.mteb_lang()],
        "type": "Retrieval",
        "main_score": MAIN_SCORE,
        "split": SPLIT,
        "counts": counts,
        "configs": {name: CONFIGS[name][0] + "/" + SHARD_NAME for name in CONFIGS},
    }


def read_task_record(task_dir: Path) -> dict[str, Any]:
    path = Path(task_dir) / TASK_JSON
    if not path.exists():
        raise InputError(f"{task_dir} is not a complete buildbench task (no {TASK_JSON})")
    return json.loads(path.read_text(encoding="utf-8"))


def _card_header(info: TaskInfo, counts: dict[str, Any], num_bytes: dict[str, int]) -> dict[str, Any]:
    row_counts = {"corpus": counts["corpus"], "queries": counts["queries"], "default": counts["qrels"]}
    dtype = {pa.string(): "string", pa.int64(): "int64"}
    return {
        "language": [info.language],
        "license": info.license,
        "multilinguality": "monolingual",
        "task_categories": ["text-retrieval"],
        "task_ids": ["document-retrieval"],
        "size_categories": [size_category(counts["corpus"])],
        "source_datasets": ["original"],
        "pretty_name": info.name,
        "tags": ["mteb", "buildbench", info.domain],
        "configs": [
            {
                "config_name": name,
                "data_files": [{"split": SPLIT, "path": f"{folder}/{SPLIT}-*.parquet"}],
            }
            for name, (folder, _) in CONFIGS.items()
        ],
        # Features per config, so a reader sees the columns without opening a file.
        "dataset_info": [
            {
                "config_name": name,
                "features": [{"name": f.name, "dtype": dtype[f.type]} for f in SCHEMAS[name]],
                "splits": [{"name": SPLIT, "num_bytes": num_bytes.get(name, 0), "num_examples": row_counts[name]}],
            }
            for name in CONFIGS
        ],
    }


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = str(value).replace("\n", " ").replace("|", "\\|")
    return text if text else " "


def _table(rows: list[tuple[str, Any]], head: tuple[str, str]) -> str:
    lines = [f"| {head[0]} | {head[1]} |", "|---|---|"]
    lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in rows]
    return "\n".join(lines)


def render_card(info: TaskInfo, counts: dict[str, Any], num_bytes: dict[str, int] | None = None) -> str:
    """The README.md of a task: a YAML header `datasets` and the Hub read, and a body people read.

    num_bytes: Arrow size of each config's table, which `datasets` expects next to each split's row count.
    """
    header = yaml.safe_dump(_card_header(info, counts, num_bytes or {}), sort_keys=False, allow_unicode=True, width=1000)
    facts = [
        ("Task type", "Retrieval"),
        ("Domain", info.domain),
        ("Language", f"{info.language} ({info.mteb_lang()})"),
        ("License", info.license),
        ("Split", SPLIT),
        ("Main score", MAIN_SCORE),
        ("Documents", counts["corpus"]),
        ("Queries", counts["queries"]),
        ("Relevance judgements", counts["qrels"]),
        ("Relevant documents per query", counts["relevant_per_query"]),
        ("Mean document length (chars)", counts["mean_document_chars"]),
        ("Mean query length (chars)", counts["mean_query_chars"]),
        ("Revision", info.revision),
    ]
    if info.reference:
        facts.append(("Reference", info.reference))
    body = [
        f"# {info.name}",
        "",
        info.description.strip(),
        "",
        "## Task",
        "",
        _table(facts, ("Field", "Value")),
        "",
        "## Data",
        "",
        "| Config | Columns | Rows | File |",
        "|---|---|---|---|",
    ]
    rows = {"corpus": counts["corpus"], "queries": counts["queries"], "default": counts["qrels"]}
    for name, (folder, columns) in CONFIGS.items():
        body.append(f"| `{name}` | {', '.join(columns)} | {rows[name]} | `{folder}/{SHARD_NAME}` |")
    body += [
        "",
        "A `score` above 0 marks a relevant document; higher is more relevant.",
        "",
        "## Provenance",
        "",
        _table(sorted(info.provenance.items()), ("Key", "Value")) if info.provenance else "Not recorded.",
        "",
        "## Usage",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        'corpus = load_dataset("<this folder or repo>", "corpus", split="test")',
        'queries = load_dataset("<this folder or repo>", "queries", split="test")',
        'qrels = load_dataset("<this folder or repo>", "default", split="test")',
        "```",
        "",
        "Evaluate with mteb (v2) through buildbench:",
        "",
        "```python",
        "from pathlib import Path",
        "",
        "import mteb",
        "from sentence_transformers import SentenceTransformer",
        "from buildbench.tasks import make_mteb_task",
        "",
        'task = make_mteb_task(Path("<this folder>"))',
        'model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")',
        "results = mteb.evaluate(model, tasks=[task], cache=None)",
        "```",
        "",
        "Built with buildbench from domain documents.",
        "",
    ]
    return f"---\n{header}---\n\n" + "\n".join(body)
