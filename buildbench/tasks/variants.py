"""The task variants a build writes, declared once: name, task-name suffix, writer and scorer.

The retrieval-layout variants (retrieval, reranking, downsampled) are written by ``write_retrieval_task``,
compiled with mteb's rules, scored by buildbench's own evaluator and listed in ``benchmark.json``. The others
are single-config mteb task types, scored through mteb with the task its ``mteb_task`` factory builds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from .assemble import write_retrieval_task
from .clustering import make_mteb_clustering_task, write_clustering_task
from .pair_classification import make_mteb_pair_task, write_pair_classification_task
from .sts import make_mteb_sts_task, write_sts_task

RETRIEVAL, RERANKING, DOWNSAMPLED = "retrieval", "reranking", "downsampled"
PAIR_CLASSIFICATION, CLUSTERING, STS = "pair_classification", "clustering", "sts"


@dataclass(frozen=True)
class Variant:
    name: str  # the "variant" column of the tasks dataset; its folder is task_<name> (retrieval: task/)
    # Appended to the task name's stem (the name without "Retrieval"); None keeps the task's own name.
    suffix: Optional[str]
    writer: Callable  # writes the task folder
    # The factory of the mteb task that scores it; None: buildbench's own evaluator scores it.
    mteb_task: Optional[Callable] = None

    @property
    def retrieval_layout(self) -> bool:
        return self.writer is write_retrieval_task

    @property
    def scorer(self) -> str:
        return "buildbench" if self.mteb_task is None else "mteb"


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant(RETRIEVAL, None, write_retrieval_task),
    Variant(RERANKING, "Reranking", write_retrieval_task),
    Variant(DOWNSAMPLED, "RetrievalDownsampled", write_retrieval_task),
    Variant(PAIR_CLASSIFICATION, "PairClassification", write_pair_classification_task, make_mteb_pair_task),
    Variant(CLUSTERING, "Clustering", write_clustering_task, make_mteb_clustering_task),
    Variant(STS, "STS", write_sts_task, make_mteb_sts_task),
)}

# Retrieval-layout variants, in the order they are written; publishing, validation and the registry speak it.
RETRIEVAL_VARIANTS = tuple(name for name, v in VARIANTS.items() if v.retrieval_layout)


def variant_name(name: str, variant: str) -> str:
    """BuildBenchFinanceRetrieval -> BuildBenchFinanceReranking, ...RetrievalDownsampled, ...PairClassification."""
    suffix = VARIANTS[variant].suffix
    if suffix is None:
        return name
    stem = name[: -len("Retrieval")] if name.endswith("Retrieval") else name
    return f"{stem}{suffix}"
