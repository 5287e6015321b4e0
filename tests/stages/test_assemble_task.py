"""assemble_task on a tiny corpus: the retrieval and pair-classification tasks in MTEB layout, benchmark.json,
the filter funnel in the provenance (in build order, from the manifest's filter lists), the judge's trust read
from repair_qrels' output; no queries left is a QualityError naming the drop reasons."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from buildbench.errors import QualityError
from buildbench.generators.recipes import JUDGEMENT_SCHEMA
from buildbench.quality.mining import candidates_table
from buildbench.quality.repair import Calibration, audit_table
from buildbench.records import Document, Drop, empty_table, to_table
from buildbench.stages.repair_qrels import HARD_NEGATIVES_SCHEMA, QRELS_SCHEMA, calibration_table, reviews_table

from .conftest import PASSAGES, chunks_table, docs_table, make_cfg, queries_table, run_global

QUERIES = [("q0", "why did policymakers tighten borrowing costs", ["c0"]),
           ("q1", "why are lenders more cautious about business credit", ["c1"]),
           ("q2", "how did dealer constraints affect government bond trading", ["c2"]),
           ("q3", "consumer outlays and housing investment trends", ["c3"]),
           ("q4", "plans for shrinking the central bank balance sheet", ["c4"]),
           ("q5", "how well capitalised are the largest lenders", ["c5"])]


def _inputs(rundir, queries=QUERIES):
    rundir.write("documents_clean", docs_table(PASSAGES))
    rundir.write("chunks", chunks_table([(f"c{i}", d, t) for i, (d, t) in enumerate(PASSAGES)]))
    rundir.write("final_queries", queries_table(queries))
    rundir.write("qrels", pa.Table.from_pylist([{"query-id": q, "corpus-id": c[0], "score": 1} for q, _, c in queries],
                                               schema=QRELS_SCHEMA))
    rundir.write("negatives", empty_table(Document))
    rundir.write("removed_negatives", pa.table({"id": pa.array([], pa.string())}))
    hard = [{"query_id": q, "passage_ids": [f"c{(int(q[1]) + 1) % 6}"]} for q, _, _ in queries]
    rundir.write("hard_negatives", pa.Table.from_pylist(hard, schema=HARD_NEGATIVES_SCHEMA))
    rundir.write("candidates", candidates_table([]))
    rundir.write("audit", audit_table([], stage="repair_qrels"))
    rundir.write("judgements", JUDGEMENT_SCHEMA.empty_table())
    rundir.write("judge_calibration", calibration_table(Calibration(why="no judged positives")))
    rundir.write("reviews", reviews_table([]))


def test_writes_the_tasks_with_their_provenance(tmp_path, rundir):
    _inputs(rundir)
    # The manifest as the runner leaves it: written with sorted keys, so stages come alphabetically.
    rundir.save_manifest({"stages": {
        "filter_queries": {"filters": [{"name": "query_length", "in": 8, "kept": 6, "dropped": 2, "seconds": 0.0,
                                        "reasons": {"too_short": 2}, "extra": {}}]},
        "filter_documents": {"filters": [{"name": "doc_dedup", "in": 7, "kept": 6, "dropped": 1, "seconds": 0.1,
                                          "reasons": {"exact_duplicate": 1}, "extra": {}}]}}})
    cfg = make_cfg(tmp_path / "run", **{"reranking.enabled": False, "extra_tasks.sts": True})
    result, _ = run_global("assemble_task", cfg, rundir)
    tasks = {r["variant"]: r for r in result.outputs["tasks"].to_pylist()}
    assert set(tasks) == {"retrieval", "pair_classification"}  # no STS: the judge is not trusted
    retrieval = rundir.task_dir
    assert tasks["retrieval"]["path"] == str(retrieval) and tasks["retrieval"]["corpus"] == 6
    record = json.loads((retrieval / "task.json").read_text())
    assert record["name"] == "BuildBenchFinanceRetrieval"
    prov = record["provenance"]
    assert list(prov["filters"].items()) == [("doc_dedup", "7 -> 6"), ("query_length", "8 -> 6")]  # build order
    assert prov["seed"] == cfg.seed and prov["queries_per_chunk"] == cfg.queries_per_chunk
    assert prov["generator"].endswith(":" + cfg.domain.generator.model)
    assert prov["human_review"]["reviewed_queries"] == 0 and prov["human_review"]["task_queries"] == 6
    assert json.loads((retrieval / "metadata.json").read_text())["annotations_creators"] == "LM-generated"
    pair = json.loads((rundir.variant_dir("pair_classification") / "task.json").read_text())
    assert pair["name"] == "BuildBenchFinancePairClassification"
    bench = json.loads((rundir.root / "benchmark.json").read_text())
    assert bench["name"] == "BuildBenchFinance"
    assert [t["variant"] for t in bench["tasks"]] == ["retrieval"]  # retrieval layout only
    assert result.stats["queries"] == 6 and result.stats["corpus"] == 6
    assert all(len(r["sha256"]) == 16 for r in tasks.values())


def test_clustering_labels_come_from_the_clean_documents(tmp_path, rundir):
    _inputs(rundir)
    docs = docs_table(PASSAGES).to_pylist()
    for i, d in enumerate(docs):
        d["metadata"] = json.dumps({"section": "policy" if i % 2 else "markets"})
    rundir.write("documents_clean", pa.Table.from_pylist(docs, schema=docs_table(PASSAGES).schema))
    cfg = make_cfg(tmp_path / "run", **{"reranking.enabled": False, "extra_tasks.pair_classification": False,
                                        "extra_tasks.clustering_field": "section"})
    result, _ = run_global("assemble_task", cfg, rundir)
    tasks = {r["variant"]: r for r in result.outputs["tasks"].to_pylist()}
    assert set(tasks) == {"retrieval", "clustering"} and tasks["clustering"]["corpus"] == 6
    # A stage that did not declare documents_clean could not have read it: the registry says it does.
    from .conftest import stage

    assert "documents_clean" in stage("assemble_task").inputs


def test_no_queries_left_names_the_reasons(tmp_path, rundir):
    _inputs(rundir, queries=[])
    rundir.write("_drops/filter_queries", to_table([Drop("query_length", "q9", "too_short"),
                                                   Drop("query_copy", "q8", "copied_from_chunk"),
                                                   Drop("query_copy", "q7", "copied_from_chunk")], Drop))
    with pytest.raises(QualityError, match=r"no queries left to build a task from: every generated query was "
                                           r"dropped \(copied_from_chunk: 2, too_short: 1\)"):
        run_global("assemble_task", make_cfg(tmp_path / "run"), rundir)


def test_a_trusted_judge_read_from_repair_qrels_output_adds_the_sts_task(tmp_path, rundir):
    _inputs(rundir)
    rundir.write("judge_calibration", calibration_table(Calibration(positives=6, controls=6, trusted=True,
                                                                    why="trust_judge=always")))
    rows = [{"query_id": q, "passage_id": f"c{j}", "kind": "positive" if j == int(q[1]) else "candidate",
             "label": 3 if j == int(q[1]) else j % 3, "reason": "", "model": "m", "cache_key": "", "backend": "b",
             "prompt_hash": ""} for q, _, _ in QUERIES for j in range(6)]
    rundir.write("judgements", pa.Table.from_pylist(rows, schema=JUDGEMENT_SCHEMA))
    cfg = make_cfg(tmp_path / "run", **{"reranking.enabled": False, "extra_tasks.pair_classification": False})
    result, _ = run_global("assemble_task", cfg, rundir)
    tasks = {r["variant"]: r for r in result.outputs["tasks"].to_pylist()}
    assert set(tasks) == {"retrieval", "sts"} and tasks["sts"]["corpus"] == 36
    assert json.loads((rundir.variant_dir("sts") / "task.json").read_text())["name"] == "BuildBenchFinanceSTS"
