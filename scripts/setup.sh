#!/usr/bin/env bash
# Create .venv (if missing) and install the project into it; extras as arguments: dev, train.
# torch is pinned to 2.13.0 first: on CPU machines that is the local CPU build, and it keeps
# pip from resolving the project's torch range to a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=$(IFS=,; echo "$*")
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
stamp=".venv/.installed-${extras:-base}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q "torch==2.13.0"
    .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
    touch "$stamp"
fi
