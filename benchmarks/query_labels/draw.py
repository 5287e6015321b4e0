"""Draw a seeded sample of a build's kept queries with their positives, for a reviewer to label.

    python benchmarks/query_labels/draw.py RUN_DIR --n 50 --seed 0 --out sample.jsonl [--ids-only]
    python benchmarks/query_labels/draw.py --reference ../shared/data/reference/tatqa_dev --n 50 --seed 0 --out h.jsonl
    python benchmarks/query_labels/draw.py RUN_DIR --all --out every_query.jsonl   # every kept query
    python benchmarks/query_labels/draw.py --count labelled.jsonl [labelled2.jsonl ...]

``--reference`` draws a BEIR folder's own (human) queries with their labelled passages instead, to label by the
same rules: how specific the people's questions of that corpus are.

Each drawn row holds the query, its persona and style, the fact it was written to ask for (when planned) and
the first 600 characters of each positive. A reviewer fills ``label`` with one of:

- good: a searcher could have typed it, and it picks out its positive (a domain expert would keep it);
- vague: it fits many passages or none in particular (its single qrel is a guess);
- wrong: its positive does not answer it, or it is not a usable query (garbled, copied, off-topic).

and may add a ``note``. ``--count`` prints the counts and the share of good per file. A sample labelled on the
review page (``build-bench label``, as in ``review_sample.jsonl``) may also say ``missed_positive``: counted good
when the build's qrels now hold the passage the reviewer named, and counted again over the queries it kept.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

LABELS = ("good", "vague", "wrong")
# The review page's fourth label (``build-bench label``): a good query whose qrels miss a passage that answers
# it too. It counts as good once the build's qrels hold that passage (``missed_now_in_qrels``).
MISSED = "missed_positive"


def _rows(run: Path, name: str) -> list[dict]:
    files = sorted((run / "data" / name).glob("*.parquet"))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


def draw(run: Path, n: int, seed: int, ids_only: bool = False) -> list[dict]:
    queries = _rows(run, "final_queries")
    chunks = {c["id"]: c for c in _rows(run, "chunks")}
    qrels: dict[str, list[str]] = {}
    for r in _rows(run, "qrels"):
        qrels.setdefault(r["query-id"], []).append(r["corpus-id"])
    ordered = sorted(queries, key=lambda q: q["id"])
    # n <= 0: every kept query, so the count is the build's own rate rather than a 50-query reading's
    picked = ordered if n <= 0 else random.Random(seed).sample(ordered, min(n, len(queries)))
    out = []
    for q in picked:
        # the passage it was written from first, then any the qrels repair added
        own = list(q["chunk_ids"])
        ids = own + [c for c in qrels.get(q["id"], []) if c not in own]
        out.append({
            "id": q["id"], "query": q["text"], "persona": q.get("persona", ""), "style": q.get("style", ""),
            "fact": q.get("answer", ""),
            "positives": [((chunks[c].get("title") or "") + " | " + chunks[c]["text"][:600]) if c in chunks else c
                          for c in ids],
            "positive_ids": ids, "added_positives": len(ids) - len(own),
            "label": "", "note": "",
        })
        if ids_only:  # corpus text under another licence stays out of the repo: ids and our own queries only
            del out[-1]["fact"], out[-1]["positives"]
    return out


def draw_reference(folder: Path, n: int, seed: int, ids_only: bool = False) -> list[dict]:
    """A seeded sample of a BEIR folder's queries that have qrels, with their positives."""
    import csv

    corpus = {}
    with open(folder / "corpus.jsonl") as f:
        for line in f:
            doc = json.loads(line)
            corpus[doc["_id"]] = doc
    with open(folder / "queries.jsonl") as f:
        queries = {q["_id"]: q["text"] for q in map(json.loads, f)}
    qrels: dict[str, list[str]] = {}
    for path in sorted((folder / "qrels").glob("*.tsv")):
        with open(path) as f:
            for row in csv.DictReader(f, delimiter="\t"):
                qrels.setdefault(row["query-id"], []).append(row["corpus-id"])
    picked = random.Random(seed).sample(sorted(q for q in queries if q in qrels), min(n, len(qrels)))
    out = []
    for q in picked:
        row = {"id": q, "query": queries[q], "positive_ids": qrels[q],
               "positives": [((corpus[c].get("title") or "") + " | " + corpus[c]["text"][:600]) for c in qrels[q]
                             if c in corpus],
               "label": "", "note": ""}
        if ids_only:  # the reference's own text stays out of the repo
            row = {"id": q, "label": "", "note": ""}
        out.append(row)
    return out


def count(paths: list[Path]) -> None:
    """Counts per file; for a review-page sample (rows with ``kept``), also over the queries the build kept."""
    for p in paths:
        rows = [json.loads(line) for line in open(p)]
        unknown = {r["label"] for r in rows} - set(LABELS) - {MISSED}
        if unknown:
            raise SystemExit(f"{p}: labels must be one of {', '.join(LABELS + (MISSED,))} "
                             f"(found {', '.join(sorted(unknown))})")
        groups = [("", rows)]
        if rows and "kept" in rows[0]:
            groups.append((" kept by the build", [r for r in rows if r["kept"]]))
        for what, group in groups:
            c = Counter(r["label"] if r["label"] != MISSED or not r.get("missed_now_in_qrels") else "good"
                        for r in group)
            total = max(1, sum(c.values()))
            missed = f", missed positive {c[MISSED]}" if c[MISSED] else ""
            print(f"{p.name}{what}: {len(group)} labelled; good {c['good']} ({c['good'] / total:.0%}), "
                  f"vague {c['vague']}, wrong {c['wrong']}{missed}")
            styles = Counter(r.get("style") for r in group if r.get("style"))
            if len(styles) > 1:
                print("    " + "; ".join(
                    f"{s} {sum(r['label'] == 'good' for r in group if r.get('style') == s)}/{k}"
                    for s, k in sorted(styles.items())))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", nargs="?", type=Path)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--all", action="store_true", help="every kept query of the build, not a sample of --n")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--count", nargs="+", type=Path)
    ap.add_argument("--reference", type=Path, help="draw a BEIR folder's own queries instead of a build's")
    ap.add_argument("--ids-only", action="store_true",
                    help="leave out passage and fact text (for corpora such as tatqa_dev that must not be copied)")
    args = ap.parse_args()
    if args.count:
        return count(args.count)
    if args.reference:
        rows = draw_reference(args.reference, args.n, args.seed, ids_only=args.ids_only)
    else:
        rows = draw(args.run, 0 if args.all else args.n, args.seed, ids_only=args.ids_only)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if args.out:
        args.out.write_text(text)
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
