#!/usr/bin/env bash
# Install the project, import the bundled sample knowledge base, and chat in the terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python scripts/chat.py --import examples/kb --tune-queries examples/queries.jsonl "$@"
