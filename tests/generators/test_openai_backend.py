"""The openai backend against a real llama_cpp.server (Gemma 3 270M + SmolLM2-135M), with real faults.

Faults come from tests/generators/fault_proxy.py, a proxy in front of the real server that breaks requests
by arrival order, so every count below is exact. LLM calls are few and short (max_tokens <= 48).
"""

from __future__ import annotations

import json
import logging
import random
import time

import pytest

from buildbench.domain_pack import LLMConfig
from buildbench.generators.base import GenerationRequest
from buildbench.generators.openai_backend import OpenAIBackend, backoff_delay, prompt_endpoint, public_url
from tests.generators.fault_proxy import FaultProxy
from tests.servers import GEMMA, SMOLLM2, free_port

SECRET = "sk-live-9f8e7d6c5b4a39281706f5e4d3c2b1a0-DO-NOT-LEAK"
KEY_ENV = "BUILDBENCH_TEST_OPENAI_KEY"

PROMPTS = [
    "The central bank raised the policy rate because",
    "Under the loan agreement, the borrower must",
    "The fund's management fee is",
    "Auditors flagged goodwill impairment in",
    "Quarterly revenue grew by",
    "The committee expects inflation to",
]

QUERY_SCHEMA = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "maxLength": 60},
        "kind": {"enum": ["keyword", "question"]},
    },
    "required": ["query", "kind"],
    "additionalProperties": False,
}


def config(base_url: str, model: str, **kw) -> LLMConfig:
    kw.setdefault("timeout", 30.0)
    kw.setdefault("api_key_env", KEY_ENV)
    return LLMConfig(backend="openai", base_url=base_url, model=model, **kw)


def backend(cfg: LLMConfig) -> OpenAIBackend:
    # Fast re-asks after malformed bodies; the SDK's own retries keep its backoff (0.5 s doubling, jittered).
    return OpenAIBackend(cfg, backoff_base=0.05, backoff_cap=0.2)


def completion(prompt: str, **kw) -> GenerationRequest:
    kw.setdefault("max_tokens", 16)
    return GenerationRequest(prompt=prompt, temperature=0.7, seed=1, **kw)


def chat(text: str, **kw) -> GenerationRequest:
    kw.setdefault("max_tokens", 24)
    return GenerationRequest(messages=(("user", text),), temperature=0.2, seed=1, **kw)


# ------------------------------------------------------------------------------------- no server needed


def test_model_id_carries_no_secret(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    b = OpenAIBackend(config("http://127.0.0.1:9/v1/", GEMMA))
    assert b.name == "openai"
    assert b.model_id == f"openai:http://127.0.0.1:9/v1:{GEMMA}"
    assert SECRET not in repr(b.__dict__)  # the key is read per generate call, never kept
    # Credentials written into the URL itself stay out of the model id (and so out of cache keys).
    assert OpenAIBackend(config("http://user:pw@127.0.0.1:9/v1", GEMMA)).model_id == b.model_id


def test_prompt_routing():
    assert prompt_endpoint(config("http://x/v1", GEMMA)) == "completions"
    assert prompt_endpoint(config("http://x/v1", SMOLLM2)) == "chat"
    assert prompt_endpoint(config("http://x/v1", "google/gemma-3-4b-it")) == "chat"
    assert prompt_endpoint(config("http://x/v1", "Qwen/Qwen2.5-7B-Instruct")) == "chat"
    assert prompt_endpoint(config("http://x/v1", "mistral-7b")) == "completions"
    assert prompt_endpoint(config("http://x/v1", SMOLLM2, endpoint="completions")) == "completions"
    assert prompt_endpoint(config("http://x/v1", GEMMA, endpoint="chat")) == "chat"


def test_backoff_and_public_url():
    # Retry-After is the SDK's business now; it is honoured in test_faults_are_retried_to_success_in_order.
    rng = random.Random(0)
    delays = [backoff_delay(k, 0.5, 8.0, rng) for k in range(8)]
    assert all(0.25 * 2**k <= d <= 0.5 * 2**k for k, d in enumerate(delays[:4]))
    assert all(4.0 <= d <= 8.0 for d in delays[4:])
    assert public_url("https://u:p@api.example.com:8443/v1/?k=v") == "https://api.example.com:8443/v1"


def test_unreachable_server_fails_softly_after_retries():
    """Each request comes back failed (never raised); once one has spent its retries on a refused connection,
    the requests not yet sent fail at once with the same reason."""
    url = f"http://127.0.0.1:{free_port()}/v1"
    cfg = config(url, GEMMA, max_retries=2, timeout=2, concurrency=1)
    start = time.monotonic()
    results = backend(cfg).generate([completion("a"), completion("b"), completion("c")])
    assert time.monotonic() - start < 10  # one request's backoff (about 0.4 + 0.8 s), not three
    assert [r.text for r in results] == ["", "", ""]
    assert results[0].error == (f"cannot connect to {url}: connection refused (ConnectError on /v1/completions; "
                                "gave up after 2 retries)")
    assert all(r.error == results[0].error and r.unreachable and r.retryable for r in results)
    assert [r.extra["retries"] for r in results] == [2, 0, 0]


# ----------------------------------------------------------------------------------- real llama_cpp.server


@pytest.mark.llm
def test_completions_against_gemma(llama_server):
    b = backend(config(llama_server.base_url, GEMMA))
    reqs = [completion(PROMPTS[0]), completion(PROMPTS[1], stop=("\n",))]
    results = b.generate(reqs)
    for r in results:
        assert r.error is None and r.text.strip(), r
        assert r.tokens_in >= 5 and 0 < r.tokens_out <= 16
        assert r.finish_reason in ("length", "stop")
        assert r.extra == {"retries": 0, "endpoint": "completions"}
    assert "\n" not in results[1].text
    assert b.model_id == f"openai:{llama_server.base_url}:{GEMMA}"


@pytest.mark.llm
def test_chat_against_smollm2(llama_server):
    """Messages go to chat; a prompt-only request goes to chat too, as one user message (SmolLM2 is instruct)."""
    with FaultProxy(llama_server.base_url) as proxy:
        b = backend(config(proxy.url, SMOLLM2))
        reqs = [chat("What is a central bank? Answer in one sentence."), completion("Name one bond type.")]
        results = b.generate(reqs)
    for r in results:
        assert r.error is None and r.text.strip(), r
        assert r.tokens_in > 10 and 0 < r.tokens_out <= 24  # the chat template adds a system prompt
        assert r.extra["endpoint"] == "chat"
    assert [a.path for a in proxy.arrivals] == ["/v1/chat/completions"] * 2
    sent = {a.body["messages"][0]["content"]: a.body for a in proxy.arrivals}
    assert sent["Name one bond type."]["messages"] == [{"role": "user", "content": "Name one bond type."}]
    assert sent["Name one bond type."]["max_tokens"] == 16 and sent["Name one bond type."]["seed"] == 1


@pytest.mark.llm
def test_structured_output_against_smollm2(llama_server):
    """Measured: llama_cpp.server answers the json_schema shape with a 500 naming response_format, then
    honours {"type": "json_object", "schema": ...} as a grammar. The backend falls back once and remembers."""
    schema = json.dumps(QUERY_SCHEMA)
    topics = ["interest rates", "bond yields", "audit opinions", "fund fees"]
    reqs = [chat(f"Write a search query about {t} as JSON.", max_tokens=48, json_schema=schema) for t in topics]
    with FaultProxy(llama_server.base_url) as proxy:
        b = backend(config(proxy.url, SMOLLM2, concurrency=1))
        results = b.generate(reqs)
        rejected = [a for a in proxy.arrivals if a.body["response_format"]["type"] == "json_schema"]
        assert len(rejected) == 1 and rejected[0].status == 500  # one probe, then the remembered rung
        assert proxy.requests == len(reqs) + 1
        again = b.generate(reqs[:1])
        assert proxy.requests == len(reqs) + 2  # a new batch starts from the rung that worked
    assert b.structured_modes == {"chat": 1}
    assert all(r.extra["structured"] == "json_object" and r.extra["retries"] == 0 for r in results + again)
    parsed = []
    for r in results:
        assert r.error is None, r
        try:
            parsed.append(json.loads(r.text))
        except ValueError:
            pass
    assert len(parsed) >= 3, [r.text for r in results]
    for obj in parsed:
        assert set(obj) == {"query", "kind"} and isinstance(obj["query"], str) and obj["kind"] in ("keyword", "question")


@pytest.mark.llm
def test_faults_are_retried_to_success_in_order(llama_server):
    """Seven faults of every kind over six requests: all succeed, retries sum to seven, nothing is lost."""
    schedule = {0: "500", 1: "429", 3: "stall", 5: "truncate", 6: "corrupt", 8: "drop", 10: "shape"}
    concurrency = 3
    cfg = config("", GEMMA, timeout=5, max_retries=len(schedule), concurrency=concurrency)
    reqs = [completion(p) for p in PROMPTS]
    with FaultProxy(llama_server.base_url, schedule, stall_seconds=8, retry_after="1") as proxy:
        b = backend(cfg.model_copy(update={"base_url": proxy.url}))
        start = time.monotonic()
        results = b.generate(reqs)
        elapsed = time.monotonic() - start
    assert [r.error for r in results] == [None] * len(reqs), [r.error for r in results]
    assert sum(r.extra["retries"] for r in results) == len(schedule)
    assert proxy.requests == len(reqs) + len(schedule)
    assert proxy.faults == {fault: 1 for fault in schedule.values()}
    # Input order, nothing lost or duplicated: each prompt was answered cleanly exactly once, and its
    # result is that answer.
    clean = {}
    for a in proxy.clean:
        assert a.body["prompt"] not in clean, "a prompt was answered twice"
        clean[a.body["prompt"]] = a.response["choices"][0]["text"]
    assert set(clean) == set(PROMPTS)
    assert [r.text for r in results] == [clean[p] for p in PROMPTS]
    assert all(r.tokens_out > 0 for r in results)
    # Retry-After: 1 was honoured (the backoff alone would have waited under 0.2 s).
    limited = proxy.arrivals[1]
    retry = next(a for a in proxy.arrivals[2:] if a.body["prompt"] == limited.body["prompt"])
    assert retry.time - limited.time >= 0.95
    # The stall cost one client timeout (5 s), not the proxy's 8 s.
    assert 5 <= elapsed < 30
    assert 2 <= proxy.max_in_flight <= concurrency


@pytest.mark.llm
def test_concurrency_bound_is_respected(llama_server):
    with FaultProxy(llama_server.base_url) as proxy:
        b = backend(config(proxy.url, GEMMA, concurrency=2))
        results = b.generate([completion(p, max_tokens=8) for p in PROMPTS[:5]])
    assert all(r.error is None for r in results)
    assert proxy.max_in_flight == 2  # the server serialises, so requests pile up to the bound, not past it


@pytest.mark.llm
def test_400_is_not_retried(llama_server):
    too_long = completion("rate " * 3000)  # past n_ctx=2048: llama_cpp.server answers 400
    with FaultProxy(llama_server.base_url) as proxy:
        results = backend(config(proxy.url, GEMMA, max_retries=3)).generate([too_long])
    assert proxy.requests == 1
    (r,) = results
    assert r.text == "" and r.extra["retries"] == 0
    assert r.error.startswith("HTTP 400 from /v1/completions:") and "context length" in r.error


@pytest.mark.llm
def test_api_key_is_sent_but_never_leaks(llama_server, monkeypatch, caplog):
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    schedule = {0: "500", 2: "echo_auth"}  # a retry, then a server that repeats the key in its error
    with FaultProxy(llama_server.base_url, schedule) as proxy:
        b = backend(config(proxy.url, GEMMA, concurrency=1))
        results = b.generate([completion(PROMPTS[0], max_tokens=8), completion(PROMPTS[1], max_tokens=8)])
        assert {a.authorization for a in proxy.arrivals} == {f"Bearer {SECRET}"}
        monkeypatch.delenv(KEY_ENV)
        b.generate([completion(PROMPTS[2], max_tokens=4)])
        assert proxy.arrivals[-1].authorization is None  # no key in the environment: no header at all
    # Which request meets which fault depends on scheduling; the tally does not.
    ok = [r for r in results if r.error is None]
    (failed,) = [r for r in results if r.error is not None]
    assert len(ok) == 1 and ok[0].text and sum(r.extra["retries"] for r in results) == 1
    assert failed.error.startswith("HTTP 400") and "Bearer ***" in failed.error
    assert any(rec.levelno == logging.DEBUG for rec in caplog.records)
    assert "retry 1/" in caplog.text
    for text in (caplog.text, repr(results), b.model_id, repr(b.__dict__)):
        assert SECRET not in text


# ------------------------------------------------------------------------------------- through the build

DOC = ("The committee decided to keep the target range for the federal funds rate at 5-1/4 to 5-1/2 percent. "
       "Inflation has eased over the past year but remains elevated, and the labour market stays tight. ")


def small_corpus(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, topic in enumerate(["interest rates", "bank capital ratios", "bond market liquidity"]):
        (docs / f"d{i}.txt").write_text(f"Note {i} on {topic}. " + DOC * 2)
    return docs


def test_finding_09_unreachable_base_url_is_one_line_error(tmp_path, capsys):
    """`--base-url` with nothing listening ended as "every generated query was dropped (llm_error: 10)", the
    cause only in data/_drops. Now generation stops with the address and the cause, and a non-zero exit."""
    from buildbench.cli import main

    url = f"http://127.0.0.1:{free_port()}/v1"
    code = main(["--domain", "finance", "--docs", str(small_corpus(tmp_path)), "--out", str(tmp_path / "run"),
                 "--base-url", url, "--no-progress", "--until", "generate_queries"])
    err = capsys.readouterr().err
    assert "Traceback" not in err and "every generated query was dropped" not in err
    lines = [line for line in err.splitlines() if line.startswith("build-bench:")]
    assert code == 4, err
    assert lines == [f"build-bench: error: the LLM server is unreachable: cannot connect to {url}: connection "
                     "refused (ConnectError on /v1/completions; gave up after 4 retries)"]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stages"]["plan_queries"]["status"] == "done"
    assert manifest["stages"]["generate_queries"]["status"] == "running"  # not done: a rerun resumes it


@pytest.mark.llm
def test_finding_14_url_credentials_reach_only_the_server(llama_server, caplog):
    """Credentials written into --base-url go to the server (as Basic auth, the URL's meaning) and nowhere
    else: not into the model id (so not into cache keys or provenance), errors or any log line."""
    import base64

    caplog.set_level(logging.DEBUG)  # every logger: httpx2, the openai SDK, ours
    caplog.set_level(logging.DEBUG, logger="httpx2")  # the CLI quiets it, and an earlier test may have run it
    with FaultProxy(llama_server.base_url, {1: "500"}) as proxy:
        url = proxy.url.replace("http://", "http://user:password@") + "?api_key=k3y-s3cret"
        b = backend(config(url, GEMMA, concurrency=1, max_retries=0))
        ok, failed = b.generate([completion(PROMPTS[0], max_tokens=4), completion(PROMPTS[1], max_tokens=4)])
    assert ok.error is None and ok.text
    assert failed.error.startswith("HTTP 500 from /v1/completions") and failed.retryable
    basic = "Basic " + base64.b64encode(b"user:password").decode()
    assert [a.authorization for a in proxy.arrivals] == [basic, basic]
    assert all(a.path.endswith("?api_key=k3y-s3cret") for a in proxy.arrivals)  # the query is sent as given
    assert b.model_id == f"openai:{proxy.url}:{GEMMA}"
    assert "http://***@127.0.0.1" in caplog.text  # the failure's warning names the server, redacted
    # Every record but those of the fault proxy's own client (legacy httpx, which buildbench does not use).
    logs = "\n".join(f"{r.name}: {r.getMessage()}" for r in caplog.records
                     if r.name.split(".")[0] not in ("httpx", "httpcore"))
    assert "httpx2" in logs and "openai._base_client" in logs
    for text in (logs, repr([ok, failed]), repr(b), b.model_id):
        assert "password" not in text and "k3y-s3cret" not in text
