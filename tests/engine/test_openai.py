"""The openai backend against a real `vllm serve` started for the session, plus small fronts.

The fronts are tiny aiohttp apps on 127.0.0.1 that fail in a chosen way and otherwise pass the
request on to the real server, so the answer always comes from the real model.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from engine import Engine, EngineConfig, FinalReply, TextDelta
from engine.generators import GenerationRequest
from engine.generators.base import GeneratorConfig
from engine.generators.models import ModelUnavailable
from engine.generators.openai import OpenAIGenerator, ReplicasFailed
from engine.log import ConversationLog
from engine.sentiment import LexiconSentiment
from retrieval import FaqEntry, KnowledgeBase
from tests.engine.llm_fixtures import ADAPTER_NAME, vllm_serve
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
    generator = generator_for(dead, openai_server, retries=1)
    assert await collect(generator)
    dead_replica, live_replica = generator.pool.replicas
    assert (dead_replica.failures, live_replica.failures) == (1, 0)
    assert live_replica.models  # its health check listed what it serves


async def test_retries_a_503_on_the_same_replica(openai_server: str) -> None:
    posts: list[int] = []

    async def flaky(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            posts.append(1)
            if len(posts) == 1:
                return web.Response(status=503, text="warming up")
        return await proxy(request, openai_server)

    async with front(flaky) as url:
        assert await collect(generator_for(url, retries=2))
    assert len(posts) == 2


async def test_a_silent_replica_times_out_and_the_next_answers(openai_server: str) -> None:
    # timeout_s bounds only the wait for an answer to start. It once bounded every read too, so
    # a busy machine's pause between two tokens of the live replica, mid-answer, raised aiohttp's
    # SocketTimeoutError past the fail-over; pauses mid-answer now have stall_timeout_s.
    release = asyncio.Event()

    async def silent(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response(status=500)

    async with front(silent) as url:
        generator = generator_for(url, openai_server, timeout_s=2.0, retries=0)
        assert await collect(generator)
        release.set()
        silent_replica = generator.pool.replicas[0]
        assert silent_replica.url == url and silent_replica.failures == 1


def breaking_midway(upstream: str, posts: list[int]) -> Handler:
    """A replica that streams one word of an answer, then drops the connection."""

    async def breaks_midway(request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return await proxy(request, upstream)
        posts.append(1)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunk = b'{"id": "1", "object": "chat.completion.chunk", "created": 0, "model": "m", '
        chunk += b'"choices": [{"index": 0, "delta": {"content": "Refunds"}}]}'
        await response.write(b"data: " + chunk + b"\n\n")
        assert request.transport is not None
        request.transport.close()
        return response

    return breaks_midway


async def test_an_answer_cut_off_midway_is_completed_on_the_next_replica(
    openai_server: str,
) -> None:
    posts: list[int] = []
    async with front(breaking_midway(openai_server, posts)) as url:
        request = GenerationRequest(QUESTION.question, QUESTION.sources, max_tokens=24)
        generator = generator_for(url, openai_server, retries=2)
        pieces = [piece async for piece in generator.stream(request)]
    assert pieces[0] == "Refunds" and len(pieces) > 2
    # The text already sent is the start of the answer the next replica goes on with.
    assert not "".join(pieces[1:]).lstrip().startswith("Refunds")
    assert posts == [1]
    (note,) = request.notes
    assert note.startswith(f"replica {url} failed mid-answer")
    assert note.endswith(f"completed on {openai_server}")
    # Taken out at once (its cooldown may be over already on a slow machine).
    assert generator.pool.replicas[0].failures >= 2


async def test_when_no_replica_can_finish_the_partial_text_comes_with_the_error(
    openai_server: str,
) -> None:
    posts: list[int] = []
    async with front(breaking_midway(openai_server, posts)) as url:
        pieces: list[str] = []
        with pytest.raises(ReplicasFailed) as failure:
            async for piece in generator_for(url, retries=2).stream(QUESTION):
                pieces.append(piece)
    assert pieces == ["Refunds"] and failure.value.partial == "Refunds"
    assert posts == [1]


async def test_when_every_replica_fails_the_error_names_each(openai_server: str) -> None:
    async def overloaded(request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return await proxy(request, openai_server)
        return web.Response(status=429, text="too many requests")

    dead = f"http://127.0.0.1:{free_port()}"
    async with front(overloaded) as busy:
        with pytest.raises(ModelUnavailable) as failure:
            await collect(generator_for(dead, busy, retries=1))
    message = str(failure.value)
    assert f"{dead}: health check failed" in message
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


# Two real replicas from here on; the last test kills the spare one, so it stays last.


@pytest.fixture(scope="module")
def spare_server(
    tmp_path_factory: pytest.TempPathFactory, smollm_dir: Path, lora_adapter: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A second real `vllm serve` beside the session's, for the tests that need two."""
    log_path = tmp_path_factory.mktemp("spare") / "vllm-serve.log"
    with vllm_serve(smollm_dir, lora_adapter, log_path) as served:
        yield served


async def served_models(url: str) -> list[str]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/v1/models") as response:
        return [str(model["id"]) for model in (await response.json())["data"]]


def promoted(lora_adapter: Path, models_dir: Path, version: str) -> Path:
    """The adapter as scripts/retrain.py promotes it: <models_dir>/lora/<version>/."""
    folder = models_dir / "lora" / version
    shutil.copytree(lora_adapter, folder)
    return folder


async def test_a_promoted_adapter_reaches_every_replica(
    openai_server: str,
    spare_server: tuple[str, subprocess.Popen[bytes]],
    lora_adapter: Path,
    tmp_path: Path,
) -> None:
    spare, _ = spare_server
    generator = generator_for(openai_server, spare)
    await generator.load_adapter(promoted(lora_adapter, tmp_path, "v7"))
    assert generator.name == "openai:lora-v7"
    for url in (openai_server, spare):
        assert "lora-v7" in await served_models(url)
    # Greedy answers on CPU can differ in a token between two runs of one prompt (a cached
    # prefix takes another kernel), so the adapter shows in how far it moves the answer.
    base = await collect(generator_for(openai_server))
    for key in ("1", "2", "3", "4"):
        request = dataclasses.replace(QUESTION, affinity=key, notes=[])
        assert await collect(generator, request) != base
    await generator.load_adapter(None)
    assert generator.name == "openai:" + (await served_models(openai_server))[0]


async def test_a_replica_without_the_adapter_is_never_asked_for_it(
    openai_server: str, lora_adapter: Path, tmp_path: Path
) -> None:
    posts: list[str] = []

    async def cannot_load(request: web.Request) -> web.StreamResponse:
        """A replica started without runtime LoRA loading, in front of the real server."""
        if request.path == "/v1/load_lora_adapter":
            return web.Response(status=404, text="Not Found")
        if request.path == "/v1/models":
            listed = await served_models(openai_server)
            data = [{"id": m, "object": "model"} for m in listed if not m.startswith("lora-")]
            return web.json_response({"object": "list", "data": data})
        if request.method == "POST":
            posts.append(request.path)
        return await proxy(request, openai_server)

    async with front(cannot_load) as stale:
        generator = generator_for(stale, openai_server)
        await generator.load_adapter(promoted(lora_adapter, tmp_path, "v8"))
        keys = [k for k in map(str, range(50)) if generator.pool.order(k)[0].url == stale][:2]
        for key in keys:
            request = dataclasses.replace(QUESTION, affinity=key)
            assert await collect(generator, request)
    assert len(keys) == 2 and posts == []


async def test_a_replica_killed_mid_answer_leaves_every_customer_one_complete_answer(
    openai_server: str,
    spare_server: tuple[str, subprocess.Popen[bytes]],
    sample_kb: KnowledgeBase,
    tmp_path: Path,
) -> None:
    spare, process = spare_server
    generator = generator_for(openai_server, spare, retries=1)
    config = EngineConfig(max_tokens=32, min_grounding=0.0)
    async with await ConversationLog.open(tmp_path / "log.db") as conversation_log:
        engine = Engine(sample_kb, generator, LexiconSentiment(), conversation_log, config)
        by_replica: dict[str, list[int]] = {spare: [], openai_server: []}
        for n in range(60):
            conversation = await engine.conversation("test", f"customer-{n}")
            by_replica[generator.pool.order(str(conversation))[0].url].append(conversation)
        on_spare, on_live = by_replica[spare][:2], by_replica[openai_server][:2]
        started = {conversation: asyncio.Event() for conversation in on_spare}

        async def customer(conversation: int) -> tuple[str, FinalReply]:
            streamed, final = "", None
            async for event in engine.reply(conversation, "How long does delivery take?"):
                if isinstance(event, TextDelta):
                    streamed += event.text
                    if conversation in started:
                        started[conversation].set()
                else:
                    final = event
            assert final is not None
            return streamed, final

        replies = [asyncio.create_task(customer(c)) for c in on_spare + on_live]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started.values())), 120)
        # SIGKILL to the server and its engine core: no goodbye on the open streams.
        os.killpg(process.pid, signal.SIGKILL)
        killed = time.monotonic()
        results = dict(zip(on_spare + on_live, await asyncio.gather(*replies), strict=True))
        finished_s = time.monotonic() - killed

        completed = 0
        for conversation, (streamed, final) in results.items():
            assert final.action == "answer" and final.text.strip()
            turn = (await conversation_log.recent_turns(conversation, 1))[-1]
            assert (turn.role, turn.reason, turn.text) == ("bot", final.reason, final.text)
            if "extractive answer" in final.reason:
                assert final.text == final.hits[0].entry.answer
                continue
            # Nothing cut off, nothing sent twice: what was streamed is the answer.
            assert final.text == streamed
            if f"completed on {openai_server}" in final.reason:
                assert conversation in on_spare
                completed += 1
        assert completed >= 1, [final.reason for _, final in results.values()]
        # A customer of the dead replica who writes again goes straight to the live one.
        streamed, final = await customer(on_spare[0])
        assert final.text == streamed and "failed" not in final.reason
    recoveries = sum(
        1
        for _, final in results.values()
        if "mid-answer" in final.reason or "extractive" in final.reason
    )
    print(
        f"\nfail-over: {len(results)} concurrent replies, {len(on_spare)} on the killed replica, "
        f"{completed} completed on the other, {recoveries} failed mid-answer, "
        f"all finished {finished_s:.1f} s after the kill"
    )
