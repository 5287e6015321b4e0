"""write_retrieval_task: the folder `datasets` and mteb read, the card, task.json, and the quality rules."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from buildbench.errors import ConfigError, InputError, QualityError
from buildbench.tasks import TaskInfo, check_task, write_retrieval_task
from buildbench.tasks.assemble import size_category

from .taskdata import EASY_PAIRS, DISTRACTORS, easy_tables, make_info


def _card_header(task_dir: Path) -> dict:
    text = (task_dir / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_layout_on_disk(easy_task: Path):
    files = sorted(str(p.relative_to(easy_task)) for p in easy_task.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "corpus/test-00000-of-00001.parquet",
        "qrels/test-00000-of-00001.parquet",
        "queries/test-00000-of-00001.parquet",
        "task.json",
    ]
    assert pq.read_schema(easy_task / "qrels/test-00000-of-00001.parquet").field("score").type == pa.int64()


def test_datasets_loads_each_config(easy_task: Path):
    datasets = pytest.importorskip("datasets")
    n_docs, n_queries = len(EASY_PAIRS) + len(DISTRACTORS), len(EASY_PAIRS)
    expected = {
        "corpus": (["id", "title", "text"], n_docs),
        "queries": (["id", "text"], n_queries),
        "default": (["query-id", "corpus-id", "score"], n_queries),
    }
    for config, (columns, rows) in expected.items():
        ds = datasets.load_dataset(str(easy_task), config)
        assert list(ds.keys()) == ["test"], config
        assert ds["test"].column_names == columns, config
        assert ds["test"].num_rows == rows, config
    corpus = datasets.load_dataset(str(easy_task), "corpus", split="test")
    assert corpus[0] == {"id": "doc0", "title": EASY_PAIRS[0][0], "text": EASY_PAIRS[0][1]}
    qrels = datasets.load_dataset(str(easy_task), "default", split="test")
    assert qrels.features["score"].dtype == "int64"
    assert qrels[3] == {"query-id": "q3", "corpus-id": "doc3", "score": 1}


def test_rewrite_replaces_data_and_datasets_sees_it(tmp_path: Path):
    datasets = pytest.importorskip("datasets")
    corpus, queries, qrels = easy_tables()
    out = write_retrieval_task(tmp_path / "t", corpus, queries, qrels, make_info())
    assert datasets.load_dataset(str(out), "queries", split="test").num_rows == len(EASY_PAIRS)
    stale = out / "queries" / "test-00001-of-00002.parquet"
    pq.write_table(queries, stale)  # as if an older, sharded layout had been written here
    write_retrieval_task(out, corpus, queries.slice(0, 5), qrels.slice(0, 5), make_info())
    assert not stale.exists()
    assert datasets.load_dataset(str(out), "queries", split="test").num_rows == 5
    assert json.loads((out / "task.json").read_text())["counts"]["queries"] == 5
    assert not list(out.rglob("*.tmp"))


def test_card_header_and_body(easy_task: Path):
    header = _card_header(easy_task)
    configs = {c["config_name"]: c["data_files"] for c in header["configs"]}
    assert configs == {
        "corpus": [{"split": "test", "path": "corpus/test-*.parquet"}],
        "queries": [{"split": "test", "path": "queries/test-*.parquet"}],
        "default": [{"split": "test", "path": "qrels/test-*.parquet"}],
    }
    features = {i["config_name"]: [f["name"] for f in i["features"]] for i in header["dataset_info"]}
    assert features == {"corpus": ["id", "title", "text"], "queries": ["id", "text"],
                        "default": ["query-id", "corpus-id", "score"]}
    assert header["license"] == "cc-by-4.0"
    assert header["language"] == ["en"]
    assert header["task_categories"] == ["text-retrieval"]
    assert header["task_ids"] == ["document-retrieval"]
    assert header["size_categories"] == ["n<1K"]
    assert header["tags"] == ["mteb", "buildbench", "general"]
    body = (easy_task / "README.md").read_text(encoding="utf-8").split("---\n", 2)[2]
    assert "# EasyParaphrase" in body
    assert "| Language | en (eng-Latn) |" in body
    assert f"| Documents | {len(EASY_PAIRS) + len(DISTRACTORS)} |" in body
    assert "| generator | hand-written |" in body  # provenance rendered as a table
    assert '| filters | ["none"] |' in body


def test_task_json(easy_task: Path):
    record = json.loads((easy_task / "task.json").read_text())
    assert record["name"] == "EasyParaphrase"
    assert record["eval_langs"] == ["eng-Latn"]
    assert record["main_score"] == "ndcg_at_10" and record["split"] == "test" and record["type"] == "Retrieval"
    assert record["counts"]["corpus"] == len(EASY_PAIRS) + len(DISTRACTORS)
    assert record["counts"]["queries"] == record["counts"]["qrels"] == len(EASY_PAIRS)
    assert record["counts"]["relevant_per_query"] == 1.0
    assert record["provenance"]["generator"] == "hand-written"
    assert TaskInfo.model_validate({k: record[k] for k in TaskInfo.model_fields}).name == "EasyParaphrase"


def test_missing_title_column_becomes_empty(tmp_path: Path):
    corpus = pa.table({"id": ["a", "b"], "text": ["alpha text", "beta text"], "extra": [1, 2]})
    queries = pa.table({"id": ["q"], "text": ["alpha"]})
    qrels = pa.table({"query-id": ["q"], "corpus-id": ["a"], "score": [1]})
    out = write_retrieval_task(tmp_path / "t", corpus, queries, qrels, make_info())
    table = pq.read_table(out / "corpus/test-00000-of-00001.parquet")
    assert table.column_names == ["id", "title", "text"]
    assert table.column("title").to_pylist() == ["", ""]


def test_integer_ids_are_written_as_strings(tmp_path: Path):
    corpus = pa.table({"id": [1, 2], "title": ["", ""], "text": ["alpha", "beta"]})
    queries = pa.table({"id": [10], "text": ["alpha"]})
    qrels = pa.table({"query-id": [10], "corpus-id": [1], "score": [2]})
    out = write_retrieval_task(tmp_path / "t", corpus, queries, qrels, make_info())
    assert pq.read_table(out / "qrels/test-00000-of-00001.parquet").to_pylist() == [
        {"query-id": "10", "corpus-id": "1", "score": 2}
    ]


# -- quality rules: one line, naming the offending ids


def _tables():
    corpus = pa.table({"id": ["d1", "d2", "d3"], "title": ["", "", ""], "text": ["one", "two", "three"]})
    queries = pa.table({"id": ["q1", "q2"], "text": ["first", "second"]})
    qrels = pa.table({"query-id": ["q1", "q2"], "corpus-id": ["d1", "d2"], "score": [1, 1]})
    return corpus, queries, qrels


def _raises(tmp_path: Path, corpus, queries, qrels) -> str:
    with pytest.raises(QualityError) as err:
        write_retrieval_task(tmp_path / "bad", corpus, queries, qrels, make_info())
    msg = str(err.value)
    assert "\n" not in msg
    assert not (tmp_path / "bad").exists()  # nothing is written when a rule fails
    return msg


def test_dangling_qrel(tmp_path: Path):
    corpus, queries, _ = _tables()
    qrels = pa.table({"query-id": ["q1", "q2", "q2"], "corpus-id": ["d1", "d9", "d7"], "score": [1, 1, 1]})
    msg = _raises(tmp_path, corpus, queries, qrels)
    assert msg == "qrels point at 2 corpus ids not in the corpus: d9, d7"


def test_qrel_for_unknown_query(tmp_path: Path):
    corpus, queries, _ = _tables()
    qrels = pa.table({"query-id": ["q1", "q2", "qX"], "corpus-id": ["d1", "d2", "d3"], "score": [1, 1, 1]})
    assert "qX" in _raises(tmp_path, corpus, queries, qrels)


def test_query_without_relevant_doc(tmp_path: Path):
    corpus, queries, _ = _tables()
    # q2 is judged, but only as not relevant: it still has no relevant document.
    qrels = pa.table({"query-id": ["q1", "q2"], "corpus-id": ["d1", "d2"], "score": [1, 0]})
    msg = _raises(tmp_path, corpus, queries, qrels)
    assert msg == "1 queries have no relevant document: q2"


def test_empty_text(tmp_path: Path):
    corpus, queries, qrels = _tables()
    corpus = pa.table({"id": ["d1", "d2", "d3"], "title": ["", "", ""], "text": ["one", "   ", None]})
    msg = _raises(tmp_path, corpus, queries, qrels)
    assert msg == "corpus has 2 empty texts: d2, d3"
    corpus, _, _ = _tables()
    queries = pa.table({"id": ["q1", "q2"], "text": ["", "second"]})
    assert _raises(tmp_path, corpus, queries, qrels) == "queries has 1 empty texts: q1"


def test_duplicate_ids(tmp_path: Path):
    _, queries, qrels = _tables()
    corpus = pa.table({"id": ["d1", "d2", "d1"], "title": ["", "", ""], "text": ["one", "two", "three"]})
    assert _raises(tmp_path, corpus, queries, qrels) == "corpus has 1 duplicate ids: d1"
    corpus, _, _ = _tables()
    queries = pa.table({"id": ["q1", "q2", "q2"], "text": ["a", "b", "c"]})
    assert "queries has 1 duplicate ids: q2" == _raises(tmp_path, corpus, queries, qrels)


def test_first_few_ids_only(tmp_path: Path):
    corpus, queries, _ = _tables()
    qrels = pa.table({"query-id": ["q1", "q2"] + ["q1"] * 8, "corpus-id": ["d1", "d2"] + [f"x{i}" for i in range(8)],
                      "score": [1] * 10})
    assert _raises(tmp_path, corpus, queries, qrels).endswith("x0, x1, x2, x3, x4 (+3 more)")


def test_missing_column_is_an_input_error(tmp_path: Path):
    corpus, queries, qrels = _tables()
    with pytest.raises(InputError, match="qrels|'score'"):
        write_retrieval_task(tmp_path / "t", corpus, queries, qrels.drop(["score"]), make_info())


def test_check_task_accepts_valid_tables():
    check_task(*_tables())


def test_task_info_validation():
    with pytest.raises(ValueError):
        TaskInfo(name="has space", description="", domain="x")
    with pytest.raises(ValueError):
        TaskInfo(name="ok", description="", domain="x", unknown_field=1)
    assert TaskInfo(name="ok", description="", domain="x", language="de").mteb_lang() == "deu-Latn"
    assert TaskInfo(name="ok", description="", domain="x", language="sr", eval_lang="srp-Latn").mteb_lang() == "srp-Latn"
    with pytest.raises(ConfigError, match="eval_lang"):
        TaskInfo(name="ok", description="", domain="x", language="xx").mteb_lang()


def test_size_category():
    assert size_category(999) == "n<1K"
    assert size_category(1000) == "1K<n<10K"
    assert size_category(250_000) == "100K<n<1M"
