"""Shingles and MinHash signatures, vectorised with numpy.

Signatures are computed over all shingles of a batch of texts at once; they are bit-identical to datasketch's
own ``MinHash`` (default "affine32" scheme) of the same shingle hashes. The textbook ``MinHash.update`` loop
hashes one shingle at a time through SHA-1 and is about 100 times slower on 100-word passages (see
``benchmarks/bench_minhash.py``).
"""

from __future__ import annotations

import zlib
from typing import Literal, Sequence

import numpy as np

from .base import normalize_text

Shingle = Literal["char", "word"]

ROLL_BASE = np.uint64(0x100000001B3)  # FNV-64 prime: odd, so the rolling hash stays a bijection per position
# Work in batches: about 250k characters of text per shingling pass and a (num_perm x shingles) uint32
# array of about 4 MB per signature step. Measured faster than larger batches, which fall out of cache.
BATCH_CELLS = 1_000_000
BATCH_CHARS = 250_000


def shingles(text: str, kind: Shingle = "char", n: int = 5) -> set[str]:
    """The shingle set of a text: its normalised character or word n-grams.

    A text shorter than ``n`` units is one shingle (itself), so short texts can still match exactly.
    Word shingles are the n words joined by a space.
    """
    norm = normalize_text(text)
    if not norm:
        return set()
    if kind == "char":
        if len(norm) <= n:
            return {norm}
        return {norm[i : i + n] for i in range(len(norm) - n + 1)}
    toks = norm.split(" ")
    if len(toks) <= n:
        return {" ".join(toks)}
    return {" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1)}


def jaccard(a: set, b: set) -> float:
    """Exact Jaccard similarity |a & b| / |a | b| (1.0 for two empty sets)."""
    if not a and not b:
        return 1.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def _token_ids(norm: list[str], kind: Shingle, n: int) -> tuple[np.ndarray, np.ndarray]:
    """All texts' token ids in one array, each text followed by ``n - 1`` zeros, and each text's length.

    Tokens are code points (char) or CRC-32s of words (word), plus one so that no real token is zero. The
    zero gap means a window starting inside a text never reads the next text: windows of texts with at least
    ``n`` tokens end before the gap, and the single window of a shorter text is padded by it.
    """
    if kind == "char":
        lengths = np.fromiter(map(len, norm), dtype=np.int64, count=len(norm))
        # One encode for the whole batch; NUL never survives normalize_text, so it marks the gaps.
        cps = np.frombuffer(("\0" * (n - 1)).join(norm).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        toks = np.where(cps == 0, np.uint64(0), cps + np.uint64(1))
        return np.concatenate([toks, np.zeros(n - 1, np.uint64)]), lengths
    lengths = np.fromiter((t.count(" ") + 1 if t else 0 for t in norm), dtype=np.int64, count=len(norm))
    gap = " ".join(["\0"] * (n - 1))
    all_words = (f" {gap} " if gap else " ").join(norm).split()
    # Hash each distinct word once; the per-word lookups then run in C (dict.__getitem__ via map).
    vocab = dict.fromkeys(all_words, 0)
    for w in vocab:
        if w != "\0":
            vocab[w] = zlib.crc32(w.encode()) + 1
    ids = np.fromiter(map(vocab.__getitem__, all_words), dtype=np.uint64, count=len(all_words))
    return np.concatenate([ids, np.zeros(n - 1, np.uint64)]), lengths


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: spreads the polynomial hash's bits so its top 32 bits are well mixed."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def shingle_hashes(texts: Sequence[str], kind: Shingle = "char", n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of every shingle of every text, concatenated, and the start offset of each text.

    Returns ``(hashes, offsets)`` with ``hashes[offsets[i]:offsets[i+1]]`` the (not deduplicated) shingle
    hashes of text i; an empty text has none. A window's hash is a polynomial over its token ids mod 2**64,
    computed for every position of the whole batch with ``n`` shifted-slice operations, then finalised and
    cut to 32 bits. A text shorter than ``n`` tokens is one zero-padded window, matching ``shingles``.
    """
    if n < 1:
        raise ValueError(f"ngram must be at least 1, got {n}")
    norm = [normalize_text(t) if t else "" for t in texts]
    toks, lengths = _token_ids(norm, kind, n)
    windows = np.where(lengths == 0, 0, np.maximum(lengths - n + 1, 1))
    offsets = np.zeros(len(norm) + 1, dtype=np.int64)
    np.cumsum(windows, out=offsets[1:])
    if offsets[-1] == 0:
        return np.empty(0, np.uint32), offsets
    span = len(toks) - (n - 1)
    h = toks[:span].copy()
    for j in range(1, n):
        h *= ROLL_BASE
        h += toks[j : j + span]
    # Window w of text i starts at starts[i] + (w - offsets[i]); texts are len + n - 1 apart in toks.
    starts = np.zeros(len(norm), dtype=np.int64)
    np.cumsum(lengths[:-1] + (n - 1), out=starts[1:])
    doc_of = np.repeat(np.arange(len(norm)), windows)
    pos = starts[doc_of] + (np.arange(offsets[-1]) - offsets[doc_of])
    return (mix64(h[pos]) >> np.uint64(32)).astype(np.uint32), offsets


# ---------------------------------------------------------------------------------------------- signatures


def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The affine32 permutation parameters datasketch's ``MinHash(num_perm, seed)`` draws (odd ``a``, any ``b``)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def _fmix32(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x85EBCA6B)
    x = x ^ (x >> np.uint32(13))
    x = x * np.uint32(0xC2B2AE35)
    return x ^ (x >> np.uint32(16))


def minhash_signatures(hashes: np.ndarray, offsets: np.ndarray, num_perm: int = 128, seed: int = 1) -> np.ndarray:
    """MinHash signatures, one row of ``num_perm`` uint32 values per text.

    Bit-identical to datasketch's default ``"affine32"`` scheme: ``MinHash(num_perm, seed, hashfunc=identity)``
    updated with the same 32-bit shingle hashes gives the same ``hashvalues`` (a test checks this). The
    difference is speed: the MurmurHash3 pre-mix and ``a*h + b mod 2**32`` run over the shingles of many texts
    in one (shingles x num_perm) array and ``np.minimum.reduceat`` takes each text's minimum. A text without
    shingles keeps the all-ones (empty) signature.
    """
    n_docs = len(offsets) - 1
    a, b = _permutations(num_perm, seed)
    sig = np.full((n_docs, num_perm), np.uint32(0xFFFFFFFF), dtype=np.uint32)
    has = np.flatnonzero(offsets[1:] > offsets[:-1])
    if len(has) == 0:
        return sig
    mixed = _fmix32(hashes.astype(np.uint32, copy=False))
    rows_per_batch = max(1, BATCH_CELLS // num_perm)
    ends = offsets[has + 1]
    i = 0
    while i < len(has):
        # Take texts until the batch holds rows_per_batch shingles (at least one text per batch).
        lo = offsets[has[i]]
        j = max(int(np.searchsorted(ends, lo + rows_per_batch, side="right")), i + 1)
        docs = has[i:j]
        # (num_perm x shingles): each text's shingles are contiguous in a row, which makes reduceat ~10x
        # faster than over the transposed layout.
        perm = a[:, None] * mixed[None, lo : ends[j - 1]]
        perm += b[:, None]
        sig[docs] = np.minimum.reduceat(perm, offsets[docs] - lo, axis=1).T
        i = j
    return sig


# ---------------------------------------------------------------------------------------------- sketches

SKETCH_BITS = 2  # bits kept per signature value
_FIELD_MASK = np.uint64(0x5555555555555555)  # the low bit of every 2-bit field
_MIX32 = np.uint32(0x9E3779B1)  # odd: multiplying by it permutes uint32, and its top bits depend on all bits


def signature_sketch(sigs: np.ndarray) -> np.ndarray:
    """``SKETCH_BITS`` bits of every signature value, packed into uint64 words: 32 bytes per text at 128
    permutations instead of the signature's 512.

    A corpus-wide dedup keeps this per text to screen candidate pairs (``sketch_jaccard``) without holding
    the full signatures of millions of texts. The bits are the top ones of each value times an odd constant:
    a MinHash value is a minimum, so its own top bits are nearly always zero.
    """
    n, num_perm = sigs.shape
    per_word = 64 // SKETCH_BITS
    words = -(-num_perm // per_word)
    fields = np.zeros((n, words * per_word), np.uint64)
    # Padding fields stay zero in every sketch, so they always agree; sketch_jaccard counts only disagreements.
    fields[:, :num_perm] = (sigs.astype(np.uint32, copy=False) * _MIX32) >> np.uint32(32 - SKETCH_BITS)
    shifts = np.arange(per_word, dtype=np.uint64) * np.uint64(SKETCH_BITS)
    return np.bitwise_or.reduce(fields.reshape(n, words, per_word) << shifts, axis=2)


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(x)
    table = np.array([i.bit_count() for i in range(256)], np.uint8)
    return table[x.view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1)


def sketch_jaccard(sketch: np.ndarray, left: np.ndarray, right: np.ndarray, num_perm: int) -> np.ndarray:
    """The Jaccard estimate of each pair (``left[k]``, ``right[k]``) of rows of ``signature_sketch``.

    Two texts' signature values agree with probability J; two different values still agree in their
    ``SKETCH_BITS`` bits with probability 2**-bits, so the share of agreeing fields m estimates
    J = (m - 2**-bits) / (1 - 2**-bits) (b-bit MinHash, Li and Koenig 2010).
    """
    x = sketch[left] ^ sketch[right]
    x = (x | (x >> np.uint64(1))) & _FIELD_MASK  # one bit per 2-bit field that differs
    differ = _popcount(x).sum(axis=1, dtype=np.int64)
    chance = 2.0**-SKETCH_BITS
    return ((1.0 - differ / num_perm) - chance) / (1.0 - chance)


def sketch_margin(num_perm: int) -> float:
    """How far below a threshold a pair's ``sketch_jaccard`` may be and still get the exact check.

    The estimate's standard deviation is at most 0.5 / sqrt(num_perm) / (1 - 2**-bits) (0.059 at 128
    permutations); 4.5 of them screen out a pair at the threshold with probability below 1e-5.
    """
    return 4.5 * 0.5 / num_perm**0.5 / (1.0 - 2.0**-SKETCH_BITS)
