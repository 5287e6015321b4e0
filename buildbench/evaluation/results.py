"""Results of ``evaluate_with_ci`` and ``compare`` as tables.

Both functions return plain JSON-able dicts (that is what report.json, ``--json`` and compare.json hold); the
dict subclasses here add a ``to_pandas()`` view for people working in a notebook: one row per model and metric,
with the mean and the bootstrap interval as columns. ``ci_frame`` gives the same view of such a dict read back
from JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CI_COLUMNS = ["task", "model", "metric", "mean", "ci_low", "ci_high", "scored_by"]
COMPARE_COLUMNS = ["side", *CI_COLUMNS]


def _ci_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    scored_by = result.get("scored_by") or {}
    rows = []
    for model, metrics in (result.get("models") or {}).items():
        for metric, stats in metrics.items():
            rows.append({"task": result.get("task"), "model": model, "metric": metric, "mean": stats.get("mean"),
                         "ci_low": stats.get("ci_low"), "ci_high": stats.get("ci_high"),
                         "scored_by": scored_by.get(model)})
    return rows


def ci_frame(result: Mapping[str, Any]):
    """A DataFrame of an ``evaluate_with_ci`` dict: one row per (model, metric), in the dict's order.

    Columns: task, model, metric, mean, ci_low, ci_high, scored_by ("mteb" or "buildbench"; None when not
    recorded). The diagnostics stay in the dict; ``attrs`` carries k, queries, corpus and n_boot.
    """
    import pandas as pd

    frame = pd.DataFrame(_ci_rows(result), columns=CI_COLUMNS)
    frame.attrs.update({key: result.get(key) for key in ("k", "queries", "corpus", "n_boot")})
    return frame


def compare_frame(result: Mapping[str, Any]):
    """A DataFrame of a ``compare`` dict: one row per (side, model, metric), synthetic rows first.

    Columns: side ("synthetic" or "reference") and those of ``ci_frame``. ``attrs`` carries the rank
    correlations (``spearman``, ``kendall``) and k.
    """
    import pandas as pd

    rows = [{"side": side, **row} for side in ("synthetic", "reference") for row in _ci_rows(result.get(side) or {})]
    frame = pd.DataFrame(rows, columns=COMPARE_COLUMNS)
    frame.attrs.update({key: result.get(key) for key in ("k", "spearman", "kendall", "correlated_models")})
    return frame


class EvaluationResult(dict):
    """What ``evaluate_with_ci`` returns: the JSON-able dict, plus ``to_pandas()`` (see ``ci_frame``)."""

    def to_pandas(self):
        return ci_frame(self)


class ComparisonResult(dict):
    """What ``compare`` returns: the JSON-able dict, plus ``to_pandas()`` (see ``compare_frame``)."""

    def to_pandas(self):
        return compare_frame(self)
