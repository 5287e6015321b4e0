"""What each section of the HTML report shows: the data each macro of ``templates/sections.html.j2`` renders.

``<key>_section(...)`` returns the context of the macro named ``<key>``, or None when the report has nothing
for that section (it is then left out). Plots are drawn here (``plots``), the markup is the templates'.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .. import __version__
from . import plots as draw
from .format import duration, get, is_number, label, metric_label, num
from .human_review import human_review_lines
from .query_quality import judge_lines, keyword_only_line, lost_styles

EXAMPLE_QUERIES = 8


class Badge(NamedTuple):
    """A coloured status label in a table cell or heading; ``kind`` is its CSS class: flag, ok or info."""

    kind: str
    text: str


def _table(head: Iterable[str] | None, rows: Iterable[Iterable[Any]], numeric: Iterable[int] = (),
           row_classes: Iterable[str] | None = None, cls: str = "", nowrap: Iterable[int] = ()) -> dict[str, Any]:
    """A table for the ``table`` macro; numbers are written with ``num``. ``numeric``: right-aligned columns."""
    rows = [[c if isinstance(c, Badge) else num(c) if isinstance(c, (int, float)) else c for c in row]
            for row in rows]
    classes = list(row_classes) if row_classes is not None else [""] * len(rows)
    return {"head": list(head) if head is not None else None, "rows": rows, "numeric": set(numeric),
            "nowrap": set(nowrap), "row_classes": classes, "cls": cls}


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(obj, Mapping):
        rows: list[tuple[str, Any]] = []
        for key, value in obj.items():
            rows += _flatten(value, f"{prefix}{label(key)} · " if isinstance(value, Mapping) else f"{prefix}{label(key)}")
        if not obj and prefix:
            rows.append((prefix.rstrip(" ·"), "none"))
        return rows
    if obj is None:
        return [(prefix, "none")]
    if isinstance(obj, list):
        return [(prefix, ", ".join(str(v) for v in obj) or "none")]
    return [(prefix, obj)]


def _kv_table(obj: Mapping[str, Any]) -> dict[str, Any]:
    return _table(None, _flatten(obj), numeric=(1,), cls="kv")


def header_context(run_dir: Path, report: Mapping[str, Any], record: Mapping[str, Any], date: str) -> dict[str, Any]:
    """The page header: the task's name and description, domain, version and date, and the count cards."""
    counts = record.get("counts") or {}
    stages = report.get("stages") or {}
    run = report.get("counts") or {}  # make_report's headline counts of the run
    ingested, kept_docs = run.get("documents_ingested"), run.get("documents_kept")
    chunks, generated = run.get("chunks"), run.get("queries_generated")
    queries = get(report, "queries", "accepted", default=counts.get("queries"))
    llm = report.get("llm") or {}

    cards: list[tuple[str, Any, str]] = []
    if ingested is not None or kept_docs is not None:
        note = f"{num(ingested)} ingested" if ingested is not None and kept_docs is not None else ""
        cards.append(("Documents", kept_docs if kept_docs is not None else ingested, note))
    if chunks is not None:
        cards.append(("Chunks", chunks, f"corpus {num(counts['corpus'])}" if "corpus" in counts else ""))
    if queries is not None:
        cards.append(("Queries", queries, f"{num(generated)} generated" if generated is not None else ""))
    if counts.get("qrels") is not None:
        rel = counts.get("relevant_per_query")
        cards.append(("Qrels", counts["qrels"], f"{rel:.2f} per query" if is_number(rel) else ""))
    if is_number(report.get("wall_seconds")):
        # wall_seconds is this run's; a resumed run skips finished stages, whose recorded times still count.
        total = sum(s.get("seconds") or 0 for s in stages.values() if isinstance(s, Mapping) and is_number(s.get("seconds")))
        note = f"stages total {duration(total)}" if total > report["wall_seconds"] * 1.05 else ""
        cards.append(("Wall time", duration(report["wall_seconds"]), note))
    if llm.get("calls_total") is not None:
        tokens = [llm.get("tokens_in_total"), llm.get("tokens_out_total")]
        note = f"{num(tokens[0])} in / {num(tokens[1])} out tokens" if all(is_number(t) for t in tokens) else ""
        cards.append(("LLM calls", llm["calls_total"], note))

    generator = get(record, "provenance", "generator")
    sub = [f"buildbench {report.get('buildbench_version') or __version__}", date,
           f"generator {generator}" if generator else "",
           f"config {report['config_hash']}" if report.get("config_hash") else ""]
    return {"name": record.get("name") or run_dir.name, "domain": record.get("domain") or get(report, "domain") or "",
            "sub": [s for s in sub if s], "description": record.get("description") or "",
            "cards": [{"k": k, "v": num(v), "n": n} for k, v, n in cards]}


def queries_section(plots: draw.Plots, queries: list[dict[str, Any]], with_prov: bool) -> dict[str, Any] | None:
    if not queries:
        return None
    lengths = np.array([len(str(q["text"]).split()) for q in queries])
    img = draw.query_lengths(plots, queries, lengths, with_prov)
    note = (f"{len(lengths):,} queries · words per query: min {lengths.min()}, median {np.median(lengths):g}, "
            f"mean {lengths.mean():.1f}, max {lengths.max()} (dashed line: median)")
    # Examples spread over the length range, shortest and longest included.
    order = sorted(range(len(queries)), key=lambda i: (lengths[i], str(queries[i]["id"])))
    n = min(EXAMPLE_QUERIES, len(order))
    picks = sorted({order[round(j * (len(order) - 1) / max(n - 1, 1))] for j in range(n)}, key=lambda i: lengths[i])
    extra = [c for c in ("persona", "style", "difficulty") if with_prov and any(queries[i].get(c) for i in picks)]
    rows = [[int(lengths[i]), queries[i]["text"]] + [label(queries[i].get(c) or "") for c in extra] for i in picks]
    table = _table(["words", "example query"] + extra, rows, numeric=(0,), nowrap=range(2, 2 + len(extra)))
    return {"note": note, "img": img, "table": table}


def mix_section(plots: draw.Plots, report: Mapping[str, Any]) -> dict[str, Any] | None:
    q = report.get("queries") or {}
    parts = [(k, t) for k, t in (("by_persona", "persona"), ("by_style", "style (type)"),
                                 ("by_difficulty", "difficulty"), ("by_recipe", "recipe")) if q.get(k)]
    if not parts:
        return None
    accepted = q.get("accepted")
    return {"img": draw.query_mix(plots, q, parts),
            "note": f"{num(accepted)} accepted queries" if accepted is not None else ""}


def funnel_section(plots: draw.Plots, report: Mapping[str, Any]) -> dict[str, Any] | None:
    """report.json's "filters" as listed (stage order, then chain order), grouped by the stage they ran in."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for f in report.get("filters") or []:
        if isinstance(f, Mapping) and f.get("name"):
            groups.setdefault(str(f.get("stage") or "other"), []).append(f)
    if not groups:
        return None
    img = draw.funnel(plots, list(groups.items()))
    rows, classes = [], []
    for stage, filters in groups.items():
        for f in filters:
            reasons = f.get("reasons") if isinstance(f.get("reasons"), Mapping) else {}
            why = ", ".join(f"{label(r)} {c:,}" for r, c in sorted(reasons.items(), key=lambda kv: -kv[1]))
            rows.append([label(stage), label(f["name"]), f.get("in"), f.get("kept"), f.get("dropped"),
                         f.get("seconds"), why])
            classes.append("flag" if (f.get("dropped") or 0) else "")
    table = _table(["stage", "filter", "in", "kept", "dropped", "seconds", "drop reasons"], rows,
                   numeric=(2, 3, 4, 5), row_classes=classes)
    return {"img": img, "table": table}


_REPAIR_HEADLINE = ("hard_negatives", "synthetic_negatives_removed", "judge_trusted", "mining_seconds")


def repair_section(report: Mapping[str, Any]) -> dict[str, Any] | None:
    repair = report.get("qrels_repair")
    if not isinstance(repair, Mapping) or not repair:
        return None
    blocks = []
    headline = []
    if repair.get("false_negatives_added") is not None:
        headline.append(("false negatives added", repair["false_negatives_added"]))
    headline += [(label(key), repair[key]) for key in _REPAIR_HEADLINE if key in repair]
    if headline:
        blocks.append({"title": "Summary", "table": _kv_table(dict(headline))})
    if repair.get("false_negatives_by_rule") is not None:
        rows = [(label(k), v) for k, v in (repair["false_negatives_by_rule"] or {}).items()] or [("none", 0)]
        blocks.append({"title": "False negatives added, by rule", "table": _table(["rule", "added"], rows, numeric=(1,))})
    if isinstance(repair.get("judge_calibration"), Mapping):
        cal = repair["judge_calibration"]
        trusted = repair.get("judge_trusted", cal.get("trusted"))
        blocks.append({"title": "Judge calibration", "table": _kv_table(cal),
                       "badge": Badge("ok", "trusted") if trusted else Badge("flag", "not trusted")})
    if isinstance(repair.get("mining"), Mapping):
        blocks.append({"title": "Mining decisions", "table": _kv_table(repair["mining"])})
    shown = {"false_negatives_added", "false_negatives_by_rule", "judge_calibration", "mining", *_REPAIR_HEADLINE}
    rest = {k: v for k, v in repair.items() if k not in shown}
    if rest:
        blocks.append({"title": "Other decisions", "table": _kv_table(rest)})
    return {"blocks": blocks}


def _pmi(value: Any) -> str:
    return f"{value:+.2f}" if is_number(value) else ""


def query_quality_section(report: Mapping[str, Any]) -> dict[str, Any] | None:
    """report.json's "query_quality" (``query_quality.query_quality``): naming, specificity, judge, repair, sample."""
    qq = report.get("query_quality")
    if not isinstance(qq, Mapping) or not qq.get("queries"):
        return None
    naming = qq.get("naming") or {}
    rows = [(name, f"{get(naming, key, 'share'):.1%}" if is_number(get(naming, key, "share")) else "n/a",
             f"{get(naming, key, 'named', default=0)} / {get(naming, key, 'of', default=0)}")
            for key, name in (("entity", "entity"), ("period", "period (year or quarter)"), ("either", "either"))]
    blocks = [{"title": "Queries naming their document",
               "table": _table(["names its document's", "share", "named / known"], rows, numeric=(1, 2))}]
    styles = qq.get("styles") or []
    if styles:
        rows = [(label(s.get("style") or "none"), s.get("planned", 0), s.get("kept", 0),
                 f"{s['share_kept']:.1%}" if is_number(s.get("share_kept")) else "", s.get("restyled", 0),
                 s.get("final", s.get("kept", 0))) for s in styles]
        block = {"title": "Styles: planned slots and final queries",
                 "table": _table(["style", "planned", "kept in its style", "kept", "written as keyword searches",
                                  "final"], rows, numeric=(1, 2, 3, 4, 5))}
        if lost_styles(styles):
            block["badge"] = Badge("flag", "a style kept no query")
        blocks.append(block)
    dists = [(name, qq.get(key) or {}, share) for key, name, share in (
        ("specificity", "specificity", "share_at_or_below_zero"),
        ("positive_pmi", "positive PMI", "share_below_threshold"))]
    rows = [[name, d.get("n", 0)] + [_pmi(d.get(k)) for k in ("p10", "p25", "median", "p75", "p90")]
            + [f"{d[share]:.1%}" if is_number(d.get(share)) else ""] for name, d, share in dists if d.get("n")]
    if rows:
        blocks.append({"title": "Nats per query token", "table": _table(
            ["", "n", "p10", "p25", "median", "p75", "p90", "≤ 0 / below threshold"], rows, numeric=range(1, 8))})
    judge = qq.get("relevance_judge") or {}
    block = {"title": f"Judge: {judge.get('kind') or 'none'}",
             "table": _table(None, [[line] for line in judge_lines(judge)])}
    if judge.get("in_build"):
        block["badge"] = Badge("ok", "trusted") if judge["in_build"].get("trusted") else Badge("flag", "not trusted")
    blocks.append(block)
    repair = qq.get("repair") or {}
    rows = [("query dropped", label(r), n) for r, n in (repair.get("queries_dropped") or {}).items()]
    rows += [("positive added", label(r), n) for r, n in (repair.get("positives_added") or {}).items()]
    blocks.append({"title": "Qrels repair, by reason",
                   "table": _table(["action", "reason", "count"], rows or [("none", "", 0)], numeric=(2,))})
    sample = [[s.get("text"), label(s.get("persona") or ""), label(s.get("style") or ""), s.get("fact"),
               s.get("positive_text"), _pmi(s.get("specificity"))] for s in qq.get("sample") or []]
    return {
        "note": f"Measured on the {num(qq['queries'])} final queries ({num(naming.get('planned', 0))} planned, "
                f"{num(naming.get('not_planned', 0))} not planned)."
                + (f" {keyword_only_line(qq)}" if qq.get("keyword_only_slots") else ""),
        "blocks": blocks,
        "meanings": [d["meaning"] for _, d, _ in dists if d.get("meaning")],
        "sample": _table(["query", "persona", "style", "fact asked for", "positive passage (start)", "specificity"],
                         sample, numeric=(5,), nowrap=(1, 2)),
    }


def human_review_section(report: Mapping[str, Any]) -> dict[str, Any] | None:
    """report.json's "human_review": people's labels, reviewer agreement, the judge against people, and the
    share of good queries per persona, style, recipe and model."""
    hr = report.get("human_review")
    if not isinstance(hr, Mapping) or not hr:
        return None
    blocks = [{"title": "Labels", "table": _table(None, [[line] for line in human_review_lines(hr)])}]
    judge = hr.get("judge_vs_people") or {}
    if judge.get("matrix"):
        cats = judge.get("categories") or []
        rows = [[f"people: {label(c)}"] + list(r) for c, r in zip(cats, judge["matrix"])]
        blocks.append({"title": "Judge vs people (confusion)",
                       "table": _table([""] + [f"judge: {label(c)}" for c in cats], rows, numeric=range(1, 3))})
    for key, groups in (hr.get("good_share_by") or {}).items():
        # Model names are identifiers (gemma-3-270m-q4_k_m.gguf): shown as written, not prettified.
        rows = [[(v if key == "model" else label(v)) or "(none)", g["labelled"], f"{g['good']:.0%}"]
                for v, g in groups.items()]
        if rows:
            blocks.append({"title": f"Good share by {key}",
                           "table": _table([key, "labelled", "good"], rows, numeric=(1, 2))})
    return {"blocks": blocks}


def languages_section(report: Mapping[str, Any]) -> dict[str, Any] | None:
    langs = report.get("languages")
    if not isinstance(langs, Mapping) or not langs:
        return None
    blocks = []
    for kind in ("documents", "queries"):
        counts = langs.get(kind)
        if isinstance(counts, Mapping):
            rows = [(k, v) for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]
            for key, name in (("mixed", "mixed-language"), ("undetermined", "undetermined (too short or unsure; kept)")):
                value = langs.get(f"{kind}_{key}")
                if value is not None:
                    rows.append((name, value))
            blocks.append({"title": kind, "table": _table(["language", kind], rows, numeric=(1,))})
    return {"blocks": blocks} if blocks else None


def _ci_models(block: Mapping[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    models = block.get("models") if isinstance(block, Mapping) else None
    return {str(m): v for m, v in (models or {}).items() if isinstance(v, Mapping)}


def _metrics_of(models: Mapping[str, Mapping[str, Any]]) -> list[str]:
    seen: list[str] = []
    for scores in models.values():
        for metric in scores:
            if metric not in seen:
                seen.append(metric)
    main = [m for m in seen if m.startswith("ndcg")]
    return main + [m for m in seen if m not in main]


def _ci_text(stat: Any) -> str:
    if not isinstance(stat, Mapping) or not is_number(stat.get("mean")):
        return ""
    low, high = stat.get("ci_low"), stat.get("ci_high")
    if is_number(low) and is_number(high):
        return f"{stat['mean']:.3f} [{low:.3f}, {high:.3f}]"
    return f"{stat['mean']:.3f}"


def scores_section(plots: draw.Plots, report: Mapping[str, Any]) -> dict[str, Any] | None:
    validity = report.get("validity") if isinstance(report.get("validity"), Mapping) else None
    ci_models = _ci_models(validity) if validity else {}
    if ci_models:
        models = {m: {k: v.get("mean") for k, v in s.items() if isinstance(v, Mapping)} for m, s in ci_models.items()}
    else:
        models = {str(m): dict(s) for m, s in (get(report, "task_scores", "retrieval") or report.get("scores") or {}).items()
                  if isinstance(s, Mapping)}
    if not models:
        return None
    metrics = _metrics_of(models)
    names = sorted(models, key=lambda m: -(models[m].get(metrics[0]) or 0.0))
    img = draw.model_scores(plots, models, names, metrics, ci_models)
    if ci_models:
        rows = [[model] + [_ci_text(get(ci_models, model, m)) for m in metrics] for model in names]
        details = [f"task {validity['task']}" if validity.get("task") else "",
                   f"{num(validity['queries'])} queries" if validity.get("queries") is not None else "",
                   f"{num(validity['corpus'])} documents" if validity.get("corpus") is not None else "",
                   f"n_boot = {num(validity['n_boot'])}" if validity.get("n_boot") is not None else ""]
        details = [d for d in details if d]
        note = "Bars: mean over queries; whiskers: bootstrap confidence interval" + (
            f" ({' · '.join(details)})." if details else ".")
    else:
        rows = [[model] + [models[model].get(m) for m in metrics] for model in names]
        note = "Retrieval task scores (no confidence intervals: the validity step has not run)."
    table = _table(["model"] + [metric_label(m) for m in metrics], rows, numeric=range(1, len(metrics) + 1))
    return {"note": note, "img": img, "table": table}


def diagnostics_section(report: Mapping[str, Any]) -> dict[str, Any] | None:
    diagnostics = get(report, "validity", "diagnostics")
    if not isinstance(diagnostics, Mapping):
        return None
    rows, classes = [], []
    items = [(k, v) for k, v in diagnostics.items() if isinstance(v, Mapping)]
    items.sort(key=lambda kv: (not kv[1].get("flag"), str(kv[0])))  # flagged first
    for name, diag in items:
        flagged = bool(diag.get("flag"))
        details = [f"{label(k)} = {num(v) if is_number(v) else v}" for k, v in diag.items()
                   if k not in ("flag", "message") and (is_number(v) or isinstance(v, (str, bool)))]
        rows.append([label(name), Badge("flag", "flagged") if flagged else Badge("ok", "ok"), diag.get("message") or "",
                     "; ".join(details)])
        classes.append("flag" if flagged else "")
    if not rows:
        return None
    n_flag = sum(1 for c in classes if c)
    note = f"{n_flag} of {len(rows)} checks flagged" + (" (highlighted, listed first)." if n_flag else ".")
    return {"note": note, "table": _table(["check", "status", "message", "details"], rows, row_classes=classes)}


def stages_section(report: Mapping[str, Any]) -> dict[str, Any] | None:
    """Each stage's time and throughput (rows of its input per second, where it ran, the Ray tasks of a global
    stage), as the manifest holds them from the run that last ran it; stages this run skipped are marked."""
    stages = report.get("stages")
    if not isinstance(stages, Mapping) or not stages:
        return None
    order = [n for n in report.get("stage_order") or [] if n in stages]
    rows = []
    for name in order + [n for n in stages if n not in order]:
        entry = stages[name]
        if not isinstance(entry, Mapping):
            continue
        work = entry.get("throughput") if isinstance(entry.get("throughput"), Mapping) else {}
        ran = not (entry.get("this_run") or {}).get("skipped", True)
        where = work.get("engine") or ""
        if work.get("workers") and work.get("engine") not in (None, "driver"):
            where += f" x{work['workers']}"
        tasks = work.get("tasks") if isinstance(work.get("tasks"), Mapping) else {}
        if tasks.get("count") and tasks.get("engine") not in (None, "local"):  # pieces handed to Ray tasks
            where += f", {tasks['count']} {tasks['engine']} tasks"
        cells = [entry.get("seconds"), work.get("rows"), work.get("rows_per_second"), work.get("shards")]
        rows.append([label(name), "this run" if ran else "earlier run", *("" if c is None else c for c in cells),
                     where])
    if not rows:
        return None
    ran = sum(1 for r in rows if r[1] == "this run")
    note = ("Every stage ran in this build." if ran == len(rows) else
            f"{ran} of {len(rows)} stages ran in this build; the others were up to date and keep the figures of "
            "the run that made them.")
    return {"note": note, "table": _table(["stage", "ran in", "seconds", "rows", "rows / s", "shards", "where"],
                                          rows, numeric=(2, 3, 4, 5))}


def variants_section(report: Mapping[str, Any]) -> dict[str, Any] | None:
    task_scores = report.get("task_scores")
    if not isinstance(task_scores, Mapping) or not task_scores:
        return None
    variants = [v for v in ("retrieval", "reranking", "downsampled") if v in task_scores]
    variants += [v for v in task_scores if v not in variants]
    all_models = {m: s for v in variants for m, s in (task_scores[v] or {}).items() if isinstance(s, Mapping)}
    metrics = _metrics_of(all_models)
    rows = []
    for variant in variants:
        scores = task_scores[variant] or {}
        main = metrics[0] if metrics else None
        for model in sorted(scores, key=lambda m: -((scores[m] or {}).get(main) or 0.0)):
            rows.append([variant, model] + [(scores[model] or {}).get(m, "") for m in metrics])
    agreement = report.get("downsample_agreement")
    tasks = [t for t in report.get("tasks") or [] if isinstance(t, Mapping)]
    return {
        "note": " · ".join(f"{num(t.get('variant'))}: {num(t.get('corpus'))} documents" for t in tasks),
        "table": _table(["variant", "model"] + [metric_label(m) for m in metrics], rows,
                        numeric=range(2, 2 + len(metrics))),
        "agreement": _agreement(agreement) if isinstance(agreement, Mapping) and agreement else None,
    }


def _agreement(agreement: Mapping[str, Any]) -> dict[str, Any]:
    """``downsample.ranking_agreement``'s dict, nested (``scores: {model: {full, sub}}``) or as flattened into
    stage stats (``full.<model>``, ``downsampled.<model>`` / ``sub.<model>``)."""
    scores: dict[str, dict[str, Any]] = {}
    for model, pair in (agreement.get("scores") or {}).items():
        if isinstance(pair, Mapping):
            scores[str(model)] = {"full": pair.get("full"), "sub": pair.get("sub", pair.get("downsampled"))}
    for key, value in agreement.items():
        side, dot, model = str(key).partition(".")
        if dot and side in ("full", "sub", "downsampled", "scores"):
            if side == "scores":  # scores.<model>.full
                model, _, side = model.rpartition(".")
            scores.setdefault(model, {})["full" if side == "full" else "sub"] = value
    stats = []
    for key, name in (("spearman_rho", "Spearman ρ"), ("kendall_tau", "Kendall τ"), ("models", "models compared"),
                      ("full_order", "order, full corpus"), ("sub_order", "order, downsampled")):
        if key in agreement:
            value = agreement[key]
            stats.append((name, " > ".join(map(str, value)) if isinstance(value, list) else "n/a" if value is None else value))
    for key in ("note", "dropped"):
        if agreement.get(key):
            value = agreement[key]
            stats.append((key, ", ".join(map(str, value)) if isinstance(value, list) else value))
    out = {"stats": _table(["statistic", "value"], stats, numeric=(1,)), "scores": None}
    if scores:
        order = sorted(scores, key=lambda m: -(scores[m].get("full") or 0.0))
        rows = [[m, scores[m].get("full", ""), scores[m].get("sub", "")] for m in order]
        out["scores"] = _table(["model", "full corpus", "downsampled"], rows, numeric=(1, 2))
    return out


def _correlation(compare: Mapping[str, Any], key: str, sym: str) -> str:
    """``ρ = 0.90 [0.50, 1.00]`` for ``compare[key]`` ("spearman" or "kendall"), or "" when it is undefined."""
    c = compare.get(key)
    value = c.get({"spearman": "rho", "kendall": "tau"}[key]) if isinstance(c, Mapping) else None
    if not is_number(value):
        return ""
    ci = f" [{c['ci_low']:.2f}, {c['ci_high']:.2f}]" if is_number(c.get("ci_low")) and is_number(c.get("ci_high")) else ""
    return f"{sym} = {value:.2f}{ci}"


def agreement_section(plots: draw.Plots, report: Mapping[str, Any]) -> dict[str, Any] | None:
    compare = report.get("compare")
    if not isinstance(compare, Mapping):
        return None
    syn, ref = _ci_models(compare.get("synthetic") or {}), _ci_models(compare.get("reference") or {})
    metric = f"ndcg_at_{compare.get('k') or get(compare, 'synthetic', 'k') or 10}"
    names = [str(m) for m in compare.get("models") or sorted(set(syn) & set(ref))]
    points = [(m, get(ref, m, metric), get(syn, m, metric)) for m in names]
    points = [(m, r, s) for m, r, s in points
              if isinstance(r, Mapping) and isinstance(s, Mapping) and is_number(r.get("mean")) and is_number(s.get("mean"))]
    if not points:
        return None
    title = "   ".join(t for t in (_correlation(compare, "spearman", "Spearman ρ"),
                                   _correlation(compare, "kendall", "Kendall τ")) if t)
    img = draw.reference_scatter(plots, points, metric, title, get(compare, "reference", "task"),
                                 get(compare, "synthetic", "task"))
    rank_ref = {m: i + 1 for i, (m, *_) in enumerate(sorted(points, key=lambda p: -p[1]["mean"]))}
    rank_syn = {m: i + 1 for i, (m, *_) in enumerate(sorted(points, key=lambda p: -p[2]["mean"]))}
    rows = [[m, _ci_text(r), rank_ref[m], _ci_text(s), rank_syn[m]] for m, r, s in points]
    stats = [(name, _correlation(compare, key, sym) or "n/a") for key, sym, name in
             (("spearman", "ρ", "Spearman rank correlation"), ("kendall", "τ", "Kendall rank correlation"))]
    anchors = compare.get("anchors")
    return {
        "img": img,
        "correlations": _table(["statistic", "value"], stats, numeric=(1,)),
        "anchors": (_table(["comparison", "correlation"], list(anchors.items()), numeric=(1,))
                    if isinstance(anchors, Mapping) and anchors else None),
        "table": _table(["model", f"reference {metric_label(metric)}", "rank", f"synthetic {metric_label(metric)}",
                         "rank"], rows, numeric=(1, 2, 3, 4)),
    }
