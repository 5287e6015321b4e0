"""Round-trip consistency (real BM25 and the static embedding model) and the prompt-echo check."""

import pyarrow as pa

from buildbench.quality import PromptEchoFilter, RoundTripFilter

DOCS = {
    "d-rate": "The central bank raised its policy rate by 25 basis points to 4.5 percent to curb inflation.",
    "d-fee": "The fund's management fee is 0.45 percent a year, and a waiver of 0.10 percent lasts until 2027.",
    "d-cov": "The borrower must keep net leverage under 3.5 times EBITDA, tested at each quarter end.",
    "d-gw": "The auditor identified goodwill impairment of the publishing unit as a critical audit matter.",
    "d-ins": "The cyber policy excludes losses from war and state-sponsored attacks above the sublimit.",
}


def corpus():
    return pa.table({"id": list(DOCS), "title": [""] * len(DOCS), "text": list(DOCS.values())})


def test_on_topic_queries_kept_and_drifting_ones_dropped(tmp_path):
    from buildbench.engine.embeddings import EmbeddingCache

    flt = RoundTripFilter(corpus(), retrievers=("bm25", "static"), k=1,
                          cache=EmbeddingCache(tmp_path / "emb"), stage="query_round_trip")
    ids = ["q1", "q2", "q3"]
    texts = [
        "how much did the central bank lift its policy rate",
        "management fee waiver of the fund",
        "which ski resorts open early this winter",  # drifted: about nothing in its chunk
    ]
    res = flt.apply(ids, texts, refs=["d-rate", "d-fee", "d-gw"])
    assert res.keep == [True, True, False]
    (drop,) = res.drops
    assert (drop.stage, drop.item_id, drop.reason) == ("query_round_trip", "q3", "source_not_retrieved")
    assert "d-gw" in drop.detail and "top 1" in drop.detail
    assert res.stats["found_by_bm25"] >= 2


def test_any_retriever_finding_the_chunk_is_enough():
    flt = RoundTripFilter(corpus(), retrievers=("random", "bm25"), k=1)
    res = flt.apply(["q"], ["goodwill impairment critical audit matter"], refs=["d-gw"])
    assert res.keep == [True]


def test_prompt_echo_drops_copied_instructions_only():
    flt = PromptEchoFilter(max_overlap=0.5, stage="query_prompt_echo")
    instr = ("A tax advisor who looks for effective tax rates, deferred tax assets and withholding rules. "
             "A detailed information need of 20 to 40 words describing the situation.")
    res = flt.apply(
        ["a", "b", "c"],
        ["effective tax rates, deferred tax assets and withholding rules",
         "I need a detailed information need of 20 to 40 words describing the situation",
         "withholding tax on dividends paid to foreign holders of the notes"],
        refs=[instr] * 3,
    )
    assert res.keep == [False, False, True]
    assert {d.reason for d in res.drops} == {"echoes_prompt"}
