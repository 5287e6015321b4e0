"""The GPU backend: vLLM in this process, offline batching, one SamplingParams per request.

Importing this module never imports vllm; only constructing `VLLMBackend` (or `check_vllm`) does, so the
package and its tests work on machines without a GPU.

vLLM's Python API moved between releases. What this module relies on, read from the released wheels'
`vllm/sampling_params.py` and `vllm/entrypoints/llm.py` (0.6.0 to 0.33.0):

- `SamplingParams(max_tokens, temperature, top_p, stop, seed)`: every release.
- Per-request JSON-schema decoding: `SamplingParams(guided_decoding=GuidedDecodingParams(json=...))` from
  0.6.3 to 0.11; `SamplingParams(structured_outputs=StructuredOutputsParams(json=...))` from 0.11 on
  (0.11 has both; 0.12 removed the old pair). Both classes live in `vllm.sampling_params`.
- `LLM.chat` takes a list of conversations from 0.6.2; `LLM.generate` / `LLM.chat` take one SamplingParams per
  prompt and return outputs in input order in every release.
- `enable_prefix_caching` reaches `EngineArgs` through `LLM(**kwargs)` in every release.

So the floor is 0.6.3: before it, guided decoding was one option per `generate` call
(`guided_options_request`), not per request.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..domain_pack import LLMConfig
from ..errors import GenerationError
from .base import GenerationRequest, GenerationResult
from .openai_backend import prompt_endpoint  # one routing rule for prompt-only requests in both backends

log = logging.getLogger("buildbench.generators.vllm")

NEEDS = "the vllm backend needs vllm and a CUDA GPU"
INSTALL = "pip install 'buildbench[gpu]'"
MIN_VERSION = (0, 6, 3)


def _version_tuple(version: str) -> tuple[int, ...]:
    """(0, 10, 1) from '0.10.1.1', '0.11.0rc2' or '0.11.1.dev12+gabc'; enough to compare with MIN_VERSION."""
    parts = []
    for piece in version.split(".")[:3]:
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
    return tuple(parts)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).splitlines()
    return lines[0] if lines else type(exc).__name__


def cuda_available() -> bool:
    """True only when torch sees a CUDA device; never imports vllm."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def check_vllm() -> None:
    """Fail with one line unless vllm imports, is recent enough and torch sees a CUDA device."""
    from importlib import metadata

    if importlib.util.find_spec("vllm") is None:
        raise GenerationError(f"{NEEDS}: {INSTALL}")
    try:
        version = metadata.version("vllm")
    except metadata.PackageNotFoundError:  # a source checkout on sys.path: trust it
        version = None
    if version is not None and _version_tuple(version) < MIN_VERSION:
        floor = ".".join(map(str, MIN_VERSION))
        raise GenerationError(
            f"the vllm backend needs vllm>={floor} (per-request JSON decoding); found {version}: "
            f"pip install -U 'vllm>={floor}'"
        )
    if not cuda_available():
        raise GenerationError(f"{NEEDS}: torch sees no CUDA device (torch.cuda.is_available() is False)")
    try:
        importlib.import_module("vllm")
    except Exception as exc:  # a broken install fails in many ways (ImportError, OSError for CUDA libs, ...)
        raise GenerationError(f"{NEEDS}: importing vllm failed ({type(exc).__name__}: {_first_line(exc)})") from exc


@dataclass(frozen=True)
class _VLLMApi:
    """The parts of the vllm module this backend calls, found by feature detection.

    `structured_cls` / `structured_field` are StructuredOutputsParams / "structured_outputs" on vLLM >= 0.11,
    GuidedDecodingParams / "guided_decoding" on 0.6.3 to 0.10, or None when neither exists.
    """

    LLM: Any
    SamplingParams: Any
    structured_cls: Any = None
    structured_field: Optional[str] = None
    # Exceptions vLLM raises for one bad request (a prompt longer than the context, an invalid schema).
    request_errors: tuple[type[BaseException], ...] = (ValueError,)
    version: str = "unknown"

    @classmethod
    def from_module(cls, vllm: Any) -> "_VLLMApi":
        """Read the API off the vllm module (or anything shaped like it)."""
        where = [vllm, getattr(vllm, "sampling_params", None)]

        def find(name: str):
            return next((getattr(m, name) for m in where if m is not None and hasattr(m, name)), None)

        structured_cls, structured_field = find("StructuredOutputsParams"), "structured_outputs"
        if structured_cls is None:
            structured_cls, structured_field = find("GuidedDecodingParams"), "guided_decoding"
        if structured_cls is None:
            structured_field = None
        errors: tuple[type[BaseException], ...] = (ValueError,)
        # Recent vLLM raises VLLMValidationError (a VLLMClientError, not a ValueError) for invalid requests.
        client_error = getattr(getattr(vllm, "exceptions", None), "VLLMClientError", None)
        if isinstance(client_error, type) and issubclass(client_error, BaseException):
            errors += (client_error,)
        return cls(
            LLM=vllm.LLM,
            SamplingParams=vllm.SamplingParams,
            structured_cls=structured_cls,
            structured_field=structured_field,
            request_errors=errors,
            version=str(getattr(vllm, "__version__", "unknown")),
        )

    @classmethod
    def load(cls) -> "_VLLMApi":
        vllm = importlib.import_module("vllm")
        importlib.import_module("vllm.sampling_params")  # the structured-output classes live here
        return cls.from_module(vllm)


def build_sampling_kwargs(req: GenerationRequest) -> dict[str, Any]:
    """The SamplingParams keywords of one request, apart from structured decoding."""
    return dict(
        max_tokens=req.max_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        stop=list(req.stop),
        # Per request, so a request samples the same text whatever else shares its batch.
        seed=req.seed,
    )


def build_structured(req: GenerationRequest, api: _VLLMApi) -> Any:
    """The JSON-schema constraint of a request for this vLLM version, or None when it has no schema."""
    if req.json_schema is None:
        return None
    if api.structured_cls is None:
        raise GenerationError(
            f"vllm {api.version} has no per-request JSON decoding; pip install -U 'vllm>=0.6.3'"
        )
    return api.structured_cls(json=req.json_schema)  # the schema's JSON text; every version takes str


def build_sampling_params(req: GenerationRequest, api: _VLLMApi) -> Any:
    kwargs = build_sampling_kwargs(req)
    structured = build_structured(req, api)
    if structured is not None:
        kwargs[api.structured_field] = structured
    return api.SamplingParams(**kwargs)


def to_conversation(req: GenerationRequest, chat_endpoint: bool) -> Optional[list[dict[str, str]]]:
    """The chat messages of a request, or None when it goes to `LLM.generate` as a raw prompt."""
    if req.messages is not None:
        return [{"role": role, "content": content} for role, content in req.messages]
    if chat_endpoint:
        return [{"role": "user", "content": req.prompt or ""}]
    return None


def to_result(output: Any, structured: bool) -> GenerationResult:
    """A GenerationResult from one vLLM RequestOutput (its first and only completion)."""
    completion = output.outputs[0]
    extra: dict[str, Any] = {}
    if structured:
        extra["structured"] = "json_schema"
    # Prompt tokens served from the prefix cache; RequestOutput has it in 0.8.5 and later, not in 0.6.3.
    cached = getattr(output, "num_cached_tokens", None)
    if cached is not None:
        extra["prefix_cached_tokens"] = int(cached)
    return GenerationResult(
        text=completion.text,
        tokens_in=len(output.prompt_token_ids or ()),
        tokens_out=len(completion.token_ids or ()),
        finish_reason=completion.finish_reason or "",
        extra=extra,
    )


def model_identity(model: str, cache_dir: Optional[str] = None) -> str:
    """`model` plus what pins its weights: the Hub commit it was loaded from, or a local folder's file sizes."""
    path = Path(model)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in {".safetensors", ".bin", ".json"})
        return f"{path.resolve()}:{sum(p.stat().st_size for p in files)}"
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(model, "config.json", cache_dir=cache_dir)
    except Exception:  # not a repo id, or no huggingface_hub: the name alone is the best identity we have
        found = None
    if isinstance(found, str):
        return f"{model}@{Path(found).parent.name}"  # .../snapshots/<commit>/config.json
    return model


class VLLMBackend:
    """vLLM in process. Each `generate` call is one batched `LLM.generate` (raw prompts) and one batched
    `LLM.chat` (conversations), so requests sharing a few-shot prefix meet in vLLM's prefix cache.

    Prompt-only requests are routed like the HTTP backend routes them (`openai_backend.prompt_endpoint`):
    `completions` sends the raw prompt to `LLM.generate`, `chat` wraps it as one user message for `LLM.chat`,
    and `auto` picks chat for models whose name says they are instruct-tuned.
    """

    name = "vllm"
    batch_size = 512  # CachedLLM hands this many requests at once: vLLM schedules and prefix-caches them

    def __init__(self, cfg: LLMConfig, *, vllm_module: Any = None):
        """`vllm_module` stands in for `import vllm` (tests only: vLLM cannot run without a GPU)."""
        if vllm_module is None:
            check_vllm()
            self.api = _VLLMApi.load()
        else:
            self.api = _VLLMApi.from_module(vllm_module)
        self.cfg = cfg
        self.chat_endpoint = prompt_endpoint(cfg) == "chat"
        self.chat = self.chat_endpoint  # recipes build messages for chat models
        log.info("vllm %s: loading %s (tensor_parallel_size=%d, prefix caching %s, prompts via %s, "
                 "JSON decoding via %s)", self.api.version, cfg.model, cfg.tensor_parallel_size,
                 "on" if cfg.enable_prefix_caching else "off", "chat" if self.chat_endpoint else "generate",
                 self.api.structured_field or "none")
        self.llm = self.api.LLM(
            model=cfg.model,
            tensor_parallel_size=cfg.tensor_parallel_size,
            enable_prefix_caching=cfg.enable_prefix_caching,
            gpu_memory_utilization=cfg.gpu_memory_utilization,
            seed=0,
        )
        # The chat template changes what a prompt-only request asks, so it is part of the cache identity.
        self._model_id = f"vllm:{model_identity(cfg.model)}" + (":prompts-as-chat" if self.chat_endpoint else "")

    @property
    def model_id(self) -> str:
        return self._model_id

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        params = [build_sampling_params(r, self.api) for r in requests]
        conversations = [to_conversation(r, self.chat_endpoint) for r in requests]
        results: list[Optional[GenerationResult]] = [None] * len(requests)
        prompt_idx = [i for i, c in enumerate(conversations) if c is None]
        chat_idx = [i for i, c in enumerate(conversations) if c is not None]
        if prompt_idx:
            self._run(self.llm.generate, [requests[i].prompt for i in prompt_idx], prompt_idx, params,
                      requests, results)
        if chat_idx:
            self._run(self.llm.chat, [conversations[i] for i in chat_idx], chat_idx, params, requests, results)
        return results  # type: ignore[return-value]

    def _run(self, call, inputs: list, idx: list[int], params: list, requests: list[GenerationRequest],
             results: list[Optional[GenerationResult]]) -> None:
        """One batched call; if vLLM rejects a request, every request alone, so only the bad ones fail."""
        try:
            outputs = call(inputs, [params[i] for i in idx], use_tqdm=False)
        except self.api.request_errors as exc:
            log.warning("vllm rejected a batch of %d (%s); retrying its requests one by one", len(idx), exc)
            for one, i in zip(inputs, idx):
                try:
                    # vLLM < 0.12 leaves the rejected batch's earlier requests queued and the next call returns
                    # them too, sorted by request id; this request, added last, is always the last output.
                    output = call([one], [params[i]], use_tqdm=False)[-1]
                except self.api.request_errors as one_exc:
                    results[i] = GenerationResult(text="", error=f"vllm: {_first_line(one_exc)}")
                else:
                    results[i] = to_result(output, requests[i].json_schema is not None)
            return
        if len(outputs) != len(idx):
            raise GenerationError(f"vllm returned {len(outputs)} outputs for {len(idx)} requests")
        for i, output in zip(idx, outputs):
            results[i] = to_result(output, requests[i].json_schema is not None)
