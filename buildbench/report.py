"""The report of a run: report.json (built from the manifest and the run directory), audit.jsonl and
report.html."""

from __future__ import annotations

import json
import logging
from collections import Counter

from . import __version__
from .engine.rundir import RunDir, atomic_write_text
from .engine.runner import drops_dataset

log = logging.getLogger("buildbench")


def render_html(rundir: RunDir, report: dict) -> None:
    """report.html beside report.json, when the task was written and matplotlib is installed."""
    from .errors import MissingDependencyError

    if not rundir.task_dir.exists():
        return
    try:
        from .tasks.report_html import render_report

        path = render_report(rundir.root, report)
        log.info("report: %s", path)
    except MissingDependencyError as exc:
        log.warning("no report.html: %s", exc)


def make_report(rundir: RunDir, manifest: dict, this_run: dict, seconds: float, stage_names: list[str]) -> dict:
    """report.json of a run: stages in pipeline order (``stage_names``), what each filter kept and dropped,
    languages, the qrels repair, LLM accounting, scores, validity and every dropped item with its reason."""
    stages = {}
    for name in stage_names:
        entry = manifest.get("stages", {}).get(name)
        if not entry:
            continue
        stages[name] = {"seconds": entry.get("seconds"), "counts": entry.get("counts"),
                        "stats": entry.get("stats", {}), "this_run": this_run.get(name, {"skipped": True})}
    drops: dict[str, list[dict]] = {}
    for name in stage_names:
        if rundir.has_dataset(drops_dataset(name)):
            rows = rundir.read(drops_dataset(name)).to_pylist()
            if rows:
                drops[name] = rows
    report = {
        "buildbench_version": __version__,
        "config_hash": manifest.get("config_hash"),
        "wall_seconds": round(seconds, 2),
        "stages": stages,
        "llm": _llm_accounting(rundir, this_run, stages),
        "inputs": {
            "skipped": drops.get("ingest", []),
            "warnings": rundir.read("ingest_warnings").to_pylist() if rundir.has_dataset("ingest_warnings") else [],
        },
        "queries": _query_mix(rundir),
        "drops": {k: _reason_counts(v) for k, v in drops.items()},
        # Every dropped item with its reason; also in data/_drops/<stage>/ as Parquet.
        "dropped_items": {k: v for k, v in drops.items() if k != "ingest"},
        "filters": filter_table(stages),
        "languages": _languages(stages),
        "qrels_repair": _repair_summary(stages),
        "scores": _scores(rundir).get("retrieval", {}),
        "task_scores": _scores(rundir),
        "downsample_agreement": {k[len("agreement."):]: v for k, v in
                                 stages.get("evaluate", {}).get("stats", {}).items() if k.startswith("agreement.")},
        "validity": _json_dataset(rundir, "validity"),
        # Written by `build-bench compare RUN/task REFERENCE`; kept across rebuilds of the report.
        "compare": (json.loads((rundir.root / "compare.json").read_text(encoding="utf-8"))
                    if (rundir.root / "compare.json").exists() else {}),
        "task_dir": str(rundir.task_dir),
        "tasks": (rundir.read("tasks").to_pylist() if rundir.has_dataset("tasks") else []),
        "audit_log": str(write_audit_log(rundir, drops)),
    }
    return report


# Stages whose drops are about queries: they go to the per-query audit log with the repair decisions.
QUERY_STAGES = ("generate_queries", "generate_qa", "filter_queries", "judge", "repair_qrels")


def write_audit_log(rundir: RunDir, drops: dict[str, list[dict]]):
    """audit.jsonl: one line per decision about a query (every filter drop, every repair action), by query."""
    rows = []
    for stage in QUERY_STAGES:
        if stage == "repair_qrels":
            continue  # its drops are in the repair audit below, with more context
        for d in drops.get(stage, []):
            rows.append({"query_id": d["item_id"], "stage": d["stage"], "action": "drop_query",
                         "reason": d["reason"], "passage_id": "", "detail": d["detail"]})
    if rundir.has_dataset("audit"):
        rows += rundir.read("audit").to_pylist()
    rows.sort(key=lambda r: r["query_id"])
    path = rundir.root / "audit.jsonl"
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def _json_dataset(rundir: RunDir, name: str) -> dict:
    if not rundir.has_dataset(name):
        return {}
    rows = rundir.read(name)["json"].to_pylist()
    return json.loads(rows[0]) if rows else {}


def filter_table(stages: dict) -> dict[str, dict]:
    """Per filter: items in, kept, dropped and seconds (the filter funnel with its cost)."""
    out = {}
    for stage in ("filter_documents", "dedup_chunks", "filter_queries"):
        stats = stages.get(stage, {}).get("stats", {})
        for key in (k for k in stats if k.endswith(".in")):
            name = key[: -len(".in")]
            n_in, dropped = stats[key], stats.get(f"{name}.dropped", 0)
            out[name] = {"in": n_in, "kept": n_in - dropped, "dropped": dropped,
                         "seconds": round(stats.get(f"{name}.seconds", 0.0), 3)}
    return out


def _languages(stages: dict) -> dict[str, dict[str, int]]:
    """Detected languages of documents and queries, from the language filters' counts."""
    out = {}
    for stage, name in (("filter_documents", "doc_language"), ("filter_queries", "query_language")):
        stats = stages.get(stage, {}).get("stats", {})
        prefix = f"{name}.detected."
        counts = {k[len(prefix):]: v for k, v in stats.items() if k.startswith(prefix)}
        if counts:
            out["documents" if stage == "filter_documents" else "queries"] = dict(
                sorted(counts.items(), key=lambda kv: -kv[1]))
            out[f"{'documents' if stage == 'filter_documents' else 'queries'}_mixed"] = stats.get(f"{name}.mixed", 0)
    return out


def _repair_summary(stages: dict) -> dict:
    stats = stages.get("repair_qrels", {}).get("stats", {})
    mining = stages.get("mine_negatives", {}).get("stats", {})
    if not stats:
        return {}
    return {
        "judge_trusted": bool(stats.get("judge_trusted")),
        "judge_calibration": {k[len("judge."):]: v for k, v in stats.items() if k.startswith("judge.")},
        "false_negatives_added": stats.get("false_negatives_added", 0),
        "false_negatives_by_rule": {k.split(".", 1)[1]: v for k, v in stats.items()
                                    if k.startswith("false_negatives.")},
        "queries_dropped": {k.split(".", 1)[1]: v for k, v in stats.items() if k.startswith("queries_dropped.")},
        "not_acted_on": {k.split(".", 1)[1]: v for k, v in stats.items() if k.startswith("not_acted.")},
        "synthetic_negatives_removed": stats.get("synthetic_removed", 0),
        "candidates_excluded": {k.split(".", 1)[1]: v for k, v in stats.items() if k.startswith("excluded.")},
        "hard_negatives": stats.get("hard_negatives", 0),
        "mining": {k.split(".", 1)[1]: v for k, v in mining.items() if k.startswith("decision.")},
        "mining_seconds": mining.get("seconds"),
    }


def _llm_accounting(rundir: RunDir, this_run: dict, stages: dict) -> dict:
    """This run's LLM work (zero on a rerun) and what the outputs cost in all (the call cache's contents)."""
    from .generators.cache import LLMCache

    run: Counter = Counter()
    for st in this_run.values():
        for k, v in st.get("stats", {}).items():
            if k.startswith("llm.") and isinstance(v, (int, float)):
                run[k[4:]] += v
    path = rundir.cache_dir / "llm.sqlite"
    stored = LLMCache(path).totals() if path.exists() else {"calls": 0, "tokens_in": 0, "tokens_out": 0}
    accepted = (stages.get("filter_queries", {}).get("counts") or {}).get("out") or 0
    return {
        "new_calls_this_run": int(run["calls"]),
        "cache_hits_this_run": int(run["cache_hits"]),
        "retries_this_run": int(run["retries"]),
        "failures_this_run": int(run["failures"]),
        "tokens_in_this_run": int(run["tokens_in"]),
        "tokens_out_this_run": int(run["tokens_out"]),
        "calls_total": stored["calls"],
        "tokens_in_total": stored["tokens_in"],
        "tokens_out_total": stored["tokens_out"],
        "calls_per_accepted_query": round(stored["calls"] / accepted, 3) if accepted else None,
    }


def _query_mix(rundir: RunDir) -> dict:
    """Accepted queries (after the filters and the qrels repair) per recipe, persona, style and difficulty."""
    name = "final_queries" if rundir.has_dataset("final_queries") else "queries"
    if not rundir.has_dataset(name):
        return {}
    q = rundir.read(name)
    mix = {"accepted": q.num_rows}
    for col in ("recipe", "persona", "style", "difficulty", "language"):
        if col in q.column_names:
            mix[f"by_{col}"] = dict(Counter(v for v in q[col].to_pylist() if v))
    return mix


def _reason_counts(rows: list[dict]) -> dict[str, int]:
    return dict(Counter(f"{r['stage']}:{r['reason']}" for r in rows))


def _scores(rundir: RunDir) -> dict:
    """task variant -> model -> metric -> value."""
    if not rundir.has_dataset("scores"):
        return {}
    out: dict = {}
    for r in rundir.read("scores").to_pylist():
        out.setdefault(r.get("task", "retrieval"), {}).setdefault(r["model"], {})[r["metric"]] = round(r["value"], 4)
    return out
