"""A self-contained HTML report of one build: counts, query mix, filter funnel, qrels repair, scores, validity.

``render_report(run_dir)`` reads ``run_dir/report.json`` (or takes the dict) and the task's queries, and writes
``run_dir/report.html``: one file, inline CSS, plots as base64 PNG ``<img>`` tags (``plots``), no scripts and
no external URLs, so it opens offline and can be attached or screenshotted as is.

This module reads what the report is about and renders the page; ``sections`` picks and shapes the data of
each section; the markup is in the Jinja2 templates of ``templates/`` (``report.html.j2`` the page,
``sections.html.j2`` one macro per section, ``macros.html.j2`` tables and badges). Every section is optional:
a key missing from the report (``validity`` and ``compare`` come from later steps) drops its section. Autoescaping is on, since query texts, model names, filter reasons
and messages come from data; ``_escape`` makes it use ``html.escape``'s entities and print None as "".
"""

from __future__ import annotations

import datetime as _dt
import html
import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from .. import __version__
from ..engine.rundir import atomic_write_text
from ..tasks.layout import SHARD_NAME, TASK_JSON, read_task_record
from . import plots as draw
from . import sections as build
from .format import is_number
from .sections import Badge

REPORT_HTML = "report.html"
REPORT_JSON = "report.json"
TEMPLATES = Path(__file__).resolve().parent / "templates"


def _escape(value: Any) -> Any:
    # Runs on every {{ value }} before autoescape: html.escape's entities (&#x27;, &quot;), as the report has
    # always written them, and None as an empty string. Markup (macro output) passes through unchanged.
    if hasattr(value, "__html__"):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, finalize=_escape,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.tests["badge"] = lambda value: isinstance(value, Badge)
    return env


# -- what the report is about


def _find_task_dir(run_dir: Path, report: Mapping[str, Any]) -> Path | None:
    candidates = []
    if report.get("task_dir"):
        candidates.append(Path(report["task_dir"]))
    for task in report.get("tasks") or []:
        if isinstance(task, Mapping) and task.get("variant") == "retrieval" and task.get("path"):
            candidates.append(Path(task["path"]))
    candidates.append(run_dir / "task")  # the run folder may have been moved since report.json was written
    for path in candidates:
        if (path / TASK_JSON).exists():
            return path
    return None


def _read_queries(task_dir: Path | None) -> tuple[list[dict[str, Any]], bool]:
    """The task's queries (id, text) joined with their provenance (persona, style, ...) when it is there."""
    if task_dir is None:
        return [], False
    folder = task_dir / "queries"
    shards = sorted(folder.glob("test-*.parquet")) if folder.exists() else []
    if not shards and (folder / SHARD_NAME).exists():
        shards = [folder / SHARD_NAME]
    rows: list[dict[str, Any]] = []
    for shard in shards:
        rows += pq.read_table(shard, columns=["id", "text"]).to_pylist()
    prov_path = task_dir / "provenance" / "queries.parquet"
    if not rows or not prov_path.exists():
        return rows, False
    prov = pq.read_table(prov_path)
    keep = [c for c in ("id", "persona", "style", "difficulty", "recipe") if c in prov.column_names]
    by_id = {r["id"]: r for r in prov.select(keep).to_pylist()} if "id" in keep else {}
    for row in rows:
        row.update({k: v for k, v in by_id.get(row["id"], {}).items() if k != "id"})
    return rows, bool(by_id)


def _run_date(run_dir: Path, report_path: Path) -> str:
    finished = []
    manifest = run_dir / "manifest.json"
    if manifest.exists():
        try:
            stages = json.loads(manifest.read_text(encoding="utf-8")).get("stages") or {}
            finished = [s.get("finished") for s in stages.values() if isinstance(s, Mapping)]
            finished = [f for f in finished if is_number(f)]
        except (OSError, ValueError):
            finished = []
    if finished:
        stamp = max(finished)
    elif report_path.exists():
        stamp = report_path.stat().st_mtime
    else:
        stamp = _dt.datetime.now().timestamp()
    return _dt.datetime.fromtimestamp(stamp, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# -- entry point


def render_report(run_dir: Path, report: dict | None = None) -> Path:
    """Write ``run_dir/report.html`` (atomically) from ``report`` or ``run_dir/report.json``; returns its path."""
    run_dir = Path(run_dir)
    report_path = run_dir / REPORT_JSON
    if report is None:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    plots = draw.Plots()
    task_dir = _find_task_dir(run_dir, report)
    record: dict[str, Any] = read_task_record(task_dir) if task_dir else {}
    queries, with_prov = _read_queries(task_dir)

    with plots.mpl.rc_context(plots.rc):
        # The plots are drawn here, so their count is known before the page is rendered.
        scores = build.scores_section(plots, report)
        sections = {  # in page order
            "queries": build.queries_section(plots, queries, with_prov),
            "mix": build.mix_section(plots, report),
            "funnel": build.funnel_section(plots, report),
            "repair": build.repair_section(report),
            "query_quality": build.query_quality_section(report),
            "human_review": build.human_review_section(report),
            "languages": build.languages_section(report),
            "scores": scores,
            "diagnostics": build.diagnostics_section(report) if scores else None,  # shown with the scores only
            "variants": build.variants_section(report),
            "agreement": build.agreement_section(plots, report),
            "stages": build.stages_section(report),
        }
    page = _environment().get_template("report.html.j2").render(
        title=f"{record.get('name') or run_dir.name} · buildbench report",
        header=build.header_context(run_dir, report, record, _run_date(run_dir, report_path)),
        sections={key: ctx for key, ctx in sections.items() if ctx is not None},
        version=__version__, report_json=REPORT_JSON, plot_count=plots.count,
    )
    out = run_dir / REPORT_HTML
    atomic_write_text(out, page)
    return out
