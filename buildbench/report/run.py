"""The report of a run: report.json (built from the manifest and the run directory), audit.jsonl and
report.html; and ``update_run_report``, which adds a later result (``eval``, ``compare``) to a run's report."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .. import __version__
from ..config import BuildConfig
from ..engine.rundir import RunDir, atomic_write_json, atomic_write_text, is_build_bench_folder
from ..engine.stage import Stage, drops_dataset, manifest_filters
from ..engine.stage import stage_writing as writer
from ..errors import InputError, MissingDependencyError
from .html import REPORT_JSON, render_report
from .human_review import human_review
from .query_quality import config_of, query_quality, write_card_section

log = logging.getLogger("buildbench")

# The folder a run writes its retrieval task to (``RunDir.task_dir``): a task folder of this name is a run's.
RUN_TASK_FOLDER = "task"


def render_html(rundir: RunDir, report: dict) -> None:
    """report.html beside report.json, when the task was written and matplotlib is installed."""
    if not rundir.task_dir.exists():
        return
    try:
        path = render_report(rundir.root, report)
        log.info("report: %s", path)
    except MissingDependencyError as exc:
        log.warning("no report.html: %s", exc)


def update_run_report(task_dir: Path, key: str, result: dict) -> Path | None:
    """Store ``result`` under ``key`` in the report.json of the run that holds ``task_dir`` and re-render its
    report.html; returns report.json's path, or None when nothing was stored.

    Only a run's retrieval task (``<run>/task``) has a run report. A report.json that is not that run's (in a
    folder build-bench did not write, naming another task) is left alone; one that is not valid JSON is an
    InputError.
    """
    task_dir = Path(task_dir).resolve()
    if task_dir.name != RUN_TASK_FOLDER:
        return None
    run_dir = task_dir.parent
    report = run_dir / REPORT_JSON
    if not report.exists():
        return None
    try:
        merged = json.loads(report.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{report} is not valid JSON ({exc.msg}); {key} not stored") from None
    names_task = isinstance(merged, dict) and isinstance(merged.get("task_dir"), str) and \
        Path(merged["task_dir"]).resolve() == task_dir
    if not (names_task or (isinstance(merged, dict) and is_build_bench_folder(run_dir))):
        log.info("%s is not the report of the run of %s: %s not stored there", report, task_dir, key)
        return None
    merged[key] = result
    atomic_write_json(report, merged)
    log.info("%s stored in %s", key, report)
    try:
        log.info("report: %s", render_report(run_dir, merged))
    except MissingDependencyError as exc:
        log.warning("no report.html: %s", exc)
    return report


# The report finds the stages it reads by the dataset they write (the registry declares both), so report/ spells
# no stage name: pipeline.py passes its registry in.
DOCUMENTS, KEPT_DOCUMENTS, CHUNKS, GENERATED_QUERIES = "documents", "documents_clean", "chunks_raw", "raw_queries"
ACCEPTED_QUERIES, REPAIRED_QUERIES, CANDIDATES, SCORES = "queries", "final_queries", "candidates", "scores"
# Drops of the stages writing these are about queries: they go to the per-query audit log, with the repair
# decisions (the repair writes its own, richer audit dataset).
QUERY_DATASETS = (GENERATED_QUERIES, "qa_queries", ACCEPTED_QUERIES, "query_checks")


def make_report(rundir: RunDir, manifest: dict, this_run: dict, seconds: float, registry: Sequence[Stage],
                config: BuildConfig | None = None) -> dict:
    """report.json of a run: stages in pipeline order (``registry``, the build's stages), headline counts, what
    each filter kept and dropped (a list, in funnel order), languages, the qrels repair, query quality, LLM
    accounting, scores, validity and every dropped item with its reason. ``config``: the build's, else read from
    the manifest. The query quality also goes into the retrieval task's card, the build's last card section."""
    stage_names = [st.name for st in registry]
    stages = {}
    for name in stage_names:
        entry = manifest.get("stages", {}).get(name)
        if not entry:
            continue
        stages[name] = {"seconds": entry.get("seconds"), "counts": entry.get("counts"),
                        "stats": entry.get("stats", {}), "this_run": this_run.get(name, {"skipped": True}),
                        "throughput": entry.get("throughput")}
    filters = manifest_filters(manifest, registry)
    drops: dict[str, list[dict]] = {}
    for name in stage_names:
        if rundir.has_dataset(drops_dataset(name)):
            rows = rundir.read(drops_dataset(name)).to_pylist()
            if rows:
                drops[name] = rows
    ingest = writer(registry, DOCUMENTS)
    query_stages = [name for name in (writer(registry, d) for d in QUERY_DATASETS) if name]
    quality = query_quality(rundir, config if config is not None else config_of(manifest))
    write_card_section(rundir, quality)
    report = {
        "buildbench_version": __version__,
        "config_hash": manifest.get("config_hash"),
        "wall_seconds": round(seconds, 2),
        "stages": stages,
        "stage_order": list(stages),  # report.json's keys are sorted; the pipeline's order is kept here
        "counts": _headline_counts(stages, registry),
        "llm": _llm_accounting(rundir, this_run, stages, writer(registry, ACCEPTED_QUERIES)),
        "inputs": {
            "skipped": drops.get(ingest, []),
            "warnings": rundir.read("ingest_warnings").to_pylist() if rundir.has_dataset("ingest_warnings") else [],
        },
        "queries": _query_mix(rundir),
        "query_quality": quality,
        "human_review": human_review(rundir, _relevant_label(config if config is not None else config_of(manifest))),
        "drops": {k: _reason_counts(v) for k, v in drops.items()},
        # Every dropped item with its reason; also in data/_drops/<stage>/ as Parquet.
        "dropped_items": {k: v for k, v in drops.items() if k != ingest},
        "filters": filters,
        "languages": _languages(filters),
        "qrels_repair": _repair_summary(_stats(stages, writer(registry, REPAIRED_QUERIES)),
                                        _stats(stages, writer(registry, CANDIDATES))),
        "scores": _scores(rundir).get("retrieval", {}),
        "task_scores": _scores(rundir),
        "downsample_agreement": {k[len("agreement."):]: v for k, v in
                                 _stats(stages, writer(registry, SCORES)).items() if k.startswith("agreement.")},
        "validity": _json_dataset(rundir, "validity"),
        # Written by `build-bench compare RUN/task REFERENCE`; kept across rebuilds of the report.
        "compare": (json.loads((rundir.root / "compare.json").read_text(encoding="utf-8"))
                    if (rundir.root / "compare.json").exists() else {}),
        "task_dir": str(rundir.task_dir),
        "tasks": (rundir.read("tasks").to_pylist() if rundir.has_dataset("tasks") else []),
        "audit_log": str(write_audit_log(rundir, drops, query_stages)),
    }
    return report


def _stats(stages: Mapping[str, dict], name: str | None) -> dict:
    return (stages.get(name) or {}).get("stats") or {} if name else {}


def _out(stages: Mapping[str, dict], name: str | None) -> int | None:
    return ((stages.get(name) or {}).get("counts") or {}).get("out") if name else None


def _headline_counts(stages: Mapping[str, dict], registry: Sequence[Stage]) -> dict[str, int]:
    """The numbers the report page's header shows: documents read and kept, chunks, queries generated."""
    chunker = writer(registry, CHUNKS)
    counts = {"documents_ingested": _out(stages, writer(registry, DOCUMENTS)),
              "documents_kept": _out(stages, writer(registry, KEPT_DOCUMENTS)),
              "chunks": _stats(stages, chunker).get("chunks", _out(stages, chunker)),
              "queries_generated": _out(stages, writer(registry, GENERATED_QUERIES))}
    return {k: v for k, v in counts.items() if v is not None}


def write_audit_log(rundir: RunDir, drops: dict[str, list[dict]], query_stages: Iterable[str]):
    """audit.jsonl: one line per decision about a query (every filter drop of ``query_stages``, every repair
    action), by query; ``decided_by`` says whether the build (rules, filters, the judge) or people decided."""
    rows = []
    for stage in query_stages:
        for d in drops.get(stage, []):
            rows.append({"query_id": d["item_id"], "stage": d["stage"], "action": "drop_query",
                         "reason": d["reason"], "passage_id": "", "detail": d["detail"], "decided_by": "build"})
    if rundir.has_dataset("audit"):
        rows += rundir.read("audit").to_pylist()
    rows.sort(key=lambda r: r["query_id"])
    path = rundir.root / "audit.jsonl"
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def _relevant_label(config: BuildConfig | None) -> int | None:
    return config.domain.repair.relevant_label if config is not None else None


def _json_dataset(rundir: RunDir, name: str) -> dict:
    if not rundir.has_dataset(name):
        return {}
    rows = rundir.read(name)["json"].to_pylist()
    return json.loads(rows[0]) if rows else {}


# The language filters, by name: their "extra" counts texts per detected language ("detected.<code>") and mixed.
LANGUAGE_FILTERS = {"doc_language": "documents", "query_language": "queries"}


def _languages(filters: list[dict]) -> dict[str, dict[str, int] | int]:
    """Detected languages of documents and queries, from the language filters' own counts."""
    out: dict[str, dict[str, int] | int] = {}
    for f in filters:
        kind = LANGUAGE_FILTERS.get(f["name"])
        extra = f.get("extra") or {}
        counts = {k[len("detected."):]: v for k, v in extra.items() if k.startswith("detected.")}
        if kind and counts:
            out[kind] = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
            out[f"{kind}_mixed"] = extra.get("mixed", 0)
            out[f"{kind}_undetermined"] = extra.get("undetermined", 0)
    return out


def _repair_summary(stats: dict, mining: dict) -> dict:
    """The qrels repair's decisions (its stage's stats) and the mining decisions before it."""
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


def _llm_accounting(rundir: RunDir, this_run: dict, stages: dict, accepting: str | None) -> dict:
    """This run's LLM work (zero on a rerun) and what the outputs cost in all (the call cache's contents)."""
    from ..generators.cache import LLMCache

    run: Counter = Counter()
    for st in this_run.values():
        for k, v in st.get("stats", {}).items():
            if k.startswith("llm.") and isinstance(v, (int, float)):
                run[k[4:]] += v
    path = rundir.cache_dir / "llm.sqlite"
    stored = LLMCache(path).totals() if path.exists() else {"calls": 0, "tokens_in": 0, "tokens_out": 0}
    accepted = _out(stages, accepting) or 0
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
