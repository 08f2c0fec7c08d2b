"""The seam to the operator desk: where hand-overs go and who answers a handed-over customer."""

from __future__ import annotations

import logging
from typing import Protocol

from aiogram import Bot
from aiogram.types import Message, User
from aiogram.utils.i18n import gettext as _

from engine import Engine, FinalReply

log = logging.getLogger(__name__)

CHANNEL = "telegram"


class Desk(Protocol):
    """Brings human operators into a customer's chat; the customer router calls it.

    Put one in the dispatcher as `dp["desk"]`. While `is_with_operator(chat_id)` is true the
    customer's messages go to `forward_to_operator` instead of the engine.
    """

    async def hand_over(self, bot: Bot, chat_id: int, user: User, reply: FinalReply | None) -> None:
        """Bring an operator in; `reply` is the engine's hand-over reply (None: no engine turn)."""
        ...

    def is_with_operator(self, chat_id: int) -> bool:
        """Whether an operator has this customer's chat now."""
        ...

    async def forward_to_operator(self, bot: Bot, message: Message) -> None:
        """Pass a customer's message to the operator who has the chat."""
        ...


class LoggedDesk:
    """The desk when no operator group is configured: hand-overs are recorded in the log only.

    Someone reading the log follows up; the customer keeps talking to the bot meanwhile.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def hand_over(self, bot: Bot, chat_id: int, user: User, reply: FinalReply | None) -> None:
        conversation_log = self._engine.conversation_log
        conversation = await self._engine.conversation(CHANNEL, str(user.id))
        if await conversation_log.open_handover_for(conversation) is None:
            await conversation_log.open_handover(
                conversation, reply.reason if reply else "human_requested"
            )
        log.info("hand-over recorded chat=%s conversation=%s", chat_id, conversation)
        await bot.send_message(chat_id, _("A colleague will follow up here as soon as possible."))

    def is_with_operator(self, chat_id: int) -> bool:
        return False

    async def forward_to_operator(self, bot: Bot, message: Message) -> None:
        raise AssertionError("LoggedDesk never has a chat with an operator")
