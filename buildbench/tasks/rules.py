"""Quality rules of a written task, mirroring the checks MTEB applies to the tasks it accepts.

``check_quality_rules`` runs every rule on the Parquet files of a task folder (no mteb needed) and returns one
``RuleResult`` per rule; ``enforce_quality_rules`` raises QualityError naming every failing rule in one line.

Rules:

- ``empty_splits``: corpus, queries and qrels (and top_ranked, if any) each have rows in the test split;
- ``min_text_length``: no corpus or query text is empty or shorter than ``MIN_TEXT_CHARS`` after strip;
- ``duplicate_corpus_texts`` / ``duplicate_query_texts``: at most ``MAX_DUPLICATE_FRACTION`` of the texts
  repeat an earlier text (compared after strip, as mteb's own ``deduplicate`` filter does);
- ``relevant_document``: every query has a qrel with score > 0 (mteb cannot score a query without one);
- ``dangling_qrels``: every qrel names a known query and a known document (mteb's descriptive statistics
  count these as ``num_missing_query_ids`` / ``num_missing_corpus_ids``);
- ``top_ranked_ids``: a reranking task's candidate lists name known queries and documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputError, QualityError
from .layout import CONFIGS, SPLIT, TOP_RANKED, first_few, read_task_record

MIN_TEXT_CHARS = 3
MAX_DUPLICATE_FRACTION = 0.01


@dataclass(frozen=True)
class RuleResult:
    rule: str
    passed: bool
    message: str


def _read(task_dir: Path, config: str) -> pa.Table | None:
    """The test split of one config, or None when it has no Parquet shard."""
    folder, columns = CONFIGS[config]
    paths = sorted((Path(task_dir) / folder).glob(f"{SPLIT}-*.parquet"))
    if not paths:
        return None
    tables = [pq.read_table(p) for p in paths]
    table = pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
    present = [c for c in columns if c in table.column_names]
    return table.select(present)


def _has_top_ranked(task_dir: Path) -> bool:
    """task.json decides when present (a stale folder under a retrieval task is ignored); else the shards."""
    try:
        return read_task_record(task_dir).get("type") == "Reranking"
    except InputError:
        return _read(task_dir, TOP_RANKED) is not None


def _column(table: pa.Table | None, name: str) -> list:
    if table is None or name not in table.column_names:
        return []
    return table.column(name).to_pylist()


def _pct(n: int, total: int) -> str:
    return f"{100.0 * n / max(1, total):.1f}%"


def _rule_empty(tables: dict[str, pa.Table | None]) -> RuleResult:
    problems = []
    for config, table in tables.items():
        folder = CONFIGS[config][0]
        if table is None:
            problems.append(f"{folder} has no {SPLIT} split ({folder}/{SPLIT}-*.parquet)")
        elif table.num_rows == 0:
            problems.append(f"{folder} has 0 rows")
    if problems:
        return RuleResult("empty_splits", False, "empty splits: " + ", ".join(problems))
    return RuleResult("empty_splits", True, "corpus, queries and qrels all have rows")


def _rule_min_length(corpus: pa.Table | None, queries: pa.Table | None) -> RuleResult:
    problems = []
    for name, table in (("corpus", corpus), ("queries", queries)):
        ids, texts = _column(table, "id"), _column(table, "text")
        short = [i for i, t in zip(ids, texts) if t is None or len(t.strip()) < MIN_TEXT_CHARS]
        if short:
            problems.append(
                f"{name}: {len(short)} of {len(ids)} texts are empty or shorter than {MIN_TEXT_CHARS} characters: "
                f"{first_few(short)}"
            )
    if problems:
        return RuleResult("min_text_length", False, "; ".join(problems))
    return RuleResult("min_text_length", True, f"every text has at least {MIN_TEXT_CHARS} characters")


def _rule_duplicates(name: str, table: pa.Table | None) -> RuleResult:
    rule = "duplicate_corpus_texts" if name == "corpus" else "duplicate_query_texts"
    ids, texts = _column(table, "id"), _column(table, "text")
    seen: set[str] = set()
    dup_ids = []
    for i, t in zip(ids, texts):
        key = (t or "").strip()
        if not key:
            continue  # empty texts are min_text_length's business
        if key in seen:
            dup_ids.append(i)
        seen.add(key)
    total = len(ids)
    if total and len(dup_ids) / total > MAX_DUPLICATE_FRACTION:
        return RuleResult(
            rule,
            False,
            f"{name}: {len(dup_ids)} of {total} texts ({_pct(len(dup_ids), total)}) are duplicates "
            f"(> {MAX_DUPLICATE_FRACTION:.0%}): {first_few(dup_ids)}",
        )
    return RuleResult(rule, True, f"{name}: {len(dup_ids)} of {total} texts are duplicates")


def _rule_relevant(queries: pa.Table | None, qrels: pa.Table | None) -> RuleResult:
    query_ids = _column(queries, "id")
    relevant = {q for q, s in zip(_column(qrels, "query-id"), _column(qrels, "score")) if s is not None and s > 0}
    missing = [q for q in query_ids if q not in relevant]
    if missing:
        return RuleResult(
            "relevant_document",
            False,
            f"{len(missing)} of {len(query_ids)} queries have no relevant document (score > 0): {first_few(missing)}",
        )
    return RuleResult("relevant_document", True, "every query has a relevant document")


def _rule_dangling(corpus: pa.Table | None, queries: pa.Table | None, qrels: pa.Table | None) -> RuleResult:
    corpus_ids, query_ids = set(_column(corpus, "id")), set(_column(queries, "id"))
    q_col, c_col = _column(qrels, "query-id"), _column(qrels, "corpus-id")
    problems = []
    bad_q = [q for q in q_col if q not in query_ids]
    if bad_q:
        problems.append(
            f"qrels: {len(bad_q)} of {len(q_col)} rows name {len(set(bad_q))} query ids not in the queries: "
            f"{first_few(bad_q)}"
        )
    bad_c = [c for c in c_col if c not in corpus_ids]
    if bad_c:
        problems.append(
            f"qrels: {len(bad_c)} of {len(c_col)} rows name {len(set(bad_c))} corpus ids not in the corpus: "
            f"{first_few(bad_c)}"
        )
    if problems:
        return RuleResult("dangling_qrels", False, "; ".join(problems))
    return RuleResult("dangling_qrels", True, "every qrel names a known query and document")


def _rule_top_ranked(corpus: pa.Table | None, queries: pa.Table | None, top_ranked: pa.Table | None) -> RuleResult:
    corpus_ids, query_ids = set(_column(corpus, "id")), set(_column(queries, "id"))
    t_q = _column(top_ranked, "query-id")
    t_lists = [lst or [] for lst in _column(top_ranked, "corpus-ids")]
    problems = []
    bad_q = [q for q in t_q if q not in query_ids]
    if bad_q:
        problems.append(f"top_ranked: {len(set(bad_q))} query ids not in the queries: {first_few(bad_q)}")
    bad_c = [c for lst in t_lists for c in lst if c not in corpus_ids]
    if bad_c:
        problems.append(f"top_ranked: {len(set(bad_c))} corpus ids not in the corpus: {first_few(bad_c)}")
    if problems:
        return RuleResult("top_ranked_ids", False, "; ".join(problems))
    return RuleResult("top_ranked_ids", True, "every candidate list names known queries and documents")


def check_quality_rules(task_dir: Path) -> list[RuleResult]:
    """Every rule's result for the task in ``task_dir``, read from its Parquet files."""
    task_dir = Path(task_dir)
    tables: dict[str, pa.Table | None] = {config: _read(task_dir, config) for config in ("corpus", "queries", "default")}
    if _has_top_ranked(task_dir):
        tables[TOP_RANKED] = _read(task_dir, TOP_RANKED)
    corpus, queries, qrels = tables["corpus"], tables["queries"], tables["default"]
    results = [
        _rule_empty(tables),
        _rule_min_length(corpus, queries),
        _rule_duplicates("corpus", corpus),
        _rule_duplicates("queries", queries),
        _rule_relevant(queries, qrels),
        _rule_dangling(corpus, queries, qrels),
    ]
    if TOP_RANKED in tables:
        results.append(_rule_top_ranked(corpus, queries, tables[TOP_RANKED]))
    return results


def enforce_quality_rules(task_dir: Path) -> list[RuleResult]:
    """Raise QualityError, in one line naming every failing rule's problem, unless all rules pass."""
    results = check_quality_rules(task_dir)
    failed = [r for r in results if not r.passed]
    if failed:
        messages = "; ".join(" ".join(r.message.split()) for r in failed)
        raise QualityError(f"{Path(task_dir).name} fails {len(failed)} quality rule(s): {messages}")
    return results
