"""A sample run for the report tests: a small written task with query provenance, and a report.json dict
with every section (texts with HTML in them, to check the escaping)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from buildbench.tasks import TaskInfo, write_retrieval_task

EVIL_QUERY = "what does <script>alert('x')</script> & the \"rate\" do to cheese prices in the long run overall"
EVIL_MODEL = "evil<b>model</b>$x$"

# Hand-made passages about cheese making: (id, title, text, a query for it, persona, style, difficulty)
ROWS = [
    ("c0", "Rennet", "Rennet is an enzyme mix that curdles milk by splitting casein proteins.", "what makes milk curdle",
     "cheesemaker", "question", "easy"),
    ("c1", "Brine", "Feta is kept in salty brine, which preserves it and gives it its sharp taste.", "salt bath for feta",
     "chef", "keyword", "medium"),
    ("c2", "Aging", "Hard cheeses age for months in caves where humidity and temperature are controlled.",
     "how long do hard cheeses mature and under what conditions in caves", "cheesemaker", "long_form", "hard"),
    ("c3", "Mould", "Blue veins come from Penicillium roqueforti spores pierced into the young cheese.",
     "blue cheese veins", "student", "keyword", "easy"),
    ("c4", "Rind", "Washed-rind cheeses are rubbed with brine or beer, which feeds orange bacteria on the crust.",
     "why is the crust of some cheeses orange and smelly", "chef", "question", "medium"),
    ("c5", "Pasteurisation", "Raw-milk cheese skips pasteurisation, keeping native bacteria that add flavour.",
     EVIL_QUERY, "student", "long_form", "hard"),
]


def sample_report(task_dir: Path, validity: bool = True, compare: bool = True) -> dict:
    scores = {
        "bm25": {"ndcg_at_10": 0.61, "recall_at_10": 0.83, "mrr_at_10": 0.55},
        EVIL_MODEL: {"ndcg_at_10": 0.48, "recall_at_10": 0.7, "mrr_at_10": 0.41},
        "random": {"ndcg_at_10": 0.05, "recall_at_10": 0.1, "mrr_at_10": 0.03},
    }

    def ci_block(task: str, shift: float) -> dict:
        return {
            "task": task, "k": 10, "queries": 6, "corpus": 6, "n_boot": 1000,
            "models": {m: {k: {"mean": v + shift, "ci_low": v + shift - 0.08, "ci_high": min(1.0, v + shift + 0.07)}
                           for k, v in s.items()} for m, s in scores.items()},
            "diagnostics": {
                "saturation": {"flag": False, "message": "best model nDCG@10 0.610 < 0.95: not saturated",
                               "best": "bm25", "threshold": 0.95},
                "random_baseline": {"flag": False, "message": "random nDCG@10 0.050", "ndcg": 0.05},
                "lexical_leak": {"flag": True, "message": "bm25 beats every dense model by 0.13 <leak>",
                                 "margin": 0.13, "threshold": 0.05},
                "discriminative_power": {"flag": True, "message": "1 of 3 pairs told apart", "pairs": [],
                                         "significant_fraction": 0.333},
                "ranking_stability": {"flag": False, "message": "mean Kendall tau 0.91", "tau_mean": 0.91},
            },
        }

    report = {
        "buildbench_version": "0.1.0",
        "config_hash": "abc123",
        "task_dir": str(task_dir),
        "wall_seconds": 125.5,
        "stages": {
            "ingest": {"counts": {"in": 0, "out": 9, "dropped": 0}, "seconds": 0.1},
            "filter_documents": {"counts": {"in": 9, "out": 6, "dropped": 3}, "seconds": 0.2},
            "chunk": {"counts": {"in": 6, "out": 6, "dropped": 0}, "seconds": 0.01, "stats": {"chunks": 6}},
            "generate_queries": {"counts": {"in": 6, "out": 8, "dropped": 0}, "seconds": 120.0,
                                 "this_run": {"skipped": False},
                                 "throughput": {"engine": "ray", "workers": 2, "shards": 3, "rows": 6,
                                                "rows_per_second": 0.05}},
            "mine_negatives": {"counts": {"in": 8, "out": 40, "dropped": 0}, "seconds": 2.5,
                               "this_run": {"skipped": False},
                               "throughput": {"engine": "driver", "workers": 1, "shards": None, "rows": 8,
                                              "rows_per_second": 3.2, "tasks": {"engine": "ray", "count": 4}}},
        },
        "stage_order": ["ingest", "filter_documents", "chunk", "generate_queries", "mine_negatives"],
        "counts": {"documents_ingested": 9, "documents_kept": 6, "chunks": 6, "queries_generated": 8},
        "filters": [  # stage order, then chain order, as make_report lists them
            {"stage": "filter_documents", "name": "doc_dedup", "in": 9, "kept": 6, "dropped": 3, "seconds": 0.1,
             "reasons": {"near_duplicate": 3}, "extra": {}},
            {"stage": "filter_documents", "name": "doc_language", "in": 6, "kept": 6, "dropped": 0, "seconds": 0.2,
             "reasons": {}, "extra": {"detected.en": 6, "mixed": 0}},
            {"stage": "filter_queries", "name": "query_length", "in": 8, "kept": 8, "dropped": 0, "seconds": 0.0,
             "reasons": {}, "extra": {}},
            {"stage": "filter_queries", "name": "query_round_trip", "in": 8, "kept": 6, "dropped": 2, "seconds": 1.5,
             "reasons": {"source_not_retrieved": 2}, "extra": {}},
        ],
        "drops": {"filter_documents": {"doc_dedup:near_duplicate": 3},
                  "filter_queries": {"query_round_trip:source_not_retrieved": 2}},
        "languages": {"documents": {"en": 6}, "documents_mixed": 0, "queries": {"en": 6}, "queries_mixed": 0},
        "qrels_repair": {
            "false_negatives_added": 2, "false_negatives_by_rule": {"duplicate_of_positive": 2},
            "hard_negatives": 12, "judge_trusted": False, "synthetic_negatives_removed": 0,
            "judge_calibration": {"balanced_accuracy": 0.5, "controls": 4, "positives": 4, "trusted": 0},
            "mining": {"negative": 12, "pool": 30, "too_close": 5}, "candidates_excluded": {"too_close": 5},
        },
        "queries": {
            "accepted": 6,
            "by_persona": {"cheesemaker": 2, "chef": 2, "student": 2},
            "by_style": {"question": 2, "keyword": 2, "long_form": 2},
            "by_difficulty": {"easy": 2, "medium": 2, "hard": 2},
            "by_recipe": {"inpars-persona": 6},
        },
        "llm": {"calls_total": 14, "tokens_in_total": 5000, "tokens_out_total": 300},
        "task_scores": {
            "retrieval": scores,
            "reranking": {"bm25": {"ndcg_at_10": 0.8, "recall_at_10": 1.0, "mrr_at_10": 0.75}},
            "downsampled": scores,
        },
        "downsample_agreement": {"kendall_tau": 1.0, "spearman_rho": 1.0, "models": 3,
                                 "full.bm25": 0.61, "downsampled.bm25": 0.61},
        "tasks": [{"variant": "retrieval", "path": str(task_dir), "corpus": 6}],
    }
    if validity:
        report["validity"] = ci_block("CheeseRetrieval", 0.0)
    if compare:
        report["compare"] = {
            "models": list(scores),
            "synthetic": ci_block("CheeseRetrieval", 0.0),
            "reference": ci_block("HumanCheese", -0.02),
            "spearman": {"rho": 1.0, "ci_low": 0.5, "ci_high": 1.0},
            "kendall": {"tau": 1.0, "ci_low": 0.33, "ci_high": 1.0},
            "anchors": {"YourBench vs MMLU": 1.0, "AIR-Bench vs human": 0.82},
        }
    return report


def write_sample_run(run: Path) -> Path:
    """The run folder ``run`` with its retrieval task in ``run/task``; returns ``run``."""
    corpus = pa.table({"id": [r[0] for r in ROWS], "title": [r[1] for r in ROWS], "text": [r[2] for r in ROWS]})
    queries = pa.table({"id": [f"q{i}" for i in range(len(ROWS))], "text": [r[3] for r in ROWS]})
    qrels = pa.table({"query-id": [f"q{i}" for i in range(len(ROWS))], "corpus-id": [r[0] for r in ROWS],
                      "score": pa.array([1] * len(ROWS), pa.int64())})
    info = TaskInfo(name="CheeseRetrieval", description="Cheese-making passages <and> the queries that find them.",
                    domain="food")
    task_dir = write_retrieval_task(run / "task", corpus, queries, qrels, info)
    prov = pa.table({"id": [f"q{i}" for i in range(len(ROWS))], "text": [r[3] for r in ROWS],
                     "persona": [r[4] for r in ROWS], "style": [r[5] for r in ROWS],
                     "difficulty": [r[6] for r in ROWS], "recipe": ["inpars-persona"] * len(ROWS)})
    (task_dir / "provenance").mkdir()
    pq.write_table(prov, task_dir / "provenance" / "queries.parquet")
    return run
