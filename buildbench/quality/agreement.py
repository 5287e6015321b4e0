"""Agreement of a binary judge with labels: balanced accuracy and Cohen's kappa, and the threshold that
maximises balanced accuracy. Used to calibrate judges on human-labelled pairs and on a build's controls."""

from __future__ import annotations

from typing import Sequence


def binary_agreement(predicted: Sequence[bool], labels: Sequence[int | bool]) -> dict:
    """True positive and negative rates, balanced accuracy and Cohen's kappa of predictions against labels."""
    pairs = [(bool(p), bool(y)) for p, y in zip(predicted, labels)]
    n = len(pairs)
    tp = sum(p and y for p, y in pairs)
    tn = sum(not p and not y for p, y in pairs)
    pos = sum(y for _, y in pairs)
    neg = n - pos
    tpr = tp / pos if pos else None
    tnr = tn / neg if neg else None
    ba = (tpr + tnr) / 2 if tpr is not None and tnr is not None else None
    kappa = None
    if n:
        observed = (tp + tn) / n
        said_yes = sum(p for p, _ in pairs) / n
        expected = said_yes * pos / n + (1 - said_yes) * neg / n
        kappa = (observed - expected) / (1 - expected) if expected < 1 else (1.0 if observed == 1 else 0.0)
    return {"pairs": n, "relevant": pos, "not_relevant": neg,
            "true_positive_rate": _r(tpr), "true_negative_rate": _r(tnr),
            "balanced_accuracy": _r(ba), "kappa": _r(kappa)}


def best_threshold(scores: Sequence[float], labels: Sequence[int | bool]) -> float:
    """The cut (relevant when score > cut) with the highest balanced accuracy; midpoints between scores."""
    ordered = sorted(set(scores))
    if not ordered:
        return 0.0
    cuts = [ordered[0] - 1e-9] + [(a + b) / 2 for a, b in zip(ordered, ordered[1:])]
    best, best_ba = cuts[0], -1.0
    for cut in cuts:
        ba = binary_agreement([s > cut for s in scores], labels)["balanced_accuracy"] or 0.0
        if ba > best_ba:
            best, best_ba = cut, ba
    return best


def _r(x):
    return None if x is None else round(x, 4)
