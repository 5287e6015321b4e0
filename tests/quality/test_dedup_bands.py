"""The corpus-wide MinHash dedup (``quality.dedup_bands``): band groupby, sketches, and its decisions
against exact Jaccard over all pairs of a small planted corpus."""

import random

import numpy as np
import pytest

from buildbench.domain_pack import DedupConfig
from buildbench.quality import MinHashDedup
from buildbench.quality.dedup_bands import apply_by_bands, band_groups, dedup_by_bands, group_pairs, may_state_numbers
from buildbench.quality.minhash import (
    jaccard,
    shingles,
    signature_sketch,
    sketch_jaccard,
    sketch_margin,
)
from buildbench.quality.numbers import numbers

from .quality_samples import PASSAGES, RATE_CUT, RATE_HIKE, edit_words
from .test_dedup import templated_corpus

VOCAB = sorted({w.strip(".,:;").lower() for p in PASSAGES for w in p.split()})


def planted(n_originals: int, n_copies: int, seed: int = 0) -> tuple[list[str], list[str], set[tuple[int, int]]]:
    """~100-word passages drawn from the sample passages' words and copies of random ones with 2-20% of their
    words replaced, shuffled; returns ids, texts and the planted (source, copy) position pairs."""
    rng = random.Random(seed)
    originals = [" ".join(rng.choices(VOCAB, k=100)) for _ in range(n_originals)]
    docs = [(f"o{i}", text) for i, text in enumerate(originals)]
    for k in range(n_copies):
        src = rng.randrange(n_originals)
        docs.append((f"o{src}-copy{k}", edit_words(originals[src], rng.choice([0.02, 0.06, 0.12, 0.2]), seed=k)))
    rng.shuffle(docs)
    ids = [d[0] for d in docs]
    pos = {item_id: i for i, item_id in enumerate(ids)}
    pairs = {tuple(sorted((pos[i.split("-")[0]], pos[i]))) for i in ids if "-copy" in i}
    return ids, [d[1] for d in docs], pairs


def exact_pairs(texts: list[str], cfg: DedupConfig) -> set[tuple[int, int]]:
    """Ground truth: every pair at or above the threshold by exact Jaccard, all n^2/2 of them checked."""
    sets = [shingles(t, cfg.shingle, cfg.ngram) for t in texts]
    return {
        (i, j)
        for i in range(len(texts))
        for j in range(i + 1, len(texts))
        if sets[i] and sets[j] and jaccard(sets[i], sets[j]) >= cfg.threshold
    }


def exact_drops(pairs: set[tuple[int, int]]) -> set[int]:
    """In input order, each text with a near duplicate among the earlier texts kept."""
    dropped: set[int] = set()
    for i, j in sorted(pairs, key=lambda p: (p[1], p[0])):
        if i not in dropped:
            dropped.add(j)
    return dropped


def test_bands_path_matches_exact_jaccard_on_planted_copies(tmp_path):
    """300 texts, 60 of them planted copies: the pairs ``dedup_by_bands`` reports are exactly the pairs at or
    above the threshold by exact Jaccard over all 44,850 pairs (precision and recall 1.0), its drops are an
    exact dedup's, and they equal the sequential ``apply``'s. Batches of 37 texts and band keys spilled to disk
    exercise the streaming path; texts are fetched only for candidate pairs."""
    ids, texts, planted_pairs = planted(240, 60)
    cfg = DedupConfig()
    truth = exact_pairs(texts, cfg)
    assert len(truth & planted_pairs) >= 40 and planted_pairs - truth  # 20% edits fall below 0.7
    fetched: list[int] = []

    def fetch(idx: np.ndarray) -> list[str]:
        assert np.all(idx[1:] > idx[:-1])  # sorted, unique
        fetched.append(len(idx))
        return [texts[i] for i in idx.tolist()]

    dedup = MinHashDedup(cfg)
    found = dedup_by_bands(dedup, [texts[s : s + 37] for s in range(0, len(texts), 37)], fetch, spill_dir=tmp_path)
    assert set(map(tuple, found.pairs.tolist())) == truth
    for (i, j), sim in zip(found.pairs.tolist(), found.pair_similarity.tolist()):
        assert sim == jaccard(shingles(texts[i]), shingles(texts[j])) >= cfg.threshold
    assert set(found.dropped.tolist()) == exact_drops(truth)
    assert found.keep[found.reference].all() and not found.keep[found.dropped].any()
    assert found.keep.sum() == len(texts) - len(found.dropped)
    assert found.stats["near_duplicate_pairs"] == len(truth)
    # Exact checks for candidates only, not for every pair; texts fetched for those pairs only.
    assert found.stats["pairs_verified"] < len(truth) * 2
    assert sum(fetched) <= 2 * found.stats["pairs_verified"]
    assert list(tmp_path.iterdir()) == []  # spilled band keys are removed
    # One representative per band group: a pair at the threshold shares 7.7 of 32 bands on average, so the
    # cap on each band hides none of them here.
    capped = dedup_by_bands(MinHashDedup(cfg, bucket_reps=1), [texts], fetch)
    assert capped.stats["buckets_capped"] > 0 and set(map(tuple, capped.pairs.tolist())) == truth

    sequential = dedup.apply(ids, texts)
    by_bands = apply_by_bands(dedup, ids, texts)
    assert by_bands.keep == sequential.keep == found.keep.tolist()
    assert [(d.item_id, d.detail) for d in by_bands.drops] == [(d.item_id, d.detail) for d in sequential.drops]


def test_band_groupby_pairs_each_text_with_the_first_of_its_group():
    keys = np.array([5, 3, 5, 5, 3, 7, 5], np.uint64)
    items = np.arange(7)
    sorted_items, start = band_groups(keys, items)
    assert sorted_items.tolist() == [1, 4, 0, 2, 3, 6, 5]
    assert start.tolist() == [0, 0, 2, 2, 2, 2, 6]

    def pairs(cap: int, chunk: int = 1 << 20) -> list[tuple[int, int]]:
        chunks = group_pairs(sorted_items, start, cap, chunk)
        return sorted(p for e, l in chunks for p in zip(e.tolist(), l.tolist()))

    assert pairs(10) == [(0, 2), (0, 3), (0, 6), (1, 4), (2, 3), (2, 6), (3, 6)]
    assert pairs(1) == [(0, 2), (0, 3), (0, 6), (1, 4)]  # each text against the first of its group only
    assert pairs(10, chunk=1) == pairs(10)
    # One partition of a distributed groupby may arrive in any row order: same groups.
    perm = np.array([6, 2, 0, 5, 3, 1, 4])
    again, again_start = band_groups(keys[perm], items[perm])
    assert again.tolist() == sorted_items.tolist() and again_start.tolist() == start.tolist()


def test_sketch_estimates_jaccard():
    _, texts, _ = planted(60, 40, seed=1)
    sigs, _ = MinHashDedup().signatures(texts)
    sketch = signature_sketch(sigs)
    assert sketch.shape == (len(texts), 4) and sketch.dtype == np.uint64  # 32 bytes a text at 128 permutations
    left, right = np.triu_indices(len(texts), k=1)
    estimate = sketch_jaccard(sketch, left, right, 128)
    sets = [shingles(t) for t in texts]
    exact = np.array([jaccard(sets[i], sets[j]) for i, j in zip(left.tolist(), right.tolist())])
    assert np.abs(estimate - exact).mean() < 0.05
    near = exact >= DedupConfig().threshold
    assert near.sum() >= 20 and (estimate[near] >= DedupConfig().threshold - sketch_margin(128)).all()
    # A signature length that does not fill the last word: padding never counts as agreement.
    sigs100 = sigs[:, :100]
    sk100 = signature_sketch(np.ascontiguousarray(sigs100))
    assert sk100.shape == (len(texts), 4)
    assert sketch_jaccard(sk100, np.array([0]), np.array([0]), 100)[0] == 1.0
    assert sketch_jaccard(sk100, left, right, 100).mean() < 0.3


def test_numbers_guard_empty_and_disabled():
    texts = [RATE_HIKE, RATE_CUT, "", "  "]
    result = apply_by_bands(MinHashDedup(), ["hike", "cut", "e1", "e2"], texts)
    assert result.keep == [True] * 4  # same template, other numbers: distinct facts; empty texts left alone
    assert result.stats["distinct_numbers"] == 1 and result.stats["distinct_number_pairs"] == 1
    off = apply_by_bands(MinHashDedup(DedupConfig(distinct_numbers=False)), ["hike", "cut", "e1", "e2"], texts)
    assert off.keep == [True, False, True, True]
    assert "with hike (kept)" in off.drops[0].detail
    assert apply_by_bands(MinHashDedup(), [], []).keep == []
    disabled = MinHashDedup(DedupConfig(enabled=False))
    assert apply_by_bands(disabled, ["a", "b"], ["x y z", "x y z"]).keep == [True] * 2
    with pytest.raises(ValueError):
        apply_by_bands(MinHashDedup(), ["a"], [])
    # The shortcut that skips ``numbers`` for prose never skips a text that states one.
    for text in (*PASSAGES, RATE_CUT, "rates rose a quarter point", "¾ of the banks", "in 2024", ""):
        assert may_state_numbers(text) or not numbers(text)
    assert not may_state_numbers("rates rose a quarter point") and may_state_numbers("¾ of the banks")


def test_templated_copies_found_as_by_apply():
    """Templated documents whose numbers differ overflow their buckets; the planted typo copies are still
    found, with the same drops as the sequential index."""
    ids, texts, _ = templated_corpus(400, 30, seed=3)
    sequential = MinHashDedup().apply(ids, texts)
    by_bands = apply_by_bands(MinHashDedup(), ids, texts)
    assert by_bands.stats["buckets_capped"] > 0
    assert by_bands.keep == sequential.keep and by_bands.counts["dropped"] == 30
    assert [d.detail for d in by_bands.drops] == [d.detail for d in sequential.drops]
