"""A fake Telegram Bot API server on 127.0.0.1 for end-to-end tests of the real bot.

It answers in the exact shapes aiogram parses: ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": ..., "description": ..., "parameters": {"retry_after": ...}}``,
with Telegram's HTTP statuses and error texts, so aiogram raises the same exceptions it would
against Telegram (``TelegramBadRequest``, ``TelegramRetryAfter``, ``TelegramConflictError``...).

Running it::

    async with FakeTelegram() as tg:
        session = AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url))
        bot = Bot(tg.token, session=session)

``tg.token`` is a valid-looking token whose id is ``tg.bot_user["id"]``; requests with another
token get 401. ``tg.bot_user`` is the bot's User (``id``, ``username``, ...), what getMe returns.

Methods: getMe, getUpdates, sendMessage, sendMessageDraft, editMessageText,
editMessageReplyMarkup, deleteMessage, sendChatAction, answerCallbackQuery, setMyCommands,
getMyCommands, deleteMyCommands, createForumTopic, closeForumTopic, reopenForumTopic,
getChatMember, copyMessage, forwardMessage, sendPhoto, sendDocument (multipart upload, file_id or
URL), getFile (and the file download URL), setWebhook, deleteWebhook, getWebhookInfo. Names are
case-insensitive; query string, url-encoded, multipart and JSON bodies are all read.

Updates in (synchronous; each queues one update and returns the Message dict it carries)::

    tg.send_text(chat_id, text, *, user_id=None, first_name="Alice", language_code="en",
                 chat_type=None, message_thread_id=None, reply_to_message_id=None, entities=None)
    tg.send_photo(chat_id, *, caption=None, ...)     tg.send_sticker(chat_id, *, emoji="👍", ...)
    tg.send_voice(chat_id, *, duration=3, ...)       tg.send_document(chat_id, *, file_name=...)
    tg.edit_text(chat_id, message_id, new_text)      # an edited_message update
    tg.press_button(chat_id, message_id, data, user_id=None) -> callback query id
    tg.add_update({"message": {...}})                # anything else; update_id is assigned;
                                     # a callback_query in it can then be answered once
    tg.block(user_id)                # the user blocks the bot: 403 until they write again
    tg.add_chat(chat_id, chat_type=None, *, title=None, is_forum=None)   # declare a chat

``user_id`` defaults to the chat id in private chats and to 1000 in groups. With
``sender_chat_id`` (and ``author_signature``) a chat speaks: the group itself for an anonymous
admin (``from`` is GroupAnonymousBot), another chat for a channel post forwarded into its
discussion group (``from`` is the Telegram service account). ``chat_type`` defaults
to what the id implies (positive: private, ``-100...``: supergroup, other negative: group).
Supergroups are forums (``is_forum``) unless ``tg.add_chat(id, "supergroup", is_forum=False)``;
a ``message_thread_id`` in a forum makes a topic message (``is_topic_message``). Message ids
increase per chat, shared by users' and the bot's messages. Without ``entities``, ``/commands``
and ``@mentions`` in the text get their entities as Telegram adds them. Media helpers store their
bytes as a file the bot can ``getFile``, download, or send on by file_id. ``press_button`` checks
that the message currently has a button with that callback data.

Delivery: getUpdates long polling (offset confirms earlier updates, ``timeout`` waits for new
ones, ``limit``, ``allowed_updates``; a newer getUpdates ends an older one with 409 like Telegram).
After setWebhook the fake POSTs each update as JSON to the url, in order and one at a time, with
``X-Telegram-Bot-Api-Secret-Token``; a non-2xx answer or connection error is retried with growing
delays (``webhook_retry_delay`` doubling up to 2 s). ``FakeTelegram(webhook_connections=40)``
delivers over up to that many connections at once (capped by setWebhook's max_connections), as
Telegram does, one update per chat at a time and a chat's updates in order (the queue of several
bot processes is tested so). A method returned in the webhook answer (JSON
or aiogram's multipart reply) is executed and recorded like a call. While a webhook is set,
getUpdates answers 409; deleteWebhook returns to polling. HTTP webhook urls are accepted, as by a
local Bot API server.

Out::

    tg.calls                    # every request, as answered: Call(method, params, time, status,
                                # result, description, files); webhook replies included
    tg.observe(callback)        # callback(call) for every request as it is recorded, for
                                # load tests that cannot rescan tg.calls
    tg.calls_for(method, ok=None)   # ok=True: only successful ones; call["chat_id"] reads params
    tg.messages(chat_id, thread_id=None)  # the bot's messages there, in order, as they are now
                                # (after edits; deleted and service messages left out)
    await tg.wait_for("sendMessage", timeout=10)    # the first successful call of that method
    await tg.wait_for(lambda: len(tg.messages(1)) >= 2)          # until the predicate holds
    await tg.wait_for_call(lambda call: call.method == ..., timeout=10)
    await tg.wait_idle(quiet=0.3, timeout=10)  # no calls but getUpdates for `quiet` s and every
                                # queued update handed out
    tg.set_member(chat_id, user_id, status)    # for getChatMember; default "left"
    tg.callback_answer(query_id)  # the answerCallbackQuery params, or None while unanswered
    tg.webhook_url, tg.webhook_attempts   # the webhook set, and (update_id, HTTP status or None)

The bot's messages and the users' share one store (``tg.world``): copyMessage and forwardMessage
take a user's photo or document on, replies carry ``reply_to_message``, and what
``tg.messages`` returns is what getUpdates would show in a callback query.

Params in recorded calls are decoded by kind: ids are ints, reply_markup / commands / entities are
dicts and lists. Uploaded and resolved files are in ``call.files`` (``StoredFile`` with file_name,
data, mime_type); ``tg.files`` maps every file_id the fake knows.

Rate limits: ``tg.rate_limit(chat_id, retry_after=1, times=3)`` answers the next ``times``
send/edit calls to that chat (sendMessage, sendMessageDraft, sendPhoto, sendDocument, copyMessage,
forwardMessage, editMessageText, editMessageReplyMarkup) with 429 and ``retry_after``;
``tg.flood_limit(per_chat_per_second=..., global_per_second=..., drafts=False)`` answers 429
when accepted send/edit calls in the last second reach a limit (drafts count only if asked).
``tg.too_many_requests`` counts every 429 served.

Crash and recovery: ``tg.pending_updates()`` are the updates not yet confirmed (queued or handed
out), ``tg.delivered_update_ids`` the ids handed out (first time each, in order),
``tg.delivery_counts`` how often each was handed out, ``tg.confirmed_update_ids`` those confirmed
by a later offset or a 2xx webhook answer.

Telegram behaviour kept on purpose: HTML is parsed (unknown or unbalanced tags answer "can't parse
entities"), texts over 4096 UTF-16 units "message is too long", captions over 1024, surrounding
whitespace is stripped, an edit without reply_markup removes the inline keyboard, an identical
edit answers "message is not modified", unknown methods answer 404 "Not Found", a missing required
parameter 400, a callback query can be answered once, sendMessageDraft only to private chats
with a non-zero draft_id, posting to an unknown forum topic "message thread not found", closing a
closed topic "TOPIC_NOT_MODIFIED", a callback_data over 64 bytes "BUTTON_DATA_INVALID", a
callback answer text over 200 characters "MESSAGE_TOO_LONG", anything sent to a user who blocked
the bot 403 "Forbidden: bot was blocked by the user".

Not emulated: Markdown and MarkdownV2 (the text is kept as sent), inline messages, "@username"
chat ids (answered "chat not found"), chats the bot was never added to (any id is a chat, created
on first use), who may post in a closed topic (the bot always may), Telegram's own flood limits
(only the configured ones), parallel webhook deliveries of one chat's updates, link
previews, media other than photos and documents sent by the bot, and update retention limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar, overload

import aiohttp
from aiohttp import web

from tests.telegram.limits import LIMITED_METHODS, RateLimits
from tests.telegram.methods import Methods
from tests.telegram.params import (
    ApiError,
    Upload,
    bad_request,
    canonical_method,
    decode_params,
    read_request,
)
from tests.telegram.updates import UpdateQueue
from tests.telegram.users import ChatUsers, Sender
from tests.telegram.webhook import Webhook, post_update
from tests.telegram.world import StoredFile, World

__all__ = ["Call", "FakeTelegram", "Sender", "StoredFile"]

_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_MAX_RETRY_DELAY_S = 2.0
_POLL_S = 0.05
_T = TypeVar("_T")


@dataclass(frozen=True)
class Call:
    """One request the bot made (`time` is time.monotonic() on arrival) and what it got back."""

    method: str
    params: dict[str, Any]
    time: float
    status: int = 200
    result: Any = None
    description: str | None = None
    files: dict[str, StoredFile] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200

    def __getitem__(self, name: str) -> Any:
        return self.params[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)


class FakeTelegram(ChatUsers):
    """The Bot API on a free 127.0.0.1 port: updates in, the bot's calls recorded and answered."""

    def __init__(
        self,
        *,
        bot_id: int = 123456,
        username: str = "support_test_bot",
        webhook_retry_delay: float = 0.2,
        webhook_connections: int = 1,
    ) -> None:
        self.token = f"{bot_id}:AAEFakeTelegramTokenForTests-{bot_id:010d}"
        self.bot_user: dict[str, Any] = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Support",
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self._methods = Methods(World(), self.bot_user)
        super().__init__(
            self._methods.world, UpdateQueue(), self._methods.callback_queries, self._touch
        )
        self.calls: list[Call] = []
        self._observers: list[Callable[[Call], None]] = []
        self.webhook_attempts: list[tuple[int, int | None]] = []
        self.base_url = ""
        self._limits = RateLimits()
        self._webhook: Webhook | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._retry_delay = webhook_retry_delay
        self._connections = max(webhook_connections, 1)
        self._poller = 0
        self._in_flight = 0
        self._last_activity = time.monotonic()
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None

    # Lifecycle

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1; `base_url` is set once this returns."""
        app = web.Application(client_max_size=50 * 2**20)
        app.router.add_route("*", "/bot{token}/{method}", self._endpoint)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        """End long polls and webhook delivery, then close the server."""
        self._closing = True
        self._notify()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
        if self._runner is not None:
            await self._runner.cleanup()

    # Configuration

    def add_chat(
        self,
        chat_id: int,
        chat_type: str | None = None,
        *,
        title: str | None = None,
        is_forum: bool | None = None,
    ) -> dict[str, Any]:
        """Declare a chat before use, e.g. a supergroup without topics; returns its Chat."""
        return self.world.chat(chat_id, chat_type, title=title, is_forum=is_forum).payload()

    def set_member(self, chat_id: int, user_id: int, status: str) -> None:
        """What getChatMember answers: creator, administrator, member, restricted, left, kicked."""
        if status not in ("creator", "administrator", "member", "restricted", "left", "kicked"):
            raise ValueError(f"unknown chat member status {status!r}")
        self.world.chat(chat_id).members[user_id] = status

    def rate_limit(self, chat_id: int, retry_after: int = 1, times: int = 3) -> None:
        """Answer the next `times` send/edit calls to the chat with 429 and `retry_after`."""
        self._limits.force(chat_id, retry_after, times)

    def flood_limit(
        self,
        per_chat_per_second: int | None = None,
        global_per_second: int | None = None,
        *,
        drafts: bool = False,
    ) -> None:
        """Answer 429 once accepted send/edit calls within a second reach a limit; None: off."""
        self._limits.flood(per_chat_per_second, global_per_second, drafts=drafts)

    # Out

    def observe(self, callback: Callable[[Call], None]) -> None:
        """Call `callback` with each request as it is recorded, after it was answered."""
        self._observers.append(callback)

    def calls_for(self, method: str, *, ok: bool | None = None) -> list[Call]:
        """Recorded calls of one method in order; `ok` filters by success."""
        return [c for c in self.calls if c.method == method and (ok is None or c.ok == ok)]

    def messages(self, chat_id: int, thread_id: int | None = None) -> list[dict[str, Any]]:
        """The bot's messages in the chat (or one topic), in order, as they read now."""
        chat = self.world.chats.get(chat_id)
        if chat is None:
            return []
        return [
            copy.deepcopy(m.payload)
            for m in chat.messages.values()
            if m.from_bot
            and not m.deleted
            and not m.service
            and (thread_id is None or m.payload.get("message_thread_id") == thread_id)
        ]

    def callback_answer(self, query_id: str) -> dict[str, Any] | None:
        """The params the bot answered a callback query with, or None while unanswered."""
        return self._methods.callback_queries.get(query_id)

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed: queued, or handed out without a later offset."""
        return copy.deepcopy(self._updates.pending)

    @property
    def delivered_update_ids(self) -> list[int]:
        return self._updates.delivered_update_ids

    @property
    def confirmed_update_ids(self) -> list[int]:
        return self._updates.confirmed_update_ids

    @property
    def delivery_counts(self) -> Counter[int]:
        return self._updates.delivery_counts

    @property
    def too_many_requests(self) -> int:
        return self._limits.served

    @property
    def files(self) -> dict[str, StoredFile]:
        return self.world.files

    @property
    def webhook_url(self) -> str | None:
        return self._webhook.url if self._webhook else None

    # Waiting. `timeout` is how long a test is willing to wait, not an I/O timeout.

    # A wait ends as soon as its condition holds; its default limit (60 s) is long enough for a
    # bot answering with the real model on a shared 2-core machine under heavy load.
    @overload
    async def wait_for(self, what: str, timeout: float = 60.0) -> Call: ...  # noqa: ASYNC109

    @overload
    async def wait_for(self, what: Callable[[], bool], timeout: float = 60.0) -> None: ...  # noqa: ASYNC109

    async def wait_for(self, what: str | Callable[[], bool], timeout: float = 60.0) -> Call | None:  # noqa: ASYNC109
        """Wait for the first successful call of a method, or for a predicate to hold."""
        if isinstance(what, str):
            method = what
            return await self.wait_for_call(lambda c: c.method == method and c.ok, timeout)
        condition = what

        def check() -> tuple[bool, None]:
            return condition(), None

        return await self._until(check, timeout, repr(what))

    async def wait_for_call(self, predicate: Callable[[Call], bool], timeout: float = 60.0) -> Call:  # noqa: ASYNC109
        """Wait for the first recorded call, past or future, that matches."""

        def check() -> tuple[bool, Call | None]:
            found = next((c for c in self.calls if predicate(c)), None)
            return found is not None, found

        found = await self._until(check, timeout, "a matching call")
        assert found is not None
        return found

    async def wait_idle(self, quiet: float = 0.3, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        """Wait until every update was handed out and no call but getUpdates came for `quiet` s."""

        def check() -> tuple[bool, None]:
            undelivered = self._updates.pending if self._webhook else self._updates.not_handed_out()
            busy = self._in_flight or undelivered
            return not busy and time.monotonic() - self._last_activity >= quiet, None

        await self._until(check, timeout, "idle")

    async def _until(self, check: Callable[[], tuple[bool, _T]], budget: float, what: str) -> _T:
        deadline = time.monotonic() + budget
        while True:
            done, value = check()
            if done:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                recent = ", ".join(f"{c.method}={c.status}" for c in self.calls[-8:])
                raise TimeoutError(
                    f"waited {budget}s for {what}; {len(self._updates.pending)} updates "
                    f"unconfirmed; last calls: {recent or 'none'}"
                )
            await self._wait_change(min(remaining, _POLL_S))

    def _touch(self) -> None:
        self._last_activity = time.monotonic()
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_change(self, seconds: float) -> None:
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), seconds)

    # HTTP

    async def _endpoint(self, request: web.Request) -> web.Response:
        def alive() -> bool:
            return request.transport is not None and not request.transport.is_closing()

        token, method = request.match_info["token"], request.match_info["method"]
        try:
            raw, uploads = await read_request(request, method)
        except ApiError as error:
            self.calls.append(Call(method, {}, time.monotonic(), error.status, None, str(error)))
            return web.json_response(error.payload(), status=error.status)
        status, body = await self._execute(token, method, raw, uploads, alive)
        return web.json_response(body, status=status)

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            error = ApiError(401, "Unauthorized")
            return web.json_response(error.payload(), status=401)
        path = request.match_info["path"]
        for stored in self.world.files.values():
            if stored.file_path == path:
                kind = stored.mime_type or "application/octet-stream"
                return web.Response(body=stored.data, content_type=kind)
        return web.json_response(ApiError(404, "Not Found").payload(), status=404)

    async def _execute(
        self,
        token: str,
        name: str,
        raw: dict[str, Any],
        uploads: dict[str, Upload],
        alive: Callable[[], bool] = lambda: True,
    ) -> tuple[int, dict[str, Any]]:
        """Answer one Bot API request and record it; returns the HTTP status and JSON body."""
        started = time.monotonic()
        method = canonical_method(name)
        polling = method == "getUpdates"
        params: dict[str, Any] = raw
        files: dict[str, StoredFile] = {}
        result: Any = None
        if not polling:
            self._in_flight += 1
            self._touch()
        try:
            if token != self.token:
                raise ApiError(401, "Unauthorized")
            if method is None:
                raise ApiError(404, "Not Found")
            params = decode_params(method, raw)
            result, files = await self._dispatch(method, params, uploads, alive)
            result = copy.deepcopy(result)
            status, body = 200, {"ok": True, "result": result}
        except ApiError as error:
            status, body = error.status, error.payload()
        finally:
            if not polling:
                self._in_flight -= 1
        description = body.get("description")
        call = Call(method or name, params, started, status, result, description, files)
        self.calls.append(call)
        for observer in self._observers:
            observer(call)
        if polling:
            self._notify()
        else:
            self._touch()
        return status, body

    async def _dispatch(
        self,
        method: str,
        params: dict[str, Any],
        uploads: dict[str, Upload],
        alive: Callable[[], bool],
    ) -> tuple[Any, dict[str, StoredFile]]:
        if method == "getUpdates":
            return await self._get_updates(params, alive), {}
        if method == "setWebhook":
            return self._set_webhook(params), {}
        if method == "deleteWebhook":
            self._webhook = None
            if params.get("drop_pending_updates"):
                self._updates.drop_pending()
            self._notify()
            return True, {}
        if method == "getWebhookInfo":
            return self._webhook_info(), {}
        chat_id = params.get("chat_id")
        self._limits.check(method, chat_id)
        result = self._methods.call(method, params, uploads)
        if method in LIMITED_METHODS:
            self._limits.record(method, chat_id)
        return result, dict(self._methods.files_used)

    # Polling

    async def _get_updates(self, params: dict[str, Any], alive: Callable[[], bool]) -> Any:
        if self._webhook is not None:
            raise _webhook_conflict()
        self._poller += 1
        me = self._poller
        self._notify()  # an older long poll ends with 409
        self._updates.allow(params.get("allowed_updates"))
        if params.get("offset"):
            self._updates.confirm_below(params["offset"])
        limit = min(max(params.get("limit") or 100, 1), 100)
        deadline = time.monotonic() + max(params.get("timeout") or 0, 0)
        while True:
            if self._poller != me:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one "
                    "bot instance is running",
                )
            if self._webhook is not None:
                raise _webhook_conflict()
            batch = self._updates.take(limit)
            remaining = deadline - time.monotonic()
            if (batch and alive()) or remaining <= 0 or self._closing:
                break
            await self._wait_change(remaining)
        if not alive():  # the bot is gone; nothing was handed to it
            return []
        for update in batch:
            self._updates.hand_out(update)
        if batch:
            self._touch()
        return batch

    # Webhook

    def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = params.get("url") or ""
        if not url:
            self._webhook = None
            return True
        if not url.startswith(("https://", "http://")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._updates.drop_pending()
        self._updates.allow(params.get("allowed_updates"))
        self._webhook = Webhook(url, secret, params.get("max_connections") or 40)
        self._notify()  # a waiting getUpdates ends with 409
        if self._webhook_task is None or self._webhook_task.done():
            deliver = self._deliver_to_webhook if self._connections == 1 else self._deliver_at_once
            self._webhook_task = asyncio.create_task(deliver())
        return True

    def _webhook_info(self) -> dict[str, Any]:
        hook = self._webhook
        info: dict[str, Any] = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates.pending),
        }
        if hook is not None:
            info.update(max_connections=hook.max_connections, ip_address="127.0.0.1")
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
            if self._updates.allowed:
                info["allowed_updates"] = sorted(self._updates.allowed)
        return info

    async def _deliver_to_webhook(self) -> None:
        """POST pending updates one at a time, in order, retrying failures with growing delays."""
        delay = self._retry_delay
        async with aiohttp.ClientSession() as http:
            while (hook := self._webhook) is not None and not self._closing:
                batch = self._updates.take(1)
                if not batch:
                    await self._wait_change(1.0)
                    continue
                [update] = batch
                self._updates.hand_out(update)
                delivery = await post_update(http, hook, update)
                self.webhook_attempts.append((update["update_id"], delivery.status))
                if not delivery.ok:
                    hook.last_error_date = int(time.time())
                    hook.last_error_message = delivery.error
                    self._touch()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _MAX_RETRY_DELAY_S)
                    continue
                delay = self._retry_delay
                self._updates.confirm(update)
                self._touch()
                if delivery.reply is not None:
                    raw, uploads = delivery.reply
                    await self._execute(self.token, str(raw.pop("method")), raw, uploads)

    async def _deliver_at_once(self) -> None:
        """POST pending updates over several connections, one per chat at a time, in order."""
        in_flight: dict[asyncio.Task[None], tuple[int, int | None]] = {}
        attempts: Counter[int] = Counter()

        async def deliver(http: aiohttp.ClientSession, hook: Webhook, update: Any) -> None:
            update_id = update["update_id"]
            delivery = await post_update(http, hook, update)
            self.webhook_attempts.append((update_id, delivery.status))
            if not delivery.ok:
                hook.last_error_date = int(time.time())
                hook.last_error_message = delivery.error
                attempts[update_id] += 1
                self._touch()
                delay = self._retry_delay * 2 ** (attempts[update_id] - 1)
                await asyncio.sleep(min(delay, _MAX_RETRY_DELAY_S))
                return
            self._updates.confirm(update)
            self._touch()
            if delivery.reply is not None:
                raw, uploads = delivery.reply
                await self._execute(self.token, str(raw.pop("method")), raw, uploads)

        def finished(task: asyncio.Task[None]) -> None:
            del in_flight[task]
            self._notify()

        connector = aiohttp.TCPConnector(limit=self._connections)
        async with aiohttp.ClientSession(connector=connector) as http:
            try:
                while (hook := self._webhook) is not None and not self._closing:
                    room = min(self._connections, hook.max_connections) - len(in_flight)
                    out = {update_id for update_id, _ in in_flight.values()}
                    # A chat with an update out, or an earlier one waiting, waits.
                    held = {chat for _, chat in in_flight.values() if chat is not None}
                    for update in self._updates.take(len(self._updates.pending)) if room else ():
                        chat = _update_chat(update)
                        if update["update_id"] in out or chat in held:
                            continue
                        if chat is not None:
                            held.add(chat)
                        self._updates.hand_out(update)
                        task = asyncio.create_task(deliver(http, hook, update))
                        in_flight[task] = (update["update_id"], chat)
                        task.add_done_callback(finished)
                        room -= 1
                        if not room:
                            break
                    await self._wait_change(1.0)
            finally:
                for task in list(in_flight):
                    task.cancel()
                await asyncio.gather(*in_flight, return_exceptions=True)


def _update_chat(update: dict[str, Any]) -> int | None:
    """The chat an update belongs to, for keeping one chat's deliveries in order."""
    for kind in ("message", "edited_message", "channel_post", "edited_channel_post"):
        if kind in update:
            return int(update[kind]["chat"]["id"])
    message = update.get("callback_query", {}).get("message")
    return int(message["chat"]["id"]) if message else None


def _webhook_conflict() -> ApiError:
    return ApiError(
        409,
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to "
        "delete the webhook first",
    )
