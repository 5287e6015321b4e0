#!/usr/bin/env bash
# Build a small benchmark on a CUDA GPU, with vLLM writing the queries in this process.
#
#   bash benchmarks/vllm_build.sh [MODEL] [DOCS] [build-bench options ...]
#
#   MODEL  a Hugging Face model id or local folder vLLM can load (default Qwen/Qwen2.5-0.5B-Instruct)
#   DOCS   files, folders, globs or hf://datasets/NAME to build from, as build-bench --docs takes them
#          (default ../shared/data/fomc/passages.jsonl beside the repo)
#   any further arguments go to build-bench as they are, e.g. --queries-per-chunk 3
#
# Environment: OUT (run directory, default /tmp/vllm-build), MAX_DOCS (default 50), PYTHON (default python),
# SKIP_INSTALL=1 to use the packages already installed.
#
# It installs buildbench with the gpu extra (vLLM, which brings its own CUDA build of torch) and the eval
# extra (the evaluation stage and the round-trip filter's retrievers). Use a fresh virtualenv, and do not
# pass the repo's constraints.txt: it pins the CPU torch that vLLM replaces.
#
# The query writer is the bundled finance pack with generator.backend=vllm and the model set, written to a
# temporary pack file. Rerunning the same command resumes the run in OUT; cached LLM calls are not repeated.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODEL="${1:-Qwen/Qwen2.5-0.5B-Instruct}"
DOCS="${2:-$REPO/../shared/data/fomc/passages.jsonl}"
OUT="${OUT:-/tmp/vllm-build}"
MAX_DOCS="${MAX_DOCS:-50}"
PYTHON="${PYTHON:-python}"

# Only the default is checked here: DOCS may also be a glob or hf://datasets/NAME, which build-bench resolves.
if [[ $# -lt 2 && ! -e "$DOCS" ]]; then
    echo "vllm_build.sh: no documents at $DOCS (pass DOCS as the second argument)" >&2
    exit 2
fi
shift $(( $# < 2 ? $# : 2 ))

if [[ "${SKIP_INSTALL:-0}" != 1 ]]; then
    "$PYTHON" -m pip install -e "$REPO[gpu,eval]"
fi

PACK="$(mktemp -t buildbench-vllm-XXXXXX.yaml)"
trap 'rm -f "$PACK"' EXIT  # the run's manifest.json keeps the whole config

# A user's pack must be a full DomainPack (unknown keys are rejected), so start from the bundled one.
# endpoint=completions: the few-shot InPars prompt goes to LLM.generate as raw text, which instruct models
# continue well; "auto" would wrap it in the chat template because the model name says "Instruct".
"$PYTHON" - "$MODEL" "$PACK" <<'PY'
import sys

import yaml

from buildbench.config import DOMAINS_DIR, DomainPack

model, path = sys.argv[1], sys.argv[2]
raw = yaml.safe_load((DOMAINS_DIR / "finance.yaml").read_text(encoding="utf-8"))
raw.setdefault("generator", {}).update(backend="vllm", model=model, endpoint="completions")
DomainPack.model_validate(raw)  # fail here, before installing models or reading documents
with open(path, "w", encoding="utf-8") as fh:
    yaml.safe_dump(raw, fh, sort_keys=False, allow_unicode=True)
PY

echo "vllm_build.sh: building from $DOCS (at most $MAX_DOCS documents) with $MODEL on vLLM into $OUT"
"$PYTHON" -m buildbench.cli --domain "$PACK" --docs "$DOCS" --max-docs "$MAX_DOCS" --out "$OUT" "$@"

# build-bench printed its summary above; add what matters on a GPU: generation throughput. The report's
# "llm" section is printed as it is, so this keeps working when the report gains fields.
"$PYTHON" - "$OUT/report.json" <<'PY'
import json
import sys

report = json.load(open(sys.argv[1], encoding="utf-8"))
print(f"\nvLLM run: {report.get('wall_seconds')}s wall")
print("llm: " + ", ".join(f"{k}={v}" for k, v in sorted(report.get("llm", {}).items())))
gen = report.get("stages", {}).get("generate_queries", {}).get("this_run", {})
stats, seconds = gen.get("stats", {}), gen.get("seconds") or 0
calls = stats.get("this_run.llm.calls", stats.get("llm.calls", 0))
tokens_out = stats.get("this_run.llm.tokens_out", stats.get("llm.tokens_out", 0))
if seconds and calls:
    print(f"generate_queries: {calls} calls in {seconds:.1f}s ({calls / seconds:.1f} calls/s, "
          f"{tokens_out / seconds:.0f} output tokens/s)")
print(f"report: {sys.argv[1]}")
PY
