"""Builds through the openai backend against a real llama_cpp.server on 127.0.0.1, from the CLI.

Gemma 3 270M (completions) writes the persona queries; SmolLM2-135M-Instruct (chat, JSON output) writes
YourBench single- and multi-hop questions with citations. A fault-injecting proxy in front of the real server
shows that 500s, stalls, truncated and corrupted bodies are retried and nothing is lost or duplicated.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from buildbench.config import DOMAINS_DIR

pytestmark = [pytest.mark.slow, pytest.mark.llm]


def cli(*args, env=None) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "buildbench.cli", *map(str, args), "--no-progress"],
                          capture_output=True, text=True, timeout=1500, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return proc


def read(out: Path, name: str) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted((out / "data" / name).glob("part-*.parquet"))])


def pack_with(tmp_path: Path, **changes) -> Path:
    raw = yaml.safe_load((DOMAINS_DIR / "finance.yaml").read_text())
    raw.update(changes)
    path = tmp_path / "pack.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_cli_openai_backend_persona_queries(llama_server, fomc_passages, tmp_path):
    out = tmp_path / "run"
    secret = "sk-test-4f9a1c2e7d"
    # The backend's contract is under test, not the writer: with six passages the support filter may leave
    # no query, which ends a build (quality.support is tested on its own).
    pack = pack_with(tmp_path, filters={"support": {"enabled": False}})
    proc = cli("--domain", pack, "--docs", fomc_passages, "--max-docs", 6, "--queries-per-chunk", 1,
               "--generator", "openai", "--base-url", llama_server.base_url, "--model", "gemma3-270m",
               "--out", out, env={"OPENAI_API_KEY": secret})
    raw = read(out, "raw_queries")
    slots = read(out, "plan").num_rows
    assert slots >= 4 and raw.num_rows >= slots - 1
    assert set(raw["backend"].to_pylist()) == {"openai"}
    assert all(m.startswith("openai:") and m.endswith(":gemma3-270m") for m in raw["model"].to_pylist())
    assert all(len(k) == 64 for k in raw["cache_key"].to_pylist())
    report = json.loads((out / "report.json").read_text())
    # One call per draft: a draft that fails the form or copy check is written again.
    stats = json.loads((out / "manifest.json").read_text())["stages"]["generate_queries"]["stats"]
    drafts = sum(v for k, v in stats.items() if k.startswith("drafts_"))
    assert stats["drafts_1"] == slots
    assert report["llm"]["new_calls_this_run"] == report["llm"]["calls_total"] == drafts
    # The key went to the server but nowhere into what the run wrote.
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in {".json", ".md", ".parquet", ".sqlite"}:
            assert secret.encode() not in path.read_bytes(), path
    assert secret not in proc.stdout + proc.stderr


def test_structured_multi_hop_questions_with_citations(llama_server, tmp_path):
    chat = {"backend": "openai", "base_url": llama_server.base_url, "model": "smollm2-135m-instruct",
            "max_tokens": 256, "timeout": 120}
    pack = pack_with(tmp_path, recipes={"persona": False, "yourbench_multi": 1},
                     qa_writer=chat)
    out = tmp_path / "run"
    # The bundled sample: documents long enough for two or more chunks each. Up to generation: whether
    # SmolLM2's citations survive the grounding filter is tests/quality's business (they often do not).
    cli("--domain", pack, "--max-docs", 2, "--out", out, "--until", "generate_qa")
    qa = read(out, "qa_queries").to_pylist()
    multi = [q for q in qa if q["recipe"] == "yourbench-multi"]
    single = [q for q in qa if q["recipe"] == "yourbench-single"]  # none asked for here
    assert multi, "no multi-hop question survived validation"
    chunks = {c["id"]: c["doc_id"] for c in read(out, "chunks").to_pylist()}
    for q in multi:
        assert len(q["chunk_ids"]) >= 2 and len({chunks[c] for c in q["chunk_ids"]}) == 1
    for q in multi + single:
        assert q["answer"] and q["citations"] and q["backend"] == "openai"
        assert q["model"].endswith(":smollm2-135m-instruct")
    calls = json.loads((out / "report.json").read_text())["stages"]["generate_qa"]["stats"]
    assert calls["llm.calls"] >= 3  # summaries + questions, each a structured (JSON) call


def test_faults_are_retried_and_nothing_is_lost_or_duplicated(llama_server, fomc_passages, tmp_path):
    from tests.generators.fault_proxy import FaultProxy

    schedule = {1: "500", 3: "truncate", 5: "stall", 7: "corrupt", 9: "429", 11: "drop"}
    # One draft per slot, so that every slot is one call: a query or one logged drop.
    args = ["--domain", pack_with(tmp_path, generator={"timeout": 20, "max_retries": 4, "concurrency": 1,
                                                       "drafts": 1}),
            "--docs", fomc_passages, "--max-docs", 8, "--queries-per-chunk", 1, "--generator", "openai",
            "--model", "gemma3-270m", "--until", "generate_queries"]
    with FaultProxy(llama_server.base_url, schedule, stall_seconds=25, retry_after="1", lifetime=900) as proxy:
        cli(*args, "--base-url", proxy.url, "--out", tmp_path / "faulty")
        arrivals = len(proxy.arrivals)
    report = json.loads((tmp_path / "faulty" / "report.json").read_text())
    assert report["llm"]["retries_this_run"] == len(schedule)
    assert report["llm"]["failures_this_run"] == 0
    assert arrivals == report["llm"]["new_calls_this_run"] + len(schedule)

    plan = read(tmp_path / "faulty", "plan")["slot_id"].to_pylist()
    raw = read(tmp_path / "faulty", "raw_queries")
    drops = read(tmp_path / "faulty", "_drops/generate_queries")["item_id"].to_pylist()
    ids = raw["id"].to_pylist()
    assert len(ids) == len(set(ids))  # nothing duplicated
    assert len(ids) + len(drops) == len(plan)  # nothing lost: every slot is a query or a logged drop
    assert set(drops) <= set(plan)
