"""Every button press gets exactly one answer, so no customer's button keeps spinning.

Handlers never call `query.answer()`; they set `callback_answer.text` (aiogram's
`CallbackAnswer`, given to every callback handler), and the answer goes out when the handler is
done, also when it failed. Presses no handler takes (stale or made-up data) get a short notice.
"""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import AnswerCallbackQuery
from aiogram.types import CallbackQuery
from aiogram.utils.callback_answer import CallbackAnswer, CallbackAnswerMiddleware
from aiogram.utils.i18n import gettext as _

log = logging.getLogger(__name__)


class AnswerEveryPress(CallbackAnswerMiddleware):
    """Outer callback-query middleware: one answerCallbackQuery per press, whatever happens."""

    async def answer(  # type: ignore[override]
        self, event: CallbackQuery, callback_answer: CallbackAnswer
    ) -> bool:
        method: AnswerCallbackQuery = super().answer(event, callback_answer)
        try:
            return await method
        except TelegramBadRequest as error:  # too old: Telegram gave up waiting for the answer
            log.info("press id=%s not answered: %s", event.id, error.message)
            return False


def leftover_presses() -> Router:
    """The last router: a press nobody handled is answered with a short, polite notice."""
    router = Router(name="leftover presses")
    router.callback_query.register(_stale)
    return router


async def _stale(query: CallbackQuery, callback_answer: CallbackAnswer) -> None:
    log.info("unhandled press user=%s data=%r", query.from_user.id, (query.data or "")[:64])
    callback_answer.text = _("Sorry, this button no longer works. Please send your question again.")
