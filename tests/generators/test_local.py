"""The local backend on the real Gemma 3 270M model from PyPI: real output, seeded, order-independent."""

import json

import pytest

from buildbench.config import load_domain_pack
from buildbench.errors import GenerationError
from buildbench.generators.base import GenerationRequest
from buildbench.generators.recipes import PersonaQueryRecipe, plan_queries

pytestmark = pytest.mark.llm

PASSAGES = {
    "c1": "The committee lowered the policy rate by 25 basis points to 3.75 percent, citing easing core inflation.",
    "c2": "Under the facility the borrower must maintain net leverage below 3.5 times EBITDA, tested quarterly.",
    "c3": "The fund charges a management fee of 0.45 percent and waives 0.10 percent until June 2027.",
    "c4": "Goodwill impairment testing for the media segment was a critical audit matter this year.",
}


@pytest.fixture(scope="module")
def backend():
    pytest.importorskip("llama_cpp")
    from buildbench.generators.local import LocalBackend

    return LocalBackend("gemma3-270m")


@pytest.fixture(scope="module")
def requests_():
    pack = load_domain_pack("finance")
    recipe = PersonaQueryRecipe(pack, pack.generator, seed=0)
    plan = plan_queries(list(PASSAGES), pack, 2, seed=0).to_pylist()
    return recipe, [recipe.build_request(s, PASSAGES[s["chunk_id"]]) for s in plan]


def test_model_writes_single_line_queries(backend, requests_):
    recipe, reqs = requests_
    results = backend.generate(reqs)
    parsed = [recipe.parse(r) for r in results]
    texts = [p.text for p in parsed if p.text]
    assert len(texts) >= 6, [r.text for r in results]
    assert all("\n" not in t for t in texts)
    assert all(r.tokens_in > 100 and 0 < r.tokens_out <= reqs[0].max_tokens for r in results)
    assert backend.model_id.startswith("gemma3-270m:gemma-3-270m-q4_k_m.gguf:")


def test_output_does_not_depend_on_call_order(backend, requests_):
    _, reqs = requests_
    forward = [r.text for r in backend.generate(reqs)]
    backward = [r.text for r in backend.generate(list(reversed(reqs)))][::-1]
    one_by_one = [backend.generate([r])[0].text for r in reqs]
    assert forward == backward == one_by_one


def test_a_prefix_kept_in_its_own_context_changes_no_output(backend, requests_):
    import dataclasses

    from buildbench.generators.local import LocalBackend

    _, reqs = requests_
    prefixes = sorted({r.prompt[: r.prefix_chars] for r in reqs})
    assert len(prefixes) >= 2, "the plan's styles give the calls several prefixes"
    # Every call switches prefix.
    by_prefix = [[r for r in reqs if r.prompt[: r.prefix_chars] == p] for p in prefixes]
    alternating = [r for group in zip(*by_prefix) for r in group]
    kept = LocalBackend("gemma3-270m")
    texts = [r.text for r in kept.generate(alternating)]
    assert kept.prefixes_read == len(prefixes)
    # Longer than Gemma 3's 512-token sliding window, where a restored llama.cpp state differs from a read.
    assert min(len(kept.llm.tokenize(p.encode("utf-8"), add_bos=True, special=False)) for p in prefixes) > 512
    # With one context, every switch reads the prefix again; the outputs are the same, and the same as each
    # prompt read whole from an empty cache.
    forgetful = LocalBackend("gemma3-270m", prefix_contexts=1)
    assert [r.text for r in forgetful.generate(alternating)] == texts
    assert forgetful.prefixes_read == len(alternating)
    whole = [backend.generate([dataclasses.replace(r, prefix_chars=0)])[0].text for r in alternating]
    assert whole == texts
    assert sum(len(t) > 5 for t in texts) >= len(texts) - 1  # real queries, not empty outputs


def test_seed_changes_the_sample(backend, requests_):
    import dataclasses

    _, reqs = requests_
    texts = {backend.generate([dataclasses.replace(reqs[1], seed=s)])[0].text for s in range(6)}
    assert len(texts) >= 2


def test_json_schema_grammar_gives_valid_json(backend):
    schema = json.dumps({"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]})
    req = GenerationRequest(prompt="Write a search query about bond yields as JSON.\n", json_schema=schema,
                            max_tokens=40, temperature=0.0)
    res = backend.generate([req])[0]
    if res.finish_reason == "length":
        pytest.skip("model ran out of tokens inside the string")
    assert isinstance(json.loads(res.text)["query"], str)


def test_unknown_model_is_a_clear_error():
    pytest.importorskip("llama_cpp")
    from buildbench.generators.local import LocalBackend

    with pytest.raises(GenerationError, match="unknown local model 'nope'"):
        LocalBackend("nope")
