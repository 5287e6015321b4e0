"""report.json's "human_review": what people's labels (``build-bench label``) say about a build, and how the
judge agrees with them. {} when nobody labelled this build's queries.

- ``labels``: how many queries people labelled and the share good, vague, wrong and missed positive;
- ``reviewers``: agreement between reviewers where two or more labelled the same query (Light's kappa);
- ``judge_vs_people``: the judge against people on "does the positive answer the query?" (Cohen's kappa, confusion
  matrix with people's answer as rows and the judge's as columns), and what the calibration gate measured on;
- ``good_share_by``: the share of good queries per persona, style, recipe and model, the numbers to compare
  two prompt or model choices by.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional

from ..engine.rundir import RunDir
from ..labels.decide import Decision, good_share_by, judge_agreement, label_shares, review_summary

REVIEWS, QUERIES, JUDGEMENTS, CALIBRATION = "reviews", "queries", "judgements", "judge_calibration"
POSITIVE = "positive"


def human_review(rundir: RunDir, relevant_label: Optional[int]) -> dict[str, Any]:
    if not rundir.has_dataset(REVIEWS):
        return {}
    reviews = rundir.read(REVIEWS).to_pylist()
    if not reviews:
        return {}
    decisions = {r["query_id"]: Decision(r["query_id"], r["label"], json.loads(r["votes"]), tuple(r["passages"]))
                 for r in reviews}
    queries = rundir.read(QUERIES).to_pylist() if rundir.has_dataset(QUERIES) else []
    final = rundir.read("final_queries")["id"].to_pylist() if rundir.has_dataset("final_queries") else []
    summary = review_summary(reviews, final)
    out: dict[str, Any] = {
        "labels": label_shares(decisions.values()),
        "task": {k: summary[k] for k in ("reviewed_queries", "task_queries", "share")},
        "reviewers": {"count": summary["reviewers"], **summary["agreement"]},
        "good_share_by": good_share_by(decisions, queries),
    }
    judged: dict[str, int] = {}
    if rundir.has_dataset(JUDGEMENTS):
        for r in rundir.read(JUDGEMENTS).to_pylist():
            if r["kind"] == POSITIVE:
                judged[r["query_id"]] = max(int(r["label"]), judged.get(r["query_id"], int(r["label"])))
    if judged:
        threshold = relevant_label if relevant_label is not None else 2
        agreement = judge_agreement(decisions, judged, threshold)
        judge = {**agreement.as_dict(), "relevant_label": threshold, "calibrated_on": _calibrated_on(rundir)}
        judge.pop("pairs", None)
        out["judge_vs_people"] = judge
    return out


def _calibrated_on(rundir: RunDir) -> str:
    if not rundir.has_dataset(CALIBRATION):
        return ""
    rows = rundir.read(CALIBRATION).to_pylist()
    return json.loads(rows[0]["calibration"] or "{}").get("on", "controls") if rows else ""


def human_review_lines(hr: Mapping[str, Any]) -> list[str]:
    """Plain lines for the report page and the terminal summary."""
    if not hr:
        return []
    lab = hr.get("labels") or {}
    lines = [f"{lab.get('labelled', 0)} queries labelled by people: "
             + ", ".join(f"{lab.get(k, 0):.0%} {k.replace('_', ' ')}" for k in ("good", "vague", "wrong",
                                                                                  "missed_positive"))]
    task = hr.get("task") or {}
    lines.append(f"{task.get('reviewed_queries', 0)} of the task's {task.get('task_queries', 0)} queries reviewed "
                 f"({task.get('share', 0):.0%})")
    rev = hr.get("reviewers") or {}
    if rev.get("kappa") is not None:
        lines.append(f"reviewers agree on {rev['observed']:.0%} of {rev['queries']} queries labelled twice or more "
                     f"(kappa {rev['kappa']:.2f})")
    judge = hr.get("judge_vs_people") or {}
    if judge.get("items"):
        kappa = "n/a" if judge.get("kappa") is None else f"{judge['kappa']:.2f}"
        lines.append(f"judge vs people on 'does the positive answer it?': kappa {kappa}, agreement "
                     f"{judge['observed']:.0%} on {judge['items']} queries (calibrated on {judge.get('calibrated_on')})")
    return lines
