"""The customer chat: commands, questions, buttons, and everything that is not a question."""

from __future__ import annotations

import html
import logging
from typing import Literal

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandStart
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.addressing import Addressed, without_mention
from bot.desk import CHANNEL, Desk
from bot.keyboards import Choice, Erase, Vote, erase_keyboard, feedback_keyboard
from bot.replying import reply_to
from bot.streaming import DraftSupport
from engine import Engine
from engine.settings import BotConfig

log = logging.getLogger(__name__)


def customer_router(config: BotConfig) -> Router:
    """Handlers for customers' messages and button presses; the operators' group is left alone."""
    router = Router(name="customer")
    addressed = Addressed(config.operator_chat_id)
    router.message.filter(addressed)
    router.edited_message.filter(addressed)
    if config.operator_chat_id:
        router.callback_query.filter(F.message.chat.id != config.operator_chat_id)

    router.message.register(start, CommandStart())
    router.message.register(show_help, Command("help"))
    router.message.register(ask_for_human, Command("human"))
    router.message.register(reset, Command("reset"))
    router.message.register(offer_erasure, Command("forget"))
    router.message.register(question, F.text)
    router.message.register(not_text)
    router.edited_message.register(edited)
    router.callback_query.register(vote, Vote.filter())
    router.callback_query.register(choose, Choice.filter())
    router.callback_query.register(erase, Erase.filter())
    return router


async def start(message: Message) -> None:
    name = message.from_user.first_name if message.from_user else ""
    await message.answer(
        _(
            "Hello, {name}! I answer questions about our shop from our help centre. "
            "Ask me anything in your own words.\n\n/help shows what else I can do."
        ).format(name=html.escape(name))
    )


async def show_help(message: Message) -> None:
    await message.answer(
        _(
            "Write your question as you would to a person, for example "
            '"How long do I have to return an item?". I answer from our help centre and '
            "show where the answer comes from; 👍 or 👎 under an answer tells us whether it "
            "helped.\n\n"
            "/human: talk to a person\n"
            "/reset: start a new conversation\n"
            "/forget: delete what we stored about your conversations"
        )
    )


async def ask_for_human(
    message: Message,
    bot: Bot,
    engine: Engine,
    desk: Desk,
    bot_config: BotConfig,
    drafts: DraftSupport,
) -> None:
    if desk.is_with_operator(message.chat.id):
        await message.answer(_("A colleague already has your chat; they will reply here."))
        return
    # The engine's policy reads "/human" as a request for a person: it logs the turn and the
    # hand-over, and replies; the desk then brings the operator in.
    await reply_to(
        message, "/human", bot=bot, engine=engine, desk=desk, config=bot_config, drafts=drafts
    )


async def reset(message: Message, engine: Engine) -> None:
    assert message.from_user is not None
    await engine.conversation(CHANNEL, str(message.from_user.id), new=True)
    await message.answer(_("Let's start over. What can I help you with?"))


async def offer_erasure(message: Message) -> None:
    await message.answer(
        _(
            "This deletes everything we have stored about your conversations with this bot, "
            "for good. Continue?"
        ),
        reply_markup=erase_keyboard(),
    )


async def question(
    message: Message,
    bot: Bot,
    engine: Engine,
    desk: Desk,
    bot_config: BotConfig,
    drafts: DraftSupport,
) -> None:
    if desk.is_with_operator(message.chat.id):
        await desk.forward_to_operator(bot, message)
        return
    me = await bot.me()
    text = without_mention(message.text or "", me.username)
    if not text:
        await show_help(message)
        return
    if len(text) > bot_config.max_message_chars:
        await message.answer(
            _(
                "That message is too long for me ({length} characters). Please ask in at most "
                "{limit} characters; one question at a time works best."
            ).format(length=len(text), limit=bot_config.max_message_chars)
        )
        return
    await reply_to(
        message, text, bot=bot, engine=engine, desk=desk, config=bot_config, drafts=drafts
    )


async def not_text(message: Message, bot: Bot, desk: Desk) -> None:
    if desk.is_with_operator(message.chat.id):
        await desk.forward_to_operator(bot, message)
        return
    await message.answer(
        _(
            "I can only read text for now, so I can't see photos, stickers, voice messages or "
            "files. Please describe your question in words, or write /human to reach a person."
        )
    )


async def edited(message: Message) -> None:
    await message.answer(
        _(
            "I noticed you edited a message. I only answer new messages, so please send the "
            "corrected question again."
        )
    )


async def vote(query: CallbackQuery, callback_data: Vote, engine: Engine) -> None:
    value: Literal[1, -1] = 1 if callback_data.value > 0 else -1
    await engine.conversation_log.add_feedback(callback_data.turn, value)
    log.info("feedback turn=%s value=%+d", callback_data.turn, value)
    await query.answer(_("Thanks for your feedback!"))
    if isinstance(query.message, Message):
        try:
            await query.message.edit_reply_markup(
                reply_markup=feedback_keyboard(callback_data.turn, chosen=value)
            )
        except TelegramBadRequest as error:  # pressed the same button twice
            log.debug("feedback markup unchanged: %s", error.message)


async def choose(
    query: CallbackQuery,
    callback_data: Choice,
    bot: Bot,
    engine: Engine,
    desk: Desk,
    bot_config: BotConfig,
    drafts: DraftSupport,
) -> None:
    await query.answer()
    if not isinstance(query.message, Message):
        return
    # The option's number is the customer's answer to "which of these?", as if typed.
    choice = query.message.model_copy(update={"from_user": query.from_user})
    await reply_to(
        choice,
        str(callback_data.number),
        bot=bot,
        engine=engine,
        desk=desk,
        config=bot_config,
        drafts=drafts,
    )


async def erase(query: CallbackQuery, callback_data: Erase, engine: Engine) -> None:
    if not callback_data.confirmed:
        await query.answer()
        text = _("Nothing was deleted.")
    else:
        erased = await engine.conversation_log.erase_customer(CHANNEL, str(query.from_user.id))
        log.info("erased on request user=%s conversations=%d", query.from_user.id, erased)
        await query.answer()
        text = _("Done: everything we stored about your conversations has been deleted.")
    if isinstance(query.message, Message):
        await query.message.edit_text(text, reply_markup=None)
