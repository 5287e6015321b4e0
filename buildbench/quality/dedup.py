"""Exact and near-duplicate removal.

``ExactDedup`` drops texts equal after normalisation. ``MinHashDedup`` finds near-duplicates with MinHash
LSH and then checks every candidate pair by the exact Jaccard similarity of the two shingle sets, so LSH only
proposes and never decides: a drop always records a Jaccard at or above the threshold. With
``DedupConfig.distinct_numbers`` a verified pair whose numbers differ on both sides ("cut 25 basis points to
4-1/4 percent" vs "cut 50 basis points to 6 percent") is kept as two distinct facts (see ``numbers_differ``).

LSH buckets hold at most ``BUCKET_REPS`` representatives each, so templated text (thousands of tiny documents
that differ only in their numbers, all in the same buckets) costs a bounded number of exact checks per text
instead of one per earlier text (see ``MinHashDedup``; ``benchmarks/bench_dedup_templated.py``).

``quality.dedup_bands`` decides the same way for a whole corpus read in batches, in bounded memory.

Shingles and signatures come from ``quality.minhash`` (vectorised, bit-identical to datasketch's MinHash);
the number rule from ``quality.numbers``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..domain_pack import DedupConfig
from ..records import Drop
from .base import FilterResult, check_aligned, normalize_text
from .minhash import BATCH_CHARS, ROLL_BASE, jaccard, minhash_signatures, mix64, shingle_hashes, shingles
from .numbers import Numbers, numbers, numbers_differ


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


# ---------------------------------------------------------------------------------------------- MinHash LSH

# Kept texts an LSH bucket holds as representatives. A text is checked against the representatives of its
# buckets only, so a bucket shared by thousands of templated texts costs at most this many checks per text.
BUCKET_REPS = 32


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit bucket key per text and band: the band's ``rows`` signature values hashed together.

    Two texts share a bucket when their band values are equal (as in datasketch's ``MinHashLSH``), or on a
    64-bit hash collision, which only adds a candidate that the exact check then rejects.
    """
    n = sigs.shape[0]
    block = sigs[:, : bands * rows].astype(np.uint64).reshape(n, bands, rows)
    h = np.zeros((n, bands), np.uint64)
    for k in range(rows):
        h *= ROLL_BASE
        h += block[:, :, k]
    return mix64(h)


def number_keys(nums: Numbers) -> set[str]:
    """The values a text's numbers can match another text's by: each value and each scaled value's digits.

    Two texts that both state numbers and whose numbers do not differ (``numbers_differ``) share one of these:
    one side's numbers are all on the other side, or a value matches the other side's digits without their
    scale word.
    """
    return set(nums) | {digits for ds in nums.unscaled.values() for digits in ds}


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

    Bounded cost: a bucket keeps at most ``bucket_reps`` kept texts as representatives, and a text is checked
    against the representatives of its buckets, not every kept text that shares one. Without the bound,
    templated text is quadratic: 10,000 tiny documents that fill one template with their own numbers all
    share their buckets, are all kept (``distinct_numbers``), and each was checked against every earlier one.
    With ``distinct_numbers`` on, a bucket that overflows indexes its kept texts by each of their numbers
    (``number_keys``; "none" for a text without numbers), up to ``bucket_reps`` per bucket and number, and a
    text with numbers is checked in such a bucket against the kept texts that share a number with it or
    have none: a text whose numbers differ from all of theirs cannot be their duplicate, while a copy keeps
    a number of its original, so copies of templated documents are still found (and the texts that differ
    only in their numbers are no longer checked against each other: ``distinct_numbers`` and
    ``distinct_number_pairs`` count the pairs that were checked). What the bound can miss: copies among more
    than ``bucket_reps`` kept texts that share all their buckets and a number, a copy without numbers of a
    text beyond the first ``bucket_reps`` of a bucket, and, with ``distinct_numbers`` off, a copy of a kept
    text beyond them with no bucket of its own in common. ``FilterResult.stats`` reports the cost:
    ``pairs_examined`` (candidates proposed), ``pairs_verified`` (exact Jaccards computed) and
    ``buckets_capped`` (buckets that overflowed).

    Knobs (``DedupConfig``): ``shingle`` ("char" or "word"), ``ngram``, ``threshold`` (exact Jaccard to drop),
    ``num_perm`` (signature length; more means fewer LSH misses near the threshold, at linear cost),
    ``distinct_numbers`` (the rule above), ``lsh_index`` ("bounded", this class's own band index, or
    "datasketch", datasketch's unbounded ``MinHashLSH``: every kept text of a bucket is a candidate).
    """

    name = "minhash_dedup"

    def __init__(self, cfg: DedupConfig | None = None, stage: str | None = None, seed: int = 1,
                 bucket_reps: int = BUCKET_REPS):
        if bucket_reps < 1:
            raise ValueError(f"bucket_reps must be at least 1, got {bucket_reps}")
        self.bucket_reps = bucket_reps
        self.cfg = cfg or DedupConfig()
        if not 0.0 < self.cfg.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.cfg.threshold}")
        if self.cfg.ngram < 1:
            raise ValueError(f"ngram must be at least 1, got {self.cfg.ngram}")
        if stage:
            self.name = stage
        self.seed = seed

    def near_duplicate(self, item_id: str, kept_id: str, similarity: float) -> Drop:
        """The drop of ``item_id`` as a near-duplicate of the kept ``kept_id``, with the evidence."""
        return Drop(stage=self.name, item_id=item_id, reason="near_duplicate",
                    detail=f"jaccard {similarity:.2f} with {kept_id} (kept), "
                    f"{self.cfg.shingle} {self.cfg.ngram}-grams, threshold {self.cfg.threshold:.2f}")

    def signatures(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """MinHash signatures of all texts (rows) and a mask of the texts that have any shingle.

        Texts are shingled in batches of about ``BATCH_CHARS`` characters, which bounds memory for long
        documents and keeps numpy's working arrays small enough to stay fast.
        """
        sigs = np.empty((len(texts), self.cfg.num_perm), dtype=np.uint32)
        nonempty = np.zeros(len(texts), dtype=bool)
        start = 0
        while start < len(texts):
            end, chars = start, 0
            while end < len(texts) and (end == start or chars < BATCH_CHARS):
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
        check_aligned(ids, texts)
        texts = list(texts)
        if not self.cfg.enabled:
            return FilterResult([True] * len(texts), [])
        sigs, nonempty = self.signatures(texts)
        margin = _screen_margin(self.cfg.num_perm)
        bands, rows = lsh_params(self.cfg.threshold, self.cfg.num_perm)
        keys = band_keys(sigs, bands, rows)
        cap, guard = self.bucket_reps, self.cfg.distinct_numbers
        lsh = None
        if self.cfg.lsh_index == "datasketch":
            import datasketch  # imported here because it pulls in scipy

            lsh = datasketch.MinHashLSH(num_perm=self.cfg.num_perm, params=(bands, rows))
        # Per band: bucket key -> its first kept texts (at most cap). Once a bucket is full, and with the number
        # guard on, its kept texts are also indexed by (key, number key), None standing for "no numbers", at
        # most cap per entry: a text with numbers is checked in a full bucket against the kept texts whose
        # numbers can match its own, the only ones it can be a duplicate of.
        reps: list[dict[int, list[int]]] = [{} for _ in range(bands)]
        by_number: list[dict[tuple[int, str | None], list[int]]] = [{} for _ in range(bands)]
        capped: set[tuple[int, int]] = set()
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

        def index_by_number(band: int, key: int, j: int) -> None:
            for v in number_keys(number_set(j)) or (None,):
                entry = by_number[band].setdefault((key, v), [])
                if len(entry) < cap:
                    entry.append(j)

        keep = [True] * len(texts)
        drops: list[Drop] = []
        distinct_texts = distinct_pairs = examined = verified = 0
        for i in range(len(texts)):
            if not nonempty[i]:
                continue  # empty text: nothing to compare; the length filter owns it
            row = keys[i].tolist()
            cand: set[int] = set()
            look: list[str | None] = []
            if lsh is not None:
                mh = datasketch.LeanMinHash(seed=self.seed, hashvalues=sigs[i], scheme="affine32")
                cand.update(lsh.query(mh))
                row = []  # candidates come from datasketch's index, not ours
            for band, key in enumerate(row):
                members = reps[band].get(key)
                if not members:
                    continue
                if len(members) < cap or not guard or (band, key) not in capped:
                    cand.update(members)  # every kept text of the bucket
                    continue
                if not look:
                    look = [None, *number_keys(number_set(i))]
                if len(look) == 1:
                    cand.update(members)  # no numbers: any kept text may be its original; the first cap ones
                for v in look:
                    cand.update(by_number[band].get((key, v), ()))
            best_j, best_sim = -1, -1.0
            set_aside = 0
            if cand:
                cands = np.sort(np.fromiter(cand, dtype=np.int64, count=len(cand)))
                examined += len(cands)
                # Skip the exact check for candidates whose signatures put them far below the threshold
                # (see _screen_margin); every remaining candidate is checked on its real shingle set.
                estimate = (sigs[cands] == sigs[i]).mean(axis=1)
                for j in cands[estimate >= self.cfg.threshold - margin].tolist():
                    sim = jaccard(shingle_set(i), shingle_set(j))
                    verified += 1
                    if guard and sim >= self.cfg.threshold and numbers_differ(number_set(i), number_set(j)):
                        set_aside += 1  # same template, different facts: not a duplicate of j
                        continue
                    if sim > best_sim:
                        best_j, best_sim = j, sim
            if set_aside and best_sim < self.cfg.threshold:
                distinct_texts += 1
            distinct_pairs += set_aside
            if best_sim >= self.cfg.threshold:
                keep[i] = False
                drops.append(self.near_duplicate(ids[i], ids[best_j], best_sim))
                continue
            if lsh is not None:
                lsh.insert(i, mh, check_duplication=False)
            for band, key in enumerate(row):
                members = reps[band].get(key)
                if members is None:
                    reps[band][key] = [i]
                elif len(members) < cap:
                    members.append(i)
                else:
                    if (band, key) not in capped:
                        capped.add((band, key))
                        if guard:
                            for j in members:
                                index_by_number(band, key, j)
                    if guard:
                        index_by_number(band, key, i)
        stats = {
            "distinct_numbers": distinct_texts,
            "distinct_number_pairs": distinct_pairs,
            "pairs_examined": examined,
            "pairs_verified": verified,
            "buckets_capped": len(capped),
        }
        return FilterResult(keep, drops, stats)


def dedup_texts(
    ids: Sequence[str],
    texts: Sequence[str],
    cfg: DedupConfig | None = None,
    stage: str = "dedup",
    near: Callable[[MinHashDedup, list[str], list[str]], FilterResult] | None = None,
) -> FilterResult:
    """Exact then near-duplicate removal in one result aligned with the input.

    Drops carry ``stage`` as their stage name; reasons stay ``exact_duplicate`` / ``near_duplicate``; ``stats``
    are ``MinHashDedup``'s. With ``cfg.enabled`` false everything is kept. ``near(dedup, ids, texts)`` finds
    the near duplicates among the texts the exact pass kept: ``MinHashDedup.apply`` by default
    (``quality.dedup_bands.apply_by_bands`` for ``cfg.method`` "bands", see ``quality.chain.Dedup``).
    """
    cfg = cfg or DedupConfig()
    check_aligned(ids, texts)
    if not cfg.enabled:
        return FilterResult([True] * len(texts), [])
    exact = ExactDedup(stage=stage).apply(ids, texts)
    idx = exact.kept_indices()
    minhash = MinHashDedup(cfg, stage=stage)
    near = (near or MinHashDedup.apply)(minhash, [ids[i] for i in idx], [texts[i] for i in idx])
    keep = list(exact.keep)
    for i, k in zip(idx, near.keep):
        keep[i] = k
    # Both results list drops in input order; merge them by input position (ids need not be unique).
    exact_pos = [i for i, k in enumerate(exact.keep) if not k]
    near_pos = [i for i, k in zip(idx, near.keep) if not k]
    merged = sorted(zip(exact_pos + near_pos, exact.drops + near.drops), key=lambda p: p[0])
    return FilterResult(keep, [d for _, d in merged], dict(near.stats))
