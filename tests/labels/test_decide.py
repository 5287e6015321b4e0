"""What labels decide and how agreement is measured: majority with a cautious tie, Cohen's kappa, the judge
against people, the review summary a task's metadata reads."""

from __future__ import annotations

import json

import pytest

from buildbench.labels import Label
from buildbench.labels.decide import (
    cohen_kappa,
    decide,
    good_share_by,
    judge_agreement,
    label_shares,
    review_summary,
    reviewer_agreement,
    votes_of,
)


def test_cohen_kappa_matches_the_textbook_value():
    # 50 items: both yes 20, both no 15, a yes/b no 5, a no/b yes 10 -> po 0.7, pe 0.5, kappa 0.4
    a = ["y"] * 20 + ["n"] * 15 + ["y"] * 5 + ["n"] * 10
    b = ["y"] * 20 + ["n"] * 15 + ["n"] * 5 + ["y"] * 10
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(["y", "y"], ["y", "y"]) == 1.0 and cohen_kappa([], []) is None


def test_reviewers_agreement_and_the_summary_with_missed_positives():
    labels = [Label("q1", "good", reviewer="ana"), Label("q1", "good", reviewer="bo"),
              Label("q2", "missed_positive", reviewer="ana", passage_id="p9"),
              Label("q2", "vague", reviewer="bo"), Label("q3", "wrong", reviewer="ana")]
    agreement = reviewer_agreement(votes_of(labels))
    assert (agreement.items, agreement.observed, agreement.pairs) == (2, 0.5, 1)
    decisions = decide(labels)
    assert decisions["q2"].label == "vague"  # a tie goes to the cautious label
    rows = [{"query_id": d.query_id, "label": d.label, "votes": json.dumps(d.votes)} for d in decisions.values()]
    summary = review_summary(rows, ["q1", "q4"])
    assert summary["reviewed_queries"] == 1 and summary["task_queries"] == 2 and summary["share"] == 0.5
    assert summary["reviewers"] == 2 and summary["decisions"] == {"good": 1, "vague": 1, "wrong": 1}
    assert summary["agreement"] == {"queries": 2, "observed": 0.5, "kappa": agreement.kappa}


def test_the_judge_against_people_and_the_shares():
    decisions = decide([Label("q1", "good"), Label("q2", "wrong"), Label("q3", "vague"), Label("q4", "wrong")])
    judge = judge_agreement(decisions, {"q1": 3, "q2": 2, "q3": 1, "q4": 0, "q9": 3}, relevant_label=2)
    # people: q1 q3 answered, q2 q4 not; judge: q1 q2 relevant, q3 q4 not
    assert judge.items == 4 and judge.matrix == [[1, 1], [1, 1]] and judge.kappa == 0.0
    assert label_shares(decisions.values()) == {"labelled": 4, "good": 0.25, "vague": 0.25, "wrong": 0.5,
                                                "missed_positive": 0.0}
    queries = [{"id": "q1", "style": "keyword"}, {"id": "q2", "style": "keyword"}, {"id": "q3", "style": "question"},
               {"id": "q7", "style": "question"}]
    assert good_share_by(decisions, queries, keys=("style",)) == {
        "style": {"keyword": {"labelled": 2, "good": 0.5}, "question": {"labelled": 1, "good": 0.0}}}
