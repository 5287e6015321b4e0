"""Structured generation: lenient JSON parsing, validation, and re-asks with derived seeds.

Unit tests script a fake backend; the `llm` tests run the real SmolLM2 under a JSON-schema grammar.
"""

import json
import os
from collections import Counter

import pytest

from buildbench.generators.base import GenerationRequest, GenerationResult
from buildbench.generators.cache import CachedLLM, LLMCache
from buildbench.generators.recipes import (
    JudgeOut,
    MultiHopOut,
    NegativeOut,
    QAOut,
    SummaryOut,
    derive_seed,
    extract_json,
    generate_structured,
    language_name,
    parse_structured,
    schema_json,
)
from buildbench.generators.recipes.structured import render_request, truncate

# ----------------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("text,expected", [
    ('{"a": 1}', {"a": 1}),
    ('```json\n{"a": 1}\n```', {"a": 1}),
    ('Sure! Here it is:\n```\n{"a": "x"}\n```\nHope that helps.', {"a": "x"}),
    ('Answer: {"a": "brace } inside"} and then {"b": 2}', {"a": "brace } inside"}),
    ('{"a": "line one\nline two"}', {"a": "line one\nline two"}),  # raw newline, as the grammar allows
    ('{broken {"a": 1}', {"a": 1}),  # a first "{" that starts nothing is skipped
    ('{"outer": {"inner": [1, 2]}}', {"outer": {"inner": [1, 2]}}),
])
def test_extract_json_takes_the_first_complete_object(text, expected):
    assert extract_json(text) == expected


@pytest.mark.parametrize("text", ['{"question": "What is the rate', "no json here", "[1, 2, 3]", ""])
def test_extract_json_rejects_truncated_or_missing_objects(text):
    with pytest.raises(ValueError):
        extract_json(text)


def test_parse_structured_reasons():
    ok, reason, _ = parse_structured('{"label": 2, "reason": "Mentions the rate."}', JudgeOut)
    assert ok == JudgeOut(label=2, reason="Mentions the rate.") and reason is None
    assert parse_structured('{"label": 2, "reason": "cut', JudgeOut)[1] == "invalid_json"
    for bad in ('{"label": 5, "reason": "x"}', '{"label": 1}', '{"label": 1, "reason": "x", "extra": 1}',
                '{"label": 1, "reason": "..."}', '{"label": 1, "reason": "   "}'):
        value, reason, detail = parse_structured(bad, JudgeOut)
        assert value is None and reason == "schema_mismatch" and detail, bad
    # Lenient where it is harmless: surrounding text, a numeric string, padding.
    value, _, _ = parse_structured('Here: {"label": "3", "reason": "  Fully\n  answers. "} done', JudgeOut)
    assert value.label == 3 and value.reason == "Fully answers."


def test_citations_must_be_non_empty_quotes():
    good = {"question": "Why?", "answer": "Because.", "citations": ["because it said so"]}
    assert parse_structured(json.dumps(good), QAOut)[0].citations == ["because it said so"]
    for citations in ([], [" "], ["..."], ["a", "b", "c", "d"]):
        assert parse_structured(json.dumps({**good, "citations": citations}), QAOut)[1] == "schema_mismatch"
    assert parse_structured(json.dumps({**good, "citations": ["only one"]}), MultiHopOut)[1] == "schema_mismatch"


@pytest.mark.parametrize("model_cls", [SummaryOut, QAOut, MultiHopOut, NegativeOut, JudgeOut])
def test_schema_json_is_compact_ordered_and_a_valid_grammar(model_cls):
    text = schema_json(model_cls)
    schema = json.loads(text)
    assert "title" not in text and "description" not in text
    assert list(schema["properties"]) == list(model_cls.model_fields)
    assert schema["additionalProperties"] is False and schema["required"] == list(model_cls.model_fields)
    llama_cpp = pytest.importorskip("llama_cpp")
    assert llama_cpp.LlamaGrammar.from_json_schema(text, verbose=False) is not None


def test_judge_label_is_an_enum_for_the_grammar():
    assert json.loads(schema_json(JudgeOut))["properties"]["label"]["enum"] == [0, 1, 2, 3]


def test_language_names_and_truncation():
    assert language_name("de") == "German" and language_name("EN") == "English"
    assert language_name("xx") == "xx"
    assert truncate("a  b\n c", 100) == "a b c"
    assert truncate("word " * 50, 22) == "word word word word ..."


def test_render_request_chat_and_completion():
    common = dict(model_cls=JudgeOut, max_tokens=40, temperature=0.3, top_p=0.9, seed=7,
                  query="rate cut", passage="The Committee cut the rate.")
    chat = render_request("judge.j2", chat=True, **common)
    assert chat.prompt is None and chat.messages[0][0] == "user" and chat.prefix_chars == 0
    assert "Query: rate cut\nPassage: The Committee cut the rate." in chat.messages[0][1]
    base = render_request("judge.j2", chat=False, **common)
    assert base.messages is None and base.prompt.endswith("Passage: The Committee cut the rate.\nJSON:")
    assert base.prompt[base.prefix_chars:].startswith("Query: rate cut")
    assert '"label": 1' in base.prompt[: base.prefix_chars]  # the worked example is in the shared prefix
    assert "\x00" not in base.prompt
    assert base.json_schema == chat.json_schema == schema_json(JudgeOut)
    assert (base.seed, base.max_tokens, base.temperature) == (7, 40, 0.3)


# ----------------------------------------------------------------------------------------- the loop


class ScriptedBackend:
    """Answers from a script keyed by (prompt, seed); records every batch it was asked."""

    name = "fake"
    model_id = "fake-1"

    def __init__(self, script):
        self.script = script
        self.batches = []

    def generate(self, requests):
        self.batches.append(list(requests))
        out = []
        for r in requests:
            text = self.script.get((r.prompt, r.seed), self.script.get(r.prompt, ""))
            if isinstance(text, GenerationResult):
                out.append(text)
            else:
                out.append(GenerationResult(text=text, finish_reason="length" if text.endswith("...") else "stop"))
        return out


GOOD = '{"label": 2, "reason": "Partly answers."}'


def test_failures_are_reasked_in_one_batch_with_derived_seeds(tmp_path):
    script = {
        ("ok", 1): GOOD,
        ("fixed", 2): "not json",  # attempt 1 fails, attempt 2 succeeds
        ("fixed", derive_seed(2, 1)): '```json\n' + GOOD + '\n```',
        "never": '{"label": 9, "reason": "x"}',  # any seed
        "cut": '{"label": 1, "reason": "The passage...',
        "broken": GenerationResult(text="", error="llama.cpp: prompt too long"),
    }
    backend = ScriptedBackend(script)
    llm = CachedLLM(backend, LLMCache(tmp_path / "c.sqlite"))
    requests = [GenerationRequest(prompt=p, seed=s, json_schema=schema_json(JudgeOut))
                for p, s in [("ok", 1), ("fixed", 2), ("never", 3), ("cut", 4), ("broken", 5)]]
    stats = Counter()
    outcomes = generate_structured(llm, requests, JudgeOut, max_attempts=3, stats=stats)
    ok, fixed, never, cut, broken = outcomes

    # One batch per round, holding only what failed the round before; llm errors are not re-asked.
    assert [[r.prompt for r in b] for b in backend.batches] == [
        ["ok", "fixed", "never", "cut", "broken"], ["fixed", "never", "cut"], ["never", "cut"]]
    assert [r.seed for r in backend.batches[1]] == [derive_seed(2, 1), derive_seed(3, 1), derive_seed(4, 1)]
    assert [r.seed for r in backend.batches[2]] == [derive_seed(3, 2), derive_seed(4, 2)]

    assert ok.value == JudgeOut(label=2, reason="Partly answers.") and ok.attempts == 1 and ok.drop_reason is None
    assert fixed.ok and fixed.attempts == 2 and len(set(fixed.cache_keys)) == 2
    assert fixed.cache_key == fixed.cache_keys[-1] == fixed.result.cache_key
    assert fixed.request is requests[1]  # the outcome keeps the request as first asked
    assert never.drop_reason == "schema_mismatch" and never.attempts == 3 and "label" in never.detail
    assert cut.drop_reason == "invalid_json" and "max_tokens" in cut.detail and cut.raw.endswith("...")
    assert broken.drop_reason == "llm_error" and broken.attempts == 1 and "too long" in broken.detail
    assert all(o.detail.startswith(f"after {o.attempts} attempt") for o in (never, cut, broken))
    assert stats == Counter({"attempts": 10, "retries": 5, "ok": 2, "first_try_ok": 1, "failures": 3,
                             "drop.schema_mismatch": 1, "drop.invalid_json": 1, "drop.llm_error": 1})

    # A rerun replays every successful call from the cache: the same outcomes, no backend call.
    asked = len(backend.batches)
    again = generate_structured(llm, requests, JudgeOut, max_attempts=3)
    assert [o.cache_keys for o in again[:4]] == [o.cache_keys for o in outcomes[:4]]
    assert [o.value for o in again] == [o.value for o in outcomes]
    # Only the llm error (never cached) is asked again.
    assert [[r.prompt for r in b] for b in backend.batches[asked:]] == [["broken"]]


def test_max_attempts_one_never_reasks():
    backend = ScriptedBackend({"x": "nope"})
    [out] = generate_structured(backend, [GenerationRequest(prompt="x")], JudgeOut, max_attempts=1)
    assert out.drop_reason == "invalid_json" and out.attempts == 1 and len(backend.batches) == 1
    # A bare backend sets no cache key: the outcome still records the request's content address.
    assert out.cache_keys == [GenerationRequest(prompt="x").key("fake-1")]
    with pytest.raises(ValueError):
        generate_structured(backend, [], JudgeOut, max_attempts=0)


# ----------------------------------------------------------------------------------------- real model


@pytest.fixture(scope="module")
def smollm(tmp_path_factory):
    pytest.importorskip("llama_cpp")
    from buildbench.generators.local import LocalBackend

    # One thread: on a shared 2-core machine two llama.cpp threads spin against other jobs and run ~3x slower.
    backend = LocalBackend("smollm2-135m-instruct", threads=max(1, (os.cpu_count() or 2) // 2))
    return CachedLLM(backend, LLMCache(tmp_path_factory.mktemp("structured") / "c.sqlite"))


def _judge_request(query, passage, seed, max_tokens=80):
    return render_request("judge.j2", chat=True, model_cls=JudgeOut, max_tokens=max_tokens, temperature=0.7,
                          top_p=0.95, seed=seed, query=query, passage=passage)


PAIRS = [
    ("fed funds rate December 2015", "The Committee decided to raise the target range for the federal funds rate "
     "to 1/4 to 1/2 percent, effective December 17, 2015."),
    ("discount rate approval", "The Board of Governors approved a 1/4 percentage point increase in the discount "
     "rate to 1.00 percent."),
    ("overnight reverse repo rate", "The Desk is directed to conduct overnight reverse repurchase operations at an "
     "offering rate of 0.25 percent."),
    ("inflation objective", "Inflation is expected to rise to 2 percent over the medium term as energy prices "
     "stabilize."),
]


@pytest.mark.llm
def test_truncated_output_is_invalid_json_then_reasked_with_new_keys(smollm):
    """max_tokens=6 cannot hold a JSON object: every attempt is cut off, each with its own cache key."""
    requests = [_judge_request(q, p, seed=i, max_tokens=6) for i, (q, p) in enumerate(PAIRS[:2])]
    stats = Counter()
    calls = smollm.stats["calls"]
    outcomes = generate_structured(smollm, requests, JudgeOut, max_attempts=3, stats=stats)
    for out in outcomes:
        assert out.value is None and out.drop_reason == "invalid_json" and out.attempts == 3
        assert len(set(out.cache_keys)) == 3 and out.raw.startswith("{")
        assert out.result.finish_reason == "length" and "max_tokens=6" in out.detail
    assert smollm.stats["calls"] - calls == 6
    assert stats["attempts"] == 6 and stats["retries"] == 4 and stats["drop.invalid_json"] == 2


@pytest.mark.llm
def test_a_picky_schema_is_retried_until_valid_or_dropped(smollm):
    """A validator that rejects about half of all outputs whatever their quality forces real re-asks."""
    from pydantic import field_validator

    class PickyJudgeOut(JudgeOut):
        @field_validator("reason")
        @classmethod
        def _even_length(cls, v: str) -> str:
            if len(v) % 2:
                raise ValueError("odd length")
            return v

    requests = [_judge_request(q, p, seed=100 + i) for i, (q, p) in enumerate(PAIRS)]
    stats = Counter()
    outcomes = generate_structured(smollm, requests, PickyJudgeOut, max_attempts=3, stats=stats)
    for out in outcomes:
        assert len(out.cache_keys) == out.attempts == len(set(out.cache_keys))
        if out.ok:
            assert len(out.value.reason) % 2 == 0 and 0 <= out.value.label <= 3
        else:
            assert out.attempts == 3 and out.drop_reason in ("schema_mismatch", "invalid_json"), out.detail
    assert stats["retries"] > 0 and stats["attempts"] == sum(o.attempts for o in outcomes)
    assert stats["ok"] + stats["failures"] == len(requests)
    assert stats["first_try_ok"] == sum(1 for o in outcomes if o.ok and o.attempts == 1)
