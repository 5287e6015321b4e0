"""LLM-written hard negatives: synthetic corpus rows with stable ids and provenance."""

import json
import os

import pyarrow as pa
import pytest

from buildbench.generators.base import GenerationResult
from buildbench.generators.cache import CachedLLM, LLMCache
from buildbench.generators.recipes import SYNTHETIC_PASSAGE_SCHEMA, HardNegativeRecipe, negative_id
from buildbench.records import Query

CHUNKS = {
    "c1": "The Board of Governors unanimously approved a 1/4 percentage point increase in the discount rate to "
          "1 percent, effective December 17, 2015.",
    "c2": "The Committee decided to maintain the target range for the federal funds rate at 1/4 to 1/2 percent.",
    "c3": "The Committee will keep reinvesting principal payments from its agency mortgage-backed securities.",
}
QUERIES = [
    Query(id="q-a", text="What did the Board approve for the discount rate in December 2015?", chunk_ids=["c1"]),
    Query(id="q-b", text="Was the federal funds target range changed, and does the Committee keep reinvesting?",
          chunk_ids=["c2", "c3"], recipe="yourbench-multi"),
]


class FakeLLM:
    name = "fake"
    model_id = "fake-model:1"
    chat = False

    def __init__(self, text):
        self.text, self.asked = text, []

    def generate(self, requests):
        self.asked.extend(requests)
        return [GenerationResult(text=self.text, cache_key=r.key(self.model_id)) for r in requests]


def test_prompt_holds_query_and_all_positive_chunks():
    llm = FakeLLM(json.dumps({"passage": "The Board discussed the discount rate but took no decision then."}))
    recipe = HardNegativeRecipe(llm, language="de", negatives_per_query=2, max_passage_chars=400)
    passages, drops = recipe.write(QUERIES, CHUNKS)
    assert drops == [] and len(passages) == 4
    second = llm.asked[2].prompt
    assert "Query: Was the federal funds target range changed" in second
    assert CHUNKS["c2"] in second and CHUNKS["c3"] in second  # a multi-hop positive is all its chunks
    assert "Write it in German." in second and second.endswith("JSON:")
    assert len({r.seed for r in llm.asked}) == 4


def test_ids_are_stable_and_rows_are_marked_synthetic():
    text = json.dumps({"passage": "The Board discussed the discount rate but took no decision then."})
    first, _ = HardNegativeRecipe(FakeLLM(text), negatives_per_query=2).write(QUERIES, CHUNKS)
    again, _ = HardNegativeRecipe(FakeLLM(text), negatives_per_query=2).write(list(reversed(QUERIES)), CHUNKS)
    assert sorted(p.id for p in first) == sorted(p.id for p in again) == [
        "q-a-neg0", "q-a-neg1", "q-b-neg0", "q-b-neg1"]
    assert negative_id("q-a", 1) == "q-a-neg1"
    p = first[0]
    assert p.metadata["synthetic"] is True and p.metadata["negative_for"] == "q-a"
    assert p.metadata["recipe"] == "llm-hard-negative" and p.metadata["model"] == "fake-model:1"
    assert p.metadata["cache_key"] and p.metadata["attempts"] == 1
    rows = [{**p.__dict__, "metadata": json.dumps(p.metadata)} for p in first]
    assert pa.Table.from_pylist(rows, schema=SYNTHETIC_PASSAGE_SCHEMA).num_rows == 4


def test_too_short_passages_are_dropped_with_a_reason():
    passages, drops = HardNegativeRecipe(FakeLLM('{"passage": "No."}'), max_attempts=2).write(QUERIES[:1], CHUNKS)
    assert passages == [] and drops[0].item_id == "q-a-neg0" and drops[0].stage == "hard_negatives"
    assert drops[0].reason == "schema_mismatch" and "after 2 attempt" in drops[0].detail


@pytest.fixture(scope="module")
def smollm(tmp_path_factory):
    pytest.importorskip("llama_cpp")
    from buildbench.generators.local import LocalBackend

    # One thread: on a shared 2-core machine two llama.cpp threads spin against other jobs and run ~3x slower.
    backend = LocalBackend("smollm2-135m-instruct", threads=max(1, (os.cpu_count() or 2) // 2))
    return CachedLLM(backend, LLMCache(tmp_path_factory.mktemp("negatives") / "c.sqlite"))


@pytest.mark.llm
def test_model_writes_marked_negatives_or_well_formed_drops(smollm):
    recipe = HardNegativeRecipe(smollm, max_tokens=160)
    passages, drops = recipe.write(QUERIES, CHUNKS)
    assert len(passages) + len(drops) == 2 and passages, drops
    for p in passages:
        assert p.id == negative_id(p.metadata["negative_for"], 0)
        assert p.metadata["synthetic"] is True and p.metadata["recipe"] == "llm-hard-negative"
        assert p.metadata["model"] == smollm.model_id and p.metadata["backend"] == "local"
        assert len(p.metadata["cache_key"]) == 64 and p.metadata["attempts"] >= 1
        assert 20 <= len(p.text) <= 700 and "\n" not in p.text
    for d in drops:
        assert d.reason in ("invalid_json", "schema_mismatch") and d.detail.startswith("after 3 attempt")
    assert recipe.stats["attempts"] == 2 + recipe.stats["retries"]
