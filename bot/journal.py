"""Updates taken from Telegram, kept on disk until handled, so a crash loses and repeats none.

Long polling: aiogram confirms a batch of updates with its next getUpdates, before their replies
are done; a process killed in between would lose them, and one killed before confirming would
answer them twice. The journal closes both gaps: a batch is written down before it can be
confirmed, an update is marked `sending` before its first visible message and `done` when
handled. At start-up a `received` update is handled again, a `sending` one (its answer may or may
not have gone out) gets a short notice quoting the customer's message instead of a second
answer, and updates Telegram delivers again are skipped.

Webhook: Telegram waits for the HTTP answer, which comes when the update is handled, and delivers
the update again when the process died first. Each update is written down as it arrives; one
delivered again is handled again if it was only `received`, gets the notice if it was `sending`
and is only acknowledged if it was `done`. Processes behind one proxy may share the file.

Updates aiogram cannot read are skipped (bot.unreadable) and kept here with their raw JSON.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import aiosqlite
from aiogram import BaseMiddleware, Bot, Dispatcher
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramForbiddenError
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteWebhook,
    GetChatMember,
    GetFile,
    GetMe,
    GetUpdates,
    SendChatAction,
    SendMessageDraft,
    SetMyCommands,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import Message, ReplyParameters, TelegramObject, Update
from aiogram.utils.i18n import I18n
from aiohttp import web

from bot.i18n import pick_language
from bot.replying import answer_delivery
from bot.unreadable import TolerantWebhook, readable_updates
from engine import Engine
from engine.settings import BotConfig

if TYPE_CHECKING:
    from aiogram.methods import Response

log = logging.getLogger(__name__)

State = Literal["received", "sending", "done"]
Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

RECOVERY_NOTICE = (
    "I was restarted while answering this message. If my answer did not arrive, please send "
    "your question again."
)
# Calls a customer does not see as an answer: making them twice does no harm.
_INVISIBLE = (
    AnswerCallbackQuery,
    DeleteWebhook,
    GetChatMember,
    GetFile,
    GetMe,
    GetUpdates,
    SendChatAction,
    SendMessageDraft,
    SetMyCommands,
)
_KEEP_DONE_S = 7 * 24 * 3600
_current_update: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "current_update", default=None
)


class UpdateJournal:
    """The updates this bot took from Telegram and how far each got, in a small SQLite file."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._stale: set[int] = set()
        self._sending: set[int] = set()
        # State changes wait here for one transaction (group commit): (state, id, only from).
        self._marks: list[tuple[State, int, State | None]] = []
        self._marked: asyncio.Future[None] | None = None
        self._flusher: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: Path) -> UpdateJournal:
        """Open or create the journal; handled updates older than a week are dropped."""
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path)
        # WAL with synchronous=NORMAL: a committed write survives a killed process.
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS updates (
                update_id INTEGER PRIMARY KEY,
                state TEXT NOT NULL CHECK (state IN ('received', 'sending', 'done')),
                body TEXT NOT NULL,
                received_at REAL NOT NULL
            )"""
        )
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS unreadable (
                id INTEGER PRIMARY KEY,
                update_id INTEGER,
                body TEXT NOT NULL,
                error TEXT NOT NULL,
                received_at REAL NOT NULL
            )"""
        )
        # Telegram keeps an unconfirmed update for 24 hours; a week covers any redelivery, and
        # an answer that late would help nobody.
        for table in ("updates", "unreadable"):
            await conn.execute(
                f"DELETE FROM {table} WHERE received_at < ?", (time.time() - _KEEP_DONE_S,)
            )
        await conn.commit()
        return cls(conn)

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        await self._conn.close()

    async def receive(self, updates: Sequence[Update]) -> None:
        """Write down a fresh batch before it is confirmed; ids seen before are marked stale.

        Known ids are looked up rather than compared with the newest one: after a week without
        updates Telegram starts numbering at random.
        """
        if not updates:
            return
        ids = [u.update_id for u in updates]
        marks = ",".join("?" * len(ids))
        async with self._conn.execute(
            f"SELECT update_id FROM updates WHERE update_id IN ({marks})", ids
        ) as cursor:
            known = {int(row[0]) for row in await cursor.fetchall()}
        self._stale.update(known)
        fresh = [u for u in updates if u.update_id not in known]
        if not fresh:
            return
        now = time.time()
        await self._conn.executemany(
            "INSERT OR IGNORE INTO updates (update_id, state, body, received_at) "
            "VALUES (?, 'received', ?, ?)",
            [(u.update_id, u.model_dump_json(exclude_none=True), now) for u in fresh],
        )
        await self._conn.commit()

    async def arrive(self, update: Update) -> State | None:
        """Write down an update a webhook delivers; its state if it was delivered before."""
        async with self._conn.execute(
            "SELECT state FROM updates WHERE update_id = ?", (update.update_id,)
        ) as cursor:
            row = await cursor.fetchone()
        if row is not None:
            return cast("State", row[0])
        await self._conn.execute(
            "INSERT OR IGNORE INTO updates (update_id, state, body, received_at) "
            "VALUES (?, 'received', ?, ?)",
            (update.update_id, update.model_dump_json(exclude_none=True), time.time()),
        )
        await self._conn.commit()
        return None

    async def keep_unreadable(self, update_id: int | None, body: str, error: str) -> None:
        """Keep an update aiogram could not read, with its raw JSON, for a person to look at."""
        log.warning("skipped unreadable update %s: %s", update_id, error)
        await self._conn.execute(
            "INSERT INTO unreadable (update_id, body, error, received_at) VALUES (?, ?, ?, ?)",
            (update_id, body, error, time.time()),
        )
        await self._conn.commit()

    async def unreadable(self) -> list[tuple[int | None, str, str]]:
        """The unreadable updates kept: id, raw JSON and what was wrong, oldest first."""
        async with self._conn.execute(
            "SELECT update_id, body, error FROM unreadable ORDER BY id"
        ) as cursor:
            return [(row[0], row[1], row[2]) for row in await cursor.fetchall()]

    def is_stale(self, update_id: int) -> bool:
        """Whether Telegram delivered this update again after it was written down."""
        if update_id in self._stale:
            self._stale.discard(update_id)
            return True
        return False

    async def sending(self, update_id: int) -> None:
        """Note, before the first visible message, that the update's answer may go out."""
        if update_id in self._sending:
            return
        self._sending.add(update_id)
        await self._mark(update_id, "sending", only_from="received")

    async def done(self, update_id: int) -> None:
        self._sending.discard(update_id)
        await self._mark(update_id, "done")

    async def unfinished(self) -> list[tuple[State, dict[str, Any]]]:
        """Updates a previous run took but did not finish, oldest first, as Bot API JSON."""
        async with self._conn.execute(
            "SELECT state, body FROM updates WHERE state != 'done' ORDER BY update_id"
        ) as cursor:
            rows = await cursor.fetchall()
        return [(row[0], json.loads(row[1])) for row in rows]

    async def _mark(self, update_id: int, state: State, only_from: State | None = None) -> None:
        """Change an update's state; returns once the change is committed.

        Changes asked for while a commit is under way share the next one, so concurrent
        updates cost one transaction between them, not one each.
        """
        if self._marked is None:
            self._marked = asyncio.get_running_loop().create_future()
        self._marks.append((state, update_id, only_from))
        marked = self._marked
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await asyncio.shield(marked)

    async def _flush(self) -> None:
        while self._marked is not None:
            marked, marks = self._marked, self._marks
            self._marked, self._marks = None, []
            try:
                # In the order asked for; `only_from` NULL: from any state.
                await self._conn.executemany(
                    "UPDATE updates SET state = ?1 WHERE update_id = ?2 "
                    "AND (?3 IS NULL OR state = ?3)",
                    marks,
                )
                await self._conn.commit()
            except Exception as error:  # each waiting caller gets it, as from its own commit
                marked.set_exception(error)
            else:
                marked.set_result(None)


class JournalRequests(BaseRequestMiddleware):
    """Bot API request middleware: journal each getUpdates batch, mark answers as going out."""

    def __init__(self, journal: UpdateJournal) -> None:
        self._journal = journal

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if isinstance(method, GetUpdates):
            updates = await readable_updates(
                make_request, bot, method, self._journal.keep_unreadable
            )
            # aiogram confirms this batch with its next getUpdates, which waits for this.
            await self._journal.receive(cast("list[Update]", updates))
            return updates
        update_id = _current_update.get()
        if update_id is not None and not isinstance(method, _INVISIBLE):
            await self._journal.sending(update_id)
        return await make_request(bot, method)


class JournalUpdates(BaseMiddleware):
    """Outer update middleware: skip updates delivered again, mark handled ones done.

    An update cancelled at shutdown stays unfinished, so the next start handles it.
    """

    def __init__(self, journal: UpdateJournal) -> None:
        self._journal = journal

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        if self._journal.is_stale(event.update_id):
            log.info("skipped update %s delivered again", event.update_id)
            return None
        token = _current_update.set(event.update_id)
        try:
            result = await handler(event, data)
        except asyncio.CancelledError:
            raise
        except Exception:
            await self._journal.done(event.update_id)
            raise
        finally:
            _current_update.reset(token)
        await self._journal.done(event.update_id)
        return result


def attach_journal(bot: Bot, dp: Dispatcher, journal: UpdateJournal) -> None:
    """Journal the bot's polling, and finish what a previous run left when polling starts."""
    journal_handling(bot, dp, journal)

    async def recover(bot: Bot, i18n: I18n, bot_config: BotConfig) -> None:
        await recover_unfinished(bot, dp, journal, i18n, bot_config.languages)

    dp.startup.register(recover)


def journal_handling(bot: Bot, dp: Dispatcher, journal: UpdateJournal) -> None:
    """Mark updates `sending` before their first visible message and `done` when handled."""
    bot.session.middleware(JournalRequests(journal))
    dp.update.outer_middleware(JournalUpdates(journal))


class JournaledWebhook(TolerantWebhook):
    """The webhook endpoint, answering Telegram once an update is handled and written down.

    Use with `journal_handling` on the same bot and dispatcher.
    """

    def __init__(
        self, dispatcher: Dispatcher, bot: Bot, journal: UpdateJournal, *, secret_token: str
    ) -> None:
        super().__init__(dispatcher, bot, secret_token=secret_token, keep=journal.keep_unreadable)
        self._journal = journal
        self._handling: set[int] = set()

    async def _handle_request(self, bot: Bot, request: web.Request) -> web.Response:
        update = await self.read_update(bot, request)
        if update is None:
            return web.json_response({})
        if update.update_id in self._handling:
            # Delivered again while this process still works on it (Telegram timed out).
            return web.json_response({})
        previous = await self._journal.arrive(update)
        if previous == "done":
            log.info("skipped update %s delivered again", update.update_id)
            return web.json_response({})
        if previous == "sending":
            languages = self.dispatcher["bot_config"].languages
            await _notice_instead(
                bot,
                update,
                self._journal,
                self.dispatcher["i18n"],
                languages,
                self.dispatcher.workflow_data.get("engine"),
            )
            log.warning("update %s was being answered when a bot process stopped", update.update_id)
            return web.json_response({})
        self._handling.add(update.update_id)
        try:
            return await self.handle_update(bot, update)
        finally:
            self._handling.discard(update.update_id)


async def recover_unfinished(
    bot: Bot, dp: Dispatcher, journal: UpdateJournal, i18n: I18n, languages: Sequence[str]
) -> None:
    """Handle again what was only received; send a notice for what may have been answered."""
    entries = await journal.unfinished()
    if not entries:
        return
    await bot.me()  # cached now, so replays of one chat cannot overtake each other on it
    replays: dict[int, list[Update]] = {}
    noticed = 0
    for state, body in entries:
        update = Update.model_validate(body, context={"bot": bot})
        if state == "sending":
            noticed += await _notice_instead(
                bot, update, journal, i18n, languages, dp.workflow_data.get("engine")
            )
            continue
        message = update.message or update.edited_message
        chat = message.chat.id if isinstance(message, Message) else 0
        replays.setdefault(chat, []).append(update)
    log.warning(
        "recovering after an unclean stop: %d updates handled again, %d notices",
        sum(len(u) for u in replays.values()),
        noticed,
    )

    async def replay(updates: list[Update]) -> None:
        for update in updates:
            await dp.feed_update(bot, update)

    await asyncio.gather(*(replay(updates) for updates in replays.values()))


async def _notice_instead(
    bot: Bot,
    update: Update,
    journal: UpdateJournal,
    i18n: I18n,
    languages: Sequence[str],
    engine: Engine | None = None,
) -> bool:
    """Settle an update whose answer may already have gone out: nothing more when the log
    says Telegram confirmed it, else a notice quoting the message instead of a second answer;
    the update is marked done. True when a notice was sent.

    Its bot turn stays `pending` in the log: whether it reached the customer is not known.
    """
    message = update.message or update.edited_message
    delivered = engine is not None and await answer_delivery(engine, update) == "delivered"
    noticed = isinstance(message, Message) and not delivered
    if isinstance(message, Message) and noticed:
        await _notify(bot, message, i18n, languages)
    await journal.done(update.update_id)
    return noticed


async def _notify(bot: Bot, message: Message, i18n: I18n, languages: Sequence[str]) -> None:
    code = message.from_user.language_code if message.from_user else None
    text = i18n.gettext(RECOVERY_NOTICE, locale=pick_language(code, languages))
    try:
        await bot.send_message(
            message.chat.id,
            text,
            message_thread_id=message.message_thread_id if message.is_topic_message else None,
            reply_parameters=ReplyParameters(
                message_id=message.message_id, allow_sending_without_reply=True
            ),
        )
    except TelegramForbiddenError as error:  # blocked meanwhile: nothing more goes there
        log.info("no recovery notice for chat=%s: %s", message.chat.id, error.message)
    except Exception:  # best effort: the chat may be gone; the rest must still recover
        log.exception("could not send the recovery notice to chat=%s", message.chat.id)
