"""YourBench recipe: summaries, single-hop and multi-hop questions with answers and verbatim citations.

Unit tests cover planning, prompts and citation support; the `llm` tests run SmolLM2 under a JSON grammar and
check structure and provenance, never wording.
"""

import json
import os

import pytest

from buildbench.errors import InputError
from buildbench.generators.base import GenerationResult
from buildbench.generators.cache import CachedLLM, LLMCache
from buildbench.generators.recipes import YourBenchRecipe, citation_support, plan_multihop
from buildbench.records import Chunk, Query, to_table

DOCS = {
    "fomc-2015-12": [
        "The Federal Open Market Committee decided today to raise the target range for the federal funds rate to "
        "1/4 to 1/2 percent. The Committee judges that there has been considerable improvement in labor market "
        "conditions this year.",
        "In a related action, the Board of Governors unanimously approved a 1/4 percentage point increase in the "
        "discount rate to 1 percent, effective December 17, 2015.",
        "The Committee expects that economic conditions will evolve in a manner that will warrant only gradual "
        "increases in the federal funds rate.",
    ],
    "fomc-2016-01": [
        "The Committee decided to maintain the target range for the federal funds rate at 1/4 to 1/2 percent. "
        "Inflation is expected to remain low in the near term, in part because of the further declines in energy "
        "prices.",
        "The Committee is maintaining its policy of reinvesting principal payments from its holdings of agency "
        "debt and agency mortgage-backed securities in agency mortgage-backed securities.",
    ],
}


def make_chunks(docs=DOCS):
    return [Chunk(id=f"{doc}-p{i}", doc_id=doc, text=text, title=f"Statement {doc}", position=i)
            for doc, texts in docs.items() for i, text in enumerate(texts)]


class FakeLLM:
    """A chat model that answers every request with the same JSON."""

    name = "fake"
    model_id = "fake-model:1"
    chat = True

    def __init__(self, text):
        self.text = text
        self.asked = []

    def generate(self, requests):
        self.asked.extend(requests)
        return [GenerationResult(text=self.text, cache_key=r.key(self.model_id)) for r in requests]


# ----------------------------------------------------------------------------------------- citations


def test_citation_support_exact_near_and_unrelated():
    chunk = DOCS["fomc-2015-12"][1]
    assert citation_support("approved a 1/4 percentage point increase in the discount rate", [chunk]) == 1.0
    # Case, spacing and curly quotes do not matter; surrounding quotes are ignored.
    assert citation_support('"Approved a 1/4  percentage point\nincrease"', [chunk]) == 1.0
    near = citation_support("approved a quarter percentage point increase in the discount rate", [chunk])
    assert 0.75 < near < 1.0
    assert citation_support("inflation expectations fell sharply in Japan", [chunk]) < 0.6
    assert citation_support("", [chunk]) == 0.0 and citation_support("x", []) == 0.0
    # The best chunk counts.
    assert citation_support("gradual increases in the federal funds rate", DOCS["fomc-2015-12"]) == 1.0


# ----------------------------------------------------------------------------------------- planning


def test_plan_multihop_groups_adjacent_chunks_of_one_document():
    docs = {"a": ["x"] * 7, "b": ["y"] * 2, "c": ["z"]}
    table = to_table(make_chunks(docs), Chunk)
    plan = plan_multihop(table, seed=1, max_per_doc=2)
    by_id = {c.id: c for c in make_chunks(docs)}
    assert {d for d, _ in plan} == {"a", "b"}  # a one-chunk document has no group
    assert sum(1 for d, _ in plan if d == "a") == 2
    for doc_id, ids in plan:
        positions = [by_id[c].position for c in ids]
        assert 2 <= len(ids) <= 3 and all(by_id[c].doc_id == doc_id for c in ids)
        assert positions == list(range(positions[0], positions[0] + len(ids)))  # adjacent, in order
    used = [c for d, ids in plan if d == "a" for c in ids]
    assert len(used) == len(set(used))  # groups of one document never share a chunk
    # Seeded and independent of row order.
    assert plan_multihop(table.take(list(reversed(range(table.num_rows)))), 1, 2) == plan
    assert any(plan_multihop(table, s, 2) != plan for s in range(2, 6))
    assert plan_multihop(table, 1, 1, min_hops=2, max_hops=2) == [
        (d, ids) for d, ids in plan_multihop(table, 1, 1, 2, 2) if len(ids) == 2]
    with pytest.raises(ValueError):
        plan_multihop(table, 1, 1, min_hops=1)


# ----------------------------------------------------------------------------------------- prompts


def test_requests_ask_for_the_target_language_and_cut_passages():
    base = YourBenchRecipe(FakeLLM(""), chat=False, language="de", max_chunk_chars=60)
    req = base.build_single_request("c#0", "word " * 100, "A summary.")
    assert "Write the question and the answer in German." in req.prompt
    assert "Passage: " + "word " * 12 + "...\nJSON:" in req.prompt
    assert req.prompt[req.prefix_chars:].startswith("Summary: A summary.")
    assert req.json_schema and req.max_tokens == base.single_max_tokens
    # A call can override the recipe's language; chat models get the same text as one user message.
    chat = YourBenchRecipe(FakeLLM(""), chat=True, language="de")
    msg = chat.build_single_request("c#0", "Rates rose.", "", language="fr").messages[0][1]
    assert "in French." in msg and "Summary: (none)" in msg and "JSON:" not in msg
    multi = chat.build_multi_request("d:a+b", ["First.", "Second.", "Third."], "S.").messages[0][1]
    assert "Passage 1: First.\nPassage 2: Second.\nPassage 3: Third.\n" in multi
    summary = base.build_summary_request("d", list(reversed(make_chunks()[:3])))
    assert "Document (Statement fomc-2015-12): The Federal Open Market" in summary.prompt  # position order


def test_seeds_depend_on_slot_not_order():
    recipe = YourBenchRecipe(FakeLLM(""), chat=True, seed=3)
    a = recipe.build_single_request("c1#0", "p", "s")
    assert a.seed == recipe.build_single_request("c1#0", "p", "s").seed
    assert a.seed != recipe.build_single_request("c1#1", "p", "s").seed
    assert a.seed != YourBenchRecipe(FakeLLM(""), chat=True, seed=4).build_single_request("c1#0", "p", "s").seed


def test_records_carry_provenance_with_a_fake_model():
    chunks = make_chunks()
    out = {"question": "Wie hoch ist der Diskontsatz?", "answer": "1 Prozent.",
           "citations": ["increase in the discount rate to 1 percent", "only gradual increases"]}
    llm = FakeLLM(json.dumps(out))
    recipe = YourBenchRecipe(llm, language="de")
    assert recipe.chat is True  # asked the llm
    queries, drops = recipe.single_hop(chunks[:2], {"fomc-2015-12": "A summary."}, questions_per_chunk=2)
    assert drops == [] and len(queries) == 4 and len({q.id for q in queries}) == 4
    q = queries[0]
    assert (q.recipe, q.chunk_ids, q.language, q.backend, q.model) == (
        "yourbench-single", [chunks[0].id], "de", "fake", "fake-model:1")
    assert q.text == out["question"] and q.answer == out["answer"] and q.citations == out["citations"]
    assert q.cache_key == llm.asked[0].key("fake-model:1") and q.prompt_hash == llm.asked[0].prompt_hash
    assert recipe.stats["citations"] == 8 and recipe.stats["citations_exact"] == 2

    groups = [("fomc-2015-12", [c.id for c in chunks[:3]])]
    multi, _ = recipe.multi_hop(groups, {c.id: c for c in chunks}, {})
    assert multi[0].recipe == "yourbench-multi" and multi[0].chunk_ids == groups[0][1]
    assert to_table(queries + multi, Query).num_rows == 5  # records fit the Query schema
    with pytest.raises(InputError):
        recipe.multi_hop([("fomc-2015-12", [chunks[2].id, chunks[3].id])], {c.id: c for c in chunks}, {})

    bad = YourBenchRecipe(FakeLLM('{"question": "Q?"}'), max_attempts=2)
    queries, drops = bad.single_hop(chunks[:1], {})
    assert queries == [] and drops[0].stage == "yourbench_single" and drops[0].item_id == f"{chunks[0].id}#0"
    assert drops[0].reason == "schema_mismatch" and drops[0].detail.startswith("after 2 attempt")
    assert bad.stats["no_summary"] == 1


# ----------------------------------------------------------------------------------------- real model


@pytest.fixture(scope="module")
def smollm(tmp_path_factory):
    pytest.importorskip("llama_cpp")
    from buildbench.generators.local import LocalBackend

    # One thread: on a shared 2-core machine two llama.cpp threads spin against other jobs and run ~3x slower.
    backend = LocalBackend("smollm2-135m-instruct", threads=max(1, (os.cpu_count() or 2) // 2))
    return CachedLLM(backend, LLMCache(tmp_path_factory.mktemp("yourbench") / "c.sqlite"))


@pytest.fixture(scope="module")
def run(smollm):
    """Summaries of both documents, then questions, once per module (~10 calls)."""
    recipe = YourBenchRecipe(smollm, language="en", summary_max_tokens=128, single_max_tokens=160,
                             multi_max_tokens=200)
    chunks = make_chunks()
    summaries, summary_drops = recipe.summarize(chunks)
    by_doc = {s.doc_id: s.summary for s in summaries}
    single, single_drops = recipe.single_hop([chunks[0], chunks[3]], by_doc)
    single_de, de_drops = recipe.single_hop([chunks[1]], by_doc, language="de")
    groups = plan_multihop(to_table(chunks, Chunk), seed=0, max_per_doc=1)
    multi, multi_drops = recipe.multi_hop(groups, {c.id: c for c in chunks}, by_doc)
    return dict(recipe=recipe, chunks=chunks, summaries=summaries, groups=groups,
                single=single + single_de, multi=multi,
                drops=summary_drops + single_drops + de_drops + multi_drops)


def _well_formed_drop(drop):
    return drop.reason in ("invalid_json", "schema_mismatch", "llm_error") and drop.detail.startswith("after ")


@pytest.mark.llm
def test_summaries_are_validated_with_provenance(run, smollm):
    assert run["recipe"].chat is True  # SmolLM2 is an instruct model: messages, not a prompt
    for s in run["summaries"]:
        assert s.summary.strip() and len(s.summary) <= 500
        assert s.model == smollm.model_id and len(s.cache_key) == 64 and s.attempts >= 1
    dropped = {d.item_id for d in run["drops"] if d.stage == "yourbench_summary"}
    assert {s.doc_id for s in run["summaries"]} | dropped == set(DOCS)


@pytest.mark.llm
def test_single_hop_queries_carry_answer_citations_and_provenance(run, smollm):
    single = run["single"]
    assert single, run["drops"]
    by_id = {c.id: c for c in run["chunks"]}
    for q in single:
        assert q.recipe == "yourbench-single" and len(q.chunk_ids) == 1 and q.chunk_ids[0] in by_id
        assert q.text and q.answer and 1 <= len(q.citations) <= 3 and all(c.strip() for c in q.citations)
        assert q.backend == "local" and q.model == smollm.model_id
        assert len(q.cache_key) == 64 and len(q.prompt_hash) == 16
        # Support is recorded for the grounding filter, not enforced: any value in [0, 1] is allowed here.
        assert all(0.0 <= citation_support(c, [by_id[q.chunk_ids[0]].text]) <= 1.0 for c in q.citations)
    assert {q.language for q in single if q.chunk_ids == [run["chunks"][1].id]} <= {"de"}
    assert {q.language for q in single if q.chunk_ids != [run["chunks"][1].id]} <= {"en"}
    assert all(_well_formed_drop(d) for d in run["drops"]), run["drops"]


@pytest.mark.llm
def test_multi_hop_queries_span_two_or_more_chunks_of_one_document(run):
    assert len(run["groups"]) == 2
    doc_of = {c.id: c.doc_id for c in run["chunks"]}
    for q in run["multi"]:
        assert q.recipe == "yourbench-multi" and len(q.chunk_ids) >= 2
        assert len({doc_of[c] for c in q.chunk_ids}) == 1
        assert (doc_of[q.chunk_ids[0]], q.chunk_ids) in run["groups"]
        assert q.text and q.answer and len(q.citations) >= 2 and q.language == "en" and q.cache_key
    dropped = [d for d in run["drops"] if d.stage == "yourbench_multi"]
    assert len(run["multi"]) + len(dropped) == len(run["groups"])


@pytest.mark.llm
def test_counters_account_for_every_attempt(run, smollm):
    stats = run["recipe"].stats
    items = 2 + 3 + len(run["groups"])  # summaries, single-hop slots, multi-hop groups
    assert stats["ok"] + stats["failures"] == items and stats["failures"] == len(run["drops"])
    assert stats["attempts"] == items + stats["retries"]
    assert smollm.stats["calls"] == stats["attempts"]  # a fresh cache: every attempt reached the model
