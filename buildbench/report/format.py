"""How the HTML report reads report.json values and writes them as text (shared by the sections and plots)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

_METRIC_RE = re.compile(r"^(ndcg|recall|mrr|map|precision)_at_(\d+)$")
_METRIC_NAMES = {"ndcg": "nDCG", "recall": "Recall", "mrr": "MRR", "map": "MAP", "precision": "P"}


def get(obj: Any, *keys: str, default: Any = None) -> Any:
    """``obj[k1][k2]...``, or ``default`` as soon as a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(obj, Mapping) or key not in obj:
            return default
        obj = obj[key]
    return obj


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def num(value: Any) -> str:
    """A number as the report shows it: thousands separators, 4 decimals for scores and rates, yes/no."""
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


def metric_label(name: str) -> str:
    """``ndcg_at_10`` -> ``nDCG@10``; other names pass through with underscores as spaces."""
    m = _METRIC_RE.match(name)
    if m:
        return f"{_METRIC_NAMES[m.group(1)]}@{m.group(2)}"
    return name.replace("_", " ")


def label(name: Any) -> str:
    """A key as people read it: underscores as spaces."""
    return str(name).replace("_", " ")


def duration(seconds: Any) -> str:
    if not is_number(seconds):
        return ""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
