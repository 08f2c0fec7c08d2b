"""Run one customer message through the engine and show the reply in the chat."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import InlineKeyboardMarkup, Message, Update
from aiogram.utils.i18n import gettext as _

from bot.blocking import BlockedChats
from bot.desk import Desk
from bot.formatting import render_reply
from bot.keyboards import ButtonSeal, choice_keyboard, feedback_keyboard
from bot.senders import Customer, customer_of
from bot.streaming import DraftSupport, ReplyStream
from engine import Engine, FinalReply, TextDelta
from engine.log import Delivery
from engine.settings import BotConfig

log = logging.getLogger(__name__)

# A reply shown sooner needs no typing indicator. Telegram shows one for 5 s (or until the
# bot's next message); it is not renewed: a reply still not shown by then waits in a queue of
# customers, where more chat actions would only slow every reply down, and generated text
# shows its own progress (drafts, edits).
TYPING_AFTER_S = 0.5


async def reply_to(
    message: Message,
    text: str,
    *,
    external_id: str,
    customer: Customer,
    bot: Bot,
    engine: Engine,
    desk: Desk,
    config: BotConfig,
    drafts: DraftSupport,
    blocked: BlockedChats,
) -> FinalReply | None:
    """Stream the engine's reply to `text` into the message's chat; hand over when it says so.

    The bot turn is logged `pending` under `external_id` (what the customer sent, see
    `message_key`) and marked `delivered` once Telegram confirmed the last message, or
    `undelivered` when Telegram refused it. None when the chat blocked the bot meanwhile: the
    reply is abandoned, its bot turn unlogged.
    """
    chat_id = message.chat.id
    thread_id = message.message_thread_id if message.is_topic_message else None
    # Buttons need a person to press them: a chat speaking anonymously gets none.
    seal = ButtonSeal.of(bot.token, chat_id, customer.key) if customer.user else None
    stream = ReplyStream(
        bot,
        chat_id,
        thread_id=thread_id,
        interval_s=config.stream_interval_s,
        drafts=drafts if config.drafts and message.chat.type == "private" else None,
        draft_id=message.message_id,
    )
    final: FinalReply | None = None
    async with typing(bot, chat_id, thread_id):
        streamed, pieces = "", 0
        try:
            replying = engine.reply_in_current(
                customer.channel,
                customer.external_id,
                text,
                external_id=external_id,
                delivery="pending",
            )
            async with contextlib.aclosing(replying) as events:
                async for event in events:
                    if blocked.is_blocked(chat_id):
                        log.info("reply abandoned: chat=%s blocked the bot", chat_id)
                        await stream.cancel()
                        return None
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
    chunks, markup = present(final, seal)
    try:
        await stream.finish(chunks, markup)
    except TelegramAPIError:
        await engine.conversation_log.set_delivery(final.turn_id, "undelivered")
        raise
    await engine.conversation_log.set_delivery(final.turn_id, "delivered")
    log.info(
        "answered chat=%s conversation=%s turn=%s action=%s",
        chat_id,
        final.conversation_id,
        final.turn_id,
        final.action,
    )
    if final.escalate and customer.user is not None:
        await desk.hand_over(bot, chat_id, customer.user, final)
    return final


@contextlib.asynccontextmanager
async def typing(bot: Bot, chat_id: int, thread_id: int | None) -> AsyncIterator[None]:
    """Show "typing" once in the chat when a reply has taken `TYPING_AFTER_S`.

    It stops before the reply's final form is sent, so the indicator never outlasts the
    answer; a chat action that fails is only logged (the reply matters, not the indicator).
    """

    async def show() -> None:
        await asyncio.sleep(TYPING_AFTER_S)
        try:
            await bot.send_chat_action(chat_id, "typing", message_thread_id=thread_id)
        except TelegramAPIError as error:
            log.info("no typing indicator in chat=%s: %s", chat_id, error)

    task = asyncio.create_task(show())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def message_key(message: Message) -> str:
    """What names a customer's message in the log (`external_id` of its turns): chat and id."""
    return f"{message.chat.id}/{message.message_id}"


async def answer_delivery(engine: Engine, update: Update) -> Delivery | None:
    """How far the answer to an update's message got, by the log: None when none was logged."""
    message = update.message
    customer = customer_of(message) if isinstance(message, Message) else None
    if message is None or customer is None:
        return None
    conversation_log = engine.conversation_log
    conversation = await conversation_log.latest_conversation_id(
        customer.channel, customer.external_id
    )
    if conversation is None:
        return None
    key = message_key(message)
    for turn in reversed(await conversation_log.recent_turns(conversation, 20)):
        if turn.role == "bot" and turn.external_id == key:
            return turn.delivery
    return None


def present(
    final: FinalReply, seal: ButtonSeal | None
) -> tuple[list[str], InlineKeyboardMarkup | None]:
    """The reply as HTML messages in the customer's language, and the buttons (when sealed)."""
    if final.action == "answer":
        footer = (
            _("Source: {title}").format(title=final.hits[0].entry.question) if final.hits else ""
        )
        keyboard = feedback_keyboard(final.turn_id, seal) if seal else None
        return render_reply(final.text, footer), keyboard
    if final.action == "clarify" and final.options:
        questions = [entry.question for entry in final.options]
        listing = "\n".join(f"{n}. {q}" for n, q in enumerate(questions, 1))
        text = f"{_('Which of these do you mean?')}\n{listing}"
        keyboard = choice_keyboard(questions, final.turn_id, seal) if seal else None
        return render_reply(text), keyboard
    # The engine's fixed hand-over sentences are catalogue entries; anything else stays as is.
    return render_reply(_(final.text)), None
