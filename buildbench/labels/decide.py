"""What people's labels decide, and how well people and the judge agree.

- ``decide``: one decision per query from its reviewers' latest labels: the majority label; a tie goes to the
  most cautious label (wrong, then vague, then missed_positive, then good), since a benchmark is hurt more by
  a bad query kept than by a good one dropped.
- ``reviewer_agreement``: between reviewers, on the queries two or more labelled: raw agreement and Cohen's kappa
  averaged over reviewer pairs (Light's kappa).
- ``judge_agreement``: the judge against people, on the question the judge answers, "does the positive answer
  the query?" (people: every label but wrong; judge: its label for the positive reaches ``relevant_label``).
- ``good_share_by``: the share of good queries per persona, style, recipe or model, to compare prompt or model
  choices by what people saw.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from typing import Iterable, Mapping, Optional, Sequence

from .store import ANSWERS, GOOD, LABELS, MISSED_POSITIVE, VAGUE, WRONG, Label

CAUTION = (WRONG, VAGUE, MISSED_POSITIVE, GOOD)  # tie order: the first wins


@dataclass(frozen=True)
class Decision:
    """What the reviewers of one query decided."""

    query_id: str
    label: str
    votes: dict[str, str]  # reviewer -> label
    passages: tuple[str, ...] = ()  # missed positives named by the reviewers who said so
    notes: tuple[str, ...] = ()

    @property
    def detail(self) -> str:
        agree = sum(1 for v in self.votes.values() if v == self.label)
        who = ", ".join(f"{r}={v}" for r, v in sorted(self.votes.items()))
        return f"human decision, {agree} of {len(self.votes)} reviewer(s): {who}"


def decide(labels: Iterable[Label]) -> dict[str, Decision]:
    """One decision per query; ``labels`` in the order given (a reviewer's last label of a query counts)."""
    latest: dict[tuple[str, str], Label] = {}
    for lab in labels:
        latest[(lab.reviewer, lab.query_id)] = lab
    by_query: dict[str, list[Label]] = defaultdict(list)
    for lab in latest.values():
        by_query[lab.query_id].append(lab)
    out = {}
    for q, labs in by_query.items():
        counts = Counter(lab.label for lab in labs)
        top = max(counts.values())
        label = next(lab for lab in CAUTION if counts.get(lab) == top)
        passages = tuple(sorted({lab.passage_id for lab in labs if lab.label == MISSED_POSITIVE and lab.passage_id}))
        notes = tuple(f"{lab.reviewer}: {lab.note}" for lab in labs if lab.note)
        out[q] = Decision(q, label, {lab.reviewer: lab.label for lab in labs},
                          passages if label == MISSED_POSITIVE else (), notes)
    return out


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> Optional[float]:
    """Cohen's kappa of two raters over the same items; None for no items, 1.0 when both always agree on a
    single category (no disagreement is possible to measure, and none happened)."""
    n = len(a)
    if n == 0 or n != len(b):
        return None
    observed = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    if expected >= 1.0:
        return 1.0 if observed == 1.0 else 0.0
    return round((observed - expected) / (1 - expected), 4)


def confusion(a: Sequence[str], b: Sequence[str], rows: Sequence[str], cols: Sequence[str]) -> list[list[int]]:
    counts = Counter(zip(a, b))
    return [[counts[(r, c)] for c in cols] for r in rows]


@dataclass
class Agreement:
    """Agreement of two label sources over the same items."""

    items: int = 0
    observed: Optional[float] = None
    kappa: Optional[float] = None
    categories: list[str] = field(default_factory=list)  # row order (first source) and column order (second)
    matrix: list[list[int]] = field(default_factory=list)
    pairs: int = 0  # reviewer pairs averaged over (reviewer agreement only)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def votes_of(labels: Iterable[Label]) -> dict[str, dict[str, str]]:
    """{query: {reviewer: label}}, each reviewer's last label of each query."""
    votes: dict[str, dict[str, str]] = defaultdict(dict)
    for lab in labels:
        votes[lab.query_id][lab.reviewer] = lab.label
    return votes


def reviewer_agreement(votes: Mapping[str, Mapping[str, str]]) -> Agreement:
    """Agreement between reviewers on the queries at least two of them labelled (``votes_of``)."""
    shared = {q: v for q, v in votes.items() if len(v) >= 2}
    reviewers = sorted({r for v in shared.values() for r in v})
    kappas, observed, matrix = [], [], Counter()
    for r1, r2 in combinations(reviewers, 2):
        both = [(v[r1], v[r2]) for v in shared.values() if r1 in v and r2 in v]
        if not both:
            continue
        a, b = zip(*both)
        k = cohen_kappa(a, b)
        if k is not None:
            kappas.append(k)
            observed.append(sum(x == y for x, y in both) / len(both))
            matrix.update(both)
    if not kappas:
        return Agreement(items=len(shared), categories=list(LABELS))
    return Agreement(items=len(shared), observed=round(sum(observed) / len(observed), 4),
                     kappa=round(sum(kappas) / len(kappas), 4), categories=list(LABELS),
                     matrix=[[matrix[(r, c)] for c in LABELS] for r in LABELS], pairs=len(kappas))


RELEVANT, NOT_RELEVANT = "relevant", "not_relevant"


def judge_agreement(decisions: Mapping[str, Decision], judge_labels: Mapping[str, int],
                    relevant_label: int) -> Agreement:
    """People against the judge on "does the query's positive answer it?", over the queries both labelled.
    ``judge_labels``: the judge's label (0-3) for each query's positive (its highest, with several)."""
    common = sorted(q for q in decisions if q in judge_labels)
    people = [RELEVANT if decisions[q].label in ANSWERS else NOT_RELEVANT for q in common]
    judge = [RELEVANT if judge_labels[q] >= relevant_label else NOT_RELEVANT for q in common]
    cats = [RELEVANT, NOT_RELEVANT]
    if not common:
        return Agreement(categories=cats)
    return Agreement(items=len(common), observed=round(sum(p == j for p, j in zip(people, judge)) / len(common), 4),
                     kappa=cohen_kappa(people, judge), categories=cats, matrix=confusion(people, judge, cats, cats))


def label_shares(decisions: Iterable[Decision]) -> dict[str, float | int]:
    """How many queries people labelled, and the share of each label."""
    counts = Counter(d.label for d in decisions)
    n = sum(counts.values())
    out: dict[str, float | int] = {"labelled": n}
    out.update({lab: round(counts[lab] / n, 4) if n else 0.0 for lab in LABELS})
    return out


def good_share_by(decisions: Mapping[str, Decision], queries: Sequence[Mapping[str, str]],
                  keys: Sequence[str] = ("persona", "style", "recipe", "model")) -> dict[str, dict[str, dict]]:
    """{key: {value: {"labelled": n, "good": share}}} over the labelled queries (``queries``: rows with an id)."""
    out: dict[str, dict[str, dict]] = {}
    rows = [r for r in queries if r.get("id") in decisions]
    for key in keys:
        groups: dict[str, list[str]] = defaultdict(list)
        for r in rows:
            groups[str(r.get(key) or "")].append(decisions[r["id"]].label)
        out[key] = {v: {"labelled": len(ls), "good": round(sum(x == GOOD for x in ls) / len(ls), 4)}
                    for v, ls in sorted(groups.items())}
    return out


def review_summary(reviews: Sequence[Mapping], task_query_ids: Sequence[str]) -> dict:
    """What a task's card and metadata say about people's review: how many of its queries people reviewed,
    by how many reviewers, what they decided (including the queries their labels removed), and how far
    reviewers agreed where two or more labelled the same query. ``reviews``: rows of the ``reviews`` dataset."""
    in_task = set(task_query_ids)
    votes = {r["query_id"]: json.loads(r["votes"]) for r in reviews}
    reviewed = sum(1 for q in votes if q in in_task)
    agreement = reviewer_agreement(votes)
    return {
        "reviewed_queries": reviewed,
        "task_queries": len(in_task),
        "share": round(reviewed / len(in_task), 4) if in_task else 0.0,
        "reviewers": len({who for v in votes.values() for who in v}),
        "decisions": dict(Counter(r["label"] for r in reviews)),
        "agreement": {"queries": agreement.items, "observed": agreement.observed, "kappa": agreement.kappa},
    }
