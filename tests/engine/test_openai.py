"""The openai backend against a real `vllm serve` started for the session, plus small fronts.

The fronts are tiny aiohttp apps on 127.0.0.1 that fail in a chosen way and otherwise pass the
request on to the real server, so the answer always comes from the real model.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from engine.generators import GenerationRequest
from engine.generators.base import GeneratorConfig
from engine.generators.models import ModelUnavailable
from engine.generators.openai import OpenAIGenerator
from retrieval import FaqEntry
from tests.engine.llm_fixtures import ADAPTER_NAME
from tests.ports import free_port

pytestmark = pytest.mark.slow

SOURCE = FaqEntry(
    "refunds", "How long does a refund take?", "Refunds reach you within 5 working days."
)
QUESTION = GenerationRequest("How long does a refund take?", (SOURCE,), max_tokens=24)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def generator_for(
    *urls: str, retries: int = 2, timeout_s: float = 30.0, adapter_name: str = "", model: str = ""
) -> OpenAIGenerator:
    config = GeneratorConfig(
        backend="openai",
        base_urls=urls,
        retries=retries,
        timeout_s=timeout_s,
        adapter_name=adapter_name,
        model_name=model,
    )
    return OpenAIGenerator(config)


async def collect(generator: OpenAIGenerator, request: GenerationRequest = QUESTION) -> str:
    return "".join([piece async for piece in generator.stream(request)])


@contextlib.asynccontextmanager
async def front(handler: Handler) -> AsyncIterator[str]:
    """Serve `handler` for every path on a free local port; yields the base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def proxy(request: web.Request, upstream: str) -> web.StreamResponse:
    """Pass `request` on to `upstream`, streaming the answer back as it comes."""
    body = await request.read()
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            request.method,
            upstream + request.path,
            data=body,
            headers={"Content-Type": request.content_type},
        ) as answer,
    ):
        response = web.StreamResponse(status=answer.status)
        response.content_type = answer.content_type
        await response.prepare(request)
        async for chunk in answer.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


async def test_streams_from_the_real_server(openai_generator: OpenAIGenerator) -> None:
    pieces = [piece async for piece in openai_generator.stream(QUESTION)]
    assert len(pieces) > 3
    # The server lists the base model under the folder it was started with.
    assert openai_generator.name.startswith("openai:")
    assert openai_generator.name.endswith("smollm2-135m-instruct")


async def test_the_adapter_name_selects_the_lora_adapter(openai_server: str) -> None:
    base = await collect(generator_for(openai_server))
    adapted_generator = generator_for(openai_server, adapter_name=ADAPTER_NAME)
    adapted = await collect(adapted_generator)
    assert adapted != base
    assert adapted_generator.name == f"openai:{ADAPTER_NAME}"


async def test_fails_over_from_a_dead_replica_to_a_live_one(openai_server: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    expected = await collect(generator_for(openai_server))
    assert await collect(generator_for(dead, openai_server, retries=1)) == expected


async def test_retries_a_503_on_the_same_replica(openai_server: str) -> None:
    posts: list[int] = []

    async def flaky(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            posts.append(1)
            if len(posts) == 1:
                return web.Response(status=503, text="warming up")
        return await proxy(request, openai_server)

    expected = await collect(generator_for(openai_server))
    async with front(flaky) as url:
        assert await collect(generator_for(url, retries=2)) == expected
    assert len(posts) == 2


async def test_a_silent_replica_times_out_and_the_next_answers(openai_server: str) -> None:
    release = asyncio.Event()

    async def silent(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response(status=500)

    async with front(silent) as url:
        generator = generator_for(url, openai_server, timeout_s=0.5, retries=0)
        assert await collect(generator)
        release.set()


async def test_text_already_streamed_is_never_repeated(openai_server: str) -> None:
    posts: list[int] = []

    async def breaks_midway(request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return await proxy(request, openai_server)
        posts.append(1)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"choices": [{"delta": {"content": "Refunds"}}]}\n\n')
        assert request.transport is not None
        request.transport.close()
        return response

    pieces: list[str] = []
    async with front(breaks_midway) as url:
        with pytest.raises(aiohttp.ClientError):
            async for piece in generator_for(url, openai_server, retries=2).stream(QUESTION):
                pieces.append(piece)
    assert pieces == ["Refunds"]
    assert len(posts) == 1


async def test_when_every_replica_fails_the_error_names_each(openai_server: str) -> None:
    async def overloaded(request: web.Request) -> web.StreamResponse:
        return web.Response(status=429, text="too many requests")

    dead = f"http://127.0.0.1:{free_port()}"
    async with front(overloaded) as busy:
        with pytest.raises(ModelUnavailable) as failure:
            await collect(generator_for(dead, busy, model="m", retries=1))
    message = str(failure.value)
    assert f"{dead} (attempt 2)" in message
    assert f"{busy} (attempt 2): HTTP 429" in message


async def running_requests(server: str) -> float:
    """The server's own count of requests it is generating for, from its metrics."""
    async with aiohttp.ClientSession() as session, session.get(f"{server}/metrics") as response:
        text = await response.text()
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("vllm:num_requests_running")
    ]
    assert values, "the server exports no vllm:num_requests_running"
    return sum(values)


async def test_closing_early_ends_the_request_on_the_server(
    openai_server: str, openai_generator: OpenAIGenerator
) -> None:
    stream = openai_generator.stream(GenerationRequest("Tell me a long story.", (), max_tokens=400))
    async with contextlib.aclosing(stream):
        assert await anext(stream)
        assert await running_requests(openai_server) == 1
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    # The server notices the closed connection on its next write.
    for _ in range(50):
        if await running_requests(openai_server) == 0:
            break
        await asyncio.sleep(0.1)
    assert await running_requests(openai_server) == 0


async def test_choose_uses_the_servers_structured_outputs(
    openai_generator: OpenAIGenerator,
) -> None:
    options = ["negative", "neutral", "positive"]
    messages = [
        {"role": "system", "content": "Label the sentiment of the customer's message."},
        {"role": "user", "content": "This is the third time my order is late. Unacceptable!"},
    ]
    assert await asyncio.to_thread(openai_generator.choose, messages, options) in options


def test_needs_a_base_url() -> None:
    with pytest.raises(ValueError, match="base_urls"):
        OpenAIGenerator(GeneratorConfig(backend="openai"))
