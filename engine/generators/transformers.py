"""A causal LM run by transformers in this process, on CPU or GPU, with its chat template.

`model.generate` runs in a worker thread per request; transformers' streamer decodes the new
tokens into text pieces there and hands them to the caller's loop through an `asyncio.Queue`.
Closing the stream early raises a flag that a stopping criterion checks after every token, so
the thread ends within one token. A LoRA adapter is merged into its own copy of the model:
switching adapters builds a new copy and swaps the reference, so a request already running
finishes on the model it started with.

The registry imports this module only when the backend is chosen; `peft` (the `train` extra)
only when an adapter is loaded.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import StoppingCriteria, TextStreamer

from engine.generators.base import GenerationRequest, GeneratorConfig
from engine.generators.models import ModelUnavailable, resolve_model_dir
from engine.generators.prompt import Message, build_messages

log = logging.getLogger(__name__)

_END = object()


@dataclass(frozen=True, slots=True)
class _Loaded:
    """One model copy (the base with an adapter merged in, or the base alone) and its name."""

    model: Any
    adapter_name: str


class TransformersGenerator:
    """Streams answers from a local causal LM; the model loads at construction.

    `config.adapter_path` (a PEFT LoRA folder) is applied from the start; `load_adapter`
    switches to a new one for the requests that start afterwards.
    """

    def __init__(self, config: GeneratorConfig) -> None:
        self._config = config
        self._model_dir = resolve_model_dir(config.model_path, config.export_dir)
        self._device = _pick_device(config.device)
        # bf16 halves memory and is fast on a GPU; CPU kernels are quickest in float32.
        self._dtype = torch.bfloat16 if self._device == "cuda" else torch.float32
        self._tokenizer: Any = transformers.AutoTokenizer.from_pretrained(str(self._model_dir))
        self._loaded = self._load(config.adapter_path)
        self._workers: set[threading.Thread] = set()
        self._workers_lock = threading.Lock()

    @property
    def name(self) -> str:
        base = f"transformers:{self._model_dir.name}"
        adapter = self._loaded.adapter_name
        return f"{base}+{adapter}" if adapter else base

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer, e.g. to count the tokens of an answer."""
        return self._tokenizer

    def unfinished_requests(self) -> int:
        """Generation threads still running; zero when every stream finished or was closed."""
        with self._workers_lock:
            return len(self._workers)

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[str, None]:
        loaded = self._loaded  # taken now: a later load_adapter does not touch this request
        inputs = self._encode(build_messages(request))
        caller = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()

        def emit(item: object) -> None:
            # The caller's loop may already be gone when a late piece arrives.
            if not caller.is_closed():
                caller.call_soon_threadsafe(queue.put_nowait, item)

        worker = threading.Thread(
            target=self._generate,
            args=(loaded.model, inputs, request.max_tokens, stop, emit),
            name="transformers-generate",
            daemon=True,
        )
        with self._workers_lock:
            self._workers.add(worker)
        worker.start()
        cut = _StopCut(request.stop)
        ended = False
        try:
            while (item := await queue.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, str)
                text, stopped = cut.feed(item)
                if text:
                    yield text
                if stopped:
                    break
            else:
                ended = True
                if tail := cut.flush():
                    yield tail
        finally:
            stop.set()
            if not ended:
                # Wait for the thread to see the flag, so a closed stream holds no compute.
                while await queue.get() is not _END:
                    pass

    async def load_adapter(self, path: Path | None) -> None:
        """Use the LoRA adapter at `path` (None: the base model) for new requests.

        Requests already running finish with the model they started with.
        """
        self._loaded = await asyncio.to_thread(self._load, path)

    def choose(self, messages: Sequence[Message], options: Sequence[str]) -> str:
        """The option whose text is most likely as the model's reply to `messages`.

        Scores the whole of each option (summed token log-probabilities after the prompt), so
        the answer is always exactly one of `options`. Blocks; call it from a worker thread.
        """
        if not options:
            raise ValueError("choose needs at least one option")
        model = self._loaded.model
        prompt = self._encode(messages)[0].tolist()
        best, best_score = options[0], float("-inf")
        with torch.inference_mode():
            for option in options:
                ids = self._tokenizer(option, add_special_tokens=False)["input_ids"]
                full = torch.tensor([prompt + ids], device=self._device)
                logits = model(input_ids=full).logits[0, len(prompt) - 1 : -1].float()
                logprobs = torch.log_softmax(logits, dim=-1)
                score = float(logprobs[torch.arange(len(ids)), torch.tensor(ids)].sum())
                if score > best_score:
                    best, best_score = option, score
        return best

    def _encode(self, messages: Sequence[Message]) -> Any:
        ids = self._tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"]
        return ids.to(self._device)

    def _generate(
        self,
        model: Any,
        inputs: Any,
        max_tokens: int,
        stop: threading.Event,
        emit: Callable[[object], None],
    ) -> None:
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": self._config.temperature}
            if self._config.temperature > 0
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        try:
            streamer = _CallbackStreamer(self._tokenizer, emit)
            flag = _FlagCriteria(stop)
            model.generate(
                input_ids=inputs,
                attention_mask=torch.ones_like(inputs),
                max_new_tokens=max_tokens,
                streamer=streamer,
                stopping_criteria=transformers.StoppingCriteriaList([flag]),
                pad_token_id=self._tokenizer.eos_token_id,
                **sampling,
            )
        except Exception as error:
            emit(error)
        finally:
            with self._workers_lock:
                self._workers.discard(threading.current_thread())
            emit(_END)

    def _load(self, adapter: Path | None) -> _Loaded:
        model: Any = transformers.AutoModelForCausalLM.from_pretrained(
            str(self._model_dir), dtype=self._dtype
        )
        name = ""
        if adapter is not None:
            if not (adapter / "adapter_config.json").is_file():
                raise ModelUnavailable(
                    f"{adapter} is not a LoRA adapter folder (no adapter_config.json)"
                )
            try:
                import peft
            except ImportError as error:
                raise ModelUnavailable(
                    "peft is not installed: pip install -e '.[train]'"
                ) from error
            # Merged, the adapter costs nothing per token; the copy is this adapter's alone.
            model = peft.PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
            name = adapter.name
        model.to(self._device).eval()
        log.info("transformers model=%s adapter=%s device=%s", self._model_dir, name, self._device)
        return _Loaded(model, name)


class _StopCut:
    """Cuts streamed text at the first stop string, holding back a tail that may start one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [s for s in stops if s]
        self._pending = ""

    def feed(self, piece: str) -> tuple[str, bool]:
        """The text safe to emit now, and whether a stop string ended the answer."""
        self._pending += piece
        found = [i for s in self._stops if (i := self._pending.find(s)) >= 0]
        if found:
            text, self._pending = self._pending[: min(found)], ""
            return text, True
        hold = max(
            (n for s in self._stops for n in range(1, len(s)) if self._pending.endswith(s[:n])),
            default=0,
        )
        text = self._pending[: len(self._pending) - hold]
        self._pending = self._pending[len(text) :]
        return text, False

    def flush(self) -> str:
        text, self._pending = self._pending, ""
        return text


class _CallbackStreamer(TextStreamer):
    """transformers' streamer decoding (as in TextIteratorStreamer), handing pieces to `emit`."""

    def __init__(self, tokenizer: Any, emit: Callable[[object], None]) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self._emit = emit

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self._emit(text)


class _FlagCriteria(StoppingCriteria):
    """Ends generation at the next token once `stop` is set (the stream was closed)."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        return torch.full(  # type: ignore[return-value]
            (input_ids.shape[0],), self._stop.is_set(), dtype=torch.bool, device=input_ids.device
        )


def _pick_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailable("device 'cuda' asked for but torch sees no GPU; use 'auto' or 'cpu'")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; use auto, cpu or cuda")
    return device
