"""update_run_report: a later eval or compare result goes into the run's report.json and report.html."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildbench.errors import InputError
from buildbench.evaluation import evaluate_with_ci
from buildbench.report import update_run_report

from .sample import sample_report


def _write_report(run_dir: Path, report: dict) -> Path:
    path = run_dir / "report.json"
    path.write_text(json.dumps(report), encoding="utf-8")
    return path


def test_stores_the_result_and_renders_the_page(run_dir: Path):
    pytest.importorskip("matplotlib")
    task_dir = run_dir / "task"
    report = sample_report(task_dir.resolve(), validity=False, compare=False)
    path = _write_report(run_dir, report)
    result = evaluate_with_ci(task_dir, ["bm25", "random"], n_boot=100)

    assert update_run_report(task_dir, "validity", result) == path
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert stored["validity"] == json.loads(json.dumps(result))
    assert {k: v for k, v in stored.items() if k != "validity"} == report  # the rest is kept as it was
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "<h2>Diagnostics</h2>" in page and "Bars: mean over queries; whiskers: bootstrap confidence" in page
    bm25 = result["models"]["bm25"]["ndcg_at_10"]
    assert f"{bm25['mean']:.3f} [{bm25['ci_low']:.3f}, {bm25['ci_high']:.3f}]" in page


def test_only_a_runs_retrieval_task_has_a_run_report(run_dir: Path, tmp_path: Path):
    path = _write_report(run_dir, sample_report((run_dir / "task").resolve()))
    before = path.read_bytes()
    other = tmp_path / "elsewhere"
    (other / "task_copy").mkdir(parents=True)
    _write_report(other, {"task_dir": str(other / "task_copy")})
    assert update_run_report(other / "task_copy", "validity", {"k": 10}) is None  # not named task/
    assert json.loads((other / "report.json").read_text(encoding="utf-8")) == {"task_dir": str(other / "task_copy")}
    assert update_run_report(tmp_path / "nothing" / "task", "validity", {"k": 10}) is None  # no report.json
    assert path.read_bytes() == before


def test_a_report_of_another_task_is_left_alone(tmp_path: Path):
    folder = tmp_path / "someone"
    (folder / "task").mkdir(parents=True)
    theirs = {"task_dir": "/somewhere/else/task", "notes": "not written by build-bench"}
    path = _write_report(folder, theirs)
    assert update_run_report(folder / "task", "compare", {"k": 10}) is None
    assert json.loads(path.read_text(encoding="utf-8")) == theirs
    assert not (folder / "report.html").exists()


def test_a_broken_report_is_an_input_error(run_dir: Path):
    (run_dir / "report.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match=r"report\.json is not valid JSON .*; validity not stored"):
        update_run_report(run_dir / "task", "validity", {"k": 10})


def _filter(name: str, n_in: int, kept: int, reasons: dict | None = None, extra: dict | None = None) -> dict:
    return {"name": name, "in": n_in, "kept": kept, "dropped": n_in - kept, "seconds": 0.01,
            "reasons": reasons or {}, "extra": extra or {}}


def test_make_report_lists_the_filters_as_the_manifest_stores_them(tmp_path: Path):
    from buildbench.engine.rundir import RunDir
    from buildbench.pipeline import STAGES
    from buildbench.report import make_report

    rundir = RunDir(tmp_path / "run")
    # The manifest is written with sorted keys: its stages come alphabetically, not in pipeline order.
    manifest = {"stages": {
        "dedup_chunks": {"filters": [_filter("chunk_dedup", 7, 6, {"exact_duplicate": 1})]},
        "filter_documents": {"filters": [
            _filter("doc_dedup", 9, 8, {"near_duplicate": 1}),
            _filter("doc_language", 8, 7, {"wrong_language": 1}, {"detected.de": 1, "detected.en": 7, "mixed": 0})]},
        "filter_queries": {"filters": [
            _filter("query_length", 20, 20),
            _filter("query_language", 20, 19, {"mixed_language": 1}, {"detected.en": 20, "mixed": 1, "undetermined": 3}),
            _filter("query_round_trip", 19, 15, {"source_not_retrieved": 4})]},
    }}
    report = make_report(rundir, manifest, {}, 1.0, STAGES)

    # pipeline order of the stages, then the order each chain ran its filters: no re-sorting
    assert [(f["stage"], f["name"]) for f in report["filters"]] == [
        ("filter_documents", "doc_dedup"), ("filter_documents", "doc_language"), ("dedup_chunks", "chunk_dedup"),
        ("filter_queries", "query_length"), ("filter_queries", "query_language"),
        ("filter_queries", "query_round_trip")]
    assert report["filters"][-1] == {"stage": "filter_queries", **_filter("query_round_trip", 19, 15,
                                                                          {"source_not_retrieved": 4})}
    assert report["languages"] == {"documents": {"en": 7, "de": 1}, "documents_mixed": 0,
                                   "documents_undetermined": 0, "queries": {"en": 20}, "queries_mixed": 1,
                                   "queries_undetermined": 3}
    json.dumps(report)  # report.json is plain JSON


def test_make_report_finds_its_stages_by_what_they_write(tmp_path: Path):
    """Headline counts, skipped inputs, the audit log, the repair and the agreement come from the stages that
    write documents, chunks, queries, final queries, candidates and scores, whatever those stages are called."""
    from buildbench.engine.rundir import RunDir
    from buildbench.engine.runner import drops_dataset
    from buildbench.records import Drop, to_table
    from buildbench.report import make_report

    class S:  # a registry entry: a name and the datasets it writes
        def __init__(self, name: str, *outputs: str):
            self.name, self.outputs = name, outputs

    registry = [S("read", "documents"), S("clean", "documents_clean"), S("split", "chunks_raw"),
                S("write", "raw_queries"), S("keep", "queries"), S("mine", "candidates"),
                S("fix", "final_queries", "audit"), S("score", "scores")]
    rundir = RunDir(tmp_path / "run")
    for stage, drops in (("read", [Drop("read", "a.pdf", "unreadable", "not a PDF")]),
                         ("write", [Drop("write", "q9", "unparseable", "no JSON")]),
                         ("keep", [Drop("query_length", "q2", "too_short", "2 words")])):
        rundir.write(drops_dataset(stage), to_table(drops, Drop))
    manifest = {"stages": {
        "read": {"counts": {"out": 12}}, "clean": {"counts": {"out": 10}},
        "split": {"counts": {"out": 40}, "stats": {"chunks": 41}}, "write": {"counts": {"out": 80}},
        "keep": {"counts": {"out": 64}},
        "mine": {"stats": {"decision.negative": 30, "decision.too_close": 4, "seconds": 2.5}},
        "fix": {"stats": {"false_negatives.duplicate_of_positive": 3, "false_negatives_added": 3,
                          "hard_negatives": 30, "judge_trusted": 1, "judge.balanced_accuracy": 0.9}},
        "score": {"stats": {"agreement.kendall_tau": 1.0, "agreement.models": 3}},
    }}
    report = make_report(rundir, manifest, {}, 3.0, registry)

    assert report["counts"] == {"documents_ingested": 12, "documents_kept": 10, "chunks": 41,
                                "queries_generated": 80}
    assert [d["item_id"] for d in report["inputs"]["skipped"]] == ["a.pdf"]
    assert set(report["dropped_items"]) == {"write", "keep"}  # skipped inputs are not dropped items
    audit = [json.loads(line) for line in Path(report["audit_log"]).read_text(encoding="utf-8").splitlines()]
    assert [(a["query_id"], a["stage"], a["reason"]) for a in audit] == [("q2", "query_length", "too_short"),
                                                                          ("q9", "write", "unparseable")]
    repair = report["qrels_repair"]
    assert repair["false_negatives_by_rule"] == {"duplicate_of_positive": 3} and repair["judge_trusted"] is True
    assert repair["judge_calibration"] == {"balanced_accuracy": 0.9}
    assert repair["mining"] == {"negative": 30, "too_close": 4} and repair["mining_seconds"] == 2.5
    assert report["downsample_agreement"] == {"kendall_tau": 1.0, "models": 3}
    assert report["llm"]["calls_per_accepted_query"] == 0.0  # no calls cached, over the 64 accepted (else None)


def test_make_report_of_a_run_without_filters(tmp_path: Path):
    from buildbench.engine.rundir import RunDir
    from buildbench.pipeline import STAGES
    from buildbench.report import make_report

    report = make_report(RunDir(tmp_path / "run"), {"stages": {"ingest": {"counts": {"out": 3}}}}, {}, 0.5, STAGES)
    assert report["filters"] == [] and report["languages"] == {}
    assert report["counts"] == {"documents_ingested": 3}
