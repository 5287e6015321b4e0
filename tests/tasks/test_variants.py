"""The task variants, declared once: names, writers and scorers."""

from __future__ import annotations

import pytest

from buildbench.tasks import write_retrieval_task
from buildbench.tasks.clustering import make_mteb_clustering_task
from buildbench.tasks.variants import RETRIEVAL_VARIANTS, VARIANTS, variant_name


def test_task_names_per_variant():
    names = {v: variant_name("BuildBenchFinanceRetrieval", v) for v in VARIANTS}
    assert names == {"retrieval": "BuildBenchFinanceRetrieval", "reranking": "BuildBenchFinanceReranking",
                     "downsampled": "BuildBenchFinanceRetrievalDownsampled",
                     "pair_classification": "BuildBenchFinancePairClassification",
                     "clustering": "BuildBenchFinanceClustering", "sts": "BuildBenchFinanceSTS"}
    assert variant_name("Tariffs", "reranking") == "TariffsReranking"  # no "Retrieval" to strip
    with pytest.raises(KeyError):
        variant_name("X", "summarization")


def test_writers_and_scorers():
    assert RETRIEVAL_VARIANTS == ("retrieval", "reranking", "downsampled")
    assert all(VARIANTS[v].writer is write_retrieval_task and VARIANTS[v].scorer == "buildbench"
               for v in RETRIEVAL_VARIANTS)
    others = {v for v in VARIANTS if v not in RETRIEVAL_VARIANTS}
    assert others == {"pair_classification", "clustering", "sts"}
    assert all(VARIANTS[v].scorer == "mteb" and not VARIANTS[v].retrieval_layout for v in others)
    assert VARIANTS["clustering"].mteb_task is make_mteb_clustering_task
