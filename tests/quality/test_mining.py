"""Positive-aware hard-negative mining over a pool of retrievers (real BM25 and model2vec, offline)."""

import pyarrow as pa

from buildbench.domain_pack import MiningConfig
from buildbench.quality.mining import candidates_from_table, candidates_table, judge_selection, mine

DOCS = {
    "pos": "The bank raised its policy rate by 25 basis points to 4.5 percent to bring inflation down.",
    "copy": "To bring inflation down, the bank raised its policy rate by 25 basis points to 4.5 percent.",
    "near": "The bank kept its policy rate at 4.25 percent and said inflation was easing slowly.",
    "far1": "The insurer reported higher claims from storms in the coastal regions this year.",
    "far2": "The retailer opened twelve new stores and closed three loss-making outlets.",
    "far3": "Bond issuance by utilities rose as companies refinanced debt before maturity.",
    "far4": "The mortgage lender tightened its criteria for borrowers with variable incomes.",
    "neg-llm": "The bank's policy committee meets eight times a year to discuss the economy.",
}


def corpus():
    return pa.table({"id": list(DOCS), "title": [""] * len(DOCS), "text": list(DOCS.values())})


QUERIES = pa.table({"id": ["q1"], "text": ["bank raises policy rate 25 basis points to 4.5 percent inflation"]})


def test_too_close_candidates_are_not_negatives(tmp_path):
    cfg = MiningConfig(retrievers=["bm25", "static"], score_models=["static"], depth=10, per_query=2, max_ratio=0.9)
    cands = mine(corpus(), QUERIES, {"q1": ["pos"]}, cfg, synthetic={"q1": ["neg-llm"]})
    by = {c.passage_id: c for c in cands}
    assert "pos" not in by  # the positive is never its own candidate
    # The reordered copy of the positive scores like it: too close, a suspected positive.
    assert by["copy"].decision == "too_close" and by["copy"].ratio >= 0.9
    assert set(by["copy"].found_by) == {"bm25", "static"}
    negatives = [c for c in sorted(cands, key=lambda c: c.rank) if c.decision == "negative"]
    assert len(negatives) == 2 and all(c.ratio < 0.9 for c in negatives)
    assert by["neg-llm"].decision == "synthetic" and by["neg-llm"].found_by == ["llm"]
    assert [c.rank for c in sorted(cands, key=lambda c: c.rank)] == list(range(1, len(cands) + 1))
    # Round trip through the stage's table.
    assert candidates_from_table(candidates_table(cands)) == cands


def test_max_ratio_and_skip_top_are_configurable():
    loose = MiningConfig(retrievers=["bm25", "static"], score_models=["static"], max_ratio=10.0, per_query=3,
                         skip_top=1)
    cands = sorted(mine(corpus(), QUERIES, {"q1": ["pos"]}, loose), key=lambda c: c.rank)
    assert cands[0].decision == "skipped_top" and cands[0].passage_id == "copy"
    assert [c.decision for c in cands[1:5]] == ["negative"] * 3 + ["pool"]


def test_llm_negatives_join_only_their_own_query():
    queries = pa.table({"id": ["q1", "q2"], "text": [QUERIES["text"][0].as_py(), "new stores opened by the retailer"]})
    cfg = MiningConfig(retrievers=["bm25", "static"], score_models=["static"], depth=10)
    cands = mine(corpus(), queries, {"q1": ["pos"], "q2": ["far2"]}, cfg, synthetic={"q1": ["neg-llm"]})
    assert not [c for c in cands if c.query_id == "q2" and c.passage_id == "neg-llm"]


def test_judge_selection_takes_close_top_and_synthetic():
    cfg = MiningConfig(retrievers=["bm25", "static"], score_models=["static"], depth=10, judge_top=1, max_ratio=0.9)
    cands = mine(corpus(), QUERIES, {"q1": ["pos"]}, cfg, synthetic={"q1": ["neg-llm"]})
    picked = judge_selection(cands, cfg)
    kinds = [c.decision for c in picked]
    assert kinds.count("negative") == 1 and "too_close" in kinds and "synthetic" in kinds
    best_negative = min((c for c in cands if c.decision == "negative"), key=lambda c: c.rank)
    assert best_negative in picked
