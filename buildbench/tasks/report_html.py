"""A self-contained HTML report of one build: counts, query mix, filter funnel, qrels repair, scores, validity.

``render_report(run_dir)`` reads ``run_dir/report.json`` (or takes the dict) and the task's queries, and writes
``run_dir/report.html``: one file, inline CSS, plots as base64 PNG ``<img>`` tags (matplotlib, Agg canvas), no
scripts and no external URLs, so it opens offline and can be attached or screenshotted as is.

Every section is optional: a key missing from the report (``validity`` and ``compare`` come from later steps)
drops its section. All text that comes from data (query texts, model names, filter reasons, messages) is
escaped with ``html.escape``; matplotlib is told not to parse ``$...$`` as math in labels for the same reason.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from .. import __version__
from ..engine.rundir import atomic_write_text
from ..errors import require
from .assemble import SHARD_NAME, TASK_JSON, read_task_record

REPORT_HTML = "report.html"
REPORT_JSON = "report.json"

SECTION_TITLES = {
    "queries": "Query length",
    "mix": "Query mix",
    "funnel": "Filter funnel",
    "repair": "Qrels repair",
    "languages": "Languages",
    "scores": "Model scores",
    "diagnostics": "Diagnostics",
    "variants": "Task variants",
    "agreement": "Ranking agreement",
}

# A colour-blind-safe palette (Okabe-Ito), used in order for models and categories.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
ACCENT = "#0072B2"
MUTED = "#c9d3df"
EXAMPLE_QUERIES = 8

CSS = """
:root { --fg:#1d2733; --muted:#5b6b7c; --line:#dde3ea; --bg:#f5f7fa; --card:#fff; --accent:#0072B2;
        --warn-bg:#fff4e0; --warn-fg:#9a5b00; --ok-fg:#1d7a46; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg);
       font:14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width:1180px; margin:0 auto; padding:24px 28px 48px; }
header.top { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:20px 24px;
             margin-bottom:18px; }
header.top h1 { margin:0 0 4px; font-size:24px; }
header.top .sub { color:var(--muted); margin:0 0 14px; }
.cards { display:grid; grid-template-columns:repeat(auto-fill, minmax(150px, 1fr)); gap:10px; }
.card { background:var(--bg); border:1px solid var(--line); border-radius:8px; padding:8px 12px; }
.card .k { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.card .v { font-size:20px; font-weight:600; font-variant-numeric:tabular-nums; }
.card .n { color:var(--muted); font-size:12px; }
section { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:16px 22px 18px;
          margin-bottom:18px; }
section h2 { margin:0 0 10px; font-size:18px; border-bottom:2px solid var(--accent); display:inline-block;
             padding-bottom:2px; }
section h3 { margin:16px 0 6px; font-size:15px; color:var(--muted); }
p.note { color:var(--muted); margin:4px 0 10px; }
img.plot { display:block; max-width:100%; height:auto; margin:6px auto 10px; }
.grid2 { display:grid; grid-template-columns:1fr 1fr; gap:18px; align-items:start; }
.grid32 { display:grid; grid-template-columns:3fr 2fr; gap:18px; align-items:start; }
table { border-collapse:collapse; width:100%; margin:4px 0 8px; font-size:13px; }
th, td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:var(--bg); font-weight:600; }
td:nth-child(2) { overflow-wrap:anywhere; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
td.nw { white-space:nowrap; }
tr.flag td { background:var(--warn-bg); }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; }
.badge.flag { background:#ffd9a8; color:var(--warn-fg); }
.badge.ok { background:#d8f1e2; color:var(--ok-fg); }
.badge.info { background:#e3ecf6; color:#2b5a8a; }
.kv td:first-child { color:var(--muted); width:46%; }
footer { color:var(--muted); font-size:12px; text-align:center; margin-top:10px; }
"""


# -- small helpers


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _get(obj: Any, *keys: str, default: Any = None) -> Any:
    for key in keys:
        if not isinstance(obj, Mapping) or key not in obj:
            return default
        obj = obj[key]
    return obj


def _num(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value.is_integer() and abs(value) >= 1000:
            return f"{int(value):,}"
        if abs(value) <= 1:
            return f"{value:.4f}"  # scores and rates: a fixed width lines up in a column
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.1f}"
    return "" if value is None else str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_METRIC_RE = re.compile(r"^(ndcg|recall|mrr|map|precision)_at_(\d+)$")
_METRIC_NAMES = {"ndcg": "nDCG", "recall": "Recall", "mrr": "MRR", "map": "MAP", "precision": "P"}


def metric_label(name: str) -> str:
    """``ndcg_at_10`` -> ``nDCG@10``; other names pass through with underscores as spaces."""
    m = _METRIC_RE.match(name)
    if m:
        return f"{_METRIC_NAMES[m.group(1)]}@{m.group(2)}"
    return name.replace("_", " ")


def _label(name: str) -> str:
    return str(name).replace("_", " ")


def _duration(seconds: Any) -> str:
    if not _is_number(seconds):
        return ""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _table(head: Iterable[str] | None, rows: Iterable[Iterable[Any]], numeric: Iterable[int] = (),
           row_classes: Iterable[str] | None = None, cls: str = "", nowrap: Iterable[int] = ()) -> str:
    """An HTML table; every cell is escaped unless it is a ``_Raw``. ``numeric``: right-aligned columns."""
    numeric, nowrap = set(numeric), set(nowrap)
    out = [f'<table class="{_e(cls)}">' if cls else "<table>"]
    if head is not None:
        out.append("<thead><tr>")
        out += [f'<th class="num">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>" for i, h in enumerate(head)]
        out.append("</tr></thead>")
    out.append("<tbody>")
    classes = list(row_classes) if row_classes is not None else None
    for r, row in enumerate(rows):
        rc = classes[r] if classes and classes[r] else ""
        out.append(f'<tr class="{_e(rc)}">' if rc else "<tr>")
        for i, cell in enumerate(row):
            text = cell.html if isinstance(cell, _Raw) else _e(_num(cell) if isinstance(cell, (int, float)) else cell)
            if i in numeric:
                out.append(f'<td class="num">{text}</td>')
            else:
                out.append(f'<td class="nw">{text}</td>' if i in nowrap else f"<td>{text}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


class _Raw:
    """Already-escaped HTML for a table cell."""

    def __init__(self, html_text: str):
        self.html = html_text


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(obj, Mapping):
        rows: list[tuple[str, Any]] = []
        for key, value in obj.items():
            rows += _flatten(value, f"{prefix}{_label(key)} · " if isinstance(value, Mapping) else f"{prefix}{_label(key)}")
        if not obj and prefix:
            rows.append((prefix.rstrip(" ·"), "none"))
        return rows
    if obj is None:
        return [(prefix, "none")]
    if isinstance(obj, list):
        return [(prefix, ", ".join(str(v) for v in obj) or "none")]
    return [(prefix, obj)]


def _kv_table(obj: Mapping[str, Any]) -> str:
    return _table(None, _flatten(obj), numeric=(1,), cls="kv")


def _section(key: str, body: str, note: str = "") -> str:
    note_html = f'<p class="note">{note}</p>' if note else ""
    return f'<section id="{_e(key)}"><h2>{_e(SECTION_TITLES[key])}</h2>{note_html}{body}</section>'


# -- plotting


class _Plots:
    """Figures on an Agg canvas (no pyplot, no global backend switch), saved as base64 PNG ``<img>`` tags."""

    def __init__(self):
        require("matplotlib", "report", "The HTML report")
        import matplotlib

        self.mpl = matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self._canvas = FigureCanvasAgg
        self._figure = Figure
        self.count = 0
        self.rc = {
            "text.parse_math": False,  # model names and categories may hold '$'
            "font.size": 10,
            "axes.titlesize": 11,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.color": "#e6eaef",
            "grid.linewidth": 0.8,
            "axes.axisbelow": True,
            "axes.edgecolor": "#8a97a6",
            "figure.dpi": 100,
            "savefig.dpi": 100,
        }

    def figure(self, width: float, height: float):
        fig = self._figure(figsize=(width, height), layout="constrained")
        self._canvas(fig)
        return fig

    def img(self, fig, alt: str) -> str:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", facecolor="white")
        fig.clear()  # the figure is not registered with pyplot; clearing drops its artists right away
        self.count += 1
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        return f'<img class="plot" alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _barh(ax, counts: Mapping[str, int], title: str, color: str = ACCENT) -> None:
    items = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    labels = [_label(k) for k, _ in items][::-1]
    values = [v for _, v in items][::-1]
    bars = ax.barh(labels, values, color=color, height=0.7)
    ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=3, fontsize=8)
    ax.set_title(title, loc="left")
    ax.grid(axis="y", visible=False)
    ax.margins(x=0.15)


# -- sections


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
            finished = [f for f in finished if _is_number(f)]
        except (OSError, ValueError):
            finished = []
    if finished:
        stamp = max(finished)
    elif report_path.exists():
        stamp = report_path.stat().st_mtime
    else:
        stamp = _dt.datetime.now().timestamp()
    return _dt.datetime.fromtimestamp(stamp, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _header(run_dir: Path, report: Mapping[str, Any], record: Mapping[str, Any], date: str) -> str:
    name = record.get("name") or run_dir.name
    domain = record.get("domain") or _get(report, "domain") or ""
    version = report.get("buildbench_version") or __version__
    counts = record.get("counts") or {}
    stages = report.get("stages") or {}
    ingested = _get(stages, "ingest", "counts", "out")
    kept_docs = _get(stages, "filter_documents", "counts", "out")
    chunks = _get(stages, "chunk", "stats", "chunks", default=_get(stages, "chunk", "counts", "out"))
    queries = _get(report, "queries", "accepted", default=counts.get("queries"))
    generated = _get(stages, "generate_queries", "counts", "out")
    llm = report.get("llm") or {}

    cards: list[tuple[str, Any, str]] = []
    if ingested is not None or kept_docs is not None:
        note = f"{_num(ingested)} ingested" if ingested is not None and kept_docs is not None else ""
        cards.append(("Documents", kept_docs if kept_docs is not None else ingested, note))
    if chunks is not None:
        cards.append(("Chunks", chunks, f"corpus {_num(counts['corpus'])}" if "corpus" in counts else ""))
    if queries is not None:
        cards.append(("Queries", queries, f"{_num(generated)} generated" if generated is not None else ""))
    if counts.get("qrels") is not None:
        rel = counts.get("relevant_per_query")
        cards.append(("Qrels", counts["qrels"], f"{rel:.2f} per query" if _is_number(rel) else ""))
    if _is_number(report.get("wall_seconds")):
        # wall_seconds is this run's; a resumed run skips finished stages, whose recorded times still count.
        total = sum(s.get("seconds") or 0 for s in stages.values() if isinstance(s, Mapping) and _is_number(s.get("seconds")))
        note = f"stages total {_duration(total)}" if total > report["wall_seconds"] * 1.05 else ""
        cards.append(("Wall time", _duration(report["wall_seconds"]), note))
    if llm.get("calls_total") is not None:
        tokens = [llm.get("tokens_in_total"), llm.get("tokens_out_total")]
        note = f"{_num(tokens[0])} in / {_num(tokens[1])} out tokens" if all(_is_number(t) for t in tokens) else ""
        cards.append(("LLM calls", llm["calls_total"], note))

    card_html = "".join(
        f'<div class="card"><div class="k">{_e(k)}</div><div class="v">{_e(_num(v))}</div>'
        f'<div class="n">{_e(n)}</div></div>'
        for k, v, n in cards
    )
    sub = [f"domain <b>{_e(domain)}</b>" if domain else "", f"buildbench {_e(version)}", _e(date)]
    generator = _get(record, "provenance", "generator")
    if generator:
        sub.append(f"generator {_e(generator)}")
    if report.get("config_hash"):
        sub.append(f"config {_e(report['config_hash'])}")
    desc = f'<p class="sub">{_e(record["description"])}</p>' if record.get("description") else ""
    return (
        f'<header class="top"><h1>{_e(name)}</h1><p class="sub">{" · ".join(s for s in sub if s)}</p>'
        f'{desc}<div class="cards">{card_html}</div></header>'
    )


def _query_section(plots: _Plots, queries: list[dict[str, Any]], with_prov: bool) -> str:
    if not queries:
        return ""
    import numpy as np

    lengths = np.array([len(str(q["text"]).split()) for q in queries])
    fig = plots.figure(11, 3.2)
    ax = fig.add_subplot()
    bins = np.arange(0.5, max(int(lengths.max()), 1) + 1.5, 1 if lengths.max() <= 40 else max(1, int(lengths.max()) // 40))
    styles = sorted({q.get("style") for q in queries if q.get("style")}) if with_prov else []
    if styles:
        data = [[len(str(q["text"]).split()) for q in queries if q.get("style") == s] for s in styles]
        ax.hist(data, bins=bins, stacked=True, label=[_label(s) for s in styles], color=PALETTE[: len(styles)],
                edgecolor="white", linewidth=0.5)
        ax.legend(title="style", frameon=False)
    else:
        ax.hist(lengths, bins=bins, color=ACCENT, edgecolor="white", linewidth=0.5)
    ax.axvline(float(np.median(lengths)), color="#333", linestyle="--", linewidth=1)
    ax.set_xlabel("words per query")
    ax.set_ylabel("queries")
    ax.grid(axis="x", visible=False)
    img = plots.img(fig, "histogram of words per query")

    note = (f"{len(lengths):,} queries · words per query: min {lengths.min()}, median {np.median(lengths):g}, "
            f"mean {lengths.mean():.1f}, max {lengths.max()} (dashed line: median)")
    # Examples spread over the length range, shortest and longest included.
    order = sorted(range(len(queries)), key=lambda i: (lengths[i], str(queries[i]["id"])))
    n = min(EXAMPLE_QUERIES, len(order))
    picks = sorted({order[round(j * (len(order) - 1) / max(n - 1, 1))] for j in range(n)}, key=lambda i: lengths[i])
    extra = [c for c in ("persona", "style", "difficulty") if with_prov and any(queries[i].get(c) for i in picks)]
    rows = [[int(lengths[i]), queries[i]["text"]] + [_label(queries[i].get(c) or "") for c in extra] for i in picks]
    table = _table(["words", "example query"] + extra, rows, numeric=(0,), nowrap=range(2, 2 + len(extra)))
    return _section("queries", img + "<h3>Examples, shortest to longest</h3>" + table, _e(note))


def _mix_section(plots: _Plots, report: Mapping[str, Any]) -> str:
    q = report.get("queries") or {}
    parts = [(k, t) for k, t in (("by_persona", "persona"), ("by_style", "style (type)"),
                                 ("by_difficulty", "difficulty"), ("by_recipe", "recipe")) if q.get(k)]
    if not parts:
        return ""
    big = [p for p in parts if p[0] == "by_persona"]
    small = [p for p in parts if p[0] != "by_persona"]
    n_persona = len(q["by_persona"]) if big else 0
    height = max(3.0, 0.26 * n_persona + 0.9, 1.5 * len(small))
    fig = plots.figure(11, height)
    if big and small:
        grid = fig.add_gridspec(len(small), 2, width_ratios=[1.15, 1])
        _barh(fig.add_subplot(grid[:, 0]), q["by_persona"], "persona", PALETTE[0])
        for row, (key, title) in enumerate(small):
            _barh(fig.add_subplot(grid[row, 1]), q[key], title, PALETTE[(row + 1) % len(PALETTE)])
    else:
        axes = fig.subplots(1, len(parts), squeeze=False)[0]
        for i, (key, title) in enumerate(parts):
            _barh(axes[i], q[key], title, PALETTE[i % len(PALETTE)])
    img = plots.img(fig, "query mix by persona, style, difficulty and recipe")
    accepted = q.get("accepted")
    note = f"{_num(accepted)} accepted queries" if accepted is not None else ""
    return _section("mix", img, _e(note))


def _funnel_order(filters: Mapping[str, Mapping[str, Any]], names: list[str]) -> list[str]:
    # report.json sorts its keys; a filter never sees more items than the one before it, so "in" descending
    # (then "kept" descending, for filters that drop nothing) recovers the pipeline order.
    return sorted(names, key=lambda n: (-(filters[n].get("in") or 0), -(filters[n].get("kept") or 0)))


def _funnel_section(plots: _Plots, report: Mapping[str, Any]) -> str:
    filters = {k: v for k, v in (report.get("filters") or {}).items() if isinstance(v, Mapping)}
    if not filters:
        return ""
    groups = [
        ("documents", _funnel_order(filters, [n for n in filters if n.startswith("doc")])),
        ("queries", _funnel_order(filters, [n for n in filters if n.startswith("query")])),
    ]
    other = [n for n in filters if not n.startswith(("doc", "query"))]
    if other:
        groups.append(("other", _funnel_order(filters, other)))
    groups = [(g, names) for g, names in groups if names]
    drops = report.get("drops") or {}
    reasons: dict[str, dict[str, int]] = {}
    for per_stage in drops.values():
        for key, count in (per_stage or {}).items():
            name, _, reason = str(key).partition(":")
            reasons.setdefault(name, {})[reason or name] = count

    fig = plots.figure(11, 0.9 + sum(0.34 * len(names) + 0.5 for _, names in groups))
    grid = fig.add_gridspec(len(groups), 1, height_ratios=[len(names) + 1 for _, names in groups])
    for row, (group, names) in enumerate(groups):
        ax = fig.add_subplot(grid[row, 0])
        labels = [_label(n) for n in names][::-1]
        ins = [filters[n].get("in") or 0 for n in names][::-1]
        kept = [filters[n].get("kept") or 0 for n in names][::-1]
        ax.barh(labels, ins, color=MUTED, height=0.72, label="in (dropped part)")
        ax.barh(labels, kept, color=ACCENT, height=0.72, label="kept")
        top = max(ins) if ins else 0
        for y, (i, k) in enumerate(zip(ins, kept)):  # label past the longer ("in") bar, so it never overlaps
            ax.text(i + top * 0.01, y, f"{i:,} → {k:,}" + (f"   −{i - k:,}" if i > k else ""), va="center",
                    fontsize=8, color="#9a3b00" if i > k else "#333")
        ax.set_title(f"{group}: in → kept per filter", loc="left")
        ax.set_xlim(0, top * 1.2 if top else 1)
        ax.grid(axis="y", visible=False)
    fig.legend(*fig.axes[0].get_legend_handles_labels(), loc="outside upper right", frameon=False, ncols=2)
    img = plots.img(fig, "filter funnel: items in and kept per filter")

    rows, classes = [], []
    for group, names in groups:
        for n in names:
            f = filters[n]
            why = ", ".join(f"{_label(r)} {c:,}" for r, c in sorted(reasons.get(n, {}).items(), key=lambda kv: -kv[1]))
            rows.append([group, _label(n), f.get("in"), f.get("kept"), f.get("dropped"), f.get("seconds"), why])
            classes.append("flag" if (f.get("dropped") or 0) else "")
    table = _table(["items", "filter", "in", "kept", "dropped", "seconds", "drop reasons"], rows,
                   numeric=(2, 3, 4, 5), row_classes=classes)
    return _section("funnel", img + table, "Filters shown in pipeline order; rows that dropped items are highlighted.")


def _repair_section(report: Mapping[str, Any]) -> str:
    repair = report.get("qrels_repair")
    if not isinstance(repair, Mapping) or not repair:
        return ""
    blocks = []
    fn_added = repair.get("false_negatives_added")
    headline = []
    if fn_added is not None:
        headline.append(("false negatives added", fn_added))
    for key in ("hard_negatives", "synthetic_negatives_removed", "judge_trusted", "mining_seconds"):
        if key in repair:
            headline.append((_label(key), repair[key]))
    if headline:
        blocks.append("<div><h3>Summary</h3>" + _kv_table(dict(headline)) + "</div>")
    if repair.get("false_negatives_by_rule") is not None:
        blocks.append("<div><h3>False negatives added, by rule</h3>"
                      + _table(["rule", "added"], [(_label(k), v) for k, v in (repair["false_negatives_by_rule"] or {}).items()]
                               or [("none", 0)], numeric=(1,)) + "</div>")
    if isinstance(repair.get("judge_calibration"), Mapping):
        cal = repair["judge_calibration"]
        trusted = repair.get("judge_trusted", cal.get("trusted"))
        badge = ('<span class="badge ok">trusted</span>' if trusted else '<span class="badge flag">not trusted</span>')
        blocks.append(f"<div><h3>Judge calibration {badge}</h3>" + _kv_table(cal) + "</div>")
    if isinstance(repair.get("mining"), Mapping):
        blocks.append("<div><h3>Mining decisions</h3>" + _kv_table(repair["mining"]) + "</div>")
    rest = {k: v for k, v in repair.items() if k not in {
        "false_negatives_added", "false_negatives_by_rule", "judge_calibration", "mining", "hard_negatives",
        "synthetic_negatives_removed", "judge_trusted", "mining_seconds"}}
    if rest:
        blocks.append("<div><h3>Other decisions</h3>" + _kv_table(rest) + "</div>")
    return _section("repair", f'<div class="grid2">{"".join(blocks)}</div>')


def _languages_section(report: Mapping[str, Any]) -> str:
    langs = report.get("languages")
    if not isinstance(langs, Mapping) or not langs:
        return ""
    blocks = []
    for kind in ("documents", "queries"):
        counts = langs.get(kind)
        if isinstance(counts, Mapping):
            rows = [(k, v) for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]
            mixed = langs.get(f"{kind}_mixed")
            if mixed is not None:
                rows.append(("mixed-language", mixed))
            blocks.append(f"<div><h3>{_e(kind)}</h3>" + _table(["language", kind], rows, numeric=(1,)) + "</div>")
    return _section("languages", f'<div class="grid2">{"".join(blocks)}</div>') if blocks else ""


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
    if not isinstance(stat, Mapping) or not _is_number(stat.get("mean")):
        return ""
    low, high = stat.get("ci_low"), stat.get("ci_high")
    if _is_number(low) and _is_number(high):
        return f"{stat['mean']:.3f} [{low:.3f}, {high:.3f}]"
    return f"{stat['mean']:.3f}"


def _scores_section(plots: _Plots, report: Mapping[str, Any]) -> str:
    import numpy as np

    validity = report.get("validity") if isinstance(report.get("validity"), Mapping) else None
    ci_models = _ci_models(validity) if validity else {}
    if ci_models:
        models = {m: {k: v.get("mean") for k, v in s.items() if isinstance(v, Mapping)} for m, s in ci_models.items()}
    else:
        models = {str(m): dict(s) for m, s in (_get(report, "task_scores", "retrieval") or report.get("scores") or {}).items()
                  if isinstance(s, Mapping)}
    if not models:
        return ""
    metrics = _metrics_of(models)
    main = metrics[0]
    names = sorted(models, key=lambda m: -(models[m].get(main) or 0.0))

    fig = plots.figure(11, 3.6)
    ax = fig.add_subplot()
    width = 0.8 / len(names)
    x = np.arange(len(metrics))
    for i, model in enumerate(names):
        means = [models[model].get(metric) or 0.0 for metric in metrics]
        err = None
        if ci_models:
            low = [max(0.0, (models[model].get(m) or 0.0) - (_get(ci_models, model, m, "ci_low") or models[model].get(m) or 0.0))
                   for m in metrics]
            high = [max(0.0, (_get(ci_models, model, m, "ci_high") or models[model].get(m) or 0.0) - (models[model].get(m) or 0.0))
                    for m in metrics]
            err = [low, high]
        ax.bar(x - 0.4 + width * (i + 0.5), means, width * 0.92, yerr=err, capsize=3 if err else 0,
               color=PALETTE[i % len(PALETTE)], label=model, error_kw={"elinewidth": 1, "ecolor": "#333"})
    ax.set_xticks(x, [metric_label(m) for m in metrics])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.grid(axis="x", visible=False)
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="model")
    img = plots.img(fig, "model scores per metric" + (" with confidence intervals" if ci_models else ""))

    if ci_models:
        rows = [[model] + [_ci_text(_get(ci_models, model, m)) for m in metrics] for model in names]
        note = "Bars: mean over queries; whiskers: bootstrap confidence interval"
        details = [f"task {_e(validity['task'])}" if validity.get("task") else "",
                   f"{_num(validity['queries'])} queries" if validity.get("queries") is not None else "",
                   f"{_num(validity['corpus'])} documents" if validity.get("corpus") is not None else "",
                   f"n_boot = {_num(validity['n_boot'])}" if validity.get("n_boot") is not None else ""]
        details = [d for d in details if d]
        note = _e(note) + (f" ({' · '.join(details)})." if details else ".")
    else:
        rows = [[model] + [models[model].get(m) for m in metrics] for model in names]
        note = "Retrieval task scores (no confidence intervals: the validity step has not run)."
    table = _table(["model"] + [metric_label(m) for m in metrics], rows, numeric=range(1, len(metrics) + 1))
    out = _section("scores", img + table, note)
    if validity and isinstance(validity.get("diagnostics"), Mapping):
        out += _diagnostics_section(validity["diagnostics"])
    return out


def _diagnostics_section(diagnostics: Mapping[str, Any]) -> str:
    rows, classes = [], []
    items = [(k, v) for k, v in diagnostics.items() if isinstance(v, Mapping)]
    items.sort(key=lambda kv: (not kv[1].get("flag"), str(kv[0])))  # flagged first
    for name, diag in items:
        flagged = bool(diag.get("flag"))
        badge = '<span class="badge flag">flagged</span>' if flagged else '<span class="badge ok">ok</span>'
        details = [f"{_label(k)} = {_num(v) if _is_number(v) else v}" for k, v in diag.items()
                   if k not in ("flag", "message") and (_is_number(v) or isinstance(v, (str, bool)))]
        rows.append([_label(name), _Raw(badge), diag.get("message") or "", "; ".join(details)])
        classes.append("flag" if flagged else "")
    if not rows:
        return ""
    n_flag = sum(1 for c in classes if c)
    note = f"{n_flag} of {len(rows)} checks flagged" + (" (highlighted, listed first)." if n_flag else ".")
    return _section("diagnostics", _table(["check", "status", "message", "details"], rows, row_classes=classes), _e(note))


def _variants_section(report: Mapping[str, Any]) -> str:
    task_scores = report.get("task_scores")
    if not isinstance(task_scores, Mapping) or not task_scores:
        return ""
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
    body = _table(["variant", "model"] + [metric_label(m) for m in metrics], rows, numeric=range(2, 2 + len(metrics)))
    agreement = report.get("downsample_agreement")
    if isinstance(agreement, Mapping) and agreement:
        body += _agreement_html(agreement)
    tasks = [t for t in report.get("tasks") or [] if isinstance(t, Mapping)]
    note = ""
    if tasks:
        note = " · ".join(f"{_e(t.get('variant'))}: {_num(t.get('corpus'))} documents" for t in tasks)
    return _section("variants", body, note)


def _agreement_html(agreement: Mapping[str, Any]) -> str:
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
    for key, label in (("spearman_rho", "Spearman ρ"), ("kendall_tau", "Kendall τ"), ("models", "models compared"),
                       ("full_order", "order, full corpus"), ("sub_order", "order, downsampled")):
        if key in agreement:
            value = agreement[key]
            stats.append((label, " > ".join(map(str, value)) if isinstance(value, list) else "n/a" if value is None else value))
    for key in ("note", "dropped"):
        if agreement.get(key):
            value = agreement[key]
            stats.append((key, ", ".join(map(str, value)) if isinstance(value, list) else value))
    out = "<h3>Downsampled vs full corpus: model ranking agreement</h3>"
    left = _table(["statistic", "value"], stats, numeric=(1,))
    if scores:
        order = sorted(scores, key=lambda m: -(scores[m].get("full") or 0.0))
        rows = [[m, scores[m].get("full", ""), scores[m].get("sub", "")] for m in order]
        right = _table(["model", "full corpus", "downsampled"], rows, numeric=(1, 2))
        return out + f'<div class="grid2"><div>{left}</div><div>{right}</div></div>'
    return out + left


def _compare_section(plots: _Plots, report: Mapping[str, Any]) -> str:
    compare = report.get("compare")
    if not isinstance(compare, Mapping):
        return ""
    syn, ref = _ci_models(compare.get("synthetic") or {}), _ci_models(compare.get("reference") or {})
    metric = f"ndcg_at_{compare.get('k') or _get(compare, 'synthetic', 'k') or 10}"
    names = [str(m) for m in compare.get("models") or sorted(set(syn) & set(ref))]
    points = [(m, _get(ref, m, metric), _get(syn, m, metric)) for m in names]
    points = [(m, r, s) for m, r, s in points
              if isinstance(r, Mapping) and isinstance(s, Mapping) and _is_number(r.get("mean")) and _is_number(s.get("mean"))]
    if not points:
        return ""

    def corr(key: str, sym: str) -> str:
        c = compare.get(key)
        value = c.get(sym_key[key]) if isinstance(c, Mapping) else None
        if not _is_number(value):
            return ""
        ci = f" [{c['ci_low']:.2f}, {c['ci_high']:.2f}]" if _is_number(c.get("ci_low")) and _is_number(c.get("ci_high")) else ""
        return f"{sym} = {value:.2f}{ci}"

    sym_key = {"spearman": "rho", "kendall": "tau"}
    title = "   ".join(t for t in (corr("spearman", "Spearman ρ"), corr("kendall", "Kendall τ")) if t)

    fig = plots.figure(6.3, 5.0)
    ax = fig.add_subplot()
    for i, (model, r, s) in enumerate(points):
        def err(stat):
            low, high = stat.get("ci_low"), stat.get("ci_high")
            if not (_is_number(low) and _is_number(high)):
                return None
            return [[max(0.0, stat["mean"] - low)], [max(0.0, high - stat["mean"])]]

        color = PALETTE[i % len(PALETTE)]
        ax.errorbar([r["mean"]], [s["mean"]], xerr=err(r), yerr=err(s), fmt="o", color=color, ecolor=color,
                    elinewidth=1, capsize=3, markersize=7, alpha=0.9)
        ax.annotate(model, (r["mean"], s["mean"]), xytext=(6, 6), textcoords="offset points", fontsize=9)
    lo = min(min(r.get("ci_low", r["mean"]) for _, r, _ in points), min(s.get("ci_low", s["mean"]) for *_, s in points))
    hi = max(max(r.get("ci_high", r["mean"]) for _, r, _ in points), max(s.get("ci_high", s["mean"]) for *_, s in points))
    pad = max(0.03, 0.08 * (hi - lo))
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], linestyle=":", color="#999", linewidth=1, label="y = x")
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ref_name, syn_name = _get(compare, "reference", "task"), _get(compare, "synthetic", "task")
    ax.set_xlabel(f"reference {metric_label(metric)}" + (f" ({ref_name})" if ref_name else ""))
    ax.set_ylabel(f"synthetic {metric_label(metric)}" + (f" ({syn_name})" if syn_name else ""))
    ax.set_title(title or "model ranking agreement", fontsize=10)
    ax.legend(frameon=False, loc="lower right")
    img = plots.img(fig, f"synthetic vs reference {metric_label(metric)} per model")

    rank_ref = {m: i + 1 for i, (m, *_) in enumerate(sorted(points, key=lambda p: -p[1]["mean"]))}
    rank_syn = {m: i + 1 for i, (m, *_) in enumerate(sorted(points, key=lambda p: -p[2]["mean"]))}
    rows = [[m, _ci_text(r), rank_ref[m], _ci_text(s), rank_syn[m]] for m, r, s in points]
    table = _table(["model", f"reference {metric_label(metric)}", "rank", f"synthetic {metric_label(metric)}", "rank"],
                   rows, numeric=(1, 2, 3, 4))
    stats = [(label, _Raw(_e(corr(key, sym)) or "n/a")) for key, sym, label in
             (("spearman", "ρ", "Spearman rank correlation"), ("kendall", "τ", "Kendall rank correlation"))]
    anchors = compare.get("anchors")
    side = "<h3>Rank correlation (bootstrap CI)</h3>" + _table(["statistic", "value"], stats, numeric=(1,))
    if isinstance(anchors, Mapping) and anchors:
        side += ("<h3>Published anchors</h3>"
                 + _table(["comparison", "correlation"], list(anchors.items()), numeric=(1,)))
    body = f'<div class="grid32"><div>{img}</div><div>{side}</div></div>{table}'
    return _section("agreement", body, "Each point is one model: x is its score on the reference (human-labelled) "
                                       "task, y on this synthetic task; whiskers are bootstrap CIs both ways.")


# -- entry point


def render_report(run_dir: Path, report: dict | None = None) -> Path:
    """Write ``run_dir/report.html`` (atomically) from ``report`` or ``run_dir/report.json``; returns its path."""
    run_dir = Path(run_dir)
    report_path = run_dir / REPORT_JSON
    if report is None:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    plots = _Plots()
    task_dir = _find_task_dir(run_dir, report)
    record: dict[str, Any] = read_task_record(task_dir) if task_dir else {}
    queries, with_prov = _read_queries(task_dir)

    with plots.mpl.rc_context(plots.rc):
        sections = [
            _header(run_dir, report, record, _run_date(run_dir, report_path)),
            _query_section(plots, queries, with_prov),
            _mix_section(plots, report),
            _funnel_section(plots, report),
            _repair_section(report),
            _languages_section(report),
            _scores_section(plots, report),
            _variants_section(report),
            _compare_section(plots, report),
        ]
    title = f"{record.get('name') or run_dir.name} · buildbench report"
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body><main>\n"
        + "\n".join(s for s in sections if s)
        + f'\n<footer>Generated by buildbench {_e(__version__)} from {_e(REPORT_JSON)}'
        f" · {plots.count} plots embedded · no external resources</footer>\n</main></body></html>\n"
    )
    out = run_dir / REPORT_HTML
    atomic_write_text(out, page)
    return out
