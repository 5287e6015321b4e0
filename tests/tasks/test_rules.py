"""Quality rules on a written task folder: every failing rule named, with ids and numbers, in one line."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from buildbench.errors import QualityError
from buildbench.tasks import write_retrieval_task
from buildbench.tasks.layout import SCHEMAS, shard_path
from buildbench.tasks.rules import check_quality_rules, enforce_quality_rules

from .taskdata import easy_tables, make_info

BASE_RULES = {
    "empty_splits",
    "min_text_length",
    "duplicate_corpus_texts",
    "duplicate_query_texts",
    "relevant_document",
    "dangling_qrels",
}

COLORS = ["amber", "cobalt", "crimson", "emerald", "indigo", "ochre", "saffron", "teal", "umber", "violet"]


def _write(task_dir: Path, config: str, rows: dict) -> None:
    path = shard_path(task_dir, config)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(rows, schema=SCHEMAS[config]), path)


def _doc_text(i: int) -> str:
    return f"Warehouse shelf {i} holds {COLORS[i % 10]} crates packed on day {i * 7 % 31 + 1}."


def _write_plain_task(task_dir: Path, docs: list[tuple[str, str]], queries: list[tuple[str, str]],
                      qrels: list[tuple[str, str, int]]) -> Path:
    """A bare MTEB folder (no task.json), written straight to Parquet so nothing is checked on the way."""
    _write(task_dir, "corpus", {"id": [d for d, _ in docs], "title": [""] * len(docs), "text": [t for _, t in docs]})
    _write(task_dir, "queries", {"id": [q for q, _ in queries], "text": [t for _, t in queries]})
    _write(task_dir, "default", {"query-id": [r[0] for r in qrels], "corpus-id": [r[1] for r in qrels],
                                 "score": [r[2] for r in qrels]})
    return task_dir


def _clean_parts(n_docs: int = 100, n_queries: int = 10):
    docs = [(f"d{i}", _doc_text(i)) for i in range(n_docs)]
    queries = [(f"q{i}", f"which shelf holds the crates packed on day {i * 7 % 31 + 1}") for i in range(n_queries)]
    qrels = [(f"q{i}", f"d{i}", 1) for i in range(n_queries)]
    return docs, queries, qrels


def _failed(results) -> dict[str, str]:
    return {r.rule: r.message for r in results if not r.passed}


def test_clean_task_passes_every_rule(easy_task: Path):
    results = check_quality_rules(easy_task)
    assert {r.rule for r in results} == BASE_RULES
    assert all(r.passed for r in results), _failed(results)
    assert enforce_quality_rules(easy_task) == results


def test_clean_bare_folder_passes(tmp_path: Path):
    task = _write_plain_task(tmp_path / "bare", *_clean_parts())
    assert not _failed(check_quality_rules(task))


def test_broken_task_names_each_problem(tmp_path: Path):
    docs, queries, qrels = _clean_parts()
    # 5 of 100 documents repeat an earlier one's text (ignoring surrounding whitespace).
    for i, j in ((3, 0), (7, 1), (11, 2), (15, 4), (19, 5)):
        docs[i] = (f"d{i}", "  " + _doc_text(j) + "\n")
    queries[4] = ("q4", "   ")  # an empty query text
    qrels.append(("q2", "ghost-doc", 1))  # a dangling qrel
    task = _write_plain_task(tmp_path / "broken", docs, queries, qrels)

    failed = _failed(check_quality_rules(task))
    assert set(failed) == {"min_text_length", "duplicate_corpus_texts", "dangling_qrels"}
    with pytest.raises(QualityError) as exc:
        enforce_quality_rules(task)
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith("broken fails 3 quality rule(s): ")
    assert "queries: 1 of 10 texts are empty or shorter than 3 characters: q4" in message
    assert "corpus: 5 of 100 texts (5.0%) are duplicates (> 1%): d3, d7, d11, d15, d19" in message
    assert "qrels: 1 of 11 rows name 1 corpus ids not in the corpus: ghost-doc" in message
    assert message.count("; ") >= 2


def test_more_problems(tmp_path: Path):
    docs, queries, qrels = _clean_parts()
    docs[9] = ("d9", "ok")  # 2 characters
    queries[1] = ("q1", queries[0][1])  # 1 of 10 query texts repeats: 10%
    qrels[3] = ("q3", "d3", 0)  # q3 is judged, but not relevant
    qrels.append(("q-missing", "d5", 1))
    task = _write_plain_task(tmp_path / "more", docs, queries, qrels)

    failed = _failed(check_quality_rules(task))
    assert set(failed) == {"min_text_length", "duplicate_query_texts", "relevant_document", "dangling_qrels"}
    assert failed["min_text_length"] == "corpus: 1 of 100 texts are empty or shorter than 3 characters: d9"
    assert failed["duplicate_query_texts"] == "queries: 1 of 10 texts (10.0%) are duplicates (> 1%): q1"
    assert failed["relevant_document"] == "1 of 10 queries have no relevant document (score > 0): q3"
    assert failed["dangling_qrels"] == "qrels: 1 of 11 rows name 1 query ids not in the queries: q-missing"


def test_one_percent_duplicates_pass(tmp_path: Path):
    docs, queries, qrels = _clean_parts()
    docs[50] = ("d50", docs[49][1])
    task = _write_plain_task(tmp_path / "one", docs, queries, qrels)
    assert not _failed(check_quality_rules(task))


def test_empty_and_missing_splits(tmp_path: Path):
    docs, _, _ = _clean_parts()
    task = tmp_path / "empty"
    _write(task, "corpus", {"id": [d for d, _ in docs], "title": [""] * len(docs), "text": [t for _, t in docs]})
    _write(task, "queries", {"id": [], "text": []})
    failed = _failed(check_quality_rules(task))
    assert failed["empty_splits"] == (
        "empty splits: queries has 0 rows, qrels has no test split (qrels/test-*.parquet)"
    )
    with pytest.raises(QualityError, match="queries has 0 rows"):
        enforce_quality_rules(task)


def test_top_ranked_unknown_ids(tmp_path: Path):
    corpus, queries, qrels = easy_tables()
    n = queries.num_rows
    top = pa.table({"query-id": [f"q{i}" for i in range(n)], "corpus-ids": [[f"doc{i}", "noise0"] for i in range(n)]})
    task = write_retrieval_task(tmp_path / "rr", corpus, queries, qrels, make_info(name="Rr"), top_ranked=top)
    results = check_quality_rules(task)
    assert {r.rule for r in results} == BASE_RULES | {"top_ranked_ids"}
    assert not _failed(results)

    _write(task, "top_ranked", {"query-id": ["q0", "q77"], "corpus-ids": [["doc0", "ghost"], ["doc1"]]})
    failed = _failed(check_quality_rules(task))
    assert failed == {
        "top_ranked_ids": "top_ranked: 1 query ids not in the queries: q77; "
        "top_ranked: 1 corpus ids not in the corpus: ghost"
    }
