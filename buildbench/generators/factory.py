"""Turn an LLMConfig into a backend: the one place that knows every backend, and what `auto` means."""

from __future__ import annotations

import importlib.util
import logging
from typing import Optional

from ..domain_pack import LLMConfig
from ..errors import ConfigError, GenerationError
from .base import LLMBackend

log = logging.getLogger("buildbench.generators")

BACKENDS = ("local", "openai", "vllm")


def resolve_backend(cfg: LLMConfig) -> str:
    """`auto`: vllm when vllm and a CUDA GPU are present, else openai when a base URL is set, else local."""
    if cfg.backend != "auto":
        return cfg.backend
    from .vllm_backend import cuda_available  # importing the backend never imports vllm or torch

    if importlib.util.find_spec("vllm") is not None and cuda_available():
        return "vllm"
    if cfg.base_url:
        return "openai"
    return "local"


def check_backend(cfg: LLMConfig) -> str:
    """Fail before any token is spent if the backend cannot be built; returns the resolved name."""
    name = resolve_backend(cfg)
    if name == "local":
        from .local import load_llama_cpp, resolve_model

        load_llama_cpp("The local generator")
        resolve_model(cfg.model)
    elif name == "openai":
        if not cfg.base_url:
            raise ConfigError("the openai backend needs --base-url (the server's /v1 address)")
    elif name == "vllm":
        from .vllm_backend import check_vllm

        check_vllm()
    return name


def make_backend(cfg: LLMConfig) -> LLMBackend:
    name = resolve_backend(cfg)
    if name == "local":
        from .local import LocalBackend

        return LocalBackend(cfg.model, n_ctx=cfg.n_ctx, threads=cfg.threads)
    if name == "openai":
        from .openai_backend import OpenAIBackend

        return OpenAIBackend(cfg)
    if name == "vllm":
        from .vllm_backend import VLLMBackend

        return VLLMBackend(cfg)
    raise GenerationError(f"unknown backend '{name}' (known: {', '.join(BACKENDS)})")


def role_config(pack, role: str) -> LLMConfig:
    """The LLMConfig of a model role (query_writer, qa_writer, negative_writer, judge); unset roles use the
    query writer's."""
    cfg: Optional[LLMConfig] = None if role == "query_writer" else getattr(pack, role)
    return cfg if cfg is not None else pack.generator
