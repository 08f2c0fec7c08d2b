"""Run one customer message through the engine and show the reply in the chat."""

from __future__ import annotations

import contextlib
import logging

from aiogram import Bot
from aiogram.types import InlineKeyboardMarkup, Message
from aiogram.utils.chat_action import ChatActionSender
from aiogram.utils.i18n import gettext as _

from bot.desk import CHANNEL, Desk
from bot.formatting import render_reply
from bot.keyboards import choice_keyboard, feedback_keyboard
from bot.streaming import DraftSupport, ReplyStream
from engine import Engine, FinalReply, TextDelta
from engine.settings import BotConfig

log = logging.getLogger(__name__)


async def reply_to(
    message: Message,
    text: str,
    *,
    bot: Bot,
    engine: Engine,
    desk: Desk,
    config: BotConfig,
    drafts: DraftSupport,
) -> FinalReply:
    """Stream the engine's reply to `text` into the message's chat; hand over when it says so."""
    assert message.from_user is not None, "customer messages have a sender"
    user = message.from_user
    chat_id = message.chat.id
    thread_id = message.message_thread_id if message.is_topic_message else None
    conversation = await engine.conversation(CHANNEL, str(user.id))
    stream = ReplyStream(
        bot,
        chat_id,
        thread_id=thread_id,
        interval_s=config.stream_interval_s,
        drafts=drafts if config.drafts and message.chat.type == "private" else None,
        draft_id=message.message_id,
    )
    final: FinalReply | None = None
    async with ChatActionSender.typing(bot=bot, chat_id=chat_id, message_thread_id=thread_id):
        streamed, pieces = "", 0
        try:
            async with contextlib.aclosing(engine.reply(conversation, text)) as events:
                async for event in events:
                    if isinstance(event, TextDelta):
                        streamed, pieces = streamed + event.text, pieces + 1
                        # A reply that comes in one piece (a fixed sentence) is sent whole, in
                        # the customer's language; only generated text is previewed.
                        if pieces > 1:
                            stream.update(streamed)
                    else:
                        final = event
        except BaseException:
            await stream.cancel()
            raise
        assert final is not None, "the engine always ends with a FinalReply"
        chunks, markup = present(final)
        await stream.finish(chunks, markup)
    log.info(
        "answered chat=%s conversation=%s turn=%s action=%s",
        chat_id,
        final.conversation_id,
        final.turn_id,
        final.action,
    )
    if final.escalate:
        await desk.hand_over(bot, chat_id, user, final)
    return final


def present(final: FinalReply) -> tuple[list[str], InlineKeyboardMarkup | None]:
    """The reply as HTML messages in the customer's language, and the buttons under it."""
    if final.action == "answer":
        footer = (
            _("Source: {title}").format(title=final.hits[0].entry.question) if final.hits else ""
        )
        return render_reply(final.text, footer), feedback_keyboard(final.turn_id)
    if final.action == "clarify" and final.options:
        questions = [entry.question for entry in final.options]
        listing = "\n".join(f"{n}. {q}" for n, q in enumerate(questions, 1))
        text = f"{_('Which of these do you mean?')}\n{listing}"
        return render_reply(text), choice_keyboard(questions)
    # The engine's fixed hand-over sentences are catalogue entries; anything else stays as is.
    return render_reply(_(final.text)), None
