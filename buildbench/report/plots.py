"""The plots of the HTML report, drawn with matplotlib on an Agg canvas and embedded as base64 PNG data URIs.

Each function draws one figure from data the report has already picked and returns ``{"alt", "src"}`` for
the template's ``<img>``. matplotlib is told not to parse ``$...$`` as math, because labels hold model names
and categories taken from data.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import require
from .format import get, is_number, label, metric_label

# A colour-blind-safe palette (Okabe-Ito), used in order for models and categories.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
ACCENT = "#0072B2"
MUTED = "#c9d3df"

class Plots:
    """Figures on an Agg canvas (no pyplot, no global backend switch), saved as base64 PNG data URIs."""

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

    def img(self, fig, alt: str) -> dict[str, str]:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", facecolor="white")
        fig.clear()  # the figure is not registered with pyplot; clearing drops its artists right away
        self.count += 1
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        return {"alt": alt, "src": f"data:image/png;base64,{data}"}


def _barh(ax, counts: Mapping[str, int], title: str, color: str = ACCENT) -> None:
    items = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    labels = [label(k) for k, _ in items][::-1]
    values = [v for _, v in items][::-1]
    bars = ax.barh(labels, values, color=color, height=0.7)
    ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=3, fontsize=8)
    ax.set_title(title, loc="left")
    ax.grid(axis="y", visible=False)
    ax.margins(x=0.15)


def query_lengths(plots: Plots, queries: list[dict[str, Any]], lengths: np.ndarray, with_prov: bool) -> dict:
    """Histogram of words per query, stacked by style when the queries' provenance is known."""
    fig = plots.figure(11, 3.2)
    ax = fig.add_subplot()
    bins = np.arange(0.5, max(int(lengths.max()), 1) + 1.5, 1 if lengths.max() <= 40 else max(1, int(lengths.max()) // 40))
    styles = sorted({q.get("style") for q in queries if q.get("style")}) if with_prov else []
    if styles:
        data = [[len(str(q["text"]).split()) for q in queries if q.get("style") == s] for s in styles]
        ax.hist(data, bins=bins, stacked=True, label=[label(s) for s in styles], color=PALETTE[: len(styles)],
                edgecolor="white", linewidth=0.5)
        ax.legend(title="style", frameon=False)
    else:
        ax.hist(lengths, bins=bins, color=ACCENT, edgecolor="white", linewidth=0.5)
    ax.axvline(float(np.median(lengths)), color="#333", linestyle="--", linewidth=1)
    ax.set_xlabel("words per query")
    ax.set_ylabel("queries")
    ax.grid(axis="x", visible=False)
    return plots.img(fig, "histogram of words per query")


def query_mix(plots: Plots, mix: Mapping[str, Any], parts: list[tuple[str, str]]) -> dict:
    """Bars of accepted queries per persona (left, when known), style, difficulty and recipe."""
    big = [p for p in parts if p[0] == "by_persona"]
    small = [p for p in parts if p[0] != "by_persona"]
    n_persona = len(mix["by_persona"]) if big else 0
    height = max(3.0, 0.26 * n_persona + 0.9, 1.5 * len(small))
    fig = plots.figure(11, height)
    if big and small:
        grid = fig.add_gridspec(len(small), 2, width_ratios=[1.15, 1])
        _barh(fig.add_subplot(grid[:, 0]), mix["by_persona"], "persona", PALETTE[0])
        for row, (key, title) in enumerate(small):
            _barh(fig.add_subplot(grid[row, 1]), mix[key], title, PALETTE[(row + 1) % len(PALETTE)])
    else:
        axes = fig.subplots(1, len(parts), squeeze=False)[0]
        for i, (key, title) in enumerate(parts):
            _barh(axes[i], mix[key], title, PALETTE[i % len(PALETTE)])
    return plots.img(fig, "query mix by persona, style, difficulty and recipe")


def funnel(plots: Plots, groups: list[tuple[str, list[Mapping[str, Any]]]]) -> dict:
    """Per stage, items in (grey) and kept (blue) per filter, in the order the filters ran."""
    fig = plots.figure(11, 0.9 + sum(0.34 * len(filters) + 0.5 for _, filters in groups))
    grid = fig.add_gridspec(len(groups), 1, height_ratios=[len(filters) + 1 for _, filters in groups])
    for row, (stage, filters) in enumerate(groups):
        ax = fig.add_subplot(grid[row, 0])
        labels = [label(f["name"]) for f in filters][::-1]
        ins = [f.get("in") or 0 for f in filters][::-1]
        kept = [f.get("kept") or 0 for f in filters][::-1]
        ax.barh(labels, ins, color=MUTED, height=0.72, label="in (dropped part)")
        ax.barh(labels, kept, color=ACCENT, height=0.72, label="kept")
        top = max(ins) if ins else 0
        for y, (i, k) in enumerate(zip(ins, kept)):  # label past the longer ("in") bar, so it never overlaps
            ax.text(i + top * 0.01, y, f"{i:,} → {k:,}" + (f"   −{i - k:,}" if i > k else ""), va="center",
                    fontsize=8, color="#9a3b00" if i > k else "#333")
        ax.set_title(f"{label(stage)}: in → kept per filter", loc="left")
        ax.set_xlim(0, top * 1.2 if top else 1)
        ax.grid(axis="y", visible=False)
    fig.legend(*fig.axes[0].get_legend_handles_labels(), loc="outside upper right", frameon=False, ncols=2)
    return plots.img(fig, "filter funnel: items in and kept per filter")


def model_scores(plots: Plots, models: Mapping[str, Mapping[str, Any]], names: list[str], metrics: list[str],
                 ci_models: Mapping[str, Any]) -> dict:
    """Grouped bars: one group per metric, one bar per model; bootstrap whiskers when ``ci_models`` has them."""
    fig = plots.figure(11, 3.6)
    ax = fig.add_subplot()
    width = 0.8 / len(names)
    x = np.arange(len(metrics))
    for i, model in enumerate(names):
        means = [models[model].get(metric) or 0.0 for metric in metrics]
        err = None
        if ci_models:
            low = [max(0.0, (models[model].get(m) or 0.0) - (get(ci_models, model, m, "ci_low") or models[model].get(m) or 0.0))
                   for m in metrics]
            high = [max(0.0, (get(ci_models, model, m, "ci_high") or models[model].get(m) or 0.0) - (models[model].get(m) or 0.0))
                    for m in metrics]
            err = [low, high]
        ax.bar(x - 0.4 + width * (i + 0.5), means, width * 0.92, yerr=err, capsize=3 if err else 0,
               color=PALETTE[i % len(PALETTE)], label=model, error_kw={"elinewidth": 1, "ecolor": "#333"})
    ax.set_xticks(x, [metric_label(m) for m in metrics])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.grid(axis="x", visible=False)
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="model")
    return plots.img(fig, "model scores per metric" + (" with confidence intervals" if ci_models else ""))


def reference_scatter(plots: Plots, points: list[tuple[str, Mapping, Mapping]], metric: str, title: str,
                      ref_name: Any, syn_name: Any) -> dict:
    """One point per model: its score on the reference (x) and on the synthetic task (y), CIs both ways."""
    fig = plots.figure(6.3, 5.0)
    ax = fig.add_subplot()
    for i, (model, r, s) in enumerate(points):
        def err(stat):
            low, high = stat.get("ci_low"), stat.get("ci_high")
            if not (is_number(low) and is_number(high)):
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
    ax.set_xlabel(f"reference {metric_label(metric)}" + (f" ({ref_name})" if ref_name else ""))
    ax.set_ylabel(f"synthetic {metric_label(metric)}" + (f" ({syn_name})" if syn_name else ""))
    ax.set_title(title or "model ranking agreement", fontsize=10)
    ax.legend(frameon=False, loc="lower right")
    return plots.img(fig, f"synthetic vs reference {metric_label(metric)} per model")

