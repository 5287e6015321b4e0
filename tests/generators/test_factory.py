"""Which backend a config gets, what fails before a token is spent, and which config each model role uses.

`auto` depends on the machine (is vllm installed, does torch see a GPU); these tests set both with
monkeypatch so they mean the same on a laptop, in CI and on a GPU box.
"""

from __future__ import annotations

import importlib.util

import pytest

from buildbench.config import load_domain_pack
from buildbench.domain_pack import LLMConfig
from buildbench.errors import ConfigError, GenerationError
from buildbench.generators import factory, vllm_backend

MISSING = "the vllm backend needs vllm and a CUDA GPU: pip install 'buildbench[gpu]'"


@pytest.fixture
def machine(monkeypatch):
    """machine(vllm=..., cuda=...): pretend vllm is (not) installed and torch does (not) see a GPU."""

    def set_(vllm: bool, cuda: bool) -> None:
        real = importlib.util.find_spec
        stand_in = object()  # find_spec's answer only matters as None / not None here

        def find_spec(name, *args):
            if name == "vllm":
                return stand_in if vllm else None
            return real(name, *args)

        monkeypatch.setattr(importlib.util, "find_spec", find_spec)
        monkeypatch.setattr(vllm_backend, "cuda_available", lambda: cuda)

    return set_


# ----------------------------------------------------------------------------------------- resolve
@pytest.mark.parametrize("vllm, cuda, base_url, expected", [
    (False, False, "http://localhost:8000/v1", "openai"),
    (False, False, None, "local"),
    (False, True, None, "local"),  # a GPU without vllm is no reason to leave the CPU backend
    (True, False, "http://localhost:8000/v1", "openai"),  # vllm installed but no GPU
    (True, False, None, "local"),
    (True, True, None, "vllm"),
    (True, True, "http://localhost:8000/v1", "vllm"),  # in-process vLLM wins over a server when it can run
])
def test_auto(machine, vllm, cuda, base_url, expected):
    machine(vllm=vllm, cuda=cuda)
    assert factory.resolve_backend(LLMConfig(backend="auto", base_url=base_url)) == expected


@pytest.mark.parametrize("backend", ["local", "openai", "vllm"])
def test_explicit_backend_is_kept(machine, backend):
    machine(vllm=False, cuda=False)
    assert factory.resolve_backend(LLMConfig(backend=backend)) == backend


# ------------------------------------------------------------------------------------------- check
def test_openai_without_base_url():
    with pytest.raises(ConfigError) as err:
        factory.check_backend(LLMConfig(backend="openai"))
    assert str(err.value) == "the openai backend needs --base-url (the server's /v1 address)"


def test_openai_with_base_url():
    assert factory.check_backend(LLMConfig(backend="openai", base_url="http://localhost:8000/v1")) == "openai"


def test_vllm_missing_is_one_line(machine):
    machine(vllm=False, cuda=True)
    with pytest.raises(GenerationError) as err:
        factory.check_backend(LLMConfig(backend="vllm"))
    assert str(err.value) == MISSING


def test_vllm_without_gpu_is_one_line(machine, monkeypatch):
    machine(vllm=True, cuda=False)
    from importlib import metadata

    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "0.10.2" if name == "vllm" else real(name))
    with pytest.raises(GenerationError) as err:
        factory.check_backend(LLMConfig(backend="vllm"))
    assert str(err.value) == ("the vllm backend needs vllm and a CUDA GPU: torch sees no CUDA device "
                              "(torch.cuda.is_available() is False)")


def test_make_backend_vllm_missing_fails_before_loading(machine):
    machine(vllm=False, cuda=False)
    with pytest.raises(GenerationError) as err:
        factory.make_backend(LLMConfig(backend="vllm"))
    assert str(err.value) == MISSING


def test_local_unknown_model():
    pytest.importorskip("llama_cpp")
    with pytest.raises(GenerationError, match=r"^unknown local model 'no-such-model' \(known: gemma3-270m"):
        factory.check_backend(LLMConfig(backend="local", model="no-such-model"))


# ------------------------------------------------------------------------------------------- roles
def test_roles_fall_back_to_the_query_writer():
    pack = load_domain_pack("finance")
    assert pack.judge is None and pack.negative_writer is None
    for role in ("query_writer", "negative_writer", "judge"):
        assert factory.role_config(pack, role) is pack.generator


def test_a_role_that_is_set_uses_its_own_config():
    pack = load_domain_pack("finance")
    judge = LLMConfig(backend="openai", model="judge-model", base_url="http://judge:8000/v1", temperature=0.0)
    pack = pack.model_copy(update={"judge": judge})
    assert factory.role_config(pack, "judge") is judge
    assert factory.role_config(pack, "negative_writer") is pack.generator
    assert factory.role_config(pack, "query_writer") is pack.generator
