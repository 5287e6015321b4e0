"""Assembling MTEB retrieval tasks, evaluating models on them, and exposing them to mteb."""

from .assemble import check_task, write_retrieval_task
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
from .info import TaskInfo
from .mteb_task import make_mteb_task

__all__ = [
    "QueryScores",
    "TaskInfo",
    "check_task",
    "evaluate_task",
    "evaluate_task_per_query",
    "format_table",
    "load_task",
    "make_mteb_task",
    "mrr_at_k",
    "ndcg_at_k",
    "recall_at_k",
    "write_retrieval_task",
]
