"""Semantic dedup with the real static model, and the blocked cosine computation against brute force."""

import numpy as np
import pytest

from buildbench.domain_pack import SemanticDedupConfig
from buildbench.engine.embeddings import (
    EmbeddingCache,
    register_model,
    unregister_model,
)
from buildbench.quality import SemanticDedup
from buildbench.quality import semantic_dedup as sd

# Cosines with the "static" model (tokenlearn-static-model): in/during 0.955, in/spring 0.953,
# during/spring 0.904; each of them and the euro question about 0.4-0.5.
IN_MARCH = "how much did the central bank raise interest rates in March"
DURING_MARCH = "how much did the central bank raise interest rates during March"
SPRING = "how much did the central bank raise interest rates in the spring"
EURO = "which countries use the euro as currency"


def test_reworded_pair_loses_one_and_unrelated_query_stays(tmp_path):
    flt = SemanticDedup(SemanticDedupConfig(threshold=0.9), cache=EmbeddingCache(tmp_path / "emb"),
                        stage="query_semantic_dedup")
    res = flt.apply(["a", "b", "c"], [IN_MARCH, EURO, DURING_MARCH])
    assert res.keep == [True, True, False]  # a tie of two: the earlier one stays
    (drop,) = res.drops
    assert (drop.stage, drop.item_id, drop.reason) == ("query_semantic_dedup", "c", "semantic_duplicate")
    assert drop.detail.startswith("cosine 0.9") and "to kept a" in drop.detail
    assert res.stats == {"clusters": 1, "largest_cluster": 2}


def test_most_central_member_of_a_three_cluster_is_kept(monkeypatch):
    monkeypatch.setattr(sd, "BLOCK_FLOATS", 4)  # one row per block: the blocked path on real embeddings
    flt = SemanticDedup(SemanticDedupConfig(threshold=0.93))
    # during-spring (0.90) is below the threshold: the cluster is a chain through "in March", its centre.
    res = flt.apply(["during", "euro", "in", "spring"], [DURING_MARCH, EURO, IN_MARCH, SPRING])
    assert res.keep == [False, True, True, False]
    assert [d.item_id for d in res.drops] == ["during", "spring"]
    assert all("to kept in (cluster of 3)" in d.detail for d in res.drops)
    assert res.stats == {"clusters": 1, "largest_cluster": 3}


def test_threshold_above_one_drops_nothing_and_empty_input_works():
    texts = [IN_MARCH, IN_MARCH, DURING_MARCH, EURO]
    res = SemanticDedup(SemanticDedupConfig(threshold=1.01)).apply(list("abcd"), texts)
    assert all(res.keep) and res.stats == {"clusters": 0, "largest_cluster": 0}
    # identical texts at the default threshold: equal centrality, so the first is kept
    res = SemanticDedup(SemanticDedupConfig()).apply(list("abcd"), texts)
    assert res.keep == [True, False, False, True]
    empty = SemanticDedup(SemanticDedupConfig()).apply([], [])
    assert empty.keep == [] and empty.drops == []
    assert all(SemanticDedup(SemanticDedupConfig(enabled=False)).apply(list("ab"), texts[:2]).keep)


def _vectors(n=300, dims=16, seed=7):
    """Random unit vectors, a third of them noisy copies of others so there are clusters and chains."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, dims))
    for i in range(0, n, 3):
        v[i] = v[rng.integers(n)] + rng.normal(scale=0.25, size=dims)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _brute_force_clusters(v, threshold):
    sims = v @ v.T
    n = len(v)
    seen, clusters = set(), []
    for s in range(n):
        if s in seen:
            continue
        comp, stack = {s}, [s]
        while stack:
            x = stack.pop()
            for y in np.nonzero(sims[x] >= threshold)[0].tolist():
                if y not in comp:
                    comp.add(y)
                    stack.append(y)
        seen |= comp
        if len(comp) > 1:
            clusters.append(sorted(comp))
    return sims, clusters


def _centre(v, members):
    """Highest mean cosine to the other members from the full square matrix; near-ties to the earliest."""
    sub = v[members].astype(np.float64) @ v[members].astype(np.float64).T
    means = (sub.sum(axis=1) - np.diag(sub)) / (len(members) - 1)
    return members[int(np.nonzero(means >= means.max() - 1e-9)[0][0])]


@pytest.mark.parametrize("block_rows", [1, 7, 64, 300])
def test_blocked_pairs_and_clusters_equal_brute_force(block_rows):
    v = _vectors()
    threshold = 0.85
    sims, expected = _brute_force_clusters(v, threshold)
    i, j = np.nonzero(np.triu(sims >= threshold, k=1))
    pairs = sd.similar_pairs(v, threshold, block_rows=block_rows)
    assert pairs.tolist() == np.stack([i, j], axis=1).tolist() and len(pairs) > 50
    clusters = sd.cluster_vectors(v, threshold, block_rows=block_rows)
    assert clusters == expected and max(map(len, clusters)) >= 3
    for members in clusters:
        assert sd.most_central(v, members) == _centre(v, members)


def test_filter_on_300_vectors_matches_brute_force(monkeypatch):
    v = _vectors(seed=11)
    texts = [f"text {i}" for i in range(len(v))]
    row = {t: i for i, t in enumerate(texts)}
    register_model("test-fixed-vectors", lambda: lambda batch, bs: v[[row[t] for t in batch]])
    try:
        monkeypatch.setattr(sd, "BLOCK_FLOATS", 3000)  # 10 rows per block
        res = SemanticDedup(SemanticDedupConfig(model="test-fixed-vectors", threshold=0.85)).apply(texts, texts)
    finally:
        unregister_model("test-fixed-vectors")
    _sims, clusters = _brute_force_clusters(v, 0.85)
    keep = [True] * len(v)
    for members in clusters:
        centre = _centre(v, members)
        keep = [k and (i not in members or i == centre) for i, k in enumerate(keep)]
    assert res.keep == keep
    assert res.stats == {"clusters": len(clusters), "largest_cluster": max(map(len, clusters))}
    assert len(res.drops) == keep.count(False)
