"""MinHash dedup at scale: speed, precision and recall with planted near-duplicates, and peak memory at 100k
against 1M chunks.

    python benchmarks/bench_dedup_scale.py                       # 50k passages, then 100k and 1M chunks
    python benchmarks/bench_dedup_scale.py --n 50000 --naive-n 50000 --scale 100000,1000000
    python benchmarks/bench_dedup_scale.py --quick               # 5k passages, 10k and 100k chunks

Prints:
1. on ``--n`` synthetic ~100-word passages (``bench_minhash.make_passages``), a tenth of them planted copies
   of earlier ones with 2-12% of their words replaced: docs/s of buildbench's corpus-wide
   ``quality.dedup_bands.dedup_by_bands`` and of the sequential ``MinHashDedup.apply`` (best of ``--repeat`` runs,
   with the median), of datasketch's naive loop (``MinHash.update`` per shingle, ``MinHashLSH`` query then
   insert, on the first ``--naive-n``) and of datatrove's four MinHash stages (if ``pip install datatrove``
   worked; its defaults: word 5-grams, 14 bands of 8). For each: the texts dropped, their precision and
   recall against the drops of an exact dedup, and the near-duplicate pairs it reports with their
   precision. Ground truth is exact Jaccard (char 5-grams, 0.7,
   ``quality.minhash.shingles``): every pair inside a planted cluster (an original and its copies) and every
   pair any method reports, computed exactly; random passages of this generator never come near 0.7 (0.14 at
   most, ``bench_minhash.py``). An exact dedup drops, in input order, each text with a near-duplicate among
   the earlier texts it kept.
2. for each ``--scale`` size: a planted corpus of the same kind written to a Parquet file (row groups of
   10k), then ``dedup_by_bands`` in a fresh subprocess that reads it one row group at a time, with band keys
   spilled to disk (``spill``) or kept in memory (``memory``): wall time, peak RSS (VmHWM, since Linux carries
   ``ru_maxrss`` over from the parent through exec), the peak right after imports (numpy, pyarrow,
   buildbench), the recall on the planted (source, copy) pairs at or above the threshold and the precision of
   the pairs reported (both recomputed exactly here), and the pairs proposed and verified.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

os.environ.setdefault("TQDM_DISABLE", "1")  # before anything imports tqdm: datatrove's clustering draws a bar
sys.path.insert(0, str(Path(__file__).resolve().parent))
# The shared synthetic-passage generator and its word edits.
from bench_minhash import edit_words, make_passages

from buildbench.domain_pack import DedupConfig
from buildbench.quality.dedup import MinHashDedup
from buildbench.quality.dedup_bands import dedup_by_bands
from buildbench.quality.minhash import jaccard, shingles

EDITS = (0.02, 0.04, 0.06, 0.08, 0.10, 0.12)  # fractions of words replaced in a planted copy
BATCH = 10_000  # texts per generated batch, Parquet row group and signature batch
# Originals a copy is drawn from: a uniform sample of all earlier ones in bounded memory, large enough that
# most sources get one copy (clusters stay small, as near-duplicates in a real corpus mostly are).
RESERVOIR = 50_000


# ---------------------------------------------------------------------------------------------- corpus


def planted_batches(
    n: int, dup_fraction: float = 0.1, seed: int = 0, batch: int = BATCH
) -> Iterator[tuple[list[str], list[tuple[int, int]]]]:
    """The corpus ``batch`` texts at a time, with the batch's planted (source, copy) position pairs.

    Each batch has ``dup_fraction`` copies of earlier originals (drawn uniformly from all originals so far,
    through a reservoir, or from the batch's own), each with one of ``EDITS`` of its words replaced, at random
    positions among the batch's originals. Only the reservoir outlives a batch, so a 1M corpus is generated in
    the memory of one batch.
    """
    rng = random.Random(seed)
    reservoir: list[tuple[int, str]] = []
    seen = 0
    for k, start in enumerate(range(0, n, batch)):
        size = min(batch, n - start)
        n_copies = round(size * dup_fraction)
        slots = list(range(size))
        rng.shuffle(slots)
        texts: list[str] = [""] * size
        for slot, text in zip(slots[n_copies:], make_passages(size - n_copies, seed=seed * 1_000_003 + k)):
            texts[slot] = text
            seen += 1
            if len(reservoir) < RESERVOIR:
                reservoir.append((start + slot, text))
            elif (r := rng.randrange(seen)) < RESERVOIR:
                reservoir[r] = (start + slot, text)
        planted = []
        for slot in slots[:n_copies]:
            src, text = rng.choice(reservoir)
            texts[slot] = edit_words(text, rng.choice(EDITS), rng)
            planted.append((min(src, start + slot), max(src, start + slot)))
        yield texts, planted


def planted_corpus(n: int, seed: int = 0) -> tuple[list[str], list[tuple[int, int]]]:
    texts: list[str] = []
    planted: list[tuple[int, int]] = []
    for batch, pairs in planted_batches(n, seed=seed):
        texts += batch
        planted += pairs
    return texts, planted


class ParquetCorpus:
    """A corpus in a Parquet file, read one row group at a time: what a shard-by-shard build hands a dedup."""

    def __init__(self, path: str | Path):
        import pyarrow.parquet as pq

        self.file = pq.ParquetFile(path)
        sizes = [self.file.metadata.row_group(g).num_rows for g in range(self.file.num_row_groups)]
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.starts[-1])

    def batches(self) -> Iterator[list[str]]:
        for g in range(self.file.num_row_groups):
            yield self.file.read_row_group(g, columns=["text"]).column(0).to_pylist()

    def fetch(self, idx: np.ndarray) -> list[str]:
        """Texts at sorted positions ``idx``, reading only the row groups that hold them."""
        groups = np.searchsorted(self.starts, idx, side="right") - 1
        out: list[str] = []
        for g in np.unique(groups).tolist():
            local = idx[groups == g] - self.starts[g]
            column = self.file.read_row_group(g, columns=["text"]).column(0)
            out += column.take(local).to_pylist()
        return out


def write_corpus(path: Path, n: int, seed: int = 0) -> np.ndarray:
    """A planted corpus of ``n`` texts as Parquet (one row group per batch); returns the planted pairs."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    planted: list[tuple[int, int]] = []
    schema = pa.schema([("text", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for texts, pairs in planted_batches(n, seed=seed):
            writer.write_table(pa.table({"text": texts}, schema=schema), row_group_size=BATCH)
            planted += pairs
    return np.array(planted, np.int64).reshape(-1, 2)


# ---------------------------------------------------------------------------------------------- ground truth


class Truth:
    """Exact Jaccard of any pair asked for, cached; the near-duplicate pairs and an exact dedup's drops."""

    def __init__(self, fetch: Callable[[np.ndarray], list[str]], cfg: DedupConfig):
        self.fetch, self.cfg = fetch, cfg
        self.sim: dict[tuple[int, int], float] = {}

    def add(self, pairs: np.ndarray) -> None:
        new = sorted({(a, b) for a, b in pairs.tolist()} - self.sim.keys())
        if not new:
            return
        need = np.unique(np.array(new, np.int64))
        pos = {int(i): k for k, i in enumerate(need)}
        texts = self.fetch(need)
        cache: dict[int, set] = {}

        def sh(i: int) -> set:
            if i not in cache:
                cache[i] = shingles(texts[pos[i]], self.cfg.shingle, self.cfg.ngram)
            return cache[i]

        for a, b in new:  # sorted by a: a's shingle set is reused, the others dropped as we go
            if cache and a not in cache:
                cache = {}
            self.sim[(a, b)] = jaccard(sh(a), sh(b))
            cache.pop(b, None)

    def near(self, limit: int | None = None) -> set[tuple[int, int]]:
        return {p for p, s in self.sim.items() if s >= self.cfg.threshold and (limit is None or p[1] < limit)}

    def drops(self, limit: int | None = None) -> set[int]:
        """What an exact dedup of the first ``limit`` texts drops: in input order, every text with a
        near-duplicate among the earlier texts it kept (a dropped text is never a reference)."""
        dropped: set[int] = set()
        for a, b in sorted(self.near(limit), key=lambda p: (p[1], p[0])):
            if a not in dropped:
                dropped.add(b)
        return dropped

    def pair_precision(self, pairs: np.ndarray) -> float:
        if len(pairs) == 0:
            return float("nan")
        return sum(self.sim[(a, b)] >= self.cfg.threshold for a, b in pairs.tolist()) / len(pairs)


def cluster_pairs(planted: Sequence[tuple[int, int]]) -> np.ndarray:
    """Every pair inside a planted cluster: an original and all copies of it."""
    members: dict[int, set[int]] = {}
    for a, b in planted:
        members.setdefault(a, set()).add(b)
        members.setdefault(b, set()).add(a)
    seen: set[int] = set()
    out: set[tuple[int, int]] = set()
    for start in members:  # connected components of the planted pairs
        if start in seen:
            continue
        comp, stack = [], [start]
        seen.add(start)
        while stack:
            x = stack.pop()
            comp.append(x)
            for y in members[x]:
                if y not in seen:
                    seen.add(y)
                    stack.append(y)
        comp.sort()
        out.update((comp[i], comp[j]) for i in range(len(comp)) for j in range(i + 1, len(comp)))
    return np.array(sorted(out), np.int64).reshape(-1, 2)


# ---------------------------------------------------------------------------------------------- methods


class Run:
    """One method's outcome on the first ``n`` texts: wall time, texts dropped, pairs reported."""

    def __init__(self, name: str, n: int, seconds: float, drops: set[int], pairs: np.ndarray, note: str = ""):
        self.name, self.n, self.seconds, self.drops, self.note = name, n, seconds, drops, note
        self.pairs = np.unique(np.sort(np.asarray(pairs, np.int64).reshape(-1, 2), axis=1), axis=0)


def in_memory(texts: list[str]):
    return lambda idx: [texts[i] for i in idx.tolist()]


def timed(fn, repeat: int):
    """``fn()``'s result and its best and median wall time over ``repeat`` runs.

    A run of a few seconds on a shared 2-core machine can lose half its speed to one burst of another job;
    the baselines' runs of minutes average such bursts out, so one run each is enough for them.
    """
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return result, min(times), float(np.median(times))


def run_bands(texts: list[str], cfg: DedupConfig, repeat: int) -> tuple[Run, dict]:
    def once():
        batches = (texts[s : s + BATCH] for s in range(0, len(texts), BATCH))
        return dedup_by_bands(MinHashDedup(cfg), batches, in_memory(texts))

    found, best, median = timed(once, repeat)
    note = f"best of {repeat}, median {len(texts) / median:,.0f} docs/s" if repeat > 1 else ""
    run = Run("buildbench dedup_by_bands", len(texts), best, set(found.dropped.tolist()), found.pairs, note)
    return run, found.stats


def run_apply(texts: list[str], cfg: DedupConfig, repeat: int) -> Run:
    ids = [str(i) for i in range(len(texts))]
    result, best, median = timed(lambda: MinHashDedup(cfg).apply(ids, texts), repeat)
    pairs = [(int(re.search(r"with (\d+) \(kept\)", d.detail).group(1)), int(d.item_id)) for d in result.drops]
    drops = {i for i, k in enumerate(result.keep) if not k}
    note = "sequential index"
    if repeat > 1:
        note += f"; best of {repeat}, median {len(texts) / median:,.0f} docs/s"
    return Run("buildbench MinHashDedup.apply", len(texts), best, drops, np.array(pairs), note)


def run_datasketch(texts: list[str], cfg: DedupConfig) -> Run:
    """The textbook loop: SHA-1 MinHash per shingle, then query the LSH index and insert the text if new."""
    from datasketch import MinHash, MinHashLSH

    t = time.perf_counter()
    lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
    drops: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for j, text in enumerate(texts):
        m = MinHash(num_perm=cfg.num_perm)
        for s in shingles(text, cfg.shingle, cfg.ngram):
            m.update(s.encode())
        hits = lsh.query(m)
        if hits:
            drops.add(j)  # LSH decides: no exact check
            pairs += [(i, j) for i in hits]
        else:
            lsh.insert(j, m)
    seconds = time.perf_counter() - t
    return Run("datasketch naive loop", len(texts), seconds, drops, np.array(pairs), "MinHashLSH, no exact check")


def _xxhash_str_shim() -> None:
    """datatrove 0.10 hashes str shingles with xxhash, which takes only bytes since xxhash 4: encode first,
    as xxhash 3 did itself."""
    import xxhash
    from datatrove.utils.hashes import xxhash as dt_xxhash

    try:
        xxhash.xxh64_intdigest("a")
    except TypeError:
        dt_xxhash.xxhash32 = lambda data: xxhash.xxh32_intdigest(data.encode() if isinstance(data, str) else data)
        dt_xxhash.xxhash64 = lambda data: xxhash.xxh64_intdigest(data.encode() if isinstance(data, str) else data)


def run_datatrove(texts: list[str]) -> Run | None:
    """datatrove's four MinHash stages (signatures, buckets, clusters, filter) on local files, defaults."""
    try:
        from datatrove.data import Document
        from datatrove.pipeline.dedup.minhash import (
            MinhashConfig,
            MinhashDedupBuckets,
            MinhashDedupCluster,
            MinhashDedupFilter,
            MinhashDedupSignature,
        )
        from loguru import logger
    except ImportError:
        return None
    logger.remove()  # its per-stage log lines would bury the table
    _xxhash_str_shim()
    mcfg = MinhashConfig()

    def docs():
        return (Document(text=t, id=str(i)) for i, t in enumerate(texts))

    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        MinhashDedupSignature(output_folder=f"{d}/sigs", config=mcfg).run(docs(), rank=0, world_size=1)
        for bucket in range(mcfg.num_buckets):
            MinhashDedupBuckets(input_folder=f"{d}/sigs", output_folder=f"{d}/buckets", config=mcfg).run(
                rank=bucket, world_size=mcfg.num_buckets
            )
        MinhashDedupCluster(input_folder=f"{d}/buckets", output_folder=f"{d}/remove", config=mcfg).run()
        for _ in MinhashDedupFilter(input_folder=f"{d}/remove").run(docs(), rank=0, world_size=1):
            pass
        seconds = time.perf_counter() - t
        removed = Path(d) / "remove" / "000000.remove"
        drops = set(np.fromfile(removed, dtype="<u4").tolist()) if removed.exists() else set()
        dups = [np.fromfile(f, dtype="<u4").reshape(-1, 4) for f in sorted(Path(d, "buckets").glob("*.dups"))]
        pairs = np.concatenate(dups)[:, [1, 3]] if dups else np.empty((0, 2))
    note = f"word {mcfg.n_grams}-grams, {mcfg.num_buckets}x{mcfg.hashes_per_bucket} bands, no exact check"
    return Run("datatrove MinHash", len(texts), seconds, drops, pairs, note)


def bench_methods(n: int, naive_n: int, datatrove_n: int, repeat: int, cfg: DedupConfig) -> None:
    texts, planted = planted_corpus(n)
    print(
        f"== {n:,} passages (~100 words), {len(planted):,} planted copies with 2-12% of words replaced; "
        f"exact Jaccard {cfg.shingle} {cfg.ngram}-grams >= {cfg.threshold}"
    )
    truth = Truth(in_memory(texts), cfg)
    truth.add(cluster_pairs(planted))
    bands, stats = run_bands(texts, cfg, repeat)
    runs = [bands, run_apply(texts, cfg, repeat)]
    if naive_n:
        runs.append(run_datasketch(texts[:naive_n], cfg))
    if datatrove_n:
        dt = run_datatrove(texts[:datatrove_n])
        if dt is None:
            print("datatrove: not installed (pip install datatrove), skipped")
        else:
            runs.append(dt)
    for r in runs:
        truth.add(r.pairs)
    print(
        f"{'method':30s} {'docs':>7s} {'docs/s':>8s} {'x naive':>7s} {'dropped':>8s} {'P':>6s} {'R':>6s}"
        f" {'pairs':>7s} {'pair P':>6s}  notes"
    )
    naive_rate = next((r.n / r.seconds for r in runs if r.name.startswith("datasketch")), float("nan"))
    for r in runs:
        gt = truth.drops(r.n)
        tp = len(r.drops & gt)
        rate = r.n / r.seconds
        print(
            f"{r.name:30s} {r.n:7,d} {rate:8,.0f} {rate / naive_rate:6.1f}x {len(r.drops):8,d}"
            f" {tp / max(len(r.drops), 1):6.3f} {tp / max(len(gt), 1):6.3f} {len(r.pairs):7,d}"
            f" {truth.pair_precision(r.pairs):6.3f}  {r.note}"
        )
    near = truth.near(n)
    found = near & set(map(tuple, bands.pairs.tolist()))
    print(
        f"ground truth: {len(truth.drops(n)):,} texts an exact dedup drops, {len(near):,} near-duplicate pairs;"
        f" dedup_by_bands reports {len(found):,} of them (pair recall {len(found) / max(len(near), 1):.4f})"
    )
    print(f"dedup_by_bands stats: {stats}")


# ---------------------------------------------------------------------------------------------- memory


def peak_rss_kib() -> int:
    """This process's peak RSS in KiB: VmHWM on Linux, else ru_maxrss.

    Linux keeps ru_maxrss across execve, so a subprocess started by a large parent reports at least the
    parent's RSS at fork time; VmHWM belongs to the new address space and starts from zero at exec.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(corpus: str, out: str, spill: str | None, cfg: DedupConfig) -> None:
    """One ``dedup_by_bands`` over a Parquet corpus in this process; prints a JSON line with its peak RSS."""
    import pyarrow.parquet  # noqa: F401  (counted with the imports, not with the dedup)

    base = peak_rss_kib()  # after imports, before any work
    texts = ParquetCorpus(corpus)
    t = time.perf_counter()
    found = dedup_by_bands(MinHashDedup(cfg), texts.batches(), texts.fetch, spill_dir=spill)
    seconds = time.perf_counter() - t
    np.save(out, found.pairs)
    peak = peak_rss_kib()
    print(json.dumps({"n": len(texts), "seconds": seconds, "base_kib": base, "peak_kib": peak,
                      "dropped": len(found.dropped), "stats": found.stats}))


def bench_scale(sizes: list[int], modes: list[str], workdir: Path, cfg: DedupConfig) -> None:
    print("\n== dedup_by_bands on planted corpora read from Parquet, each run in a fresh process")
    print(
        f"{'chunks':>9s} {'band keys':9s} {'seconds':>8s} {'docs/s':>8s} {'peak RSS':>9s} {'imports':>8s}"
        f" {'dropped':>8s} {'planted R':>9s} {'pair P':>6s} {'proposed':>12s} {'verified':>9s}"
    )
    for n in sizes:
        path = workdir / f"corpus_{n}.parquet"
        planted = write_corpus(path, n)
        corpus = ParquetCorpus(path)
        for mode in modes:
            out = workdir / f"pairs_{n}_{mode}.npy"
            cmd = [sys.executable, __file__, "--child", str(path), "--child-out", str(out)]
            if mode == "spill":
                cmd += ["--spill", str(workdir)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode:
                sys.exit(f"child failed ({n}, {mode}):\n{proc.stderr}")
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            pairs = np.load(out)
            truth = Truth(corpus.fetch, cfg)
            truth.add(planted)
            truth.add(pairs)
            planted_near = {tuple(p) for p in planted.tolist() if truth.sim[tuple(p)] >= cfg.threshold}
            recall = len(planted_near & set(map(tuple, pairs.tolist()))) / max(len(planted_near), 1)
            print(
                f"{n:9,d} {mode:9s} {res['seconds']:8.1f} {n / res['seconds']:8,.0f}"
                f" {res['peak_kib'] / 1024:7,.0f}MB {res['base_kib'] / 1024:6,.0f}MB {res['dropped']:8,d}"
                f" {recall:9.4f} {truth.pair_precision(pairs):6.3f}"
                f" {res['stats']['pairs_examined']:12,d} {res['stats']['pairs_verified']:9,d}"
            )
        path.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000, help="passages for speed, precision and recall")
    ap.add_argument("--naive-n", type=int, default=50_000, help="first passages for datasketch's loop (0: skip)")
    ap.add_argument("--datatrove-n", type=int, default=50_000, help="first passages for datatrove (0: skip)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of buildbench's methods (best reported)")
    ap.add_argument("--scale", default="100000,1000000", help="corpus sizes for peak RSS ('' to skip)")
    ap.add_argument("--modes", default="spill,memory", help="band keys spilled to disk and/or kept in memory")
    ap.add_argument("--workdir", help="where the Parquet corpora and spilled band keys go (default: a temp dir)")
    ap.add_argument("--quick", action="store_true", help="5k passages, 10k and 100k chunks")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    ap.add_argument("--spill", help=argparse.SUPPRESS)
    args = ap.parse_args()
    cfg = DedupConfig()
    if args.child:
        child(args.child, args.child_out, args.spill, cfg)
        return
    if args.quick:
        args.n, args.naive_n, args.datatrove_n, args.scale = 5_000, 5_000, 5_000, "10000,100000"
    bench_methods(args.n, min(args.naive_n, args.n), min(args.datatrove_n, args.n), args.repeat, cfg)
    sizes = [int(s) for s in args.scale.split(",") if s]
    if sizes:
        with tempfile.TemporaryDirectory(dir=args.workdir) as d:
            bench_scale(sizes, args.modes.split(","), Path(d), cfg)


if __name__ == "__main__":
    main()
