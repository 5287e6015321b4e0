"""The vllm backend's contract with vLLM, checked without a GPU.

vLLM cannot run without a CUDA device, and CI has none, so most tests drive `VLLMBackend` with a recording
stand-in for the `vllm` module. Its constructors take exactly the keyword names of the real vLLM signatures
(read from the released wheels, 0.6.3 to 0.33), so a misspelt argument fails here as it would on a GPU; the
tests assert every name and value the backend passes. Where vllm imports, `test_real_vllm_signatures` checks
the same names against the installed vLLM itself.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from buildbench.domain_pack import LLMConfig
from buildbench.errors import GenerationError
from buildbench.generators import vllm_backend as vb
from buildbench.generators.base import GenerationRequest

SCHEMA = '{"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}'
MISSING = "the vllm backend needs vllm and a CUDA GPU: pip install 'buildbench[gpu]'"


# ------------------------------------------------------------------------------------------ the stand-in
class FakeVLLM:
    """A recording stand-in for the `vllm` module.

    api="structured": StructuredOutputsParams only (vLLM >= 0.12); "both": it and GuidedDecodingParams
    (0.11); "guided": GuidedDecodingParams only (0.6.3 to 0.10); "none": neither (< 0.6.3).
    reject: prompts containing this text make a whole batch call raise, as vLLM does for a prompt longer than
    the context. stale_queue: like vLLM < 0.12, the rejected batch's earlier requests stay queued and the
    next call returns them first.
    """

    def __init__(self, api: str = "structured", reject: str | None = None, stale_queue: bool = False):
        self.calls: list[tuple] = []
        self.__version__ = f"fake-{api}"
        fake = self

        class SamplingParams:
            def __init__(self, *, max_tokens=16, temperature=1.0, top_p=1.0, stop=None, seed=None, **extra):
                allowed = {"structured": {"structured_outputs"}, "both": {"structured_outputs", "guided_decoding"},
                           "guided": {"guided_decoding"}, "none": set()}[api]
                unknown = set(extra) - allowed
                if unknown:
                    raise TypeError(f"SamplingParams got unexpected keyword arguments {sorted(unknown)}")
                self.kwargs = dict(max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stop,
                                   seed=seed, **extra)

        class _Structured:
            def __init__(self, *, json=None, regex=None, choice=None, grammar=None):
                self.json = json

            def __eq__(self, other):
                return type(self) is type(other) and self.json == other.json

        class StructuredOutputsParams(_Structured):
            pass

        class GuidedDecodingParams(_Structured):
            pass

        class LLM:
            def __init__(self, model, *, tensor_parallel_size=1, gpu_memory_utilization=0.9, seed=0, **kwargs):
                unknown = set(kwargs) - {"enable_prefix_caching"}  # EngineArgs fields that matter here
                if unknown:
                    raise TypeError(f"LLM got unexpected keyword arguments {sorted(unknown)}")
                fake.calls.append(("LLM", dict(model=model, tensor_parallel_size=tensor_parallel_size,
                                               gpu_memory_utilization=gpu_memory_utilization, seed=seed,
                                               **kwargs)))
                self.queue: list = []

            def _run(self, kind, inputs, sampling_params, use_tqdm):
                fake.calls.append((kind, list(inputs), [p.kwargs for p in sampling_params], use_tqdm))
                if len(inputs) != len(sampling_params):
                    raise ValueError("one SamplingParams per prompt")
                done, self.queue = self.queue, []
                for item in inputs:
                    text = item if isinstance(item, str) else item[-1]["content"]
                    if reject and reject in text:
                        if stale_queue:
                            self.queue = done
                        raise ValueError("The decoder prompt (length 99999) is longer than the maximum "
                                         "model length of 32768.\nsecond line")
                    done.append(fake_output(text))
                return done

            def generate(self, prompts, sampling_params=None, *, use_tqdm=True):
                return self._run("generate", prompts, sampling_params, use_tqdm)

            def chat(self, messages, sampling_params=None, use_tqdm=True):
                assert all(isinstance(m, list) for m in messages), "a list of conversations"
                return self._run("chat", messages, sampling_params, use_tqdm)

        self.LLM, self.SamplingParams = LLM, SamplingParams
        # Like the real package, the structured classes live in vllm.sampling_params.
        self.sampling_params = types.SimpleNamespace(SamplingParams=SamplingParams)
        if api in ("structured", "both"):
            self.sampling_params.StructuredOutputsParams = StructuredOutputsParams
        if api in ("guided", "both"):
            self.sampling_params.GuidedDecodingParams = GuidedDecodingParams
        self.classes = {"StructuredOutputsParams": StructuredOutputsParams,
                        "GuidedDecodingParams": GuidedDecodingParams}

    def of(self, kind: str) -> list[tuple]:
        return [c for c in self.calls if c[0] == kind]


def fake_output(text: str):
    """A RequestOutput: the prompt's words as its tokens, and an answer naming the prompt's last word."""
    words = text.split()
    completion = types.SimpleNamespace(text=f" answer to {words[-1]}", token_ids=[7, 8, 9],
                                       finish_reason="stop")
    return types.SimpleNamespace(prompt_token_ids=list(range(len(words))), outputs=[completion],
                                 num_cached_tokens=2)


def prompt_req(text: str, seed: int = 0, **kw) -> GenerationRequest:
    return GenerationRequest(prompt=f"Few-shot examples.\nPassage: {text}", seed=seed, prefix_chars=19, **kw)


def make_backend(fake: FakeVLLM, **cfg) -> vb.VLLMBackend:
    return vb.VLLMBackend(LLMConfig(backend="vllm", model=cfg.pop("model", "org/base-model"), **cfg),
                          vllm_module=fake)


# --------------------------------------------------------------------------------------------- imports
def test_importing_the_module_never_imports_vllm(tmp_path):
    # A `vllm` that fails loudly on import, first on sys.path: importing the backend module must not touch it.
    (tmp_path / "vllm").mkdir()
    (tmp_path / "vllm" / "__init__.py").write_text("raise RuntimeError('vllm was imported')\n")
    code = textwrap.dedent("""
        import sys
        import buildbench.generators.vllm_backend as vb
        import buildbench.generators.factory
        assert vb.VLLMBackend.name == "vllm"
        assert "vllm" not in sys.modules
        print("ok")
    """)
    path = os.pathsep.join([str(tmp_path), *sys.path])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": path})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# ------------------------------------------------------------------------------------------ check_vllm
def test_cuda_available_without_torch(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    assert vb.cuda_available() is False


def _no_vllm(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a))


def test_check_vllm_without_vllm_is_one_line(monkeypatch):
    _no_vllm(monkeypatch)
    with pytest.raises(GenerationError) as err:
        vb.check_vllm()
    assert str(err.value) == MISSING


def test_constructing_without_vllm_fails_with_the_install_line(monkeypatch):
    _no_vllm(monkeypatch)
    with pytest.raises(GenerationError, match=r"^the vllm backend needs vllm and a CUDA GPU: pip install"):
        vb.VLLMBackend(LLMConfig(backend="vllm"))


@pytest.fixture
def fake_vllm_package(tmp_path, monkeypatch):
    """Install a `vllm` package of the given __init__ body and reported version for one test."""
    saved = sys.modules.pop("vllm", None)

    def install(body: str, version: str) -> None:
        (tmp_path / "vllm").mkdir()
        (tmp_path / "vllm" / "__init__.py").write_text(body)
        monkeypatch.syspath_prepend(str(tmp_path))
        from importlib import metadata

        real = metadata.version
        monkeypatch.setattr(metadata, "version", lambda name: version if name == "vllm" else real(name))

    yield install
    sys.modules.pop("vllm", None)
    if saved is not None:
        sys.modules["vllm"] = saved


def test_check_vllm_without_a_gpu(fake_vllm_package, monkeypatch):
    fake_vllm_package("", "0.10.2")
    monkeypatch.setattr(vb, "cuda_available", lambda: False)
    with pytest.raises(GenerationError) as err:
        vb.check_vllm()
    assert str(err.value) == ("the vllm backend needs vllm and a CUDA GPU: torch sees no CUDA device "
                              "(torch.cuda.is_available() is False)")


def test_check_vllm_rejects_versions_without_per_request_json(fake_vllm_package, monkeypatch):
    fake_vllm_package("", "0.6.2")
    monkeypatch.setattr(vb, "cuda_available", lambda: True)
    with pytest.raises(GenerationError) as err:
        vb.check_vllm()
    assert str(err.value) == ("the vllm backend needs vllm>=0.6.3 (per-request JSON decoding); found 0.6.2: "
                              "pip install -U 'vllm>=0.6.3'")


def test_check_vllm_reports_a_broken_install_in_one_line(fake_vllm_package, monkeypatch):
    fake_vllm_package("raise ImportError('libcudart.so.12: cannot open\\nmore')\n",
                       "0.33.0")
    monkeypatch.setattr(vb, "cuda_available", lambda: True)
    with pytest.raises(GenerationError) as err:
        vb.check_vllm()
    assert str(err.value) == ("the vllm backend needs vllm and a CUDA GPU: importing vllm failed "
                              "(ImportError: libcudart.so.12: cannot open)")


def test_check_vllm_passes_with_vllm_and_a_gpu(fake_vllm_package, monkeypatch):
    fake_vllm_package("", "0.11.0rc2")
    monkeypatch.setattr(vb, "cuda_available", lambda: True)
    vb.check_vllm()


@pytest.mark.parametrize("version, parsed", [("0.6.3", (0, 6, 3)), ("0.6.3.post1", (0, 6, 3)),
                                             ("0.10.1.1", (0, 10, 1)), ("0.11.0rc2", (0, 11, 0)),
                                             ("0.11.1.dev12+gabc", (0, 11, 1)), ("0.33.0", (0, 33, 0))])
def test_version_tuple(version, parsed):
    assert vb._version_tuple(version) == parsed


# ------------------------------------------------------------------------------ request building (pure)
def test_build_sampling_kwargs_is_exactly_the_request():
    req = prompt_req("x", seed=1234, max_tokens=40, temperature=0.3, top_p=0.8, stop=("\n", "###"))
    assert vb.build_sampling_kwargs(req) == dict(max_tokens=40, temperature=0.3, top_p=0.8, stop=["\n", "###"],
                                                 seed=1234)
    assert vb.build_sampling_kwargs(prompt_req("x"))["stop"] == []


@pytest.mark.parametrize("api, cls_name, field", [
    ("structured", "StructuredOutputsParams", "structured_outputs"),
    ("both", "StructuredOutputsParams", "structured_outputs"),  # 0.11: the new API, not the deprecated one
    ("guided", "GuidedDecodingParams", "guided_decoding"),
])
def test_structured_api_is_detected(api, cls_name, field):
    fake = FakeVLLM(api)
    found = vb._VLLMApi.from_module(fake)
    assert found.structured_cls is fake.classes[cls_name]
    assert found.structured_field == field
    structured = vb.build_structured(prompt_req("x", json_schema=SCHEMA), found)
    assert type(structured) is fake.classes[cls_name] and structured.json == SCHEMA
    params = vb.build_sampling_params(prompt_req("x", seed=5, json_schema=SCHEMA), found)
    assert params.kwargs == dict(max_tokens=64, temperature=0.7, top_p=0.95, stop=[], seed=5,
                                 **{field: fake.classes[cls_name](json=SCHEMA)})


def test_no_structured_api():
    found = vb._VLLMApi.from_module(FakeVLLM("none"))
    assert found.structured_cls is None and found.structured_field is None
    assert vb.build_structured(prompt_req("x"), found) is None
    assert "structured_outputs" not in vb.build_sampling_params(prompt_req("x"), found).kwargs
    with pytest.raises(GenerationError, match=r"vllm fake-none has no per-request JSON decoding"):
        vb.build_structured(prompt_req("x", json_schema=SCHEMA), found)


def test_request_errors_include_vllms_own_client_error():
    class VLLMClientError(Exception):
        pass

    fake = FakeVLLM()
    fake.exceptions = types.SimpleNamespace(VLLMClientError=VLLMClientError)
    assert vb._VLLMApi.from_module(fake).request_errors == (ValueError, VLLMClientError)
    assert vb._VLLMApi.from_module(FakeVLLM()).request_errors == (ValueError,)


def test_to_conversation():
    chat = GenerationRequest(messages=(("system", "Be brief."), ("user", "Hi")))
    assert vb.to_conversation(chat, chat_endpoint=False) == [{"role": "system", "content": "Be brief."},
                                                            {"role": "user", "content": "Hi"}]
    assert vb.to_conversation(GenerationRequest(prompt="p"), chat_endpoint=False) is None
    assert vb.to_conversation(GenerationRequest(prompt="p"), chat_endpoint=True) == [{"role": "user",
                                                                                      "content": "p"}]


# -------------------------------------------------------------------------------------- the backend
def test_llm_is_built_from_the_config():
    fake = FakeVLLM()
    backend = make_backend(fake, model="Qwen/Qwen2.5-0.5B-Instruct", endpoint="completions",
                           tensor_parallel_size=2, enable_prefix_caching=False, gpu_memory_utilization=0.75)
    assert fake.calls == [("LLM", dict(model="Qwen/Qwen2.5-0.5B-Instruct", tensor_parallel_size=2,
                                       enable_prefix_caching=False, gpu_memory_utilization=0.75, seed=0))]
    assert backend.name == "vllm"
    make_backend(fake)
    assert fake.calls[-1] == ("LLM", dict(model="org/base-model", tensor_parallel_size=1,
                                          enable_prefix_caching=True, gpu_memory_utilization=0.9, seed=0))


def test_prompts_are_one_batched_generate_call_in_order():
    fake = FakeVLLM()
    backend = make_backend(fake)
    reqs = [prompt_req(f"p{i}", seed=100 + i, stop=("\n",), max_tokens=48) for i in range(5)]
    results = backend.generate(reqs)
    assert fake.of("chat") == []
    [(kind, prompts, params, use_tqdm)] = fake.of("generate")
    assert prompts == [r.prompt for r in reqs]
    assert params == [dict(max_tokens=48, temperature=0.7, top_p=0.95, stop=["\n"], seed=100 + i)
                      for i in range(5)]
    assert use_tqdm is False
    assert [r.text for r in results] == [f" answer to p{i}" for i in range(5)]
    assert all(r.tokens_in == 4 and r.tokens_out == 3 and r.finish_reason == "stop" and r.error is None
               for r in results)
    assert results[0].extra == {"prefix_cached_tokens": 2}


def test_json_schema_requests_are_guided(monkeypatch):
    for api, field, cls_name in [("structured", "structured_outputs", "StructuredOutputsParams"),
                                 ("guided", "guided_decoding", "GuidedDecodingParams")]:
        fake = FakeVLLM(api)
        results = make_backend(fake).generate([prompt_req("a", seed=1, json_schema=SCHEMA), prompt_req("b", seed=2)])
        [(_, _, params, _)] = fake.of("generate")
        assert params[0] == dict(max_tokens=64, temperature=0.7, top_p=0.95, stop=[], seed=1,
                                 **{field: fake.classes[cls_name](json=SCHEMA)})
        assert params[1] == dict(max_tokens=64, temperature=0.7, top_p=0.95, stop=[], seed=2)
        assert results[0].extra["structured"] == "json_schema" and "structured" not in results[1].extra


def test_messages_are_one_batched_chat_call_and_order_is_kept():
    fake = FakeVLLM()
    backend = make_backend(fake)
    reqs = [
        GenerationRequest(messages=(("user", "m0"),), seed=10),
        prompt_req("p1", seed=11),
        GenerationRequest(messages=(("system", "s"), ("user", "m2")), seed=12, stop=("}",)),
        prompt_req("p3", seed=13),
    ]
    results = backend.generate(reqs)
    [(_, prompts, gen_params, _)] = fake.of("generate")
    [(_, conversations, chat_params, use_tqdm)] = fake.of("chat")
    assert prompts == [reqs[1].prompt, reqs[3].prompt]
    assert [p["seed"] for p in gen_params] == [11, 13]
    assert conversations == [[{"role": "user", "content": "m0"}],
                             [{"role": "system", "content": "s"}, {"role": "user", "content": "m2"}]]
    assert chat_params == [dict(max_tokens=64, temperature=0.7, top_p=0.95, stop=[], seed=10),
                           dict(max_tokens=64, temperature=0.7, top_p=0.95, stop=["}"], seed=12)]
    assert use_tqdm is False
    assert [r.text for r in results] == [" answer to m0", " answer to p1", " answer to m2", " answer to p3"]


def test_chat_endpoint_sends_prompts_through_the_chat_template():
    fake = FakeVLLM()
    backend = make_backend(fake, model="Qwen/Qwen2.5-0.5B-Instruct")  # endpoint auto + instruct name: chat
    backend.generate([prompt_req("p0"), prompt_req("p1")])
    assert fake.of("generate") == []
    [(_, conversations, _, _)] = fake.of("chat")
    assert conversations == [[{"role": "user", "content": prompt_req(f"p{i}").prompt}] for i in range(2)]
    assert backend.model_id.endswith(":prompts-as-chat")
    assert not make_backend(FakeVLLM(), model="Qwen/Qwen2.5-0.5B-Instruct",
                            endpoint="completions").model_id.endswith(":prompts-as-chat")


def test_empty_batch_makes_no_call():
    fake = FakeVLLM()
    assert make_backend(fake).generate([]) == []
    assert [c[0] for c in fake.calls] == ["LLM"]


@pytest.mark.parametrize("stale_queue", [False, True])
def test_a_rejected_request_fails_alone(stale_queue):
    fake = FakeVLLM(reject="TOO-LONG", stale_queue=stale_queue)
    reqs = [prompt_req("p0", seed=1), prompt_req("p1 TOO-LONG", seed=2), prompt_req("p2", seed=3)]
    results = make_backend(fake).generate(reqs)
    generate_calls = fake.of("generate")
    assert [c[1] for c in generate_calls] == [[r.prompt for r in reqs]] + [[r.prompt] for r in reqs]
    assert [c[2][0]["seed"] for c in generate_calls[1:]] == [1, 2, 3]
    assert [r.text for r in results] == [" answer to p0", "", " answer to p2"]
    assert results[1].error == ("vllm: The decoder prompt (length 99999) is longer than the maximum model "
                                "length of 32768.")
    assert results[0].error is None and results[2].error is None


def test_output_count_mismatch_is_an_error():
    fake = FakeVLLM()
    backend = make_backend(fake)
    backend.llm.generate = lambda prompts, params, use_tqdm: []
    with pytest.raises(GenerationError, match="vllm returned 0 outputs for 2 requests"):
        backend.generate([prompt_req("a"), prompt_req("b")])


def test_finish_reason_none_and_missing_counts():
    completion = types.SimpleNamespace(text="x", token_ids=None, finish_reason=None)
    out = types.SimpleNamespace(prompt_token_ids=None, outputs=[completion])  # no num_cached_tokens (< 0.7)
    result = vb.to_result(out, structured=False)
    assert (result.text, result.tokens_in, result.tokens_out, result.finish_reason, result.extra) == \
        ("x", 0, 0, "", {})


# ------------------------------------------------------------------------------------------ model id
def test_model_identity_pins_the_hub_commit(tmp_path):
    snap = tmp_path / "models--org--tiny" / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (tmp_path / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "models--org--tiny" / "refs" / "main").write_text("0123abcd")
    assert vb.model_identity("org/tiny", cache_dir=str(tmp_path)) == "org/tiny@0123abcd"
    assert vb.model_identity("org/not-downloaded", cache_dir=str(tmp_path)) == "org/not-downloaded"


def test_model_identity_of_a_local_folder(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"x" * 10)
    (tmp_path / "notes.txt").write_text("ignored")
    assert vb.model_identity(str(tmp_path)) == f"{tmp_path.resolve()}:12"


def test_backend_model_id_is_prefixed():
    assert make_backend(FakeVLLM(), model="org/never-downloaded-xyz").model_id == "vllm:org/never-downloaded-xyz"


# ------------------------------------------------------------------------------- against real vLLM
def _param_names(obj) -> set[str]:
    try:
        return set(inspect.signature(obj).parameters)
    except (TypeError, ValueError):  # a msgspec Struct without a signature: its fields are its keywords
        return set(getattr(obj, "__struct_fields__", ()))


def test_real_vllm_signatures():
    """The names this backend passes, checked against the installed vLLM (skipped where it is absent)."""
    vllm = pytest.importorskip("vllm")
    api = vb._VLLMApi.load()
    req = prompt_req("x", stop=("\n",), json_schema=SCHEMA)
    sampling = _param_names(vllm.SamplingParams)
    assert set(vb.build_sampling_kwargs(req)) <= sampling
    assert api.structured_field in sampling
    assert "json" in _param_names(api.structured_cls)
    # Building the real objects (no GPU needed) catches value types the names cannot.
    params = vb.build_sampling_params(req, api)
    assert getattr(params, api.structured_field).json == SCHEMA
    assert params.seed == 0 and list(params.stop) == ["\n"]

    init = inspect.signature(vllm.LLM.__init__).parameters
    assert {"model", "tensor_parallel_size", "gpu_memory_utilization", "seed"} <= set(init)
    if "enable_prefix_caching" not in init:  # it reaches EngineArgs through **kwargs
        from vllm.engine.arg_utils import EngineArgs

        assert any(p.kind is p.VAR_KEYWORD for p in init.values())
        assert "enable_prefix_caching" in _param_names(EngineArgs)
    for method in ("generate", "chat"):
        params_ = list(inspect.signature(getattr(vllm.LLM, method)).parameters)
        assert params_[2] == "sampling_params" and "use_tqdm" in params_, (method, params_)


# ------------------------------------------------------------------------------ benchmarks/vllm_build.sh
def test_vllm_build_script_writes_a_valid_pack_and_reaches_the_backend_check(tmp_path):
    """Without a GPU the script must get as far as build-bench's backend check: its pack is valid YAML that
    DomainPack accepts, and the CLI takes its arguments. On a GPU box this would start a real build."""
    if importlib.util.find_spec("vllm") is not None and vb.cuda_available():
        pytest.skip("vllm and a GPU are present: the script would run a real build")
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "vllm_build.sh"
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"_id": "d1", "text": "The committee held the policy rate at 4 percent."}\n')
    env = {**os.environ, "SKIP_INSTALL": "1", "PYTHON": sys.executable, "OUT": str(tmp_path / "run")}
    out = subprocess.run(["bash", str(script), "org/some-model", str(docs), "--queries-per-chunk", "1"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 4, out.stderr
    assert "build-bench: error: the vllm backend needs vllm and a CUDA GPU" in out.stderr
    assert "with org/some-model on vLLM" in out.stdout
