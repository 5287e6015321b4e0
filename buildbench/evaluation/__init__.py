"""Scoring models on written tasks: metrics per query (``evaluate``), mteb's own search (``mteb_eval``),
bootstrap intervals and validity diagnostics (``validity``), and agreement with a human-labelled reference
(``compare``)."""

from .evaluate import (
    QueryScores,
    evaluate_task,
    evaluate_task_per_query,
    format_table,
    load_task,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
)
from .results import ComparisonResult, EvaluationResult, ci_frame, compare_frame
from .validity import evaluate_with_ci

__all__ = [
    "ComparisonResult",
    "EvaluationResult",
    "QueryScores",
    "ci_frame",
    "compare_frame",
    "evaluate_task",
    "evaluate_task_per_query",
    "evaluate_with_ci",
    "format_table",
    "load_task",
    "mrr_at_k",
    "ndcg_at_k",
    "recall_at_k",
]
