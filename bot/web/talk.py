"""One customer message from the web through the engine, exactly as the Telegram bot sends it.

The only web-specific part: while an operator has the conversation (and an operator desk takes
web hand-overs), the message is logged for the operator instead of answered by the bot.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from bot.web.access import CHANNEL, Services
from engine import FinalReply, TextDelta
from engine.rating import take_rating

WITH_OPERATOR = "A colleague has your chat now; they will reply here."


@dataclass(frozen=True, slots=True)
class Relayed:
    """The message went to the operator who has the conversation; the bot did not answer."""

    conversation_id: int
    turn_id: int
    text: str = WITH_OPERATOR
    # "with_operator"; "rating": the message rated a resolved hand-over and was thanked for.
    reason: str = "with_operator"


Said = TextDelta | FinalReply | Relayed


async def conversation_of(services: Services, external_user_id: str) -> int:
    """The customer's open conversation; a new one after a conversation was closed."""
    engine = services.engine
    # One indexed row per message: reading the conversation would load all its turns.
    found = await engine.conversation_log.open_conversation_id(CHANNEL, external_user_id)
    if found is not None:
        return found
    return await engine.conversation(CHANNEL, external_user_id, new=True)


async def say(services: Services, external_user_id: str, text: str) -> AsyncGenerator[Said, None]:
    """Stream the answer to one customer message: deltas and a FinalReply, or one Relayed."""
    engine = services.engine
    conversation = await conversation_of(services, external_user_id)
    if services.config.operator_desk:
        handover = await engine.conversation_log.open_handover_for(conversation)
        if handover is not None:
            turn = await engine.conversation_log.add_turn(conversation, "customer", text)
            yield Relayed(conversation, turn)
            return
    rated = await take_rating(engine.conversation_log, conversation, text)
    if rated is not None:  # a rating of the hand-over just resolved, not a question
        yield Relayed(conversation, rated.turn_id, rated.text, reason="rating")
        return
    async with contextlib.aclosing(engine.reply(conversation, text)) as events:
        async for event in events:
            yield event
