"""Write a retrieval task in the MTEB v2 / Hugging Face layout, with its dataset card.

Layout of ``<out_dir>/``::

    corpus/test-00000-of-00001.parquet    id, title, text           (config "corpus")
    queries/test-00000-of-00001.parquet   id, text                  (config "queries")
    qrels/test-00000-of-00001.parquet     query-id, corpus-id, score (config "default")
    top_ranked/test-00000-of-00001.parquet query-id, corpus-ids       (config "top_ranked"; reranking tasks only)
    README.md                             dataset card; its YAML ``configs:`` tell `datasets` and mteb where each
                                          config's files are
    task.json                             TaskInfo + counts; written last, so its presence means "complete"

This is the layout mteb v2's ``RetrievalDatasetLoader`` reads: ``load_dataset(path, "corpus")``,
``load_dataset(path, "queries")`` and ``load_dataset(path, "default")`` for the qrels, split ``test``. When
the card lists a ``top_ranked`` config, mteb also loads it and the task becomes a reranking task: each query
is scored on its own candidate list only (mteb 2.x: an ``AbsTaskRetrieval`` with ``type="Reranking"``).

The names of this layout (configs, schemas, split, file names) live in ``layout``; compiling a written task
for mteb is ``mteb_task.compile_task``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from ..engine.rundir import atomic_write_json, atomic_write_parquet, atomic_write_text
from ..errors import InputError, QualityError
from .info import TaskInfo
from .layout import (
    CONFIGS,
    MAIN_SCORE,
    SCHEMAS,
    SHARD_NAME,
    SPLIT,
    TASK_JSON,
    TOP_RANKED,
    duplicates,
    first_few,
    shard_path,
    task_type,
    written_configs,
)

log = logging.getLogger(__name__)


def write_retrieval_task(
    out_dir: Path,
    corpus: pa.Table,
    queries: pa.Table,
    qrels: pa.Table,
    info: TaskInfo,
    top_ranked: pa.Table | None = None,
) -> Path:
    """Validate a retrieval task and write it under ``out_dir``; returns ``out_dir``.

    corpus: columns ``id``, ``text`` and optionally ``title`` (missing or null titles become "").
    queries: columns ``id``, ``text``.
    qrels: columns ``query-id``, ``corpus-id``, ``score`` (integer grade; > 0 means relevant).
    top_ranked: columns ``query-id``, ``corpus-ids`` (list of corpus ids), one row per query. When given, the
        task is a reranking task: models order each query's candidates instead of searching the corpus.
    Extra columns are dropped. Raises QualityError, naming the first offending ids, when a qrel points at a
    missing document or query, a query has no relevant document, a text is empty, an id repeats, or a
    candidate list is unusable (see ``check_top_ranked``).
    """
    out_dir = Path(out_dir)
    tables = {
        "corpus": _conform(corpus, "corpus"),
        "queries": _conform(queries, "queries"),
        "default": _conform(qrels, "default"),
    }
    if top_ranked is not None:
        tables[TOP_RANKED] = _conform(top_ranked, TOP_RANKED)
    check_task(tables["corpus"], tables["queries"], tables["default"], tables.get(TOP_RANKED))
    counts = task_counts(tables["corpus"], tables["queries"], tables["default"], tables.get(TOP_RANKED))

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
    if TOP_RANKED not in tables:
        # A retrieval task rewritten over a former reranking task: its candidate lists no longer apply.
        for stale in shard_path(out_dir, TOP_RANKED).parent.glob(f"{SPLIT}-*.parquet"):
            stale.unlink()
    num_bytes = {config: table.nbytes for config, table in tables.items()}
    atomic_write_text(out_dir / "README.md", render_card(info, counts, num_bytes))
    atomic_write_json(out_dir / TASK_JSON, task_record(info, counts))
    log.info(
        "wrote %s task %s to %s: %d documents, %d queries, %d qrels",
        task_type(counts).lower(), info.name, out_dir, counts["corpus"], counts["queries"], counts["qrels"],
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


def _empty_ids(table: pa.Table) -> list[str]:
    ids = table.column("id").to_pylist()
    texts = table.column("text").to_pylist()
    return [i for i, t in zip(ids, texts) if t is None or not t.strip()]


def check_task(corpus: pa.Table, queries: pa.Table, qrels: pa.Table, top_ranked: pa.Table | None = None) -> None:
    """The rules every written task obeys. The first rule broken raises QualityError in one line.

    top_ranked: the candidate lists of a reranking task, checked by ``check_top_ranked`` after the rest.
    """
    corpus_ids = corpus.column("id").to_pylist()
    query_ids = queries.column("id").to_pylist()
    if corpus.num_rows == 0:
        raise QualityError("the corpus is empty")
    if queries.num_rows == 0:
        raise QualityError("there are no queries")
    for name, ids in (("corpus", corpus_ids), ("queries", query_ids)):
        if None in ids or "" in ids:
            raise QualityError(f"{name} has {sum(1 for i in ids if not i)} rows without an id")
        dup = duplicates(ids)
        if dup:
            raise QualityError(f"{name} has {len(set(dup))} duplicate ids: {first_few(dup)}")
    for name, table in (("corpus", corpus), ("queries", queries)):
        empty = _empty_ids(table)
        if empty:
            raise QualityError(f"{name} has {len(empty)} empty texts: {first_few(empty)}")

    q_col = qrels.column("query-id").to_pylist()
    c_col = qrels.column("corpus-id").to_pylist()
    scores = qrels.column("score").to_pylist()
    if None in scores:
        raise QualityError(f"qrels have {scores.count(None)} rows without a score")
    corpus_set, query_set = set(corpus_ids), set(query_ids)
    dangling_docs = [c for c in c_col if c not in corpus_set]
    if dangling_docs:
        raise QualityError(
            f"qrels point at {len(set(dangling_docs))} corpus ids not in the corpus: {first_few(dangling_docs)}"
        )
    dangling_queries = [q for q in q_col if q not in query_set]
    if dangling_queries:
        raise QualityError(
            f"qrels name {len(set(dangling_queries))} query ids not in the queries: {first_few(dangling_queries)}"
        )
    pairs = duplicates(list(zip(q_col, c_col)))
    if pairs:
        raise QualityError(
            f"qrels repeat {len(set(pairs))} (query, document) pairs: {first_few(f'{q}->{c}' for q, c in pairs)}"
        )
    judged = {q for q, s in zip(q_col, scores) if s > 0}
    unjudged = [q for q in query_ids if q not in judged]
    if unjudged:
        raise QualityError(f"{len(unjudged)} queries have no relevant document: {first_few(unjudged)}")
    if top_ranked is not None:
        check_top_ranked(corpus_set, query_ids, qrels, top_ranked)


def check_top_ranked(corpus_ids: Iterable[str], query_ids: Iterable[str], qrels: pa.Table, top_ranked: pa.Table) -> None:
    """The rules of a reranking task's candidate lists; the first one broken raises QualityError in one line.

    Each query has exactly one list; every id in a list is a corpus document, listed once; and each list
    holds at least one of its query's relevant documents. mteb scores a query only on its list, so a query
    without a list (mteb warns and scores it 0) or whose list misses every positive cannot be scored.
    """
    corpus_set = set(corpus_ids)
    query_ids = list(query_ids)
    query_set = set(query_ids)
    t_queries = top_ranked.column("query-id").to_pylist()
    t_lists = [lst or [] for lst in top_ranked.column("corpus-ids").to_pylist()]
    if None in t_queries or "" in t_queries:
        raise QualityError(f"top_ranked has {sum(1 for q in t_queries if not q)} rows without a query id")
    dup = duplicates(t_queries)
    if dup:
        raise QualityError(f"top_ranked lists {len(set(dup))} queries more than once: {first_few(dup)}")
    unknown_queries = [q for q in t_queries if q not in query_set]
    if unknown_queries:
        raise QualityError(
            f"top_ranked names {len(unknown_queries)} query ids not in the queries: {first_few(unknown_queries)}"
        )
    listed = set(t_queries)
    missing = [q for q in query_ids if q not in listed]
    if missing:
        raise QualityError(f"{len(missing)} queries have no top_ranked candidate list: {first_few(missing)}")
    unknown_docs = [c for lst in t_lists for c in lst if c not in corpus_set]
    if unknown_docs:
        raise QualityError(
            f"top_ranked names {len(set(unknown_docs))} corpus ids not in the corpus: {first_few(unknown_docs)}"
        )
    repeats = [(q, d) for q, lst in zip(t_queries, t_lists) for d in dict.fromkeys(duplicates(lst))]
    if repeats:
        raise QualityError(
            f"top_ranked repeats documents in the lists of {len({q for q, _ in repeats})} queries: "
            f"{first_few(f'{q}->{d}' for q, d in repeats)}"
        )
    positives: dict[str, set[str]] = {}
    for q, c, s in zip(
        qrels.column("query-id").to_pylist(), qrels.column("corpus-id").to_pylist(), qrels.column("score").to_pylist()
    ):
        if s is not None and s > 0:
            positives.setdefault(q, set()).add(c)
    blind = [q for q, lst in zip(t_queries, t_lists) if not positives.get(q, set()).intersection(lst)]
    if blind:
        raise QualityError(
            f"{len(blind)} top_ranked lists hold none of their query's relevant documents: {first_few(blind)}"
        )


# -- statistics, card, task.json


def task_counts(
    corpus: pa.Table, queries: pa.Table, qrels: pa.Table, top_ranked: pa.Table | None = None
) -> dict[str, Any]:
    """Row counts and lengths for the card and task.json; with candidate lists, their count and sizes."""
    def mean_len(table: pa.Table) -> float:
        lengths = pc.utf8_length(table.column("text"))
        return round(float(pc.mean(lengths).as_py() or 0.0), 1)

    relevant = pc.greater(qrels.column("score"), 0)
    n_relevant = int(pc.sum(relevant).as_py() or 0)
    counts: dict[str, Any] = {
        "corpus": corpus.num_rows,
        "queries": queries.num_rows,
        "qrels": qrels.num_rows,
        "relevant_per_query": round(n_relevant / max(1, queries.num_rows), 3),
        "mean_document_chars": mean_len(corpus),
        "mean_query_chars": mean_len(queries),
    }
    if top_ranked is not None:
        sizes = [len(lst or []) for lst in top_ranked.column("corpus-ids").to_pylist()]
        counts["top_ranked"] = top_ranked.num_rows
        counts["candidates_per_query"] = {
            "min": min(sizes, default=0),
            "mean": round(sum(sizes) / max(1, len(sizes)), 3),
            "max": max(sizes, default=0),
        }
    return counts


def _row_counts(counts: dict[str, Any]) -> dict[str, int]:
    rows = {"corpus": counts["corpus"], "queries": counts["queries"], "default": counts["qrels"]}
    if TOP_RANKED in counts:
        rows[TOP_RANKED] = counts[TOP_RANKED]
    return rows


def _candidates_text(counts: dict[str, Any]) -> str:
    c = counts["candidates_per_query"]
    if c["min"] == c["max"]:
        return str(c["max"])
    return f"{c['mean']:g} on average (min {c['min']}, max {c['max']})"


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
        "type": task_type(counts),
        "main_score": MAIN_SCORE,
        "split": SPLIT,
        "counts": counts,
        "configs": {name: CONFIGS[name][0] + "/" + SHARD_NAME for name in written_configs(counts)},
    }


def _card_header(info: TaskInfo, counts: dict[str, Any], num_bytes: dict[str, int]) -> dict[str, Any]:
    row_counts = _row_counts(counts)
    configs = written_configs(counts)

    def feature(f: pa.Field) -> dict[str, Any]:
        if pa.types.is_list(f.type):
            return {"name": f.name, "list": "string"}  # how `datasets` writes a list of strings
        return {"name": f.name, "dtype": {pa.string(): "string", pa.int64(): "int64"}[f.type]}

    return {
        "language": [info.language],
        "license": info.license,
        "multilinguality": "monolingual",
        "task_categories": ["text-retrieval"] + (["text-ranking"] if TOP_RANKED in counts else []),
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
            for name, folder in ((name, CONFIGS[name][0]) for name in configs)
        ],
        # Features per config, so a reader sees the columns without opening a file.
        "dataset_info": [
            {
                "config_name": name,
                "features": [feature(f) for f in SCHEMAS[name]],
                "splits": [{"name": SPLIT, "num_bytes": num_bytes.get(name, 0), "num_examples": row_counts[name]}],
            }
            for name in configs
        ],
    }


def cell(value: Any) -> str:
    """One Markdown table cell: JSON for dicts and lists, on one line, with '|' escaped."""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = str(value).replace("\n", " ").replace("|", "\\|")
    return text if text else " "


def markdown_table(rows: list[tuple[str, Any]], head: tuple[str, str]) -> str:
    """A two-column Markdown table of ``rows`` under ``head``."""
    lines = [f"| {head[0]} | {head[1]} |", "|---|---|"]
    lines += [f"| {cell(k)} | {cell(v)} |" for k, v in rows]
    return "\n".join(lines)


def render_card(info: TaskInfo, counts: dict[str, Any], num_bytes: dict[str, int] | None = None) -> str:
    """The README.md of a task: a YAML header `datasets` and the Hub read, and a body people read.

    num_bytes: Arrow size of each config's table, which `datasets` expects next to each split's row count.
    """
    header = yaml.safe_dump(_card_header(info, counts, num_bytes or {}), sort_keys=False, allow_unicode=True, width=1000)
    reranking = TOP_RANKED in counts
    facts = [
        ("Task type", task_type(counts)),
        ("Domain", info.domain),
        ("Language", f"{info.language} ({info.mteb_lang()})"),
        ("License", info.license),
        ("Split", SPLIT),
        ("Main score", MAIN_SCORE),
        ("Documents", counts["corpus"]),
        ("Queries", counts["queries"]),
        ("Relevance judgements", counts["qrels"]),
        ("Relevant documents per query", counts["relevant_per_query"]),
        *([("Candidates per query", _candidates_text(counts))] if reranking else []),
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
    ]
    if reranking:
        body += [
            (
                f"This is a reranking task: each query comes with its own list of {_candidates_text(counts)} "
                "candidate documents (config `top_ranked`), and a model is scored on how it orders that list, "
                "not on a search of the whole corpus."
            ),
            "",
        ]
    body += [
        "## Task",
        "",
        markdown_table(facts, ("Field", "Value")),
        "",
        "## Data",
        "",
        "| Config | Columns | Rows | File |",
        "|---|---|---|---|",
    ]
    rows = _row_counts(counts)
    for name in written_configs(counts):
        folder, columns = CONFIGS[name]
        body.append(f"| `{name}` | {', '.join(columns)} | {rows[name]} | `{folder}/{SHARD_NAME}` |")
    body += [
        "",
        "A `score` above 0 marks a relevant document; higher is more relevant."
        + (" `corpus-ids` lists the candidates a model reranks for `query-id`." if reranking else ""),
        "",
        *card_closing(info.provenance, [
            'corpus = load_dataset("<this folder or repo>", "corpus", split="test")',
            'queries = load_dataset("<this folder or repo>", "queries", split="test")',
            'qrels = load_dataset("<this folder or repo>", "default", split="test")',
            *(['top_ranked = load_dataset("<this folder or repo>", "top_ranked", split="test")'] if reranking else []),
        ], "from buildbench.tasks import make_mteb_task", "make_mteb_task"),
    ]
    return f"---\n{header}---\n\n" + "\n".join(body)


def card_closing(provenance: dict, load_lines: list[str], task_import: str, factory: str) -> list[str]:
    """The last sections of every task card: provenance, loading with ``datasets`` (``load_lines``), and
    evaluating with mteb through the task factory ``factory`` (imported by ``task_import``)."""
    return [
        "## Provenance",
        "",
        markdown_table(sorted(provenance.items()), ("Key", "Value")) if provenance else "Not recorded.",
        "",
        "## Usage",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        *load_lines,
        "```",
        "",
        "Evaluate with mteb (v2) through buildbench:",
        "",
        "```python",
        "from pathlib import Path",
        "",
        "import mteb",
        "from sentence_transformers import SentenceTransformer",
        task_import,
        "",
        f'task = {factory}(Path("<this folder>"))',
        'model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")',
        "results = mteb.evaluate(model, tasks=[task], cache=None)",
        "```",
        "",
        "Built with buildbench from domain documents.",
        "",
    ]


# -- generated card sections


def set_card_section(task_dir: Path, key: str, lines: list[str]) -> None:
    """Add or replace one generated section of the dataset card, between ``<!-- buildbench:KEY -->`` and
    ``<!-- /buildbench:KEY -->``; other sections and the rest of the card stay as they are."""
    card = Path(task_dir) / "README.md"
    if not card.exists():
        return
    start, end = f"<!-- buildbench:{key} -->", f"<!-- /buildbench:{key} -->"
    text = card.read_text(encoding="utf-8")
    block = "\n".join([start, *lines, end])
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    atomic_write_text(card, text)
