"""End to end through the real CLI, a real LLM (Gemma 3 270M via llama-cpp-python) and real filters.

These are the slow tests (minutes); CI runs them all.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from buildbench.pipeline import PLAN_SHARD_ROWS

pytestmark = [pytest.mark.slow, pytest.mark.llm]

CLI = [sys.executable, "-m", "buildbench.cli"]


def run_cli(*args, check=True, timeout=1500, build=True) -> subprocess.CompletedProcess:
    """The CLI in a subprocess; build commands run without progress bars."""
    extra = ["--no-progress"] if build else []
    proc = subprocess.run([*CLI, *map(str, args), *extra], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"})
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nSTDOUT:\n{proc.stdout}\nSTDERR:\n{proc.stderr[-4000:]}")
    return proc


def report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def fomc_build(tmp_path_factory, fomc_passages):
    out = tmp_path_factory.mktemp("fomc") / "x"
    t0 = time.perf_counter()
    proc = run_cli("--domain", "finance", "--docs", fomc_passages, "--max-docs", 150, "--out", out)
    return out, proc, time.perf_counter() - t0


def test_fomc_build_completes_with_enough_queries(fomc_build):
    out, proc, seconds = fomc_build
    rep = report(out)
    assert seconds < 15 * 60, f"the 150-passage build took {seconds:.0f}s"
    assert rep["stages"]["ingest"]["counts"]["out"] == 150
    kept = rep["stages"]["filter_queries"]["counts"]["out"]
    # The support filter drops the writer's invented terms and queries naming only their statement: on 150
    # FOMC passages about 30 of 220 queries survive (Gemma 270M echoes "FOMC, June 1999" or invents years). The
    # rest must still make a task.
    assert kept >= 15, f"only {kept} queries survived the filters"
    assert rep["llm"]["new_calls_this_run"] == rep["llm"]["calls_total"] > 0
    for model in ("bm25", "minilm"):
        assert 0.0 < rep["scores"][model]["ndcg_at_10"] <= 1.0
    assert "ndcg@10" in proc.stdout  # the score table is printed at the end
    # Every query records its persona and style, and they are spread over the pack.
    q = pq.read_table(out / "data" / "queries")
    assert len(set(q["persona"].to_pylist())) >= 8
    assert set(q["style"].to_pylist()) == {"keyword", "question", "long_form"}
    assert set(q["difficulty"].to_pylist()) == {"easy", "medium", "hard"}


def test_fomc_task_loads_in_datasets(fomc_build):
    import datasets

    out, _, _ = fomc_build
    task = str(out / "task")
    corpus = datasets.load_dataset(task, "corpus", split="test")
    queries = datasets.load_dataset(task, "queries", split="test")
    qrels = datasets.load_dataset(task, "default", split="test")
    assert {"id", "title", "text"} <= set(corpus.column_names)
    assert {"id", "text"} <= set(queries.column_names)
    assert {"query-id", "corpus-id", "score"} <= set(qrels.column_names)
    corpus_ids = set(corpus["id"])
    assert set(qrels["corpus-id"]) <= corpus_ids
    assert set(qrels["query-id"]) == set(queries["id"])
    assert len(queries) >= 15


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")
def test_fomc_task_evaluates_in_mteb(fomc_build):
    import mteb

    from buildbench.engine.embeddings import get_model
    from buildbench.evaluation.evaluate import evaluate_task
    from buildbench.tasks.mteb_task import make_mteb_task

    out, _, _ = fomc_build
    task = make_mteb_task(out / "task", revision="local")
    assert task.metadata.main_score == "ndcg_at_10"
    assert task.metadata.type == "Retrieval"
    assert task.metadata.dataset["revision"] == "local"
    result = mteb.evaluate(get_model("minilm").model, tasks=[task], cache=None, show_progress_bar=False,
                           encode_kwargs={"show_progress_bar": False})
    (task_result,) = result.task_results
    theirs = task_result.scores["test"][0]["ndcg_at_10"]
    ours = evaluate_task(out / "task", ["minilm"])["minilm"]["ndcg_at_10"]
    assert theirs == pytest.approx(ours, abs=0.02)
    assert theirs > 0.05  # far above random on ~100 docs


def test_fomc_false_negatives_are_caught_and_added_to_qrels(fomc_build):
    """FOMC statements repeat paragraphs from meeting to meeting: a query's answer is often in several chunks."""
    out, _, _ = fomc_build
    rep = report(out)
    repair = rep["qrels_repair"]
    added = repair["false_negatives_added"]
    assert added >= 1 and added == sum(repair["false_negatives_by_rule"].values())
    assert repair["mining"]["negative"] > 0 and "too_close" in repair["mining"]
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    adds = {(a["query_id"], a["passage_id"]) for a in audit if a["action"] == "add_qrel"}
    assert len(adds) == added
    qrels = pq.read_table(out / "task" / "qrels")
    pairs = set(zip(qrels["query-id"].to_pylist(), qrels["corpus-id"].to_pylist()))
    assert adds <= pairs
    # Every query dropped anywhere is in the audit with its stage and reason.
    dropped = {d["item_id"] for d in rep["dropped_items"].get("filter_queries", [])}
    assert dropped <= {a["query_id"] for a in audit if a["action"] == "drop_query"}
    # Per-filter numbers and cost are in the report, in funnel order, each drop with its reason.
    filters = {f["name"]: f for f in rep["filters"]}
    for name in ("query_length", "query_copy", "query_grounding", "query_language", "query_dedup",
                 "query_semantic_dedup", "query_round_trip", "query_easiness", "doc_dedup"):
        f = filters[name]
        assert f["in"] == f["kept"] + f["dropped"] and f["seconds"] >= 0
        assert sum(f["reasons"].values()) == f["dropped"]
    order = [f["name"] for f in rep["filters"]]
    assert order.index("doc_dedup") < order.index("query_length") < order.index("query_easiness")
    assert rep["languages"]["queries"]["en"] >= 15


def test_fomc_reranking_and_downsampled_tasks_evaluate_in_mteb(fomc_build):
    import datasets
    import mteb

    from buildbench.engine.embeddings import get_model
    from buildbench.evaluation.evaluate import evaluate_task
    from buildbench.tasks.mteb_task import make_mteb_task

    out, _, _ = fomc_build
    rep = report(out)
    top = datasets.load_dataset(str(out / "task_reranking"), "top_ranked", split="test")
    assert len(top) >= 10 and all(5 <= len(ids) <= 20 for ids in top["corpus-ids"])
    full = datasets.load_dataset(str(out / "task"), "corpus", split="test")
    small = datasets.load_dataset(str(out / "task_downsampled"), "corpus", split="test")
    # On 110 chunks with two queries each almost every chunk is gold, so the downsampled corpus is nearly
    # the full one; the gold documents are always in it.
    gold = set(pq.read_table(out / "task" / "qrels")["corpus-id"].to_pylist())
    assert gold <= set(small["id"]) and len(small) <= len(full)
    tasks = [make_mteb_task(out / "task_reranking"), make_mteb_task(out / "task_downsampled")]
    assert tasks[0].metadata.type == "Reranking" and tasks[1].metadata.type == "Retrieval"
    result = mteb.evaluate(get_model("minilm").model, tasks=tasks, cache=None, show_progress_bar=False,
                           encode_kwargs={"show_progress_bar": False})
    for task_result, folder in zip(result.task_results, ("task_reranking", "task_downsampled")):
        theirs = task_result.scores["test"][0]["ndcg_at_10"]
        ours = evaluate_task(out / folder, ["minilm"])["minilm"]["ndcg_at_10"]
        assert theirs == pytest.approx(ours, abs=0.02), folder
    # A task type beyond retrieval and reranking, scored by mteb in the build.
    assert rep["task_scores"]["pair_classification"]["minilm"]["max_ap"] > 0.5
    assert (out / "report.html").stat().st_size > 50_000
    agreement = rep["downsample_agreement"]
    assert agreement["models"] == 4 and -1.0 <= agreement["spearman_rho"] <= 1.0


def test_fomc_run_publishes_as_a_benchmark_of_its_tasks(fomc_build, tmp_path):
    """The build's tasks and one benchmark manifest, published to a local git hub with a registry."""
    out, _, _ = fomc_build
    draft = json.loads((out / "benchmark.json").read_text())
    assert [t["variant"] for t in draft["tasks"]] == ["retrieval", "reranking", "downsampled"]
    hub = tmp_path / "hub"
    proc = run_cli("publish", out, "--to", f"file://{hub}/acme", "--registry", tmp_path / "registry", build=False)
    names = [t["name"] for t in draft["tasks"]]
    for name in names:
        assert f"acme/{name}: published v1.0.0" in proc.stdout
    assert f"benchmark acme/{draft['name']}: published" in proc.stdout
    from buildbench.hub.local import LocalHub

    manifest = json.loads(LocalHub(hub).read_file(f"acme/{draft['name']}", "benchmark.json", "v1.0.0"))
    assert {t["repo"] for t in manifest["tasks"]} == {f"acme/{n}" for n in names}
    listing = run_cli("list", "--registry", tmp_path / "registry", build=False).stdout
    assert all(n in listing for n in names) and draft["name"] in listing


def test_rerun_is_fast_and_makes_no_llm_calls(fomc_build, fomc_passages):
    out, _, first = fomc_build
    t0 = time.perf_counter()
    proc = run_cli("--domain", "finance", "--docs", fomc_passages, "--max-docs", 150, "--out", out)
    seconds = time.perf_counter() - t0
    rep = report(out)
    assert rep["llm"]["new_calls_this_run"] == 0
    assert all(s["this_run"].get("skipped") for s in rep["stages"].values())
    assert "0 new this run" in proc.stdout
    assert seconds < 60 and seconds < first / 3


def test_default_source_offline_uses_bundled_sample(tmp_path):
    out = tmp_path / "fin"
    proc = run_cli("--domain", "finance", "--max-docs", 6, "--out", out)
    assert "bundled sample corpus" in " ".join(proc.stderr.split())  # the warning (rich wraps lines)
    assert "Built from the bundled sample corpus" in proc.stdout
    rep = report(out)
    assert rep["stages"]["ingest"]["stats"]["bundled_sample"] == 1
    assert rep["stages"]["assemble_task"]["counts"]["out"] > 0
    src = pq.read_table(out / "data" / "documents")["source"].to_pylist()
    assert all("samples/finance" in s for s in src)


def _wait_for(pred, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.5)
    return False


def test_kill_during_generation_then_resume_matches_uninterrupted_run(tmp_path, fomc_passages):
    args = ["--domain", "finance", "--docs", fomc_passages, "--max-docs", 40, "--queries-per-chunk", 2,
            "--seed", 7]
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    run_cli(*args, "--out", clean, "--until", "filter_queries")

    proc = subprocess.Popen([*CLI, *map(str, args), "--out", str(crashed), "--no-progress",
                             "--until", "filter_queries"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shards = crashed / "data" / "raw_queries"
    cache = crashed / "cache" / "llm.sqlite"

    def cached_calls() -> int:
        try:
            with sqlite3.connect(f"file:{cache}?mode=ro", uri=True, timeout=1) as db:
                return db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
        except sqlite3.Error:
            return 0

    # Kill once the first shard is on disk and calls of the second are in the cache, but it is unfinished (a
    # shard makes one call per slot and more for its redrafts: count from when the first shard lands).
    landed: dict[str, int] = {}

    def second_under_way() -> bool:
        if len(list(shards.glob("part-*.parquet"))) != 1:
            return False
        calls = cached_calls()
        return calls > landed.setdefault("calls", max(calls, PLAN_SHARD_ROWS))

    ok = _wait_for(second_under_way, 600)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ok, "never saw a finished shard with the next one under way"
    assert not (shards / "_SUCCESS").exists(), "the run finished before it could be killed"
    before_resume = cached_calls()

    run_cli(*args, "--out", crashed, "--until", "filter_queries")
    rep = report(crashed)
    # Calls made before the kill were replayed from the cache, not redone; only the rest were new.
    assert rep["llm"]["cache_hits_this_run"] > 0
    assert rep["llm"]["new_calls_this_run"] == rep["llm"]["calls_total"] - before_resume

    for name in ("raw_queries", "queries"):
        a = pq.read_table(clean / "data" / name).sort_by("id")
        b = pq.read_table(crashed / "data" / name).sort_by("id")
        assert a.column_names == b.column_names
        assert a.num_rows == b.num_rows
        assert a["id"].to_pylist() == b["id"].to_pylist()  # nothing lost, nothing duplicated
        assert a["text"].to_pylist() == b["text"].to_pylist()
        assert len(set(b["id"].to_pylist())) == b.num_rows


def test_bad_inputs_are_skipped_and_named(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    good = [
        "Northbay Credit Union raised its prime lending rate by 25 basis points to 7.75 percent, citing persistent "
        "core inflation and a tight labour market in the regional economy.",
        "The fund's net expense ratio is 0.42 percent after a contractual fee waiver that runs until April 2027; "
        "without the waiver, the gross expense ratio would be 0.58 percent.",
        "Under the revolving facility, the borrower must keep a maximum net leverage ratio of 3.5 times and an "
        "interest coverage ratio of at least 4.0 times, tested at the end of each fiscal quarter.",
    ]
    for i, text in enumerate(good):
        (docs / f"good{i}.txt").write_text(text, encoding="utf-8")
    (docs / "latin1.txt").write_bytes(
        "Le comité a relevé le taux directeur à 4,25 % afin de contenir l'inflation élevée.".encode("latin-1"))
    (docs / "report.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\nthis is not a real pdf")
    (docs / "blob.txt").write_bytes(bytes(range(256)) * 8)
    (docs / "empty.md").write_text("")
    out = tmp_path / "run"
    proc = run_cli("--domain", "finance", "--docs", docs, "--out", out)
    rep = report(out)
    skipped = {Path(s["item_id"]).name: s["reason"] for s in rep["inputs"]["skipped"]}
    assert skipped == {"report.pdf": "corrupt_pdf", "blob.txt": "binary", "empty.md": "empty"}
    warned = {Path(w["item_id"]).name for w in rep["inputs"]["warnings"]}
    assert "latin1.txt" in warned
    assert "report.pdf" in proc.stdout and "corrupt_pdf" in proc.stdout
    assert rep["stages"]["ingest"]["counts"]["out"] == 4
