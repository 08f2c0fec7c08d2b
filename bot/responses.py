"""Keep the response model of each Bot API method alive, so it is built once per process.

aiogram reads every answer with `Response[method.__returning__]`, a pydantic generic that
pydantic caches only weakly: after each garbage collection the model is gone and the next call
builds its schema again, 1-25 ms of the event loop's time (measured: 136 rebuilds over 1,159
calls in a 512-answer run of scripts/bench_bot.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType

if TYPE_CHECKING:
    from aiogram import Bot


class KeepResponseModels(BaseRequestMiddleware):
    """Bot API request middleware: hold a strong reference to each method's response model."""

    def __init__(self) -> None:
        self._models: dict[type[TelegramMethod[Any]], type[Any]] = {}

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        kind = type(method)
        if kind not in self._models:
            self._models[kind] = Response[method.__returning__]  # type: ignore[name-defined]
        return await make_request(bot, method)
