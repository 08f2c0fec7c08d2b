"""The official `openai` client against one or several `vllm serve` replicas.

A conversation goes to the replica its id hashes to while that one is healthy (replicas.py), so
vLLM's prefix cache holds its earlier turns. Before an answer starts, a failed request is retried
on the same replica with exponential backoff (connection errors, timeouts, 5xx and 429), then the
next replica in the conversation's order is asked. When a replica fails in the middle of an
answer, the next one is asked to continue it: the text so far goes back as the start of the
assistant's message (vLLM's `continue_final_message`), so nothing is sent twice and the customer
gets the whole answer; the request's notes say so, for the log. When no replica can finish,
`ReplicasFailed` carries the partial text and the engine answers with the retrieved entry.

Two timeouts, because they guard different things: `timeout_s` is how long a replica may take to
start answering (a silent replica is skipped quickly), `stall_timeout_s` how long a healthy but
busy one may pause between pieces. Each answer opens its own client, which makes the generator
usable from any event loop and leaves nothing to close; an answer takes seconds, a connect far less.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.generators.base import GenerationFailed, GenerationRequest, GeneratorConfig
from engine.generators.models import ModelUnavailable
from engine.generators.prompt import Message, build_messages
from engine.generators.replicas import Replica, ReplicaCheckFailed, ReplicaPool
from engine.metrics import GENERATION_RECOVERIES

if TYPE_CHECKING:
    from openai import AsyncOpenAI

log = logging.getLogger(__name__)

_BACKOFF_S = 0.25
_BACKOFF_MAX_S = 4.0
_CHOICE_MAX_TOKENS = 16
# vLLM asks for a key only when started with --api-key; the replicas sit on a private network.
_NO_KEY = "EMPTY"


class ReplicasFailed(GenerationFailed, ModelUnavailable):
    """No replica could start or finish the answer; the message names each failure."""


class _Failure(Exception):
    """One failed attempt; `retry`: the same replica may work; `kind`: the metric label."""

    def __init__(self, reason: str, *, kind: str, retry: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.retry = retry


@dataclass(frozen=True, slots=True)
class _Adapter:
    """A LoRA adapter promoted at run time: the name replicas serve it under, and its folder."""

    name: str
    path: Path


class OpenAIGenerator:
    """Streams chat completions from the OpenAI-compatible servers in `config.base_urls`.

    The model asked for is the adapter promoted last (`load_adapter`), else `config.adapter_name`
    (an adapter the servers were started with), else `config.model_name`, else the first model
    each server lists.
    """

    def __init__(self, config: GeneratorConfig) -> None:
        if not config.base_urls:
            raise ValueError(
                "the openai generator needs at least one base URL ([generator] base_urls)"
            )
        try:
            import openai  # noqa: F401  (an optional extra: fail here, with the fix)
        except ImportError:
            raise ModelUnavailable(
                "the openai generator needs the official client: pip install 'supportbot[openai]'"
            ) from None
        self._config = config
        self._pool = ReplicaPool(
            config.base_urls,
            failures_to_open=config.breaker_failures,
            cooldown_s=config.breaker_cooldown_s,
            check_interval_s=config.health_interval_s,
            check_timeout_s=config.timeout_s,
        )
        self._model = config.adapter_name or config.model_name
        self._adapter: _Adapter | None = None

    @property
    def name(self) -> str:
        model = self._model or next(
            (m for r in self._pool.replicas if (m := self._pool.listed_first(r))), "default"
        )
        return f"openai:{model}"

    @property
    def pool(self) -> ReplicaPool:
        """The replicas and their breakers (for readiness checks and tests)."""
        return self._pool

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[str, None]:
        params: dict[str, Any] = {
            "max_tokens": request.max_tokens,
            "temperature": self._config.temperature,
        }
        if request.stop:
            params["stop"] = list(request.stop)
        answer = self._complete(build_messages(request), params, request.affinity, request.notes)
        async with contextlib.aclosing(answer) as pieces:
            async for piece in pieces:
                yield piece

    def choose(self, messages: Sequence[Message], options: Sequence[str]) -> str:
        """The option the served model picks, constrained by the server to one of `options`.

        Blocks; call it from a worker thread (`asyncio.to_thread`).
        """
        if not options:
            raise ValueError("choose needs at least one option")
        return asyncio.run(self._choose(list(messages), list(options)))

    async def ready(self) -> dict[str, bool]:
        """Check every replica now (GET /v1/models); which ones can answer (readiness)."""
        async with self._client() as client:
            return await self._pool.check_all(lambda url: _list_models(client, url))

    async def load_adapter(self, path: Path | None) -> None:
        """Load a promoted LoRA adapter on every replica and answer with it from now on.

        Uses vLLM's runtime adapter loading (`VLLM_ALLOW_RUNTIME_LORA_UPDATING=True` on each
        server); `path` must be the adapter folder as the servers see it (a shared volume). A
        replica that is down now gets the adapter when it is next checked. None: back to the
        configured model.
        """
        if path is None:
            self._adapter = None
            self._model = self._config.adapter_name or self._config.model_name
            return
        adapter = _Adapter(f"lora-{path.name}", path)
        async with self._client() as client:
            loaded = await asyncio.gather(
                *(self._load_on(client, r, adapter) for r in self._pool.replicas)
            )
        if not any(loaded):
            raise RuntimeError(
                f"no replica loaded the adapter {path}; start `vllm serve` with --enable-lora "
                "and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, with the folder at the same path"
            )
        self._adapter = adapter
        self._model = adapter.name
        log.info("adapter loaded name=%s replicas=%d/%d", adapter.name, sum(loaded), len(loaded))

    async def _choose(self, messages: list[Message], options: list[str]) -> str:
        params: dict[str, Any] = {
            "max_tokens": max(_CHOICE_MAX_TOKENS, *(len(o) for o in options)),
            "temperature": 0.0,
            # vLLM >= 0.11 spells guided decoding this way (it replaced `guided_choice`).
            "extra_body": {"structured_outputs": {"choice": options}},
        }
        async with contextlib.aclosing(self._complete(messages, params, "", [])) as pieces:
            text = "".join([piece async for piece in pieces]).strip()
        if text not in options:
            raise RuntimeError(f"the server chose {text!r}, not one of {options}")
        return text

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[AsyncOpenAI]:
        from openai import AsyncOpenAI, Timeout

        timeout = Timeout(self._config.stall_timeout_s, connect=self._config.timeout_s)
        first = self._pool.replicas[0].url
        async with AsyncOpenAI(
            base_url=f"{first}/v1", api_key=_NO_KEY, timeout=timeout, max_retries=0
        ) as client:
            yield client

    async def _complete(
        self, messages: list[Message], params: dict[str, Any], key: str, notes: list[str]
    ) -> AsyncGenerator[str, None]:
        model = self._model  # taken once: the adapter an answer starts with, it finishes on
        text = ""
        pieces = 0
        failures: list[str] = []
        broke: tuple[Replica, str] | None = None  # the replica that failed mid-answer, and why
        async with self._client() as client:
            for replica in self._pool.order(key):
                served = await self._served(client, replica, model, failures)
                if served is None:
                    continue
                for attempt in range(self._config.retries + 1):
                    if attempt:
                        await asyncio.sleep(min(_BACKOFF_S * 2 ** (attempt - 1), _BACKOFF_MAX_S))
                    before = len(text)
                    request = _continued(messages, params, text, pieces)
                    try:
                        async with contextlib.aclosing(
                            self._attempt(client, replica.url, served, request)
                        ) as stream:
                            async for piece in stream:
                                text += piece
                                pieces += 1
                                yield piece
                    except _Failure as failure:
                        failures.append(f"{replica.url} (attempt {attempt + 1}): {failure.reason}")
                        log.warning(
                            "replica failed url=%s attempt=%d chars=%d reason=%s",
                            replica.url,
                            attempt + 1,
                            len(text),
                            failure.reason,
                        )
                        if failure.kind == "http_4xx":
                            # The request, not the replica: e.g. a model it no longer serves.
                            replica.checked_at = float("-inf")  # read its models again
                            break
                        if len(text) > before:
                            self._pool.take_out(replica, failure.kind)
                            broke = (replica, failure.reason)
                            break
                        self._pool.failed(replica, failure.kind)
                        if not failure.retry or self._pool.is_open(replica):
                            break
                        continue
                    self._pool.succeeded(replica)
                    if broke is not None:
                        note = (
                            f"replica {broke[0].url} failed mid-answer ({broke[1]}); "
                            f"completed on {replica.url}"
                        )
                        notes.append(note)
                        GENERATION_RECOVERIES.labels(outcome="completed_elsewhere").inc()
                        log.warning("answer %s", note)
                    return
        raise ReplicasFailed(
            "no OpenAI-compatible replica answered; check that `vllm serve` runs at each of "
            "[generator] base_urls: " + "; ".join(failures or ["every replica is taken out"]),
            partial=text,
        )

    async def _served(
        self, client: AsyncOpenAI, replica: Replica, model: str, failures: list[str]
    ) -> str | None:
        """The model name to ask `replica` for, or None (noted in `failures`) to skip it."""
        if self._pool.is_open(replica):
            failures.append(f"{replica.url}: taken out after failing (circuit open)")
            return None
        if self._pool.needs_check(replica):
            problem = await self._pool.check(replica, lambda url: _list_models(client, url))
            if problem:
                failures.append(f"{replica.url}: health check failed: {problem}")
                return None
        if not model:
            return self._pool.listed_first(replica) or None
        adapter = self._adapter
        if model not in replica.models and adapter is not None and adapter.name == model:
            await self._load_on(client, replica, adapter)
        if model not in replica.models:
            failures.append(f"{replica.url}: does not serve {model!r}")
            return None
        return model

    async def _load_on(self, client: AsyncOpenAI, replica: Replica, adapter: _Adapter) -> bool:
        """Load `adapter` on one replica unless it serves it already; whether it serves it now."""
        if self._pool.is_open(replica):
            return False
        if adapter.name not in replica.models:
            from openai import APIError, APIStatusError

            body = {"lora_name": adapter.name, "lora_path": str(adapter.path)}
            try:
                async with asyncio.timeout(self._config.timeout_s):
                    await client.with_options(base_url=f"{replica.url}/v1").post(
                        "/load_lora_adapter", body=body, cast_to=str
                    )
            except APIStatusError as error:
                # Loaded meanwhile by another process: vLLM answers 400 "already been loaded".
                if "already" not in str(error):
                    log.error("adapter not loaded url=%s error=%s", replica.url, error)
                    return False
            except (APIError, TimeoutError) as error:
                log.error("adapter not loaded url=%s error=%s", replica.url, _describe(error))
                return False
            await self._pool.check(replica, lambda url: _list_models(client, url))
        return adapter.name in replica.models

    async def _attempt(
        self, client: AsyncOpenAI, url: str, model: str, request: dict[str, Any]
    ) -> AsyncGenerator[str, None]:
        from openai import APIConnectionError, APIError, APIStatusError, APITimeoutError

        replica = client.with_options(base_url=f"{url}/v1")
        finished = False
        try:
            async with asyncio.timeout(self._config.timeout_s):
                stream = await replica.chat.completions.create(model=model, stream=True, **request)
            try:
                async for chunk in stream:
                    for choice in chunk.choices:
                        finished = finished or choice.finish_reason is not None
                        if choice.delta.content:
                            yield choice.delta.content
            finally:
                await stream.close()
        except APIStatusError as error:
            status = error.status_code
            kind = "http_429" if status == 429 else f"http_{status // 100}xx"
            detail = f"HTTP {status}: {str(error.message)[:300]}"
            raise _Failure(detail, kind=kind, retry=status == 429 or status >= 500) from error
        except (APITimeoutError, TimeoutError) as error:
            raise _Failure(_describe(error), kind="timeout", retry=True) from error
        except APIConnectionError as error:
            raise _Failure(_describe(error), kind="connect", retry=True) from error
        except APIError as error:
            raise _Failure(f"failed mid-answer: {error}", kind="stream", retry=True) from error
        if not finished:
            raise _Failure("the stream ended without a finish reason", kind="cut_off", retry=True)


async def _list_models(client: AsyncOpenAI, url: str) -> list[str]:
    """The ids a replica serves, base model first (its health check)."""
    from openai import APIError

    try:
        page = await client.with_options(base_url=f"{url}/v1").models.list()
    except APIError as error:
        raise ReplicaCheckFailed(_describe(error)) from error
    return [model.id for model in page.data]


def _continued(
    messages: list[Message], params: dict[str, Any], text: str, pieces: int
) -> dict[str, Any]:
    """The request for an answer, or for the rest of it after `text` (`pieces` already sent)."""
    if not text:
        return {"messages": messages, **params}
    extra = {
        **params.get("extra_body", {}),
        "continue_final_message": True,
        "add_generation_prompt": False,
    }
    return {
        **params,
        "messages": [*messages, {"role": "assistant", "content": text}],
        "max_tokens": max(1, int(params["max_tokens"]) - pieces),
        "extra_body": extra,
    }


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    cause = error.__cause__ or error.__context__
    detail = f"{type(error).__name__}: {error}"
    return f"{detail} ({type(cause).__name__}: {cause})" if cause else detail
