"""The build's summary on the terminal (report.summary.format_summary)."""

from __future__ import annotations

from pathlib import Path

from buildbench.engine.rundir import RunDir
from buildbench.report.summary import format_summary


def report(task_dir: Path, bundled: bool) -> dict:
    return {
        "task_dir": str(task_dir), "wall_seconds": 12.5,
        "stages": {
            "ingest": {"counts": {"in": 0, "out": 9, "dropped": 0}, "seconds": 0.4,
                       "stats": {"bundled_sample": bundled}, "this_run": {"seconds": 0.4}},
            "chunk": {"counts": {"in": 9, "out": 20, "dropped": 0}, "seconds": 1.0, "this_run": {"skipped": True}},
        },
        "llm": {"new_calls_this_run": 3, "cache_hits_this_run": 7, "retries_this_run": 1, "failures_this_run": 0,
                "calls_total": 10, "tokens_in_total": 900, "tokens_out_total": 80},
        "inputs": {"skipped": [{"item_id": "bad.pdf", "reason": "unreadable", "detail": "no text layer"}]},
        "qrels_repair": {"false_negatives_added": 2, "queries_dropped": {"judged_not_relevant": 1, "other": 1},
                         "hard_negatives": 30, "judge_trusted": False,
                         "judge_calibration": {"balanced_accuracy": 0.5, "controls": 8}},
        "audit_log": "run/audit.jsonl",
        "task_scores": {"retrieval": {"bm25": {"ndcg_at_10": 0.61234}}},
        "downsample_agreement": {"spearman_rho": 0.8, "kendall_tau": 0.6667, "models": 3},
    }


def test_summary_lines(tmp_path: Path):
    rundir = RunDir(tmp_path / "run", claim=False)
    lines = format_summary(report(rundir.task_dir, bundled=False), rundir).splitlines()
    assert lines[1] == f"Run directory: {tmp_path / 'run'}   wall time 12.5s"
    assert lines[3].split() == ["ingest", "0.4", "0", "9", "0", "0.4s"]
    assert lines[4].split()[:5] == ["chunk", "1.0", "9", "20", "0"] and lines[4].endswith("skipped (up to date)")
    text = "\n".join(lines)
    assert "bundled sample corpus" not in text
    assert "LLM calls: 3 new this run, 7 from cache, 1 retries, 0 failures (10 calls in the cache" in text
    assert "skipped input bad.pdf: unreadable (no text layer)" in text
    assert ("Qrels repair: 2 false negatives added to the qrels, 2 queries dropped, 30 hard negatives kept; judge "
            "not trusted (balanced accuracy 0.5). Per-query decisions: run/audit.jsonl") in text
    assert "\nretrieval:" in text and "bm25" in text and "0.6123" in text
    assert "Spearman 0.800, Kendall 0.667 over 3 models" in text
    assert lines[-1] == f"Task: {rundir.task_dir}   report: {rundir.report_path}"
    assert "Built from the bundled sample corpus" in format_summary(report(rundir.task_dir, bundled=True), rundir)
