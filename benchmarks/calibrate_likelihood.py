"""Calibrate the likelihood judge on human-labelled finance pairs (TAT-QA dev, by path; never copied).

For each sampled question: its labelled paragraph (relevant), the BM25-closest paragraph of *another* report
excerpt (``metadata.context``; unlabelled paragraphs of the same excerpt may answer it), and a random
paragraph of another excerpt. Each pair gets PMI per token, log P(q | p) - log P(q), from the scorer the build
uses. The threshold is chosen on one half of the questions and measured on the other (2-fold, both ways), so
the reported balanced accuracy and Cohen's kappa are out of sample.

    python benchmarks/calibrate_likelihood.py [--reference ../shared/data/reference/tatqa_dev] [--queries 150]
        [--write buildbench/quality/likelihood_calibration.json]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import bm25s
import numpy as np

from buildbench.generators.likelihood import QueryLikelihood, passage_text, pmi
from buildbench.quality.agreement import best_threshold, binary_agreement


def load(ref: Path):
    corpus = {d["_id"]: d for d in map(json.loads, open(ref / "corpus.jsonl"))}
    queries = {d["_id"]: d["text"] for d in map(json.loads, open(ref / "queries.jsonl"))}
    qrels: dict[str, list[str]] = {}
    for line in list(open(next((ref / "qrels").glob("*.tsv"))))[1:]:
        q, c, s = line.rstrip("\n").split("\t")
        if int(s) > 0:
            qrels.setdefault(q, []).append(c)
    return corpus, queries, qrels


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", default="../shared/data/reference/tatqa_dev")
    ap.add_argument("--queries", type=int, default=150)
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write", help="store the calibration (threshold and out-of-sample agreement) as JSON")
    args = ap.parse_args()
    corpus, queries, qrels = load(Path(args.reference))
    ids = list(corpus)
    ctx = {i: (corpus[i].get("metadata") or {}).get("context", i) for i in ids}
    ret = bm25s.BM25()
    ret.index(bm25s.tokenize([corpus[i]["text"] for i in ids], stopwords="en", show_progress=False),
              show_progress=False)
    rng = random.Random(args.seed)
    sample = rng.sample(sorted(q for q in qrels if q in queries), min(args.queries, len(qrels)))
    pairs = []  # (query id, passage id, label, kind)
    for qid in sample:
        pos = qrels[qid][0]
        res, _ = ret.retrieve(bm25s.tokenize([queries[qid]], stopwords="en", show_progress=False), k=40,
                              show_progress=False)
        hard = next((ids[j] for j in res[0] if ctx[ids[j]] != ctx[pos]), None)
        rand = rng.choice([i for i in ids if ctx[i] != ctx[pos]])
        pairs += [(qid, pos, 1, "positive"), (qid, rand, 0, "random")] + ([(qid, hard, 0, "bm25")] if hard else [])
    scorer = QueryLikelihood(args.model)
    t0 = time.perf_counter()
    cond = scorer.score([(passage_text(corpus[p]["text"], corpus[p].get("title", "")), queries[q])
                         for q, p, _, _ in pairs])
    null = dict(zip(sample, scorer.null([queries[q] for q in sample])))
    secs = time.perf_counter() - t0
    scores = [pmi(c, null[q]) for c, (q, _, _, _) in zip(cond, pairs)]
    labels = [lab for _, _, lab, _ in pairs]
    # 2-fold by question: pick the threshold on one half, measure on the other.
    half = set(sample[: len(sample) // 2])
    folds = []
    for train in (half, set(sample) - half):
        tr = [i for i, p in enumerate(pairs) if p[0] in train]
        te = [i for i, p in enumerate(pairs) if p[0] not in train]
        thr = best_threshold([scores[i] for i in tr], [labels[i] for i in tr])
        folds.append((thr, binary_agreement([scores[i] > thr for i in te], [labels[i] for i in te])))
    threshold = round(best_threshold(scores, labels), 3)
    hard_only = [i for i, p in enumerate(pairs) if p[3] != "random"]
    result = {
        "reference": Path(args.reference).name, "model": scorer.model_id, "questions": len(sample),
        "pairs": {k: sum(p[3] == k for p in pairs) for k in ("positive", "bm25", "random")},
        "threshold_pmi_per_token": threshold,
        "out_of_sample": {
            "balanced_accuracy": round(float(np.mean([f[1]["balanced_accuracy"] for f in folds])), 4),
            "kappa": round(float(np.mean([f[1]["kappa"] for f in folds])), 4),
            "fold_thresholds": [round(f[0], 3) for f in folds],
        },
        "in_sample_at_threshold": binary_agreement([s > threshold for s in scores], labels),
        "hard_pairs_at_threshold": binary_agreement([scores[i] > threshold for i in hard_only],
                                                    [labels[i] for i in hard_only]),
        "seconds": round(secs, 1), "passages_read": scorer.passages_read, "queries_scored": scorer.queries_scored,
    }
    by_q: dict[str, dict[str, float]] = {}
    for s, (q, _, _, kind) in zip(scores, pairs):
        by_q.setdefault(q, {})[kind] = s
    result["positive_above_bm25_negative"] = round(float(np.mean(
        [d["positive"] > d["bm25"] for d in by_q.values() if "bm25" in d])), 4)
    print(json.dumps(result, indent=1))
    if args.write:
        from buildbench.engine.rundir import atomic_write_json
        atomic_write_json(Path(args.write), result)


if __name__ == "__main__":
    main()
