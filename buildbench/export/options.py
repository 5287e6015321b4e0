"""The ``build-bench export`` command: its options and the thin call into ``export_run`` (kept here, beside the
library, so ``cli.py`` stays one line per command; this module imports nothing heavy until the command runs)."""

from __future__ import annotations

import argparse
import os

SUMMARY = "export a run's (query, positive, hard negatives) triplets for fine-tuning"
DESCRIPTION = (
    "Export a finished run's training triplets (its filtered queries, qrels positives and mined hard negatives) in "
    "sentence-transformers, BEIR or jsonl (FlagEmbedding) format, behind a leakage guard: a triplet whose query or "
    "positive is in a test task, exactly or as a MinHash near-duplicate, is withheld, and such a negative is "
    "dropped. DIR/export.json reports the counts and DIR/withheld.jsonl every withheld item with the test text it "
    "matched.")


def add_options(p: argparse.ArgumentParser, registry_env: str) -> argparse.ArgumentParser:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder (the --out of a build)")
    p.add_argument("--format", default="sentence-transformers", metavar="FORMAT",
                   help="sentence-transformers (DIR/SPLIT.parquet: anchor, positive, negative_1..K), beir "
                   "(corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv, hard_negatives.jsonl) or jsonl (DIR/SPLIT.jsonl: "
                   "query, pos, neg). Default: sentence-transformers")
    p.add_argument("--split", default="train", help="the split name the files are written as (default train)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="the export folder: new, empty, or a previous export (which is replaced)")
    p.add_argument("--negatives", type=int, default=3, metavar="K",
                   help="hard negatives per triplet, closest first (default 3). sentence-transformers writes "
                   "exactly K columns and leaves out triplets with fewer; 0 writes (query, positive) pairs")
    p.add_argument("--test-task", action="append", default=[], metavar="TASK_DIR",
                   help="an MTEB v2 task folder (such as RUN/task of another build) whose documents and queries "
                   "must not reach the training data; repeatable")
    p.add_argument("--registry", metavar="PATH",
                   help="also guard against every task of this registry (its MinHash fingerprints); default "
                   f"${registry_env} unless --no-leakage-guard")
    p.add_argument("--near-dup-threshold", type=float, metavar="J",
                   help="Jaccard at or above which a text is a near-duplicate of a test text (default: the run's "
                   "doc_dedup threshold for passages, query_dedup for queries)")
    p.add_argument("--no-leakage-guard", action="store_true",
                   help="export without checking against any test task (the report says the guard was off)")
    p.set_defaults(registry_env=registry_env)
    return p


def run(args: argparse.Namespace) -> int:
    """``build-bench export``: export_run with the parsed options; prints the report's summary."""
    from .exporter import export_run

    registry = args.registry or (None if args.no_leakage_guard else os.environ.get(args.registry_env) or None)
    report = export_run(args.run_dir, args.out, args.format, args.split, args.test_task, registry=registry,
                        negatives=args.negatives, near_dup_threshold=args.near_dup_threshold,
                        leakage_guard=not args.no_leakage_guard)
    print(report.summary())
    return 0
