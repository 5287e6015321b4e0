"""Start real servers for tests: `python -m llama_cpp.server` on 127.0.0.1 with the GGUF models from PyPI.

One server holds both models under the aliases the local backend registers ("gemma3-270m",
"smollm2-135m-instruct"). llama_cpp.server keeps one model in memory and swaps on the first request naming
the other (a reload of well under a second for these sizes), and serves one request at a time.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import httpx

GEMMA = "gemma3-270m"
SMOLLM2 = "smollm2-135m-instruct"


def free_port() -> int:
    """A port that was free a moment ago; the OS may hand it out again, which is fine for tests."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def model_paths() -> dict[str, Path]:
    """Alias -> GGUF path of the two test models, located the same way the local backend does."""
    from buildbench.generators.local import MODELS

    return {alias: MODELS[alias].locate() for alias in (GEMMA, SMOLLM2)}


@dataclass
class LlamaServer:
    base_url: str  # the /v1 address
    models: list[str]
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _wait_ready(server: LlamaServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"llama_cpp.server exited with code {server.process.returncode} before it was ready:\n"
                f"{server.log_tail()}"
            )
        try:
            resp = httpx.get(f"{server.base_url}/models", timeout=2.0)
            if resp.status_code == 200:
                return
            last = f"HTTP {resp.status_code}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.25)
    raise TimeoutError(f"llama_cpp.server not ready after {timeout:.0f}s ({last}):\n{server.log_tail()}")


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM if the test process dies without running its cleanup (kill -9)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@contextmanager
def llama_cpp_server(
    *,
    n_ctx: int = 2048,
    threads: int = 1,
    startup_timeout: float = 120.0,
    extra_settings: Optional[dict] = None,
) -> Iterator[LlamaServer]:
    """Run `python -m llama_cpp.server --config_file ...` serving Gemma 3 270M and SmolLM2-135M-Instruct.

    threads: llama.cpp threads per model; 1 keeps a shared 2-core machine usable (both models still write
    tens of tokens per second). extra_settings: server-level keys of llama_cpp.server's ConfigFileSettings
    (e.g. {"api_key": ...}). Yields once GET /v1/models answers 200; the process is terminated on exit.
    """
    paths = model_paths()
    port = free_port()
    common = {"n_ctx": n_ctx, "n_threads": threads, "n_threads_batch": threads, "verbose": False}
    # chat_format stays unset for SmolLM2: the server then applies the chat template embedded in the GGUF
    # (ChatML with SmolLM's default system prompt), the same one the local backend uses.
    config = {
        "host": "127.0.0.1",
        "port": port,
        **(extra_settings or {}),
        "models": [{"model": str(path), "model_alias": alias, **common} for alias, path in paths.items()],
    }
    workdir = Path(tempfile.mkdtemp(prefix="llama-server-"))
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config, indent=2))
    log_path = workdir / "server.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CONFIG_FILE", None)  # llama_cpp.server prefers this variable over --config_file
    env.pop("PORT", None)
    env.pop("HOST", None)
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--config_file", str(config_path)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
    server = LlamaServer(f"http://127.0.0.1:{port}/v1", list(paths), process, log_path)
    try:
        _wait_ready(server, startup_timeout)
        yield server
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen) -> None:
    """Terminate a server subprocess, killing it if it does not exit within 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
