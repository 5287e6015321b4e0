"""Exact and near-duplicate removal.

``ExactDedup`` drops texts equal after normalisation. ``MinHashDedup`` finds near-duplicates with MinHash
LSH and then checks every candidate pair by the exact Jaccard similarity of the two shingle sets, so LSH only
proposes and never decides: a drop always records a Jaccard at or above the threshold. With
``DedupConfig.distinct_numbers`` a verified pair whose numbers differ on both sides ("cut 25 basis points to
4-1/4 percent" vs "cut 50 basis points to 6 percent") is kept as two distinct facts (see ``numbers_differ``).

Signatures are computed with numpy over all shingles of a batch of texts at once; they are bit-identical to
datasketch's own ``MinHash`` (default "affine32" scheme) of the same shingle hashes. The textbook
``MinHash.update`` loop hashes one shingle at a time through SHA-1 and is about 100 times slower on
100-word passages (see ``benchmarks/bench_minhash.py``).
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import Counter
from fractions import Fraction
from typing import Literal, Sequence

import numpy as np

from ..config import DedupConfig
from ..records import Drop
from .base import FilterResult, check_aligned, normalize_text

Shingle = Literal["char", "word"]

_BASE = np.uint64(0x100000001B3)  # FNV-64 prime: odd, so the rolling hash stays a bijection per position
# Work in batches: about 250k characters of text per shingling pass and a (num_perm x shingles) uint32
# array of about 4 MB per signature step. Measured faster than larger batches, which fall out of cache.
_BATCH_CELLS = 1_000_000
_BATCH_CHARS = 250_000


def _screen_margin(num_perm: int) -> float:
    """How far below the threshold a candidate's MinHash estimate may be and still get the exact check.

    The estimate's standard deviation is sqrt(J(1-J)/num_perm) <= 0.5/sqrt(num_perm); 4.5 of them (0.2 at
    128 permutations) screen out a pair at the threshold with probability below 1e-5. The many weak
    candidates that lenient LSH bands propose (same-topic texts share common n-grams) then cost one vectorised
    comparison instead of two Python sets of shingles.
    """
    return 4.5 * 0.5 / num_perm**0.5


class ExactDedup:
    """Drop texts identical to an earlier text after casefolding, stripping punctuation and collapsing spaces.

    The first occurrence in input order is kept. Reason ``exact_duplicate``.
    """

    name = "exact_dedup"

    def __init__(self, stage: str | None = None):
        if stage:
            self.name = stage

    def apply(
        self, ids: Sequence[str], texts: Sequence[str], refs: Sequence[str] | None = None
    ) -> FilterResult:
        check_aligned(ids, texts)
        first: dict[str, str] = {}
        keep: list[bool] = []
        drops: list[Drop] = []
        for item_id, text in zip(ids, texts):
            key = normalize_text(text)
            kept_id = first.get(key)
            if kept_id is None:
                first[key] = item_id
                keep.append(True)
                continue
            keep.append(False)
            drops.append(
                Drop(
                    stage=self.name,
                    item_id=item_id,
                    reason="exact_duplicate",
                    detail=f"same text as {kept_id} (kept) after normalisation",
                )
            )
        return FilterResult(keep, drops)


# ---------------------------------------------------------------------------------------------- shingles


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


def _mix64(x: np.ndarray) -> np.ndarray:
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
        h *= _BASE
        h += toks[j : j + span]
    # Window w of text i starts at starts[i] + (w - offsets[i]); texts are len + n - 1 apart in toks.
    starts = np.zeros(len(norm), dtype=np.int64)
    np.cumsum(lengths[:-1] + (n - 1), out=starts[1:])
    doc_of = np.repeat(np.arange(len(norm)), windows)
    pos = starts[doc_of] + (np.arange(offsets[-1]) - offsets[doc_of])
    return (_mix64(h[pos]) >> np.uint64(32)).astype(np.uint32), offsets


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
    rows_per_batch = max(1, _BATCH_CELLS // num_perm)
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


# ---------------------------------------------------------------------------------------------- numbers

# Markdown link targets and bare URLs: their digits are addresses, not facts of the text.
_URL = re.compile(r"\]\([^)\s]*\)|\bhttps?://\S+|\bwww\.\S+", re.IGNORECASE)
_VULGAR = re.compile("[\u00bc-\u00be\u2150-\u215e]")  # ¼ ½ ¾ ⅓ ... as single characters
_NUMBER = re.compile(
    r"(?<![\d./])"  # not the tail of a number or date already read, nor a footnote mark ("rates.1")
    r"(?:(?P<fnum>\d+)\s?[/\u2044]\s?(?P<fden>\d+)"  # 1/4
    r"|(?P<int>\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?P<dec>\.\d+)?"  # 25, 1,200, 2.5
    r"(?:[-\s](?P<num>\d+)[/\u2044](?P<den>\d+))?)"  # mixed fraction: 2-3/4, 4 1/4
    r"(?:\s?(?P<scale>thousand|million|billion|trillion|bn|mn|tn)\b|(?P<suffix>[kmb])\b)?",  # $1.2 billion, $30B
    re.IGNORECASE,
)
_SCALE = {
    "thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12,
    "k": 10**3, "m": 10**6, "mn": 10**6, "b": 10**9, "bn": 10**9, "tn": 10**12,
}


def _canonical(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.6f}".rstrip("0").rstrip(".")


def _vulgar(m: re.Match) -> str:
    # "2½" -> "2-1/2", "½" -> "1/2"; NFKC would give "21⁄2", which reads as twenty-one halves.
    frac = Fraction(unicodedata.numeric(m.group(0))).limit_denominator(100)
    before = m.string[m.start() - 1 : m.start()]
    return f"{'-' if before.isdigit() else ''}{frac.numerator}/{frac.denominator}"


class Numbers(Counter):
    """A multiset of canonical number values (``numbers``), plus ``unscaled``: for each value written with a
    scale word, its digits without it ("$200 billion" -> ``{"200000000000": {"200"}}``)."""

    def __init__(self) -> None:
        super().__init__()
        self.unscaled: dict[str, set[str]] = {}


def numbers(text: str) -> Numbers:
    """The numbers a text states, as a multiset of canonical values.

    Mixed and plain fractions, decimals and thousands separators become one value ("2-3/4", "2 3/4", "2¾"
    and "2.75" are all ``"2.75"``; "1/4" and "0.25" are ``"0.25"``; "1,200" is ``"1200"``), and a following
    thousand/million/billion/trillion (bn, mn, tn, or k/m/b right after the digits) scales it ("$1.2 billion",
    "1,200 million" and "$1.2B" are ``"1200000000"``). Units and signs are ignored: "25%", "$25" and "25 basis
    points" are all ``"25"``, and "-0.5" is ``"0.5"`` (a hyphen before a digit is more often a range or a
    compound than a minus), but a scale word is part of the value, so "$40 billion" and "$40" differ. Digits
    in URLs and footnote marks glued to a word ("securities.1") are skipped. Spelled-out numbers ("one-half",
    "twelve") and month names are not read.
    """
    text = _URL.sub(" ", text)
    if not text.isascii():
        text = _VULGAR.sub(_vulgar, text)
    out = Numbers()
    for m in _NUMBER.finditer(text):
        if m.group("fnum") is not None:
            num, den = int(m.group("fnum")), int(m.group("fden"))
            out[_canonical(Fraction(num, den)) if den else f"{num}/0"] += 1
            continue
        value = Fraction(m.group("int").replace(",", "") + (m.group("dec") or ""))
        if m.group("num") is not None:
            num, den = int(m.group("num")), int(m.group("den"))
            if 0 < num < den:
                value += Fraction(num, den)
            else:  # not a proper fraction, so not a mixed number: "3 5/4" is 3 and 5/4
                out[_canonical(Fraction(num, den)) if den else f"{num}/0"] += 1
        scale = m.group("scale") or m.group("suffix")
        if scale:
            digits = _canonical(value)
            value *= _SCALE[scale.lower()]
            out.unscaled.setdefault(_canonical(value), set()).add(digits)
        out[_canonical(value)] += 1
    return out


def numbers_differ(a: Counter[str], b: Counter[str]) -> bool:
    """Whether two texts' numbers (``numbers``) state different facts: each has a number the other lacks.

    A one-sided difference is not enough. A copy edited by deleting or rewording a number ("rose 25 basis
    points" -> "rose a quarter point"), or by adding a sentence with one, still repeats the other text; a
    fact changes when a number is replaced, which leaves an unmatched number on both sides ("25 basis
    points to 4-1/4 percent" vs "50 basis points to 6 percent"). Compared as multisets, so "25 then 25" and
    "25 then 50" differ. One edit that does leave both sides unmatched is a lost scale word ("$200 billion"
    -> "$200"); such a pair (same digits, scale word on one side only) counts as matched, while "$200 billion"
    and "$200 million" still differ.
    """
    only_a, only_b = a - b, b - a
    if not (only_a and only_b):
        return False
    sides = ((only_a, only_b, getattr(a, "unscaled", {})), (only_b, only_a, getattr(b, "unscaled", {})))
    for scaled, plain, unscaled in sides:
        for value in list(scaled):
            for digits in unscaled.get(value, ()):
                pairs = min(scaled[value], plain[digits])
                scaled[value] -= pairs
                plain[digits] -= pairs
    return bool(+only_a) and bool(+only_b)


# ---------------------------------------------------------------------------------------------- MinHash LSH


def lsh_params(threshold: float, num_perm: int, recall: float = 0.99) -> tuple[int, int]:
    """Bands ``b`` and rows ``r`` so that a pair at exactly ``threshold`` is a candidate with ``recall``.

    A pair with Jaccard ``s`` shares at least one band with probability ``1 - (1 - s**r)**b``. datasketch's
    own choice for ``MinHashLSH(threshold=0.7, num_perm=128)`` (b=14, r=9) balances false positives and
    negatives, which leaves a pair at 0.72 only a 53% chance of being found. Since every candidate is
    verified exactly, false positives cost one set intersection each, so this takes the largest ``r`` (fewest
    candidates) that still reaches ``recall`` at the threshold: b=32, r=4 for 0.7 and b=21, r=6 for 0.8.
    """
    for r in range(num_perm // 2, 0, -1):
        b = num_perm // r
        if 1.0 - (1.0 - threshold**r) ** b >= recall:
            return b, r
    return num_perm, 1


class MinHashDedup:
    """Near-duplicate removal: MinHash LSH proposes pairs, exact shingle Jaccard decides.

    Texts are processed in input order. Each text is compared with the LSH candidates among texts kept so
    far; if the exact Jaccard of their shingle sets (``shingles(text, cfg.shingle, cfg.ngram)``) with any
    candidate is at least ``cfg.threshold`` it is dropped (reason ``near_duplicate``, detail naming the kept
    text and the Jaccard), otherwise it is kept and indexed. A dropped text is never a reference for later
    ones, so a chain of small edits A -> B -> C drops B but judges C against A only.

    With ``cfg.distinct_numbers`` a candidate at or above the threshold whose numbers differ from the text's
    (``numbers_differ``) does not count: templated paragraphs that state different rates, amounts or dates
    are distinct facts for retrieval (and hard distractors), not copies. ``FilterResult.stats`` reports
    ``distinct_numbers``, the texts kept only because of this rule, and ``distinct_number_pairs``, the
    verified pairs it set aside.

    The LSH bands are set by ``lsh_params`` so that a pair exactly at the threshold is a candidate 99% of the
    time, rather than datasketch's balanced default for the threshold (about 50% there). Candidates whose
    MinHash estimate lies far below the threshold (``_screen_margin``) skip the exact check; no text is
    dropped without it.

    Knobs (``DedupConfig``): ``shingle`` ("char" or "word"), ``ngram``, ``threshold`` (exact Jaccard to drop),
    ``num_perm`` (signature length; more means fewer LSH misses near the threshold, at linear cost),
    ``distinct_numbers`` (the rule above).
    """

    name = "minhash_dedup"

    def __init__(self, cfg: DedupConfig | None = None, stage: str | None = None, seed: int = 1):
        self.cfg = cfg or DedupConfig()
        if not 0.0 < self.cfg.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.cfg.threshold}")
        if self.cfg.ngram < 1:
            raise ValueError(f"ngram must be at least 1, got {self.cfg.ngram}")
        if stage:
            self.name = stage
        self.seed = seed

    def signatures(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """MinHash signatures of all texts (rows) and a mask of the texts that have any shingle.

        Texts are shingled in batches of about ``_BATCH_CHARS`` characters, which bounds memory for long
        documents and keeps numpy's working arrays small enough to stay fast.
        """
        sigs = np.empty((len(texts), self.cfg.num_perm), dtype=np.uint32)
        nonempty = np.zeros(len(texts), dtype=bool)
        start = 0
        while start < len(texts):
            end, chars = start, 0
            while end < len(texts) and (end == start or chars < _BATCH_CHARS):
                chars += len(texts[end] or "")
                end += 1
            hashes, offsets = shingle_hashes(texts[start:end], self.cfg.shingle, self.cfg.ngram)
            sigs[start:end] = minhash_signatures(hashes, offsets, self.cfg.num_perm, self.seed)
            nonempty[start:end] = offsets[1:] > offsets[:-1]
            start = end
        return sigs, nonempty

    def apply(
        self, ids: Sequence[str], texts: Sequence[str], refs: Sequence[str] | None = None
    ) -> FilterResult:
        import datasketch  # a core dependency, imported here because it pulls in scipy

        check_aligned(ids, texts)
        texts = list(texts)
        if not self.cfg.enabled:
            return FilterResult([True] * len(texts), [])
        sigs, nonempty = self.signatures(texts)
        margin = _screen_margin(self.cfg.num_perm)
        lsh = datasketch.MinHashLSH(
            num_perm=self.cfg.num_perm, params=lsh_params(self.cfg.threshold, self.cfg.num_perm)
        )
        sets: dict[int, set[str]] = {}

        def shingle_set(i: int) -> set[str]:
            # Built only for texts that take part in a candidate pair.
            if i not in sets:
                sets[i] = shingles(texts[i], self.cfg.shingle, self.cfg.ngram)
            return sets[i]

        nums: dict[int, Numbers] = {}

        def number_set(i: int) -> Numbers:
            if i not in nums:
                nums[i] = numbers(texts[i])
            return nums[i]

        keep = [True] * len(texts)
        drops: list[Drop] = []
        distinct_texts = distinct_pairs = 0
        for i in range(len(texts)):
            if not nonempty[i]:
                continue  # empty text: nothing to compare; the length filter owns it
            mh = datasketch.LeanMinHash(seed=self.seed, hashvalues=sigs[i], scheme="affine32")
            best_j, best_sim = -1, -1.0
            set_aside = 0
            cands = np.sort(np.fromiter(lsh.query(mh), dtype=np.int64))
            if len(cands):
                # Skip the exact check for candidates whose signatures put them far below the threshold
                # (see _screen_margin); every remaining candidate is checked on its real shingle set.
                estimate = (sigs[cands] == sigs[i]).mean(axis=1)
                for j in cands[estimate >= self.cfg.threshold - margin].tolist():
                    sim = jaccard(shingle_set(i), shingle_set(j))
                    if (
                        self.cfg.distinct_numbers
                        and sim >= self.cfg.threshold
                        and numbers_differ(number_set(i), number_set(j))
                    ):
                        set_aside += 1  # same template, different facts: not a duplicate of j
                        continue
                    if sim > best_sim:
                        best_j, best_sim = j, sim
            if set_aside and best_sim < self.cfg.threshold:
                distinct_texts += 1
            distinct_pairs += set_aside
            if best_sim >= self.cfg.threshold:
                keep[i] = False
                drops.append(
                    Drop(
                        stage=self.name,
                        item_id=ids[i],
                        reason="near_duplicate",
                        detail=f"jaccard {best_sim:.2f} with {ids[best_j]} (kept), "
                        f"{self.cfg.shingle} {self.cfg.ngram}-grams, threshold {self.cfg.threshold:.2f}",
                    )
                )
            else:
                lsh.insert(i, mh, check_duplication=False)
        stats = {"distinct_numbers": distinct_texts, "distinct_number_pairs": distinct_pairs}
        return FilterResult(keep, drops, stats)


def dedup_texts(
    ids: Sequence[str], texts: Sequence[str], cfg: DedupConfig | None = None, stage: str = "dedup"
) -> FilterResult:
    """Exact then near-duplicate removal in one result aligned with the input.

    Drops carry ``stage`` as their stage name; reasons stay ``exact_duplicate`` / ``near_duplicate``; ``stats``
    are ``MinHashDedup``'s. With ``cfg.enabled`` false everything is kept.
    """
    cfg = cfg or DedupConfig()
    check_aligned(ids, texts)
    if not cfg.enabled:
        return FilterResult([True] * len(texts), [])
    exact = ExactDedup(stage=stage).apply(ids, texts)
    idx = exact.kept_indices()
    near = MinHashDedup(cfg, stage=stage).apply([ids[i] for i in idx], [texts[i] for i in idx])
    keep = list(exact.keep)
    for i, k in zip(idx, near.keep):
        keep[i] = k
    # Both results list drops in input order; merge them by input position (ids need not be unique).
    exact_pos = [i for i, k in enumerate(exact.keep) if not k]
    near_pos = [i for i, k in zip(idx, near.keep) if not k]
    merged = sorted(zip(exact_pos + near_pos, exact.drops + near.drops), key=lambda p: p[0])
    return FilterResult(keep, [d for _, d in merged], dict(near.stats))
