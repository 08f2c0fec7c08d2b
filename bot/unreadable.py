"""Updates the client library cannot read: skipped, recorded with their raw JSON, and everyone
else served.

aiogram reads a getUpdates batch as a whole, so one update it cannot parse (a newer Bot API
sends an object with fields it does not expect to miss) fails every poll and stops the bot until
Telegram drops the update a day later. Here the readable updates before it are taken, the bad
one is recorded and confirmed (the next offset passes it), and polling goes on. A webhook
answers 200 to such an update, so Telegram does not deliver it again, and records it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from aiogram import Bot, Dispatcher
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import ClientDecodeError
from aiogram.methods import GetUpdates, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from pydantic import ValidationError

if TYPE_CHECKING:
    from aiogram.methods import Response

log = logging.getLogger(__name__)

# Keeps one unreadable update: its id when it has one, its raw JSON, and what was wrong.
Keep = Callable[[int | None, str, str], Awaitable[None]]


async def log_only(update_id: int | None, body: str, error: str) -> None:
    """Where unreadable updates go without a journal: one warning line with the raw JSON."""
    log.warning("skipped unreadable update %s (%s): %s", update_id, error, body[:4000])


async def readable_updates(
    make_request: NextRequestMiddlewareType[TelegramType],
    bot: Bot,
    method: GetUpdates,
    keep: Keep,
) -> Response[TelegramType]:
    """Poll with `method`; an unreadable update is kept, confirmed and left out of the batch.

    `method` is aiogram's polling request: the offset set on it here stays for its next polls.
    """
    request = method
    while True:
        try:
            return await make_request(bot, cast("TelegramMethod[TelegramType]", request))
        except ClientDecodeError as error:
            batch = error.data.get("result") if isinstance(error.data, dict) else None
            if not isinstance(batch, list):
                raise
            first_bad, problem = _first_unreadable(batch, bot)
            if first_bad is None:
                raise
        if first_bad > 0:
            # Take the readable ones before it; the next poll starts at the bad one.
            request = method.model_copy(update={"limit": first_bad})
            continue
        raw = batch[0]
        update_id = raw.get("update_id") if isinstance(raw, dict) else None
        if not isinstance(update_id, int):
            raise ClientDecodeError("an update without an update_id", ValueError(), raw)
        await keep(update_id, json.dumps(raw, ensure_ascii=False), problem)
        method.offset = update_id + 1
        request = method


def _first_unreadable(batch: list[Any], bot: Bot) -> tuple[int | None, str]:
    for index, raw in enumerate(batch):
        try:
            Update.model_validate(raw, context={"bot": bot})
        except ValidationError as error:
            return index, _summary(error)
    return None, ""


def _summary(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()[:5]
    )


class SkipUnreadable(BaseRequestMiddleware):
    """Bot API request middleware: getUpdates never fails on one update it cannot read."""

    def __init__(self, keep: Keep = log_only) -> None:
        self._keep = keep

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if isinstance(method, GetUpdates):
            return await readable_updates(make_request, bot, method, self._keep)
        return await make_request(bot, method)


class TolerantWebhook(SimpleRequestHandler):
    """The webhook endpoint (answering once an update is handled): an update it cannot read is
    kept and answered 200, so Telegram does not deliver it again and again."""

    def __init__(
        self, dispatcher: Dispatcher, bot: Bot, *, secret_token: str, keep: Keep = log_only
    ) -> None:
        super().__init__(dispatcher, bot, handle_in_background=False, secret_token=secret_token)
        self._keep = keep

    async def read_update(self, bot: Bot, request: web.Request) -> Update | None:
        """The request's update, or None once an unreadable one was kept."""
        text = await request.text()
        try:
            body = bot.session.json_loads(text)
            return Update.model_validate(body, context={"bot": bot})
        except ValidationError as error:
            update_id = body.get("update_id") if isinstance(body, dict) else None
            known = update_id if isinstance(update_id, int) else None
            await self._keep(known, text, _summary(error))
        except ValueError as error:  # not JSON at all
            await self._keep(None, text, f"not JSON: {error}")
        return None

    async def _handle_request(self, bot: Bot, request: web.Request) -> web.Response:
        update = await self.read_update(bot, request)
        if update is None:
            return web.json_response({})
        return await self.handle_update(bot, update)

    async def handle_update(self, bot: Bot, update: Update) -> web.Response:
        """Feed a readable update to the dispatcher and answer with what it returns."""
        result: TelegramMethod[Any] | None = await self.dispatcher.feed_webhook_update(
            bot, update, **self.data
        )
        return web.Response(body=self._build_response_writer(bot=bot, result=result))
