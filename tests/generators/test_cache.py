"""The content-addressed call cache: hits never reach the backend, failures are retried, data survives reopen."""

from buildbench.generators.base import GenerationRequest, GenerationResult
from buildbench.generators.cache import CachedLLM, LLMCache


class CountingBackend:
    """A stand-in backend for cache logic only; real models are exercised in test_local.py."""

    name = "counting"
    model_id = "counting-v1"

    def __init__(self, fail=()):
        self.seen: list[str] = []
        self.fail = set(fail)

    def generate(self, requests):
        out = []
        for r in requests:
            self.seen.append(r.prompt)
            if r.prompt in self.fail:
                out.append(GenerationResult(text="", error="server said 500"))
            else:
                out.append(GenerationResult(text=r.prompt.upper(), tokens_in=3, tokens_out=1))
        return out


def test_second_pass_is_served_from_cache(tmp_path):
    backend = CountingBackend()
    llm = CachedLLM(backend, LLMCache(tmp_path / "llm.sqlite"), batch_size=2)
    reqs = [GenerationRequest(prompt=p) for p in ("a", "b", "c")]
    first = llm.generate(reqs)
    second = llm.generate(reqs)
    assert [r.text for r in first] == [r.text for r in second] == ["A", "B", "C"]
    assert backend.seen == ["a", "b", "c"]
    assert not any(r.cached for r in first) and all(r.cached for r in second)
    assert [r.cache_key for r in first] == [r.cache_key for r in second] == [r.key("counting-v1") for r in reqs]
    assert llm.stats == {"calls": 3, "cache_hits": 3, "tokens_in": 9, "tokens_out": 3, "retries": 0}


def test_cache_survives_a_new_process(tmp_path):
    path = tmp_path / "llm.sqlite"
    CachedLLM(CountingBackend(), LLMCache(path)).generate([GenerationRequest(prompt="x")])
    backend = CountingBackend()
    res = CachedLLM(backend, LLMCache(path)).generate([GenerationRequest(prompt="x")])
    assert backend.seen == [] and res[0].text == "X" and res[0].cached


def test_failures_are_counted_and_not_cached(tmp_path):
    backend = CountingBackend(fail={"bad"})
    llm = CachedLLM(backend, LLMCache(tmp_path / "llm.sqlite"))
    res = llm.generate([GenerationRequest(prompt="bad"), GenerationRequest(prompt="ok")])
    assert res[0].error and not res[1].error
    assert llm.stats["failures"] == 1
    backend.fail.clear()
    again = llm.generate([GenerationRequest(prompt="bad")])
    assert again[0].text == "BAD" and backend.seen.count("bad") == 2


def test_same_prompt_other_model_is_a_miss(tmp_path):
    cache = LLMCache(tmp_path / "llm.sqlite")
    CachedLLM(CountingBackend(), cache).generate([GenerationRequest(prompt="x")])
    other = CountingBackend()
    other.model_id = "counting-v2"
    CachedLLM(other, cache).generate([GenerationRequest(prompt="x")])
    assert other.seen == ["x"] and len(cache) == 2


def test_retryable_failures_are_counted_apart(tmp_path):
    class Flaky(CountingBackend):
        def generate(self, requests):
            out = super().generate(requests)
            for r, res in zip(requests, out):
                if res.error:
                    res.retryable = r.prompt == "busy"  # a 503 may pass later; "bad" was refused for good
            return out

    llm = CachedLLM(Flaky(fail={"busy", "bad"}), LLMCache(tmp_path / "llm.sqlite"))
    llm.generate([GenerationRequest(prompt=p) for p in ("busy", "bad", "ok")])
    assert llm.stats["failures"] == 2 and llm.stats["retryable_failures"] == 1 and len(llm.cache) == 1


def test_a_batch_that_reaches_no_server_raises(tmp_path):
    import pytest

    from buildbench.errors import GenerationError

    class Down(CountingBackend):
        def generate(self, requests):
            self.seen += [r.prompt for r in requests]
            return [GenerationResult(text="", error="cannot connect to http://127.0.0.1:9/v1: connection refused",
                                     retryable=True, unreachable=True) for _ in requests]

    llm = CachedLLM(Down(), LLMCache(tmp_path / "llm.sqlite"), batch_size=2)
    with pytest.raises(GenerationError, match=r"^the LLM server is unreachable: cannot connect to "
                                              r"http://127\.0\.0\.1:9/v1: connection refused$"):
        llm.generate([GenerationRequest(prompt=p) for p in ("a", "b", "c")])
    assert llm.backend.seen == ["a", "b"]  # the first batch told; no more calls were made
    assert llm.stats["retryable_failures"] == 2 and len(llm.cache) == 0
