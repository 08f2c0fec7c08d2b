"""The web front end on a real uvicorn server on 127.0.0.1, in a thread with its own loop.

The server owns its engine and conversation log like a separate process would; tests talk to it
over HTTP only, and read the log through their own connection to the same file.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import uvicorn

from bot.web import KeyStore, KnowledgeAdmin, RateLimiter, Services, create_app
from engine import Engine, EngineConfig
from engine.generators import ExtractiveGenerator, Generator
from engine.log import ConversationLog, ConversationStore, LogConfig, open_store
from engine.sentiment import LexiconSentiment
from engine.settings import QueueConfig, WebConfig
from retrieval import Embedder, ImportConfig, KnowledgeBase, RetrievalConfig
from tests.ports import free_port

if TYPE_CHECKING:
    from bot.wakeups import Wakeups


@dataclass
class Keys:
    """Secrets of the keys a test server knows."""

    chat: str
    admin: str
    other_chat: str
    store: KeyStore


@dataclass
class WebServer:
    """A running server: its base URL, keys, and where its files are."""

    url: str
    keys: Keys
    log_path: Path
    kb_dir: Path
    config: WebConfig
    errors: list[BaseException] = field(default_factory=list)

    def client(self, key: str | None = None, **headers: str) -> httpx.Client:
        sent = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers={**sent, **headers}, timeout=30)


def make_keys(path: Path) -> Keys:
    store = KeyStore(path)
    return Keys(
        chat=store.create("site", "chat"),
        admin=store.create("ops", "admin"),
        other_chat=store.create("app", "chat"),
        store=store,
    )


@contextlib.contextmanager
def serve_web(
    folder: Path,
    kb_dir: Path,
    embedder: Embedder,
    *,
    config: WebConfig | None = None,
    generator: Callable[[], Generator] = ExtractiveGenerator,
    log_path: Path | None = None,
    log: LogConfig | None = None,
    queue: QueueConfig | None = None,
) -> Iterator[WebServer]:
    """Run the app over a fresh engine until the block ends, then shut it down gracefully;
    the conversation log is the SQLite file `log_path`, or the store `log` names. With
    `queue`, the app wakes other processes over that Redis ([web] redis_wakeups)."""
    log_path = log_path or folder / "conversations.db"
    config = config or WebConfig(listen_port=free_port(), keys_path=folder / "keys.db")
    keys = make_keys(config.keys_path)
    retrieval = RetrievalConfig(kb_dir=kb_dir)
    started = threading.Event()
    holder: dict[str, uvicorn.Server] = {}
    server = WebServer(f"http://127.0.0.1:{config.listen_port}", keys, log_path, kb_dir, config)

    async def run() -> None:
        conversation_log: ConversationStore = (
            await open_store(log) if log is not None else await ConversationLog.open(log_path)
        )
        wakeups: Wakeups | None = None
        try:
            kb = KnowledgeBase(kb_dir, embedder, retrieval)
            engine = Engine(kb, generator(), LexiconSentiment(), conversation_log, EngineConfig())
            knowledge = KnowledgeAdmin(kb, kb_dir, retrieval, ImportConfig())
            limiter = RateLimiter(config.rate_per_minute, config.rate_burst)
            if queue is not None:
                from bot.wakeups import Wakeups

                wakeups = Wakeups.connect(queue)
                await wakeups.start()
            app = create_app(Services(engine, config, keys.store, limiter, knowledge, wakeups))
            uv = uvicorn.Server(
                uvicorn.Config(
                    app,
                    host="127.0.0.1",
                    port=config.listen_port,
                    log_level="warning",
                    lifespan="off",
                    timeout_graceful_shutdown=2,
                )
            )
            holder["server"] = uv
            serving = asyncio.create_task(uv.serve())
            # uvicorn offers `started` as a flag only, no event to wait on.
            while not uv.started and not serving.done():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            started.set()
            await serving
        finally:
            started.set()
            if wakeups is not None:
                await wakeups.close()
            await conversation_log.close()

    def thread_main() -> None:
        try:
            asyncio.run(run())
        except BaseException as error:  # reported to the test when it ends
            server.errors.append(error)

    thread = threading.Thread(target=thread_main, name="web-server", daemon=True)
    thread.start()
    started.wait(30)
    if server.errors:
        raise server.errors[0]
    try:
        yield server
    finally:
        if "server" in holder:
            holder["server"].should_exit = True
        thread.join(15)
        assert not thread.is_alive(), "the web server did not stop"
        if server.errors:
            raise server.errors[0]
