"""The real LLM backends, started once per session: transformers, vLLM, and `vllm serve`.

Both run the packaged SmolLM2-135M-Instruct on CPU with vLLM's CPU build. A backend that cannot
start here skips its tests with the reason it gave, so a machine without vLLM shows it.
"""

from __future__ import annotations

import contextlib
import os
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
from engine.generators.models import DEFAULT_EXPORT_DIR, ModelUnavailable, resolve_model_dir
from engine.generators.openai import OpenAIGenerator
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


@pytest.fixture(scope="session")
def smollm_dir() -> Path:
    """The packaged SmolLM2-135M-Instruct as a model folder (exported once)."""
    try:
        return resolve_model_dir(None, ROOT / DEFAULT_EXPORT_DIR)
    except ModelUnavailable as error:
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def lora_adapter(tmp_path_factory: pytest.TempPathFactory, smollm_dir: Path) -> Path:
    """A PEFT LoRA adapter (r=8 on q_proj/v_proj) with random weights that change the output."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import peft
            import torch
            from transformers import AutoModelForCausalLM
    except ImportError as error:
        pytest.skip(f"peft is needed to build a LoRA adapter: {error}")
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
    for key, value in VLLM_CPU_ENV.items():
        os.environ.setdefault(key, value)
    config = GeneratorConfig(
        backend="vllm",
        model_path=smollm_dir,
        max_model_len=MAX_MODEL_LEN,
        max_lora_rank=LORA_RANK,
    )
    try:
        # vLLM's import chain warns about deprecated torch names; not this project's concern.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from engine.generators.vllm import VllmGenerator

            generator = VllmGenerator(config)
    except Exception as error:
        pytest.skip(f"vllm cannot start here: {type(error).__name__}: {error}")
    yield generator
    generator.close()


@pytest.fixture(scope="session")
def transformers_generator(smollm_dir: Path) -> TransformersGenerator:
    """One transformers model on CPU for the whole session, on the base model."""
    from engine.generators.transformers import TransformersGenerator

    try:
        return TransformersGenerator(
            GeneratorConfig(backend="transformers", model_path=smollm_dir, device="cpu")
        )
    except Exception as error:
        pytest.skip(f"transformers cannot load the model: {type(error).__name__}: {error}")


@pytest.fixture(scope="session")
def openai_server(
    tmp_path_factory: pytest.TempPathFactory, smollm_dir: Path, lora_adapter: Path
) -> Iterator[str]:
    """A real `vllm serve` (the module entry point) on a free local port; its base URL."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "vllm-serve.log"
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(smollm_dir),
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
    env = {**os.environ, **VLLM_CPU_ENV, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_until_serving(process, url, log_path)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def openai_generator(openai_server: str) -> OpenAIGenerator:
    """The openai backend against the session's real server, on the base model."""
    return OpenAIGenerator(GeneratorConfig(backend="openai", base_urls=(openai_server,)))


def _wait_until_serving(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.skip(f"vllm serve exited with {process.returncode}: {_tail(log_path)}")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(f"{url}/v1/models", timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.5)
    pytest.skip(f"vllm serve not ready after {SERVER_START_S:.0f} s: {_tail(log_path)}")


def _tail(log_path: Path, lines: int = 15) -> str:
    text = log_path.read_text(errors="replace").strip().splitlines()
    return "\n".join(text[-lines:])
