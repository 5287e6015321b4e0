#!/usr/bin/env bash
# Regenerate requirements.lock: an exact version of every package that `pip install -e '.[all,dev]'` installs
# (extras local, eval, openai, report, ray and dev; not gpu), resolved by uv for CPython 3.11 on x86_64 Linux under
# the pins of constraints.txt. README's install command uses it as pip's constraints file.
#
#   scripts/lock.sh             keep the pins already in the lock where pyproject.toml still allows them
#   scripts/lock.sh --upgrade   move every package to the newest release pyproject.toml allows
#
# tests/test_lock.py fails when pyproject.toml and the lock disagree; rerun this after editing dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v uv >/dev/null || { echo "scripts/lock.sh needs uv (pip install uv)" >&2; exit 1; }
uv pip compile pyproject.toml \
    --extra local --extra eval --extra openai --extra report --extra ray --extra dev \
    -c constraints.txt \
    --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
    -o requirements.lock "$@"
