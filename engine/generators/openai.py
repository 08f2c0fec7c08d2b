"""An OpenAI-compatible HTTP client for one or several `vllm serve` replicas.

Each answer is one streamed POST to /v1/chat/completions. Before the first piece of text has
arrived a failed attempt is retried with exponential backoff (connection errors, timeouts, 5xx
and 429), then the next replica is tried; after it, an error ends the stream, so no text is
ever sent twice. Each request opens its own HTTP session, which makes the generator usable from
any event loop and leaves nothing to close; an answer takes seconds, a local connect far less.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import aiohttp

from engine.generators.base import GenerationRequest, GeneratorConfig
from engine.generators.models import ModelUnavailable
from engine.generators.prompt import Message, build_messages

log = logging.getLogger(__name__)

_BACKOFF_S = 0.25
_BACKOFF_MAX_S = 4.0
_CHOICE_MAX_TOKENS = 16


class _Failure(Exception):
    """An attempt that failed before any text; `retry` says whether the same replica may work."""

    def __init__(self, reason: str, *, retry: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


class OpenAIGenerator:
    """Streams chat completions from OpenAI-compatible servers listed in `config.base_urls`.

    The model asked for is `config.adapter_name` when set (a LoRA adapter the server was started
    with), else `config.model_name`, else the first model each server lists.
    """

    def __init__(self, config: GeneratorConfig) -> None:
        if not config.base_urls:
            raise ValueError(
                "the openai generator needs at least one base URL ([generator] base_urls)"
            )
        self._config = config
        self._urls = tuple(url.rstrip("/") for url in config.base_urls)
        self._model = config.adapter_name or config.model_name
        # Per replica, when the model is whatever the server serves.
        self._listed: dict[str, str] = {}

    @property
    def name(self) -> str:
        model = self._model or next(iter(self._listed.values()), "") or "default"
        return f"openai:{model}"

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[str, None]:
        body: dict[str, Any] = {
            "messages": build_messages(request),
            "max_tokens": request.max_tokens,
            "temperature": self._config.temperature,
            "stream": True,
        }
        if request.stop:
            body["stop"] = list(request.stop)
        async with contextlib.aclosing(self._complete(body)) as pieces:
            async for piece in pieces:
                yield piece

    def choose(self, messages: Sequence[Message], options: Sequence[str]) -> str:
        """The option the served model picks, constrained by the server to one of `options`.

        Blocks; call it from a worker thread (`asyncio.to_thread`).
        """
        if not options:
            raise ValueError("choose needs at least one option")
        return asyncio.run(self._choose(list(messages), list(options)))

    async def _choose(self, messages: list[Message], options: list[str]) -> str:
        body: dict[str, Any] = {
            "messages": messages,
            "max_tokens": max(_CHOICE_MAX_TOKENS, *(len(o) for o in options)),
            "temperature": 0.0,
            "stream": True,
            # vLLM >= 0.11 spells guided decoding this way (it replaced `guided_choice`).
            "structured_outputs": {"choice": options},
        }
        async with contextlib.aclosing(self._complete(body)) as pieces:
            text = "".join([piece async for piece in pieces]).strip()
        if text not in options:
            raise RuntimeError(f"the server chose {text!r}, not one of {options}")
        return text

    async def _complete(self, body: dict[str, Any]) -> AsyncGenerator[str, None]:
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self._config.timeout_s, sock_read=self._config.timeout_s
        )
        failures: list[str] = []
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for url in self._urls:
                for attempt in range(self._config.retries + 1):
                    if attempt:
                        await asyncio.sleep(min(_BACKOFF_S * 2 ** (attempt - 1), _BACKOFF_MAX_S))
                    started = False
                    try:
                        async with contextlib.aclosing(self._attempt(session, url, body)) as pieces:
                            async for piece in pieces:
                                started = True
                                yield piece
                        return
                    except _Failure as failure:
                        # _attempt raises _Failure only before its first piece.
                        assert not started
                        log.warning(
                            "replica failed url=%s attempt=%d reason=%s", url, attempt + 1, failure
                        )
                        failures.append(f"{url} (attempt {attempt + 1}): {failure.reason}")
                        if not failure.retry:
                            break
        raise ModelUnavailable(
            "no OpenAI-compatible replica answered; check that `vllm serve` runs at each of "
            "[generator] base_urls: " + "; ".join(failures)
        )

    async def _attempt(
        self, session: aiohttp.ClientSession, url: str, body: dict[str, Any]
    ) -> AsyncGenerator[str, None]:
        try:
            payload = {**body, "model": self._model or await self._listed_model(session, url)}
            response = await session.post(f"{url}/v1/chat/completions", json=payload)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _Failure(_describe(error), retry=True) from error
        async with response:
            if response.status != 200:
                detail = (await response.text())[:300]
                retry = response.status == 429 or response.status >= 500
                raise _Failure(f"HTTP {response.status}: {detail}", retry=retry)
            started = False
            try:
                async with contextlib.aclosing(_deltas(response)) as pieces:
                    async for piece in pieces:
                        started = True
                        yield piece
            except (aiohttp.ClientError, TimeoutError) as error:
                if started:
                    raise
                raise _Failure(_describe(error), retry=True) from error

    async def _listed_model(self, session: aiohttp.ClientSession, url: str) -> str:
        if url not in self._listed:
            async with session.get(f"{url}/v1/models") as response:
                if response.status >= 500 or response.status == 429:
                    raise _Failure(f"HTTP {response.status} from /v1/models", retry=True)
                response.raise_for_status()
                listed = (await response.json())["data"]
            if not listed:
                raise _Failure("the server lists no models", retry=False)
            self._listed[url] = str(listed[0]["id"])
        return self._listed[url]


async def _deltas(response: aiohttp.ClientResponse) -> AsyncGenerator[str, None]:
    """The text pieces of a server-sent-events chat completion stream."""
    async for raw in response.content:
        line = raw.decode("utf-8").strip()
        if not line.startswith("data:"):
            continue
        data = line.removeprefix("data:").strip()
        if data == "[DONE]":
            return
        chunk = json.loads(data)
        if "error" in chunk:
            raise RuntimeError(f"the server failed mid-answer: {chunk['error']}")
        for choice in chunk.get("choices", ()):
            text = (choice.get("delta") or {}).get("content")
            if text:
                yield text


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    return f"{type(error).__name__}: {error}"
