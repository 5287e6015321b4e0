"""Easiness filter with real BM25 and the static embedding model, on a small hand-written finance corpus."""

import pyarrow as pa
import pytest

from buildbench.domain_pack import EasinessConfig
from buildbench.engine.embeddings import EmbeddingCache
from buildbench.quality import EasinessFilter

DOCS = {
    "p-repo": ("Repo market", ("In a repurchase agreement a dealer sells government bonds to a money fund and promises "
               "to buy them back the next morning at a slightly higher price; the difference is the repo rate.")),
    "p-dur": ("Bond duration", ("Duration measures how sharply a bond's price falls when yields rise: a portfolio "
              "with a duration of six years loses roughly six percent of its value if rates climb one point.")),
    "p-esc": ("Escrow accounts", ("Lenders often collect property tax and homeowners insurance through an escrow "
              "account, adding one twelfth of the yearly bills to each monthly mortgage payment.")),
    "p-fx": ("Currency hedging", ("An importer that owes euros in ninety days can lock in today's exchange rate with "
             "a forward contract, removing the risk that the dollar weakens before the invoice is due.")),
    "p-wash": ("Wash sales", ("A loss on a stock sold at a loss cannot be deducted if the investor buys the same "
               "shares back within thirty days; the disallowed loss is added to the cost basis of the new shares.")),
    "p-cds": ("Credit default swaps", ("The buyer of a credit default swap pays a quarterly premium and receives "
              "compensation from the seller if the reference company defaults on its bonds.")),
    "p-ipo": ("Lock-up periods", ("After an initial public offering, insiders usually agree not to sell their "
              "shares for one hundred eighty days, and the stock often dips when that lock-up expires.")),
    "p-vat": ("Value added tax", ("Businesses charge value added tax on their sales but reclaim the tax they paid on "
              "purchases, so only the value added at each stage of production is taxed.")),
    "p-etf": ("ETF creation", ("Authorised participants create new exchange traded fund shares by delivering a basket "
              "of the underlying securities to the issuer, which keeps the fund price near its net asset value.")),
    "p-ann": ("Annuities", ("A deferred annuity lets savings grow tax deferred until withdrawals begin, but "
              "surrender charges apply if the contract is cashed out during the first seven years.")),
}

# (id, query, positive)
QUERIES = [
    # copies most of its passage: every signal fires
    ("copy", ("dealer sells government bonds to a money fund and buys them back next morning at a higher price, "
             "the repo rate"), "p-repo"),
    # paraphrased: shares almost no content word with its passage
    ("hard", "why would my portfolio lose money when the central bank hikes", "p-dur"),
    ("q-esc", "what is included in my monthly house payment besides principal", "p-esc"),
    ("q-fx", "protecting an importer against a weaker dollar", "p-fx"),
    ("q-cds", "insurance against a company not paying its debt", "p-cds"),
    ("q-ann", "penalty for cashing out a retirement contract early", "p-ann"),
    # keyword query: every word is in the lock-up passage, but the wash-sale passage matches them better
    ("keywords", "stock shares days", "p-ipo"),
    ("q-etf", "how do market makers keep a fund's price in line with its holdings", "p-etf"),
]


@pytest.fixture(scope="module")
def corpus():
    return pa.table({"id": list(DOCS), "title": [t for t, _ in DOCS.values()],
                     "text": [x for _, x in DOCS.values()]})


def run(corpus, cfg, queries=QUERIES, **kw):
    flt = EasinessFilter(cfg, corpus, **kw)
    return flt.apply([q[0] for q in queries], [q[1] for q in queries], [[q[2]] for q in queries])


def test_copied_query_dropped_with_all_three_signals_and_paraphrase_kept(corpus, tmp_path):
    res = run(corpus, EasinessConfig(), cache=EmbeddingCache(tmp_path / "emb"), stage="query_easiness")
    kept = dict(zip([q[0] for q in QUERIES], res.keep))
    assert not kept["copy"] and kept["hard"]
    assert [d.item_id for d in res.drops] == ["copy"]
    (drop,) = res.drops
    assert (drop.stage, drop.reason) == ("query_easiness", "trivially_easy")
    assert "word overlap 0.9" in drop.detail and "BM25 positive first by" in drop.detail
    assert ">= p90" in drop.detail and "cosine 0." in drop.detail
    assert res.stats["easy_lexical"] >= 2 and res.stats["easy_bm25"] >= 1 and res.stats["easy_dense"] == 1
    assert isinstance(res.stats["dense_threshold"], float) and 0 < res.stats["dense_threshold"] < 1
    assert all(type(res.stats[k]) is int for k in ("easy_lexical", "easy_bm25", "easy_dense"))


def test_any_and_all_differ_when_only_the_lexical_signal_fires(corpus):
    flt = EasinessFilter(EasinessConfig(), corpus)
    assert flt.word_overlap("stock shares days", [DOCS["p-ipo"][1]]) == 1.0
    all_ = run(corpus, EasinessConfig(combine="all"))
    any_ = run(corpus, EasinessConfig(combine="any"))
    ids = [q[0] for q in QUERIES]
    assert dict(zip(ids, all_.keep))["keywords"] is True
    assert dict(zip(ids, any_.keep))["keywords"] is False
    (drop,) = [d for d in any_.drops if d.item_id == "keywords"]
    assert "word overlap 1.00" in drop.detail and "BM25 positive not first" in drop.detail
    assert "< p90" in drop.detail  # the dense signal did not fire either
    assert len(any_.drops) > len(all_.drops)


def test_signals_set_to_none_are_off(corpus):
    none = run(corpus, EasinessConfig(max_word_overlap=None, bm25_margin=None, percentile=None))
    assert all(none.keep) and "dense_threshold" not in none.stats

    lexical = run(corpus, EasinessConfig(bm25_margin=None, percentile=None))
    assert {d.item_id for d in lexical.drops} == {"copy", "keywords"}
    assert all("BM25" not in d.detail and "cosine" not in d.detail for d in lexical.drops)
    assert lexical.stats["easy_bm25"] == 0 and lexical.stats["easy_dense"] == 0

    dense = run(corpus, EasinessConfig(max_word_overlap=None, bm25_margin=None))
    assert [d.item_id for d in dense.drops] == ["copy"]  # the highest cosine of the batch
    assert dense.drops[0].detail.startswith("cosine ") and "overlap" not in dense.drops[0].detail


def test_dense_signal_needs_five_queries(corpus):
    small = QUERIES[:3]
    res = run(corpus, EasinessConfig(), queries=small)
    assert all(res.keep) and res.stats["easy_dense"] == 0 and "dense_threshold" not in res.stats
    # Without the dense signal the copied query is caught by the other two.
    res = run(corpus, EasinessConfig(percentile=None), queries=small)
    assert res.keep == [False, True, True]


def test_stop_words_only_for_english(corpus):
    en = EasinessFilter(EasinessConfig(), corpus)
    de = EasinessFilter(EasinessConfig(), corpus, language="de")
    assert en.content_words("What is the repo rate of a bond?") == ["repo", "rate", "bond"]
    assert de.content_words("What is the repo rate of a bond?") == ["what", "the", "repo", "rate", "bond"]
    assert en.word_overlap("what is it", ["anything"]) is None


def test_disabled_and_empty(corpus):
    assert all(run(corpus, EasinessConfig(enabled=False)).keep)
    assert run(corpus, EasinessConfig(), queries=[]).keep == []


def test_query_without_positives_is_never_easy_and_unknown_ids_are_an_error(corpus):
    flt = EasinessFilter(EasinessConfig(combine="any"), corpus)
    ids = [q[0] for q in QUERIES] + ["orphan"]
    texts = [q[1] for q in QUERIES] + [QUERIES[0][1]]
    res = flt.apply(ids, texts, [[q[2]] for q in QUERIES] + [[]])
    assert res.keep[-1] is True and res.keep[0] is False
    with pytest.raises(ValueError, match="not in the corpus"):
        flt.apply(["q"], ["text"], [["p-missing"]])
