"""The worker role: take updates from the queue and answer them with the usual dispatcher.

Each update taken is a task: it waits for its chat's turn, then is handled once, or, when a
worker that died had already begun to answer it (`sending`), gets the recovery notice instead,
and is finished (bot.queue). Updates a dead worker held are taken over after `claim_idle_s`;
the updates this worker holds get a heartbeat meanwhile, so a long reply is never taken away.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aiogram import Bot, Dispatcher
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Message, ReplyParameters, Update
from aiogram.utils.i18n import I18n
from pydantic import ValidationError
from redis.exceptions import RedisError

from bot.i18n import pick_language
from bot.journal import _INVISIBLE, RECOVERY_NOTICE
from bot.operator import OperatorDesk
from bot.queue import Entry, UpdateQueue
from engine.metrics import observe_queue
from engine.settings import QueueConfig

if TYPE_CHECKING:
    from aiogram.methods import Response

log = logging.getLogger(__name__)

_current: contextvars.ContextVar[Entry | None] = contextvars.ContextVar("entry", default=None)


class UpdateTakenOver(Exception):
    """This worker was too slow: another one holds the update now and answers it."""


class QueueRequests(BaseRequestMiddleware):
    """Bot API request middleware: mark the update `sending` before its first visible call."""

    def __init__(self, queue: UpdateQueue) -> None:
        self._queue = queue
        self._marked: set[str] = set()

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        entry = _current.get()
        visible = entry is not None and not isinstance(method, _INVISIBLE)
        if visible and entry is not None and entry.entry_id not in self._marked:
            if not await self._queue.sending(entry):
                raise UpdateTakenOver(f"update {entry.update_id} is with another worker")
            self._marked.add(entry.entry_id)
        return await make_request(bot, method)

    def forget(self, entry: Entry) -> None:
        self._marked.discard(entry.entry_id)


class Worker:
    """Handles queued updates with `dp` until stopped; one per process."""

    def __init__(
        self,
        queue: UpdateQueue,
        bot: Bot,
        dp: Dispatcher,
        config: QueueConfig,
        languages: Sequence[str],
    ) -> None:
        self._queue = queue
        self._bot = bot
        self._dp = dp
        self._config = config
        self._languages = tuple(languages)
        self._requests = QueueRequests(queue)
        bot.session.middleware(self._requests)
        self._tasks: dict[asyncio.Task[None], Entry] = {}
        self._room = asyncio.Event()
        self.handled = 0
        self.noticed = 0

    async def run(self, stop: asyncio.Event, grace_s: float) -> None:
        """Take and handle updates until `stop`; then let replies finish for up to `grace_s`."""
        helpers = [
            asyncio.create_task(self._take(stop)),
            asyncio.create_task(self._take_over(stop)),
            asyncio.create_task(self._beat(stop)),
        ]
        try:
            await stop.wait()
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await self._drain(grace_s)

    async def _take(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            free = self._config.concurrency - len(self._tasks)
            if free <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            try:
                entries = await self._queue.read(free, block_s=1.0)
            except (RedisError, OSError) as error:
                log.error("cannot read the update queue: %s", error)
                await asyncio.sleep(1.0)
                continue
            for entry in entries:
                self._start(entry)

    async def _take_over(self, stop: asyncio.Event) -> None:
        interval = max(self._config.claim_idle_s / 2, 0.05)
        while not stop.is_set():
            await asyncio.sleep(interval)
            try:
                for entry in await self._queue.claim(max(self._config.concurrency, 1)):
                    self._start(entry)
            except (RedisError, OSError) as error:
                log.error("cannot look for updates to take over: %s", error)

    async def _beat(self, stop: asyncio.Event) -> None:
        interval = max(self._config.claim_idle_s / 3, 0.02)
        while not stop.is_set():
            await asyncio.sleep(interval)
            try:
                await self._queue.heartbeat(list(self._tasks.values()))
                depth = await self._queue.depth()
            except (RedisError, OSError) as error:
                log.error("heartbeat failed: %s", error)
                continue
            observe_queue(
                "updates",
                depth=depth.waiting,
                pending=depth.pending,
                oldest_age_s=depth.oldest_age_s,
            )

    def _start(self, entry: Entry) -> None:
        if any(e.entry_id == entry.entry_id for e in self._tasks.values()):
            return  # taken over from ourselves after a stall: the task is still running
        task = asyncio.create_task(self._serve(entry))
        self._tasks[task] = entry
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        entry = self._tasks.pop(task)
        self._requests.forget(entry)
        self._room.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("update %s left unfinished", entry.update_id, exc_info=task.exception())

    async def _serve(self, entry: Entry) -> None:
        await self._queue.wait_turn(entry)
        state = await self._queue.state(entry.update_id)
        try:
            update = Update.model_validate(entry.body, context={"bot": self._bot})
        except ValidationError:
            log.warning("update %s cannot be read; dropped", entry.update_id)
            await self._queue.finish(entry)
            return
        if state == "sending":
            # Its answer may have gone out from the worker that died: no second answer.
            await self._notice(update)
            self.noticed += 1
            log.warning("update %s was being answered when a worker stopped", entry.update_id)
        elif state != "done":
            if not await self._queue.heartbeat([entry]):
                # Waited so long for its turn (a stalled loop) that another worker took it.
                log.warning("update %s is with another worker; leaving it", entry.update_id)
                return
            desk = self._dp.get("desk")
            chat_id = _chat_of(update)
            if isinstance(desk, OperatorDesk) and chat_id is not None:
                await desk.refresh(chat_id)  # another worker may have handed the chat over
            token = _current.set(entry)
            try:
                await self._dp.feed_update(self._bot, update)
            except UpdateTakenOver as error:
                log.warning("%s; leaving it", error)
                return
            except Exception:
                log.exception("update %s failed", entry.update_id)
            finally:
                _current.reset(token)
            self.handled += 1
        if not await self._queue.finish(entry):
            log.warning("update %s was taken over before it was finished", entry.update_id)

    async def _notice(self, update: Update) -> None:
        message = update.message or update.edited_message
        if not isinstance(message, Message):
            return
        i18n: I18n = self._dp["i18n"]
        code = message.from_user.language_code if message.from_user else None
        text = i18n.gettext(RECOVERY_NOTICE, locale=pick_language(code, self._languages))
        try:
            await self._bot.send_message(
                message.chat.id,
                text,
                message_thread_id=message.message_thread_id if message.is_topic_message else None,
                reply_parameters=ReplyParameters(
                    message_id=message.message_id, allow_sending_without_reply=True
                ),
            )
        except Exception:  # best effort: the chat may be gone; the update is still finished
            log.exception("could not send the recovery notice to chat=%s", message.chat.id)

    async def _drain(self, grace_s: float) -> None:
        tasks = set(self._tasks)
        if not tasks:
            return
        log.info("waiting for %d updates in progress (up to %.0f s)", len(tasks), grace_s)
        _, pending = await asyncio.wait(tasks, timeout=grace_s)
        for task in pending:
            task.cancel()
        if pending:
            # Left in the queue: another worker takes them over.
            log.warning("cancelled %d updates still running at shutdown", len(pending))
            await asyncio.wait(pending)


def _chat_of(update: Update) -> int | None:
    press = update.callback_query
    message = update.message or update.edited_message or (press.message if press else None)
    return message.chat.id if message is not None else None


async def run_worker(
    bot: Bot,
    dp: Dispatcher,
    queue_config: QueueConfig,
    consumer: str,
    *,
    languages: Sequence[str],
    grace_s: float,
    stop: asyncio.Event | None = None,
) -> None:
    """Start the dispatcher, handle queued updates until stopped, shut the dispatcher down."""
    queue = UpdateQueue.connect(queue_config, consumer)
    loop = asyncio.get_running_loop()
    signals: tuple[signal.Signals, ...] = ()
    if stop is None:
        stop = asyncio.Event()
        signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    workflow = {"dispatcher": dp, "bots": [bot], **dp.workflow_data}
    try:
        await queue.check()
        await dp.emit_startup(bot=bot, **workflow)
        log.info("worker %s taking updates", consumer)
        try:
            await Worker(queue, bot, dp, queue_config, languages).run(stop, grace_s)
        finally:
            with contextlib.suppress(Exception):
                await dp.emit_shutdown(bot=bot, **workflow)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await queue.close()
