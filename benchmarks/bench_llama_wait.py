"""How llama.cpp's OpenMP threads should wait: seconds for the same LLM calls under each waiting setting, on
quiet cores, beside a busy process and beside another llama.cpp process. Each run is its own process, since
OpenMP reads the setting when the library loads.

    python benchmarks/bench_llama_wait.py               # 40 calls of Gemma 3 270M per run (~10 min in all)
    python benchmarks/bench_llama_wait.py --calls 16 --settings passive spin500

The calls are query-writing prompts over the bundled sample corpus's passages, greedy, 24 tokens each.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

SETTINGS = {
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "spin500": {"GOMP_SPINCOUNT": "500"},  # the local engine's default
    "spin2000": {"GOMP_SPINCOUNT": "2000"},
    "openmp-default": {"GOMP_SPINCOUNT": "300000"},  # what libgomp does when nothing is set
}


def calls(n: int) -> None:
    """The measured work, run in a child process: ``n`` calls, 8 per batch; prints the seconds."""
    from pathlib import Path

    import buildbench
    from buildbench.generators.base import GenerationRequest
    from buildbench.generators.local import LocalBackend

    samples = Path(buildbench.__file__).parent / "domains" / "samples" / "finance"
    texts = [p.read_text(encoding="utf-8") for p in sorted(samples.iterdir()) if p.suffix in (".txt", ".md")]
    reqs = [GenerationRequest(prompt=f"Passage: {texts[i % len(texts)][:1200]}\nA search query for this passage:",
                              max_tokens=24, temperature=0.0, stop=("\n",)) for i in range(n)]
    backend = LocalBackend("gemma3-270m")
    t0 = time.perf_counter()
    for i in range(0, n, 8):
        backend.generate(reqs[i : i + 8])
    print(f"{time.perf_counter() - t0:.1f}")


def child(setting: str, n: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(SETTINGS[setting])
    return subprocess.Popen([sys.executable, __file__, "--child", str(n)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def seconds(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate()
    return out.strip().splitlines()[-1] if out.strip() else "failed"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        calls(args.child)
        return
    print(f"{'waiting':16} {'quiet s':>9} {'busy s':>9} {'2x llama s':>11}")
    for name in args.settings:
        quiet = seconds(child(name, args.calls))
        busy_proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            busy = seconds(child(name, args.calls))
        finally:
            busy_proc.kill()
        a, b = child(name, args.calls), child(name, args.calls)
        pair = max(float(seconds(a)), float(seconds(b)))
        print(f"{name:16} {quiet:>9} {busy:>9} {pair:>11.1f}")


if __name__ == "__main__":
    main()
