"""Several base URLs for the openai backend: least-outstanding balancing with a bound per server, retries on
another server, a failing server set aside for a cooldown, and cache keys that do not depend on who answered.

The balancer and the cooldown are checked on their own (a fake clock); failover against instant echo servers
behind tests/generators/fault_proxy.py; and the real thing against two `python -m llama_cpp.server` processes
(marked llm, a few requests of 8 tokens).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from buildbench.domain_pack import LLMConfig
from buildbench.generators.base import GenerationRequest
from buildbench.generators.cache import CachedLLM, LLMCache
from buildbench.generators.endpoints import EndpointPool, retry_after
from buildbench.generators.openai_backend import OpenAIBackend
from buildbench.errors import GenerationError
from tests.generators.fault_proxy import FaultProxy
from tests.servers import GEMMA, free_port

# Eight prompts of this file only, with different first words. llama_cpp.server reuses the evaluated prefix of
# the prompt it ran last, and greedy decoding of this small model can flip a near tie on it: measured on one
# server, a prompt's answer differs between the server's first request (every token evaluated, <bos> too) and
# any later one (<bos> reused), and between a prompt's first run and the same prompt run again right after
# (all of it reused). So each server is warmed up once, no prompt here is one another test may have sent last,
# and each is sent once per run.
PROMPTS = [
    "Pension liabilities grew because",
    "Municipal bonds in the county are",
    "Dividend payments were suspended after",
    "Liquidity ratios at regional lenders",
    "Insurers reported underwriting losses from",
    "Mortgage delinquencies rose in",
    "Treasury auctions drew weak demand as",
    "Shareholders approved the merger on",
]


def config(base_url, model: str = GEMMA, **kw) -> LLMConfig:
    kw.setdefault("timeout", 30.0)
    kw.setdefault("api_key_env", "BUILDBENCH_TEST_OPENAI_KEY")
    return LLMConfig(backend="openai", base_url=base_url, model=model, **kw)


def backend(cfg: LLMConfig, **kw) -> OpenAIBackend:
    kw.setdefault("cooldown", 300.0)  # one trip per test: a probe after the cooldown would log again
    kw.setdefault("cooldown_cap", 300.0)
    return OpenAIBackend(cfg, backoff_base=0.05, backoff_cap=0.2, **kw)


def greedy(prompt: str) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, max_tokens=8, temperature=0.0, seed=7)


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("buildbench")]


class EchoServer:
    """A minimal OpenAI-compatible /v1/completions on 127.0.0.1: answers "echo: PROMPT" after ``delay`` s."""

    def __init__(self, delay: float = 0.2):
        echo = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(echo.delay)
                data = json.dumps({"id": "cmpl-1", "object": "text_completion", "created": 0, "model": body["model"],
                                   "choices": [{"index": 0, "text": f"echo: {body['prompt']}", "logprobs": None,
                                                "finish_reason": "length"}],
                                   "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.delay = delay
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "EchoServer":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


# ------------------------------------------------------------------------------------- no server needed


def test_least_outstanding_with_a_bound_per_server():
    async def run():
        pool = EndpointPool(["http://a:1/v1", "http://b:2/v1", "http://c:3/v1"])
        bal = pool.balancer(2)
        held = [await bal.acquire() for _ in range(6)]
        assert [ep.index for ep in held] == [0, 1, 2, 0, 1, 2]  # the fewest in flight, ties in turn
        assert bal.pick() is None  # every server at its bound
        waiting = asyncio.create_task(bal.acquire())
        await asyncio.sleep(0.01)
        assert not waiting.done()  # no slot: it waits, it does not overfill a server
        bal.release(held[4])  # a slot on b
        assert (await asyncio.wait_for(waiting, 1)).index == 1
        bal.release(held[0])
        bal.release(held[2])  # a, b, c now hold 1, 2, 1
        assert bal.pick().index in (0, 2) and bal.pick(avoid=pool.endpoints[0]).index == 2
        assert bal.in_flight == [1, 2, 1]

    asyncio.run(run())


def test_a_failing_server_is_set_aside_with_one_line(caplog):
    now = [1000.0]
    urls = ["http://user:s3cret-a@10.0.0.1:8000/v1?api_key=k3y-a", "http://10.0.0.2:8000/v1"]
    pool = EndpointPool(urls, fail_limit=2, cooldown=10, cooldown_cap=15, clock=lambda: now[0])
    a, b = pool.endpoints
    bal = pool.balancer(1)
    caplog.set_level(logging.DEBUG)
    pool.failed(a, "HTTP 500 from /v1/completions: boom")
    assert not pool.cooling(a) and not warnings_of(caplog)  # one failure is not yet "keeps failing"
    pool.failed(a, "HTTP 500 from /v1/completions: boom")
    pool.failed(a, "HTTP 500 from /v1/completions: boom")  # an attempt sent before it was set aside
    assert pool.cooling(a)
    assert warnings_of(caplog) == [
        "openai server http://***@10.0.0.1:8000/v1?api_key=*** set aside for 10s after 2 failures in a row "
        "(latest: HTTP 500 from /v1/completions: boom); 1 of 2 servers in use"]
    assert bal.pick() is b and bal.pick(avoid=b) is b  # the one left, even for a retry from it
    now[0] += 10.5
    assert bal.pick() is a  # cooled down: the next request probes it
    probe = pool.balancer(4)
    probe.in_flight = [1, 2]
    assert probe.pick() is b  # ... one request at a time until one gets through, however busy b is
    pool.failed(a, "cannot connect: connection refused (ConnectError on /v1/completions)", connect=True)
    assert pool.cooling(a) and "set aside for 15s after 4 failures" in warnings_of(caplog)[-1]  # doubled, capped
    pool.failed(b, "timed out", connect=False)
    pool.failed(b, "timed out", connect=False)
    assert bal.pick() is not None  # every server set aside: they are used anyway
    assert not pool.all_down()  # b answered, if slowly
    pool.succeeded(a)
    assert not pool.cooling(a) and a.failures == a.trips == 0 and a.down is None
    assert "s3cret" not in caplog.text and "k3y-a" not in caplog.text
    # One server is never set aside: there is nowhere else to go.
    single = EndpointPool(["http://10.0.0.3/v1"], clock=lambda: now[0])
    for _ in range(5):
        single.failed(single.endpoints[0], "boom")
    assert not single.cooling(single.endpoints[0]) and len(warnings_of(caplog)) == 3


def test_retry_after():
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after({"retry-after": "0"}) is None and retry_after({"retry-after": "600"}) is None
    assert retry_after({"retry-after": "soon"}) is None and retry_after({}) is None
    in_5s = email.utils.formatdate(time.time() + 5, usegmt=True)
    assert 3 <= retry_after({"retry-after": in_5s}) <= 5


def test_model_id_does_not_depend_on_the_server_that_answers():
    a = "http://user:pw-a@127.0.0.1:9001/v1/"
    b = "http://127.0.0.1:9002/v1?api_key=k3y-b"
    one = OpenAIBackend(config(a))
    assert one.model_id == f"openai:http://127.0.0.1:9001/v1:{GEMMA}"  # one server: as it always was
    two = OpenAIBackend(config([a, b]))
    assert two.model_id == f"openai:http://127.0.0.1:9001/v1,http://127.0.0.1:9002/v1:{GEMMA}"
    assert OpenAIBackend(config(f"{b},{a}")).model_id == two.model_id  # order and separator do not matter
    assert OpenAIBackend(config(["http://127.0.0.1:9002/v1", "http://x:y@127.0.0.1:9001/v1"])).model_id == two.model_id
    assert two.batch_size == 32  # 4 in flight on each of 2 servers, 4 times over
    assert two.shown_url == "http://***@127.0.0.1:9001/v1, http://127.0.0.1:9002/v1?api_key=***"
    assert repr(two) == f"OpenAIBackend({two.shown_url!r}, model='{GEMMA}')"
    for text in (repr(two), two.model_id, two.shown_url):
        assert "pw-a" not in text and "k3y-b" not in text
    assert [ep.auth for ep in two.endpoints] == [("user", "pw-a"), None]  # each server keeps its own credentials
    assert [ep.query for ep in two.endpoints] == [{}, {"api_key": "k3y-b"}]


def test_every_server_down_is_unreachable(tmp_path, caplog):
    """Both addresses refuse: each request spends its retries across them, then fails as unreachable, and the
    cache layer stops the stage with one line naming both, credentials redacted."""
    ports = [free_port(), free_port()]
    urls = [f"http://user:pw-a@127.0.0.1:{ports[0]}/v1", f"http://127.0.0.1:{ports[1]}/v1?token=t0k-b"]
    caplog.set_level(logging.DEBUG)
    b = backend(config(urls, max_retries=2, timeout=2, concurrency=1))
    start = time.monotonic()
    results = b.generate([greedy("a"), greedy("b"), greedy("c")])
    assert time.monotonic() - start < 10
    shown = f"http://***@127.0.0.1:{ports[0]}/v1, http://127.0.0.1:{ports[1]}/v1?token=***"
    for r in results:
        assert r.unreachable and r.retryable and r.text == ""
        assert r.error.startswith(f"cannot connect to any of {shown}: connection refused (ConnectError on "
                                  "/v1/completions; gave up after 2 retries)"), r.error
    with pytest.raises(GenerationError, match="the LLM server is unreachable: cannot connect to any of"):
        CachedLLM(b, LLMCache(tmp_path / "llm.sqlite")).generate([greedy("d")])
    for text in (caplog.text, repr(results)):
        assert "pw-a" not in text and "t0k-b" not in text


def test_5xx_on_one_server_is_retried_on_the_other(caplog):
    """A server that answers 500 to everything is set aside after two; every request still succeeds, on the
    other one, in input order, each retry taken from the request's budget."""
    caplog.set_level(logging.DEBUG)
    with EchoServer() as echo_a, EchoServer() as echo_b:
        with FaultProxy(echo_a.url, {i: "500" for i in range(50)}) as bad, FaultProxy(echo_b.url) as good:
            b = backend(config([bad.url, good.url], concurrency=2, max_retries=2))
            prompts = [f"p{i}" for i in range(8)]
            results = b.generate([GenerationRequest(prompt=p, max_tokens=4, seed=1) for p in prompts])
    assert [r.error for r in results] == [None] * 8
    assert [r.text for r in results] == [f"echo: {p}" for p in prompts]
    assert 2 <= bad.requests <= 4  # its slots were full when it was set aside; nothing went to it after
    assert good.requests == 8 and good.max_in_flight <= 2 and bad.max_in_flight <= 2
    assert sum(r.extra["retries"] for r in results) == bad.requests
    (line,) = warnings_of(caplog)
    assert line.startswith(f"openai server {bad.url} set aside for 300s after 2 failures in a row (latest: HTTP 500 "
                           "from /v1/completions: injected server error)")
    assert "retry 1/2 in" in caplog.text and f"from {bad.url}" in caplog.text


# ----------------------------------------------------------------------------------- real llama_cpp.server


@pytest.mark.llm
def test_two_servers_share_a_batch_and_answer_as_one(llama_server, second_llama_server):
    """Eight greedy requests over two real llama_cpp.server processes: both serve, neither beyond its bound,
    and the texts equal those of one server alone."""
    reqs = [greedy(p) for p in PROMPTS]
    for server in (llama_server, second_llama_server):  # past each server's first request (see PROMPTS)
        (warm,) = backend(config(server.base_url)).generate([greedy("Warm up:")])
        assert warm.error is None, warm.error
    with FaultProxy(llama_server.base_url) as one, FaultProxy(second_llama_server.base_url) as two:
        pair = backend(config([one.url, two.url], concurrency=2, timeout=60))
        results = pair.generate(reqs)
        served = (one.requests, two.requests)
        alone = backend(config(second_llama_server.base_url, concurrency=2, timeout=60)).generate(reqs)
    assert [r.error for r in results + alone] == [None] * 16
    assert sum(served) == 8 and min(served) >= 2, served
    assert one.max_in_flight <= 2 and two.max_in_flight <= 2
    assert {a.body["prompt"] for a in one.arrivals} | {a.body["prompt"] for a in two.arrivals} == set(PROMPTS)
    assert [r.text for r in results] == [r.text for r in alone]
    assert all(r.text.strip() and r.tokens_out > 0 for r in results)
    # Cache keys name the pair, not the server that happened to answer.
    assert pair.model_id == f"openai:{','.join(sorted([one.url, two.url]))}:{GEMMA}"


@pytest.mark.llm
def test_a_dead_server_is_set_aside_and_the_other_serves(llama_server, caplog):
    """One address refuses connections: every request still succeeds through the other, and the dead one is
    reported in one warning line, credentials redacted."""
    port = free_port()
    dead = f"http://user:d3ad-pw@127.0.0.1:{port}/v1?api_key=d3ad-k3y"
    caplog.set_level(logging.DEBUG)
    with FaultProxy(llama_server.base_url) as live:
        b = backend(config([dead, live.url], concurrency=2, timeout=60))
        results = b.generate([greedy(p) for p in PROMPTS])
    assert [r.error for r in results] == [None] * 8
    assert all(r.text.strip() for r in results)
    assert live.requests == 8
    retried = sum(r.extra["retries"] for r in results)
    assert 2 <= retried <= 4  # the dead server's first attempts, then none
    (line,) = warnings_of(caplog)
    assert line == (f"openai server http://***@127.0.0.1:{port}/v1?api_key=*** set aside for 300s after 2 failures "
                    f"in a row (latest: cannot connect to http://***@127.0.0.1:{port}/v1?api_key=***: connection "
                    "refused (ConnectError on /v1/completions)); 1 of 2 servers in use")
    for text in (caplog.text, repr(results), b.model_id, repr(b)):
        assert "d3ad-pw" not in text and "d3ad-k3y" not in text


# ------------------------------------------------------------------------------------- through the build


def test_build_with_every_server_down_stops_with_one_line(tmp_path, capsys):
    """`--base-url A --base-url B,C` with nothing listening: the build stops at generation with one line naming
    the three servers, credentials redacted, and a non-zero exit; nothing else is lost."""
    from buildbench.cli import main

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "d0.txt").write_text("The committee kept the target range for the federal funds rate unchanged. " * 4)
    ports = [free_port() for _ in range(3)]
    a, b, c = (f"http://127.0.0.1:{port}/v1" for port in ports)
    secret_a = a.replace("http://", "http://user:pw-a@")
    code = main(["--domain", "finance", "--docs", str(docs), "--out", str(tmp_path / "run"), "--base-url", secret_a,
                 "--base-url", f"{b},{c}?api_key=k3y-c", "--no-progress", "--until", "generate_queries"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("build-bench:")]
    assert code == 4, err
    shown = f"http://***@127.0.0.1:{ports[0]}/v1, {b}, {c}?api_key=***"
    assert lines == [f"build-bench: error: the LLM server is unreachable: cannot connect to any of {shown}: "
                     "connection refused (ConnectError on /v1/completions; gave up after 4 retries)"], err
    assert "pw-a" not in err and "k3y-c" not in err
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["config"]["domain"]["generator"]["base_url"] == [
        f"http://***@127.0.0.1:{ports[0]}/v1", b, f"{c}?api_key=***"]
    assert manifest["stages"]["generate_queries"]["status"] == "running"  # not done: a rerun resumes it
