"""Near-duplicate removal over a whole corpus read in batches (``dedup_by_bands``; ``apply_by_bands`` for a
list): ``MinHashDedup``'s decisions, with memory that grows with the corpus by small per-text arrays only.

Signatures are kept as band keys (spilled to disk on request) and a 32-byte sketch; candidate groups are found
by sorting band keys (``band_groups``, ``group_pairs``: pure functions over arrays, what a distributed groupby
on band key runs per partition); exact Jaccard is computed only for candidate pairs
(``benchmarks/bench_dedup_scale.py``). ``quality.dedup`` holds the in-memory filter and its LSH parameters.

The work is three maps and a decision: ``batch_keys`` per batch of texts, ``band_candidates`` per band,
``verify_pairs`` per chunk of candidate pairs, then ``decide`` over all verified pairs. The maps go through a
``Parallel`` (``engine.parallel``): in this process by default, as Ray tasks on the ray engine, the same
functions either way, so both engines give the same drops.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..engine.parallel import InProcess, Parallel, piece_size
from .base import FilterResult, check_aligned
from .dedup import BUCKET_REPS, MinHashDedup, band_keys, lsh_params
from .minhash import jaccard, shingles, signature_sketch, sketch_jaccard, sketch_margin
from .numbers import numbers, numbers_differ

# What bounds the working memory of dedup_by_bands, whatever the corpus size: the candidate pairs
# one band's groupby emits at a time (with the sketches they gather, about 40 MB while they are screened), and
# the candidate pairs verified per fetch of their texts (at most twice as many texts held at once).
PAIR_CHUNK = 1 << 18
VERIFY_CHUNK = 50_000
TEXT_BATCH = 10_000  # texts per signature batch when apply_by_bands cuts an in-memory list
SET_CACHE = 256  # recent shingle sets kept while verifying
# With several workers (``Parallel.width``) batches and chunks are cut smaller, to about two per worker, but not
# below this many texts or pairs: a Ray task costs milliseconds. Where they are cut changes no result.
MIN_PIECE = 1_000
_DIGIT = re.compile(r"\d")


def may_state_numbers(text: str) -> bool:
    """False when ``numbers(text)`` is surely empty: ASCII text without a digit (``numbers`` reads digits, and
    vulgar fractions such as ½, which are not ASCII). ``numbers_differ`` needs numbers on both sides, so this
    skips its regex for most pairs of prose."""
    return not text.isascii() or _DIGIT.search(text) is not None


@dataclass
class BandDedup:
    """What ``dedup_by_bands`` decided for a corpus of ``len(keep)`` texts.

    ``dropped`` lists the dropped texts' positions in input order; ``reference`` and ``similarity`` give, for
    each, the kept text it duplicates and their exact Jaccard. ``pairs`` (k x 2, earlier and later position)
    holds every verified near-duplicate pair, with ``pair_similarity``, including pairs of two dropped texts.
    """

    keep: np.ndarray
    dropped: np.ndarray
    reference: np.ndarray
    similarity: np.ndarray
    pairs: np.ndarray
    pair_similarity: np.ndarray
    stats: dict[str, int] = field(default_factory=dict)


def band_groups(keys: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One band's groupby on band key: ``items`` sorted by (key, item), and where each one's group starts.

    ``keys[k]`` is the band key of text ``items[k]``. Returns ``(sorted_items, group_start)``:
    ``sorted_items[group_start[p]]`` is the first (lowest) text of the group of ``sorted_items[p]``. A sort
    instead of a dict of sets: a few numpy passes over two arrays, whether they hold a whole band or one
    partition of a distributed groupby on band key (which must hold whole groups).
    """
    if len(items) < 2 or np.all(items[1:] > items[:-1]):
        order = np.argsort(keys, kind="stable")  # items ascending already: a stable sort keeps them so per key
    else:
        order = np.lexsort((items, keys))
    sorted_keys = keys[order]
    first = np.ones(len(order), bool)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    starts = np.flatnonzero(first)
    return items[order], np.repeat(starts, np.diff(np.append(starts, len(order))))


def group_pairs(
    sorted_items: np.ndarray, group_start: np.ndarray, cap: int = BUCKET_REPS, chunk: int = PAIR_CHUNK
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Candidate pairs ``(earlier, later)`` of one band's groups (``band_groups``), at most ``chunk`` a time.

    Each text is paired with the first ``cap`` texts of its group, the bound ``MinHashDedup`` puts on bucket
    representatives: a group of m texts gives at most cap * m pairs instead of m**2 / 2, so a key that
    thousands of same-topic or templated texts share stays linear. A pair at the threshold shares a band
    with probability threshold**rows (0.24 per band at 0.7, so 7.7 of the 32 bands on average), which is
    why a cap on one band rarely hides it.
    """
    n = len(sorted_items)
    fanout = np.minimum(np.arange(n) - group_start, cap)
    ends = np.cumsum(fanout)
    lo = 0
    while lo < n:
        done = int(ends[lo - 1]) if lo else 0
        hi = max(int(np.searchsorted(ends, done + chunk, side="right")), lo + 1)
        f = fanout[lo:hi]
        total = int(ends[hi - 1]) - done
        if total:
            later = np.repeat(np.arange(lo, hi), f)
            rank = np.arange(total) - np.repeat(np.cumsum(f) - f, f)
            yield sorted_items[np.repeat(group_start[lo:hi], f) + rank], sorted_items[later]
        lo = hi


class _BandKeyStore:
    """Every text's band keys, added batch by batch and read back one band at a time.

    In memory they take 8 bytes per text and band. With ``spill_dir`` each band is a file that every batch
    appends to, so only the band being grouped is in memory.
    """

    def __init__(self, bands: int, spill_dir: str | None):
        self.bands = bands
        self.parts: list[np.ndarray] = []
        self.paths = [Path(spill_dir) / f"band_{b:03d}.u64" for b in range(bands)] if spill_dir else []
        self.files = [open(p, "wb") for p in self.paths]  # noqa: SIM115  (closed by seal)

    def append(self, keys: np.ndarray) -> None:
        if not self.paths:
            self.parts.append(np.ascontiguousarray(keys.T))  # band-major, so band() reads one row per batch
            return
        for b, f in enumerate(self.files):
            f.write(np.ascontiguousarray(keys[:, b]).tobytes())

    def seal(self) -> None:
        for f in self.files:
            f.close()

    def band(self, b: int) -> np.ndarray:
        if self.paths:
            return np.fromfile(self.paths[b], dtype=np.uint64)
        return np.concatenate([p[b] for p in self.parts]) if self.parts else np.empty(0, np.uint64)

    def __enter__(self) -> _BandKeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.seal()


def decide(n: int, pairs: np.ndarray, sims: np.ndarray, aside: np.ndarray, stats: dict[str, int]) -> BandDedup:
    """Drops from verified pairs, in input order as ``MinHashDedup.apply`` decides them.

    Pairs are visited by later text, then earlier: every earlier text's fate is settled before a later one
    looks at it, so a text is dropped for its most similar kept earlier text (the lowest on a tie), and a
    dropped text is never a reference. Set-aside pairs count only against kept texts, as in ``apply``.
    """
    keep = np.ones(n, bool)
    later = np.concatenate([pairs[:, 1], aside[:, 1]])
    earlier = np.concatenate([pairs[:, 0], aside[:, 0]])
    sim = np.concatenate([sims, np.full(len(aside), -1.0)])  # -1: set aside
    order = np.lexsort((earlier, later))
    dropped: list[int] = []
    reference: list[int] = []
    similarity: list[float] = []
    distinct_texts = distinct_pairs = 0
    j_prev, best_i, best_s, set_aside = -1, -1, -1.0, 0

    def settle() -> None:
        nonlocal distinct_texts, distinct_pairs
        if best_i >= 0:
            keep[j_prev] = False
            dropped.append(j_prev)
            reference.append(best_i)
            similarity.append(best_s)
        elif set_aside:
            distinct_texts += 1
        distinct_pairs += set_aside

    for i, j, s in zip(earlier[order].tolist(), later[order].tolist(), sim[order].tolist()):
        if j != j_prev:
            if j_prev >= 0:
                settle()
            j_prev, best_i, best_s, set_aside = j, -1, -1.0, 0
        if not keep[i]:
            continue
        if s < 0:
            set_aside += 1
        elif s > best_s:
            best_i, best_s = i, s
    if j_prev >= 0:
        settle()
    stats = {
        "distinct_numbers": distinct_texts,
        "distinct_number_pairs": distinct_pairs,
        **stats,
        "near_duplicate_pairs": len(pairs),
    }
    return BandDedup(
        keep=keep,
        dropped=np.array(dropped, np.int64),
        reference=np.array(reference, np.int64),
        similarity=np.array(similarity, np.float64),
        pairs=pairs,
        pair_similarity=sims,
        stats=stats,
    )


@dataclass(frozen=True)
class ArrowTexts:
    """A corpus's texts as one Arrow array, fetched by sorted position (``dedup_by_bands``'s ``fetch``): one
    object every verification task reads, put in Ray's object store once on the ray engine."""

    texts: pa.Array

    def __call__(self, idx: np.ndarray) -> list[str]:
        return self.texts.take(pa.array(idx, pa.int64())).to_pylist()


def apply_by_bands(
    dedup: MinHashDedup,
    ids: Sequence[str],
    texts: Sequence[str],
    refs: Sequence[str] | None = None,
    spill_dir: str | os.PathLike | None = None,
    parallel: Parallel | None = None,
) -> FilterResult:
    """``apply`` through ``dedup_by_bands``: the same drops, reasons and details for an in-memory list.

    The drops equal ``apply``'s wherever no bucket overflows ``bucket_reps`` (a test checks this on
    planted copies); where one does, see ``dedup_by_bands`` for what each path can miss. Batches of at most
    ``TEXT_BATCH`` texts (``piece_size``); verification reads the texts from one Arrow array (``ArrowTexts``).
    """
    check_aligned(ids, texts)
    texts = list(texts)
    if not dedup.cfg.enabled:
        return FilterResult([True] * len(texts), [])
    parallel = parallel if parallel is not None else InProcess()
    size = piece_size(len(texts), TEXT_BATCH, parallel.width, least=MIN_PIECE)
    batches = (texts[s : s + size] for s in range(0, len(texts), size))
    fetch = ArrowTexts(pa.array(texts, pa.large_string()))
    found = dedup_by_bands(dedup, batches, fetch, spill_dir, parallel)
    drops = [dedup.near_duplicate(ids[i], ids[j], sim)
             for i, j, sim in zip(found.dropped.tolist(), found.reference.tolist(), found.similarity.tolist())]
    return FilterResult(found.keep.tolist(), drops, found.stats)


def dedup_by_bands(
    dedup: MinHashDedup,
    batches: Iterable[Sequence[str]],
    fetch: Callable[[np.ndarray], Sequence[str]],
    spill_dir: str | os.PathLike | None = None,
    parallel: Parallel | None = None,
) -> BandDedup:
    """Near-duplicate removal over a whole corpus read in batches, in memory that grows with the corpus
    by per-text arrays only (measured: about 130 bytes a text from 100k to 1M with ``spill_dir``).

    ``batches`` yields the corpus in order (e.g. one Arrow shard or row group at a time); ``fetch(indices)``
    returns the texts at the given sorted corpus positions, in that order, and is called only for the
    texts of candidate pairs. Four passes, the first three as maps of ``parallel`` (in this process when
    None; on the ray engine each piece is a Ray task, and ``fetch`` is put in the object store once):

    1. per batch (``batch_keys``): MinHash signatures, kept only as 64-bit band keys (``band_keys``) and a
       32-byte sketch (``signature_sketch``); with ``spill_dir`` the band keys go to one file per band there,
       so only the sketch and the text's position stay in memory (41 bytes a text), else 8 bytes per band
       more (256);
    2. per band (``band_candidates``): a groupby on band key by sorting (``band_groups``), each text paired
       with the first ``bucket_reps`` texts of its group (``group_pairs``), pairs whose sketch estimate lies
       far below the threshold (``sketch_margin``) screened out, the rest kept as candidate pairs;
    3. per chunk of at most ``VERIFY_CHUNK`` candidate pairs (``verify_pairs``; smaller with several workers,
       ``piece_size``): the exact Jaccard of their shingle sets, with the ``distinct_numbers`` rule;
    4. in the caller (``decide``): the verified pairs decide in input order, as ``apply`` does: a text is
       dropped for its most similar earlier kept text, and a dropped text is never a reference.

    No piece depends on how the corpus is cut into batches or pairs into chunks, nor on where it runs.

    Differences from ``apply``: candidates come from every earlier text of a shared bucket up to
    ``bucket_reps`` per group, kept or dropped (``apply`` indexes kept texts only), and a full bucket has no
    number index, so in a bucket shared by more than ``bucket_reps`` texts a copy whose original is not
    among its first texts is found only through another band. ``lsh_index`` does not apply. ``stats``:
    ``pairs_examined`` (pairs proposed, once per band that proposes them), ``pairs_verified`` (exact
    Jaccards computed), ``near_duplicate_pairs`` (verified at or above the threshold, numbers not
    differing), ``buckets_capped`` (groups with more than ``bucket_reps + 1`` texts), ``distinct_numbers``
    and ``distinct_number_pairs`` as in ``apply``.
    """
    parallel = parallel if parallel is not None else InProcess()
    cfg = dedup.cfg
    bands, _ = lsh_params(cfg.threshold, cfg.num_perm)
    with contextlib.ExitStack() as stack:
        spill = None if spill_dir is None else stack.enter_context(tempfile.TemporaryDirectory(dir=spill_dir))
        store = stack.enter_context(_BandKeyStore(bands, spill))
        items_parts: list[np.ndarray] = []
        sketch_parts: list[np.ndarray] = []
        n = 0
        for present, keys, sketch in parallel.map(batch_keys, batches, dedup):
            store.append(keys)
            items_parts.append(present + n)
            sketch_parts.append(sketch)
            n += len(sketch)
        store.seal()
        items = np.concatenate(items_parts) if items_parts else np.empty(0, np.int64)
        sketch = np.concatenate(sketch_parts) if sketch_parts else np.empty((0, 1), np.uint64)
        del items_parts, sketch_parts
        found: list[np.ndarray] = []
        examined = capped = 0
        grouped = (store.band(b) for b in range(bands if len(items) > 1 else 0))
        for cands, band_examined, band_capped in parallel.map(band_candidates, grouped, items, sketch, dedup, n):
            found.append(cands)
            examined += band_examined
            capped += band_capped
    del items, sketch
    candidates = np.unique(np.concatenate(found)) if found else np.empty(0, np.int64)
    del found
    earlier, later = candidates // max(n, 1), candidates % max(n, 1)
    size = piece_size(len(candidates), VERIFY_CHUNK, parallel.width, least=MIN_PIECE)
    chunks = ((earlier[lo : lo + size], later[lo : lo + size]) for lo in range(0, len(earlier), size))
    near: list[np.ndarray] = []
    sims: list[np.ndarray] = []
    aside: list[np.ndarray] = []
    for chunk_near, chunk_sims, chunk_aside in parallel.map(verify_pairs, chunks, dedup, fetch):
        near.append(chunk_near)
        sims.append(chunk_sims)
        aside.append(chunk_aside)
    stats = {"pairs_examined": examined, "pairs_verified": len(candidates), "buckets_capped": capped}
    return decide(
        n,
        np.concatenate(near) if near else np.empty((0, 2), np.int64),
        np.concatenate(sims) if sims else np.empty(0, np.float64),
        np.concatenate(aside) if aside else np.empty((0, 2), np.int64),
        stats,
    )


def batch_keys(batch: Sequence[str], dedup: MinHashDedup) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One batch's part of ``dedup_by_bands``: the positions in the batch of the texts with shingles (an empty
    text is never a candidate), their band keys (one row each, a column per band) and every text's sketch."""
    batch = list(batch)
    sigs, nonempty = dedup.signatures(batch)
    bands, rows = lsh_params(dedup.cfg.threshold, dedup.cfg.num_perm)
    present = np.flatnonzero(nonempty)
    return present, band_keys(sigs[present], bands, rows), signature_sketch(sigs)


def band_candidates(
    keys: np.ndarray, items: np.ndarray, sketch: np.ndarray, dedup: MinHashDedup, n: int
) -> tuple[np.ndarray, int, int]:
    """One band's part of ``dedup_by_bands``: the candidate pairs of its groups that pass the sketch screen,
    each once, as ``earlier * n + later`` (sorted), with the pairs it proposed and its capped groups.

    ``keys[k]`` is the band key of text ``items[k]``; ``sketch`` holds every text's sketch, by position."""
    floor = dedup.cfg.threshold - sketch_margin(dedup.cfg.num_perm)
    sorted_items, group_start = band_groups(keys, items)
    capped = int(np.count_nonzero(np.arange(len(sorted_items)) - group_start == dedup.bucket_reps + 1))
    found: list[np.ndarray] = []
    examined = 0
    for earlier, later in group_pairs(sorted_items, group_start, dedup.bucket_reps):
        examined += len(earlier)
        close = sketch_jaccard(sketch, earlier, later, dedup.cfg.num_perm) >= floor
        found.append(np.unique(earlier[close] * n + later[close]))
    return (np.unique(np.concatenate(found)) if found else np.empty(0, np.int64)), examined, capped


def verify_pairs(
    pairs: tuple[np.ndarray, np.ndarray], dedup: MinHashDedup, fetch: Callable[[np.ndarray], Sequence[str]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One chunk's part of ``dedup_by_bands``: the exact Jaccard of each candidate pair ``(earlier, later)``,
    the texts of the chunk fetched at once.

    Returns the near-duplicate pairs (k x 2) and their Jaccards, and the pairs at or above the threshold
    set aside because their numbers differ (``distinct_numbers``). Pairs come sorted by earlier text, so
    its shingle set is built once per run of pairs; only the texts of one chunk are held at once.
    """
    e, l = pairs
    cfg, guard = dedup.cfg, dedup.cfg.distinct_numbers
    near: list[tuple[int, int]] = []
    sims: list[float] = []
    aside: list[tuple[int, int]] = []
    need = np.unique(np.concatenate([e, l]))
    texts = fetch(need)
    # A text in several pairs (a run of pairs with one earlier text, a cluster of copies) is shingled
    # once while it is recent; the bound keeps a chunk's sets (about 50 kB each at 100 words) small.
    shingle_set = functools.lru_cache(maxsize=SET_CACHE)(lambda t: shingles(texts[t], cfg.shingle, cfg.ngram))
    number_set = functools.lru_cache(maxsize=SET_CACHE)(lambda t: numbers(texts[t]))
    for a, b, ta, tb in zip(
        e.tolist(), l.tolist(), np.searchsorted(need, e).tolist(), np.searchsorted(need, l).tolist()
    ):
        sim = jaccard(shingle_set(ta), shingle_set(tb))
        if sim < cfg.threshold:
            continue
        if (
            guard
            and may_state_numbers(texts[ta])
            and may_state_numbers(texts[tb])
            and numbers_differ(number_set(ta), number_set(tb))
        ):
            aside.append((a, b))  # same template, different facts
            continue
        near.append((a, b))
        sims.append(sim)
    return (
        np.array(near, np.int64).reshape(-1, 2),
        np.array(sims, np.float64),
        np.array(aside, np.int64).reshape(-1, 2),
    )
