"""The summary of a build on the terminal, from its report.json: stage table, LLM accounting, skipped inputs,
qrels repair, scores per task variant and where the run folder and report are."""

from __future__ import annotations

from ..engine.rundir import RunDir
from ..evaluation.evaluate import format_table


def format_summary(report: dict, rundir: RunDir) -> str:
    lines = [f"\nRun directory: {rundir.root}   wall time {report['wall_seconds']}s",
             f"{'stage':<18} {'seconds':>8} {'in':>6} {'out':>6} {'dropped':>8}  this run"]
    for name, s in report["stages"].items():
        c = s.get("counts") or {}
        this = "skipped (up to date)" if s["this_run"].get("skipped") else f"{s['this_run'].get('seconds', 0)}s"
        lines.append(f"{name:<18} {s.get('seconds') or 0:>8.1f} {c.get('in', ''):>6} {c.get('out', ''):>6} "
                     f"{c.get('dropped', ''):>8}  {this}")
    # Only reading the inputs can fall back to the bundled sample corpus.
    if any((s.get("stats") or {}).get("bundled_sample") for s in report["stages"].values()):
        lines.append("Built from the bundled sample corpus: no --docs given and the Hub is not reachable.")
    llm = report["llm"]
    lines.append(f"LLM calls: {llm['new_calls_this_run']} new this run, {llm['cache_hits_this_run']} from cache, "
                 f"{llm['retries_this_run']} retries, {llm['failures_this_run']} failures "
                 f"({llm['calls_total']} calls in the cache: {llm['tokens_in_total']} tokens in, "
                 f"{llm['tokens_out_total']} out)")
    for item in report["inputs"]["skipped"]:
        lines.append(f"skipped input {item['item_id']}: {item['reason']} ({item['detail']})")
    repair = report.get("qrels_repair") or {}
    if repair:
        cal = repair.get("judge_calibration") or {}
        judge = (f"judge trusted (balanced accuracy {cal.get('balanced_accuracy')})" if repair["judge_trusted"]
                 else f"judge not trusted (balanced accuracy {cal.get('balanced_accuracy')})" if cal.get("controls")
                 else "no judge")
        lines.append(f"Qrels repair: {repair['false_negatives_added']} false negatives added to the qrels, "
                     f"{sum(repair['queries_dropped'].values())} queries dropped, {repair['hard_negatives']} hard "
                     f"negatives kept; {judge}. Per-query decisions: {report.get('audit_log')}")
    for variant, scores in (report.get("task_scores") or {}).items():
        lines += [f"\n{variant}:", format_table(scores)]
    agree = report.get("downsample_agreement") or {}
    if agree.get("spearman_rho") is not None:
        lines.append(f"Downsampled vs full corpus, model ranking agreement: Spearman {agree['spearman_rho']:.3f}, "
                     f"Kendall {agree['kendall_tau']:.3f} over {agree['models']} models")
    lines.append(f"Task: {report['task_dir']}   report: {rundir.report_path}")
    return "\n".join(lines)
