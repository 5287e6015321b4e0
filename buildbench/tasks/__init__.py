"""Writing tasks (retrieval, reranking, pair classification, clustering, STS) and compiling them for mteb.

Scoring models on a written task is ``buildbench.evaluation``.
"""

from .assemble import check_task, write_retrieval_task
from .info import TaskInfo
from .mteb_task import compile_task, make_mteb_task

__all__ = [
    "TaskInfo",
    "check_task",
    "compile_task",
    "make_mteb_task",
    "write_retrieval_task",
]
