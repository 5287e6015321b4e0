"""The relevance judge: graded 0-3 labels with a short reason, as typed Judgement records."""

import os

import pyarrow as pa
import pytest

from buildbench.generators.base import GenerationResult
from buildbench.generators.cache import CachedLLM, LLMCache
from buildbench.generators.recipes import JUDGEMENT_SCHEMA, Judgement, JudgePair, RelevanceJudge

PAIRS = [
    JudgePair("q1", "discount rate increase December 2015", "c1",
              "The Board of Governors unanimously approved a 1/4 percentage point increase in the discount rate "
              "to 1 percent, effective December 17, 2015."),
    JudgePair("q1", "discount rate increase December 2015", "c2",
              "The Committee will keep reinvesting principal payments from its agency mortgage-backed securities."),
    JudgePair("q2", "federal funds target range January 2016", "c3",
              "The Committee decided to maintain the target range for the federal funds rate at 1/4 to 1/2 percent."),
]


class FakeLLM:
    name = "fake"
    model_id = "fake-model:1"
    chat = True

    def __init__(self, text):
        self.text, self.asked = text, []

    def generate(self, requests):
        self.asked.extend(requests)
        return [GenerationResult(text=self.text, cache_key=r.key(self.model_id)) for r in requests]


def test_judgements_are_typed_records_with_provenance():
    llm = FakeLLM('{"label": 3, "reason": "States the increase."}')
    judge = RelevanceJudge(llm)
    judgements, drops = judge.judge(PAIRS)
    assert drops == []
    assert [(j.query_id, j.passage_id) for j in judgements] == [("q1", "c1"), ("q1", "c2"), ("q2", "c3")]
    j = judgements[0]
    assert isinstance(j, Judgement) and (j.label, j.reason, j.model, j.backend) == (
        3, "States the increase.", "fake-model:1", "fake")
    assert j.cache_key == llm.asked[0].key("fake-model:1") and j.prompt_hash == llm.asked[0].prompt_hash
    assert "Query: discount rate increase December 2015\nPassage: The Board" in llm.asked[0].messages[0][1]
    assert len({r.seed for r in llm.asked}) == 3
    assert judge.stats["label.3"] == 3
    assert pa.Table.from_pylist([j.__dict__ for j in judgements], schema=JUDGEMENT_SCHEMA).num_rows == 3


def test_out_of_range_labels_are_dropped():
    judgements, drops = RelevanceJudge(FakeLLM('{"label": 4, "reason": "Great."}'), max_attempts=1).judge(PAIRS[:1])
    assert judgements == [] and drops[0].item_id == "q1|c1" and drops[0].reason == "schema_mismatch"
    assert drops[0].stage == RelevanceJudge.name  # the recipe's own label; the judge stage puts its name on them


@pytest.fixture(scope="module")
def smollm(tmp_path_factory):
    pytest.importorskip("llama_cpp")
    from buildbench.generators.local import LocalBackend

    # One thread: on a shared 2-core machine two llama.cpp threads spin against other jobs and run ~3x slower.
    backend = LocalBackend("smollm2-135m-instruct", threads=max(1, (os.cpu_count() or 2) // 2))
    return CachedLLM(backend, LLMCache(tmp_path_factory.mktemp("judge") / "c.sqlite"))


@pytest.mark.llm
def test_model_labels_are_graded_with_a_reason(smollm):
    judge = RelevanceJudge(smollm)
    judgements, drops = judge.judge(PAIRS)
    assert len(judgements) + len(drops) == len(PAIRS) and judgements, drops
    for j in judgements:
        assert j.label in (0, 1, 2, 3) and j.reason.strip() and len(j.reason) <= 200
        assert j.model == smollm.model_id and j.backend == "local" and len(j.cache_key) == 64
    for d in drops:
        assert d.reason in ("invalid_json", "schema_mismatch") and d.detail.startswith("after 3 attempt")
    # Judging again replays the cache: same labels, no model call.
    calls = smollm.stats["calls"]
    again, _ = RelevanceJudge(smollm).judge(PAIRS)
    assert [(j.label, j.cache_key) for j in again] == [(j.label, j.cache_key) for j in judgements]
    assert smollm.stats["calls"] == calls
