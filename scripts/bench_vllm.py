"""Measure the vLLM backends: start-up time and tokens/s for one stream and for concurrent ones.

    python scripts/bench_vllm.py [--backend vllm|openai|both] [--tokens 64] [--streams 4]

`vllm` starts the in-process engine (VllmGenerator); `openai` starts a local `vllm serve`
replica (the module entry point, which also works with the CPU build) and streams from it
through OpenAIGenerator. Both run the configured model (default: the packaged SmolLM2-135M).
Tokens are counted by re-tokenizing the streamed text with the model's tokenizer. The last
stdout line is one JSON object with the figures per backend.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from _cli import add_common, setup

from engine.generators import GenerationRequest, Generator, GeneratorConfig, OpenAIGenerator
from engine.generators.models import resolve_model_dir
from retrieval import FaqEntry

SOURCE = FaqEntry(
    "returns",
    "How do I return an item?",
    "Pack the item in its original box with the receipt, print the return label from your "
    "account page, and drop the parcel at any post office within 30 days. Refunds reach your "
    "card within 5 working days after the warehouse has checked the item.",
)
QUESTION = "Explain step by step, in detail, how I return an item and when I get my money."
CPU_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1"}


async def run_streams(generator: Generator, streams: int, tokens: int) -> tuple[list[str], float]:
    """Answer `streams` requests at once; their texts and the wall time in seconds."""
    request = GenerationRequest(QUESTION, (SOURCE,), max_tokens=tokens)

    async def one() -> str:
        return "".join([piece async for piece in generator.stream(request)])

    start = time.perf_counter()
    texts = await asyncio.gather(*(one() for _ in range(streams)))
    return list(texts), time.perf_counter() - start


async def first_token_ms(generator: Generator) -> float:
    start = time.perf_counter()
    stream = generator.stream(GenerationRequest(QUESTION, (SOURCE,), max_tokens=8))
    async with contextlib.aclosing(stream):
        await anext(stream)
    return (time.perf_counter() - start) * 1000


async def measure(
    generator: Generator, streams: int, tokens: int, count: Callable[[str], int]
) -> dict[str, Any]:
    await run_streams(generator, 1, tokens)  # warm-up
    single = [await run_streams(generator, 1, tokens) for _ in range(3)]
    batch = [await run_streams(generator, streams, tokens) for _ in range(2)]
    ttft = [await first_token_ms(generator) for _ in range(3)]
    single_rates = [sum(map(count, texts)) / seconds for texts, seconds in single]
    batch_rates = [sum(map(count, texts)) / seconds for texts, seconds in batch]
    return {
        "tokens_per_stream": statistics.mean(count(t) for texts, _ in batch for t in texts),
        "single_tok_s": round(statistics.mean(single_rates), 1),
        f"concurrent{streams}_tok_s": round(statistics.mean(batch_rates), 1),
        "first_token_ms": round(statistics.median(ttft), 1),
    }


def bench_in_process(
    config: GeneratorConfig, streams: int, tokens: int, count: Callable[[str], int]
) -> dict[str, Any]:
    from engine.generators.vllm import VllmGenerator

    start = time.perf_counter()
    generator = VllmGenerator(replace(config, backend="vllm"))
    startup = time.perf_counter() - start
    try:
        figures = asyncio.run(measure(generator, streams, tokens, count))
    finally:
        generator.close()
    return {"startup_s": round(startup, 1), **figures}


def bench_server(
    model_dir: Path, config: GeneratorConfig, streams: int, tokens: int, count: Callable[[str], int]
) -> dict[str, Any]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
        "--host", "127.0.0.1", "--port", str(port), "--enforce-eager",
        "--max-model-len", str(config.max_model_len),
    ]  # fmt: skip
    env = {**os.environ, **CPU_ENV}
    start = time.perf_counter()
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            if server.poll() is not None:
                error = (
                    server.stderr.read().decode(errors="replace")[-2000:] if server.stderr else ""
                )
                sys.exit(f"vllm serve exited with {server.returncode}: {error}")
            try:
                with urllib.request.urlopen(f"{url}/v1/models", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
        startup = time.perf_counter() - start
        generator = OpenAIGenerator(replace(config, backend="openai", base_urls=(url,)))
        figures = asyncio.run(measure(generator, streams, tokens, count))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"startup_s": round(startup, 1), **figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["vllm", "openai", "both"], default="both")
    parser.add_argument("--tokens", type=int, default=64, help="max tokens per answer")
    parser.add_argument("--streams", type=int, default=4, help="concurrent streams")
    parser.add_argument("--max-model-len", type=int, default=512)
    add_common(parser)
    args = parser.parse_args()
    settings = setup(args)
    config = replace(settings.generator, max_model_len=args.max_model_len, adapter_path=None)
    model_dir = resolve_model_dir(config.model_path, config.export_dir)
    config = replace(config, model_path=model_dir)

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    result: dict[str, Any] = {"model": model_dir.name, "cpus": os.cpu_count()}
    if args.backend in ("vllm", "both"):
        result["vllm"] = bench_in_process(config, args.streams, args.tokens, count)
        print(f"vllm: {result['vllm']}", file=sys.stderr)
    if args.backend in ("openai", "both"):
        result["openai"] = bench_server(model_dir, config, args.streams, args.tokens, count)
        print(f"openai: {result['openai']}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
