"""The customer chat: commands, questions, buttons, and everything that is not a question."""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable
from typing import Literal

from aiogram import Bot, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandStart
from aiogram.types import CallbackQuery, InaccessibleMessage, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.addressing import Addressed, without_mention
from bot.blocking import BlockedChats
from bot.desk import Desk
from bot.filters import PressedOutside, has_caption, has_text
from bot.keyboards import (
    ButtonSeal,
    Choice,
    Erase,
    PressedMessages,
    Vote,
    erase_keyboard,
    feedback_keyboard,
)
from bot.replying import message_key, reply_to
from bot.senders import Customer, customer_for_press, customer_of
from bot.streaming import DraftSupport
from engine import Engine
from engine.choice import offered
from engine.rating import score_of, take_rating
from engine.settings import BotConfig

log = logging.getLogger(__name__)


def customer_router(config: BotConfig) -> Router:
    """Handlers for customers' messages and button presses; the operators' group is left alone."""
    router = Router(name="customer")
    addressed = Addressed(config.operator_chat_id)
    router.message.filter(addressed)
    router.edited_message.filter(addressed)
    if config.operator_chat_id:
        router.callback_query.filter(PressedOutside(config.operator_chat_id))

    router.message.register(start, CommandStart())
    router.message.register(show_help, Command("help"))
    router.message.register(ask_for_human, Command("human"))
    router.message.register(reset, Command("reset"))
    router.message.register(offer_erasure, Command("forget"))
    router.message.register(question, has_text)
    # A photo or file with a question in its caption: the caption is the question.
    router.message.register(question, has_caption)
    router.message.register(not_text)
    router.edited_message.register(edited)
    router.callback_query.register(vote, Vote.filter())
    router.callback_query.register(choose, Choice.filter())
    router.callback_query.register(erase, Erase.filter())
    return router


async def start(message: Message) -> None:
    customer = customer_of(message)
    name = customer.name if customer else ""
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
    blocked: BlockedChats,
) -> None:
    customer = customer_of(message)
    if customer is None:
        return
    if customer.user is not None and desk.is_with_operator(message.chat.id):
        await message.answer(_("A colleague already has your chat; they will reply here."))
        return
    # The engine's policy reads "/human" as a request for a person: it logs the turn and the
    # hand-over, and replies; the desk then brings the operator in.
    await reply_to(
        message,
        "/human",
        external_id=message_key(message),
        customer=customer,
        bot=bot,
        engine=engine,
        desk=desk,
        config=bot_config,
        drafts=drafts,
        blocked=blocked,
    )


async def reset(message: Message, engine: Engine) -> None:
    customer = customer_of(message)
    if customer is None:
        return
    await engine.conversation(customer.channel, customer.external_id, new=True)
    await message.answer(_("Let's start over. What can I help you with?"))


async def offer_erasure(message: Message, bot: Bot) -> None:
    customer = customer_of(message)
    if customer is None:
        return
    if customer.user is None:
        await message.answer(
            _(
                "I can't tell who writes an anonymous message, so I can't delete data on its "
                "behalf. Please write /forget to me in a private chat."
            )
        )
        return
    await message.answer(
        _(
            "This deletes everything we have stored about your conversations with this bot, "
            "for good. Continue?"
        ),
        reply_markup=erase_keyboard(ButtonSeal.of(bot.token, message.chat.id, customer.key)),
    )


async def question(
    message: Message,
    bot: Bot,
    engine: Engine,
    desk: Desk,
    bot_config: BotConfig,
    drafts: DraftSupport,
    blocked: BlockedChats,
) -> None:
    customer = customer_of(message)
    if customer is None:
        log.info("message without a sender chat=%s", message.chat.id)
        return
    if customer.user is not None and desk.is_with_operator(message.chat.id):
        await desk.forward_to_operator(bot, message)
        return
    me = await bot.me()
    text = without_mention(message.text or message.caption or "", me.username)
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
    if await _rated(message, text, customer, engine):
        return
    await reply_to(
        message,
        text,
        external_id=message_key(message),
        customer=customer,
        bot=bot,
        engine=engine,
        desk=desk,
        config=bot_config,
        drafts=drafts,
        blocked=blocked,
    )


async def _rated(message: Message, text: str, customer: Customer, engine: Engine) -> bool:
    """A rating of the hand-over an operator just resolved: stored and thanked, not answered."""
    if score_of(text) is None:  # most messages: no look in the log
        return False
    store = engine.conversation_log
    conversation = await store.latest_conversation_id(customer.channel, customer.external_id)
    if conversation is None:
        return False
    rated = await take_rating(store, conversation, text, external_id=message_key(message))
    if rated is None:
        return False
    await message.answer(_(rated.text))
    log.info("rated conversation=%s score=%d", conversation, rated.score)
    return True


async def not_text(message: Message, bot: Bot, desk: Desk) -> None:
    customer = customer_of(message)
    if (
        customer is not None
        and customer.user is not None
        and desk.is_with_operator(message.chat.id)
    ):
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


def _seal(query: CallbackQuery, bot: Bot) -> ButtonSeal | None:
    """The seal of the presser's own buttons in the chat pressed in; None outside a chat."""
    message = query.message
    if not isinstance(message, Message | InaccessibleMessage):
        return None
    return ButtonSeal.of(bot.token, message.chat.id, customer_for_press(query.from_user).key)


async def vote(
    query: CallbackQuery,
    callback_data: Vote,
    bot: Bot,
    engine: Engine,
    pressed: PressedMessages,
    callback_answer: CallbackAnswer,
) -> None:
    seal = _seal(query, bot)
    if seal is None or not seal.opens(callback_data) or callback_data.value not in (1, -1):
        log.info("refused vote user=%s turn=%s", query.from_user.id, callback_data.turn)
        callback_answer.text = _("Only the person this answer was for can rate it.")
        return
    value: Literal[1, -1] = 1 if callback_data.value > 0 else -1
    try:
        await engine.conversation_log.add_feedback(callback_data.turn, value)
    except ValueError:  # the turn was erased (/forget) after the answer was shown
        callback_answer.text = _("This answer is no longer in our records.")
        return
    log.info("feedback turn=%s value=%+d", callback_data.turn, value)
    callback_answer.text = _("Thanks for your feedback!")
    message = query.message
    if isinstance(message, Message):
        markup = feedback_keyboard(callback_data.turn, seal, chosen=value)
        if message.reply_markup != markup and pressed.changes(
            message.chat.id, message.message_id, ("vote", value)
        ):
            await _quietly(message.edit_reply_markup(reply_markup=markup))


async def choose(
    query: CallbackQuery,
    callback_data: Choice,
    bot: Bot,
    engine: Engine,
    desk: Desk,
    bot_config: BotConfig,
    drafts: DraftSupport,
    blocked: BlockedChats,
    callback_answer: CallbackAnswer,
) -> None:
    seal = _seal(query, bot)
    if seal is None or not isinstance(query.message, Message) or not seal.opens(callback_data):
        log.info("refused choice user=%s turn=%s", query.from_user.id, callback_data.turn)
        callback_answer.text = _("Only the person who asked can choose here.")
        return
    customer: Customer = customer_for_press(query.from_user)
    if not await _still_open(engine, customer, callback_data.turn, callback_data.number):
        callback_answer.text = _("That choice is no longer open. Please ask your question again.")
        return
    # Answered now: the reply below may take a while, and the button should stop spinning.
    callback_answer.disabled = True
    await query.answer()
    # The option's number is the customer's answer to "which of these?", as if typed.
    await reply_to(
        query.message,
        str(callback_data.number),
        external_id=f"press/{query.id}",
        customer=customer,
        bot=bot,
        engine=engine,
        desk=desk,
        config=bot_config,
        drafts=drafts,
        blocked=blocked,
    )


async def erase(
    query: CallbackQuery,
    callback_data: Erase,
    bot: Bot,
    engine: Engine,
    pressed: PressedMessages,
    callback_answer: CallbackAnswer,
) -> None:
    seal = _seal(query, bot)
    if seal is None or not seal.opens(callback_data):
        log.info("refused erase press user=%s", query.from_user.id)
        callback_answer.text = _("Only the person who asked can answer this.")
        return
    if not callback_data.confirmed:
        text = _("Nothing was deleted.")
    else:
        customer = customer_for_press(query.from_user)
        erased = await engine.conversation_log.erase_customer(
            customer.channel, customer.external_id
        )
        log.info("erased on request user=%s conversations=%d", query.from_user.id, erased)
        text = _("Done: everything we stored about your conversations has been deleted.")
    message = query.message
    if isinstance(message, Message) and pressed.changes(
        message.chat.id, message.message_id, ("erase", callback_data.confirmed)
    ):
        await _quietly(message.edit_text(text, reply_markup=None))


async def _still_open(engine: Engine, customer: Customer, turn_id: int, number: int) -> bool:
    """Whether turn `turn_id` is the customer's latest and offered option `number`."""
    log_ = engine.conversation_log
    conversation = await log_.latest_conversation_id(customer.channel, customer.external_id)
    if conversation is None:
        return False
    last = await log_.recent_turns(conversation, 1)
    return bool(last) and last[0].id == turn_id and 1 <= number <= len(offered(last[0]))


async def _quietly(edit: Awaitable[object]) -> None:
    """Edit a message under a pressed button; a refused edit (unchanged, too old) is no error."""
    try:
        await edit
    except TelegramBadRequest as error:
        log.info("button message not edited: %s", error.message)
