"""MinHash signature speed and near-duplicate recall on synthetic ~100-word passages.

    python benchmarks/bench_minhash.py --n 20000 [--fomc ../shared/data/fomc/passages.jsonl]

Prints:
1. docs/s for signatures: buildbench's vectorised numpy path vs datasketch's per-shingle ``MinHash.update``
   loop and ``MinHash.bulk`` (both run on a subset, ``--naive-n``), plus the full ``MinHashDedup.apply``
   (signatures + LSH + exact Jaccard checks) on all N passages;
2. the exact Jaccard of a passage and a copy with 10% of its words replaced, for char 5-grams and word
   5-grams, and the recall of ``MinHashDedup`` on such copies for the config defaults, char 5-grams at 0.6
   and word 5-grams at 0.8, with the false drops among the originals;
3. the same for passages with numbers in them (``distinct_numbers`` on and off): recall on copies whose
   edits may hit numbers and on copies that keep them, and how many "fact-changed" copies (identical but for
   one number) are kept as distinct;
4. with ``--fomc``: drops on a real JSONL corpus (``text`` field) per threshold, with and without the guard.

Passages are random draws (Zipf weights) from a fixed vocabulary of common English and finance words, so
two originals share words but not phrases, like two passages on one topic.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import numpy as np

from buildbench.domain_pack import DedupConfig
from buildbench.quality.dedup import MinHashDedup, dedup_texts, jaccard, numbers, shingles

VOCAB = """
the of and to in a is that for it as was with be by on not he this are or his from at which but have an
they you were her she there been one all we their has would when if so no will more can who said out up
about other into than its some them time these two may then do first any now such like our over man me
even most made after also did many before must through back years where much your way well down should
because each just those people how too little state good very make world still own see men work long get
here between both life being under never day same another know while last might great old year off come
since against go came right used take three market rate rates price prices bank banks central policy
inflation interest bond bonds yield yields credit loan loans debt equity stock stocks share shares fund
funds asset assets capital growth economy economic federal reserve committee percent target range
financial investors lenders borrowers mortgage housing labour employment unemployment wages earnings
revenue profit margin quarter annual forecast outlook risk risks liquidity currency dollar euro exchange
trade deficit surplus budget fiscal monetary tightening easing purchases balance sheet securities treasury
maturity coupon spread curve inversion recession expansion demand supply energy commodity oil consumer
spending savings deposit deposits household business investment sector corporate issuer default rating
agency portfolio dividend valuation volatility hedge derivative futures options index benchmark pension
insurance regulator regulation supervision stability systemic payment settlement clearing
""".split()


def make_passages(n: int, words: int = 100, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(VOCAB) + 1) ** 0.9
    weights /= weights.sum()
    draws = rng.choice(len(VOCAB), size=(n, words), p=weights)
    return [" ".join(VOCAB[k] for k in row) for row in draws]


def edit_words(text: str, fraction: float, rng: random.Random, keep_numbers: bool = False) -> str:
    toks = text.split()
    positions = [i for i, t in enumerate(toks) if not (keep_numbers and is_number_word(t))]
    for pos in rng.sample(positions, max(1, round(fraction * len(toks)))):
        toks[pos] = rng.choice([w for w in VOCAB if w != toks[pos]])
    return " ".join(toks)


SCALES = ("million", "billion", "trillion")


def is_number_word(tok: str) -> bool:
    return any(c.isdigit() for c in tok) or tok in SCALES


def random_number(rng: random.Random) -> str:
    """A number in one of the spellings policy texts use: 25, 2-3/4 percent, 4.5%, $30 billion, 1994."""
    kind = rng.randrange(5)
    if kind == 0:
        return f"{rng.choice([25, 50, 75, 100])} basis points"
    if kind == 1:
        return f"{rng.randint(0, 8)}-{rng.choice(['1/4', '1/2', '3/4'])} percent"
    if kind == 2:
        return f"{rng.randint(0, 9)}.{rng.randint(1, 9)}%"
    if kind == 3:
        return f"${rng.randint(1, 99) * 5} {rng.choice(SCALES)}"
    return str(rng.randint(1990, 2024))


def with_numbers(passages: list[str], per_passage: int, rng: random.Random) -> list[str]:
    out = []
    for p in passages:
        toks = p.split()
        for _ in range(per_passage):
            toks.insert(rng.randrange(len(toks) + 1), random_number(rng))
        out.append(" ".join(toks))
    return out


def change_one_number(text: str, rng: random.Random) -> str:
    """The same text with one number token replaced by a different value (a changed fact, not an edit)."""
    toks = text.split()
    pos = rng.choice([i for i, t in enumerate(toks) if any(c.isdigit() for c in t)])
    old = numbers(toks[pos])
    while numbers(toks[pos]) == old:
        toks[pos] = random_number(rng).split()[0]
    return " ".join(toks)


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>10,.0f} docs/s  ({n:,} docs in {seconds:.2f}s)"


def bench_speed(passages: list[str], naive_n: int, num_perm: int) -> None:
    from datasketch import MinHash

    cfg = DedupConfig()
    print(f"== signatures: {cfg.shingle} {cfg.ngram}-grams, num_perm={num_perm}")
    t = time.perf_counter()
    MinHashDedup(DedupConfig(num_perm=num_perm)).signatures(passages)  # batched shingle_hashes + minhash_signatures
    vec = time.perf_counter() - t
    print(f"vectorised (buildbench)        {rate(len(passages), vec)}")

    subset = passages[:naive_n]
    sets = [[s.encode() for s in shingles(p, cfg.shingle, cfg.ngram)] for p in subset]
    t = time.perf_counter()
    for shingle_list in sets:
        m = MinHash(num_perm=num_perm)
        for s in shingle_list:
            m.update(s)
    naive = time.perf_counter() - t
    print(f"datasketch update() per shingle {rate(len(subset), naive)}  (shingling not timed)")
    t = time.perf_counter()
    MinHash.bulk(sets, num_perm=num_perm)
    bulk = time.perf_counter() - t
    print(f"datasketch MinHash.bulk        {rate(len(subset), bulk)}  (shingling not timed)")
    per_doc_vec, per_doc_naive = vec / len(passages), naive / len(subset)
    print(f"speed-up over update(): {per_doc_naive / per_doc_vec:.1f}x")

    ids = [f"d{i}" for i in range(len(passages))]
    t = time.perf_counter()
    result = MinHashDedup(DedupConfig(num_perm=num_perm)).apply(ids, passages)
    full = time.perf_counter() - t
    print(f"MinHashDedup.apply end to end  {rate(len(passages), full)}  dropped {result.counts['dropped']}")


def bench_recall(n_pairs: int, fraction: float) -> None:
    rng = random.Random(1)
    originals = make_passages(n_pairs, seed=1)
    copies = [edit_words(p, fraction, rng) for p in originals]
    print(f"\n== {n_pairs} originals + a copy of each with {fraction:.0%} of words replaced")
    for kind in ("char", "word"):
        js = np.array([jaccard(shingles(a, kind, 5), shingles(b, kind, 5)) for a, b in zip(originals, copies)])
        print(
            f"jaccard {kind} 5-grams: min {js.min():.3f}  mean {js.mean():.3f}  max {js.max():.3f}"
        )
    distinct = np.array(
        [jaccard(shingles(a, "char", 5), shingles(b, "char", 5)) for a, b in zip(originals, originals[1:])]
    )
    print(f"jaccard char 5-grams between different originals: max {distinct.max():.3f}")

    for label, cfg in (
        (f"defaults (char 5-grams, {DedupConfig().threshold})", DedupConfig()),
        ("char 5-grams, 0.6", DedupConfig(threshold=0.6)),
        ("word 5-grams, 0.8", DedupConfig(shingle="word", ngram=5, threshold=0.8)),
    ):
        recall, false, _ = copy_recall(originals, copies, cfg)
        print(f"recall {label:30s} {recall:6.1%}   originals dropped: {false}")


def copy_recall(originals: list[str], copies: list[str], cfg: DedupConfig) -> tuple[float, int, dict]:
    """Share of copies dropped and originals dropped when the originals come first; the filter's stats."""
    n = len(originals)
    ids = [f"o{i}" for i in range(n)] + [f"c{i}" for i in range(n)]
    res = MinHashDedup(cfg).apply(ids, originals + copies)
    return sum(not k for k in res.keep[n:]) / n, sum(not k for k in res.keep[:n]), res.stats


def bench_numbers(n_pairs: int, fraction: float, per_passage: int) -> None:
    rng = random.Random(2)
    originals = with_numbers(make_passages(n_pairs, seed=2), per_passage, rng)
    edited = [edit_words(p, fraction, rng) for p in originals]
    kept_numbers = [edit_words(p, fraction, rng, keep_numbers=True) for p in originals]
    changed = [change_one_number(p, rng) for p in originals]
    print(
        f"\n== {n_pairs} originals with {per_passage} numbers each (25 basis points, 2-3/4 percent, 4.5%, "
        f"$30 billion, 1994) + copies"
    )
    for threshold in (DedupConfig().threshold, 0.6):
        for guard in (True, False):
            cfg = DedupConfig(threshold=threshold, distinct_numbers=guard)
            label = f"char 5-grams, {threshold}, distinct_numbers={guard}"
            r_any, f_any, s_any = copy_recall(originals, edited, cfg)
            r_keep, f_keep, _ = copy_recall(originals, kept_numbers, cfg)
            r_fact, _, s_fact = copy_recall(originals, changed, cfg)
            print(
                f"{label:42s} recall {fraction:.0%}-edited {r_any:6.1%} (set aside {s_any['distinct_numbers']})"
                f"  numbers kept {r_keep:6.1%}   one number changed: kept {1 - r_fact:6.1%}"
                f" (distinct_numbers {s_fact['distinct_numbers']})   originals dropped: {f_any + f_keep}"
            )


def bench_corpus(path: str) -> None:
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    ids, texts = [str(r.get("_id", i)) for i, r in enumerate(rows)], [r["text"] for r in rows]
    print(f"\n== {path}: {len(texts)} texts, dedup_texts (exact + near)")
    for threshold in (0.8, 0.7, 0.6):
        for guard in (False, True):
            res = dedup_texts(ids, texts, DedupConfig(threshold=threshold, distinct_numbers=guard))
            reasons = res.reasons()
            print(
                f"threshold {threshold}, distinct_numbers={guard!s:5s}  dropped {res.counts['dropped']:5d}"
                f"  (exact {reasons.get('exact_duplicate', 0)}, near {reasons.get('near_duplicate', 0)})"
                f"  distinct_numbers {res.stats.get('distinct_numbers', 0)}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000, help="synthetic passages for the speed test")
    ap.add_argument("--naive-n", type=int, default=1000, help="subset for datasketch's per-shingle loop")
    ap.add_argument("--pairs", type=int, default=1000, help="originals (each with one edited copy) for recall")
    ap.add_argument("--edit", type=float, default=0.1, help="fraction of words replaced in each copy")
    ap.add_argument("--numbers", type=int, default=4, help="numbers inserted into each passage for section 3")
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--fomc", help="a passages JSONL (text field) to report real drops on, e.g. FOMC statements")
    args = ap.parse_args()
    passages = make_passages(args.n)
    bench_speed(passages, min(args.naive_n, args.n), args.num_perm)
    bench_recall(args.pairs, args.edit)
    bench_numbers(args.pairs, args.edit, args.numbers)
    if args.fomc:
        bench_corpus(args.fomc)


if __name__ == "__main__":
    main()
