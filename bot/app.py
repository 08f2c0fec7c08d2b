"""Wire the dispatcher: middlewares in their order, routers, the error handler, commands."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramForbiddenError
from aiogram.types import BotCommand, ErrorEvent, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.blocking import BlockedChats
from bot.customer import customer_router
from bot.desk import Desk, LoggedDesk
from bot.flood import FloodGuard, FloodWindow
from bot.i18n import LanguageMiddleware, load_i18n
from bot.keyboards import PressedMessages
from bot.metrics import TelegramMetrics
from bot.operator import HandoverBoard, OperatorDesk
from bot.ordering import ChatOrder
from bot.outbox import ConsoleOutbox
from bot.presses import AnswerEveryPress, leftover_presses
from bot.responses import KeepResponseModels
from bot.retry import RetryAfterMiddleware
from bot.session import JsonSession
from bot.streaming import DraftSupport
from bot.unreadable import SkipUnreadable
from engine import Engine
from engine.settings import BotConfig

if TYPE_CHECKING:  # the redis extra is needed only by several processes
    from bot.wakeups import Wakeups

log = logging.getLogger(__name__)

COMMANDS = (
    ("start", "Start and see what I can do"),
    ("help", "How to use this bot"),
    ("human", "Talk to a person"),
    ("reset", "Start a new conversation"),
    ("forget", "Delete my data"),
)


def make_bot(token: str, config: BotConfig) -> Bot:
    """A Bot on the configured Bot API server, sending HTML and honouring flood control; an
    update it cannot read does not stop polling. Requests go as JSON (bot.session)."""
    session = JsonSession(api=TelegramAPIServer.from_base(config.api_base_url.rstrip("/")))
    session.middleware(KeepResponseModels())
    session.middleware(RetryAfterMiddleware())
    # Inside the retries: counts every failed call and each retry_after Telegram asks for.
    session.middleware(TelegramMetrics())
    session.middleware(SkipUnreadable())
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode="HTML"))


def build_dispatcher(
    engine: Engine,
    config: BotConfig,
    desk: Desk | None = None,
    *,
    flood: FloodWindow | None = None,
    handovers: HandoverBoard | None = None,
    wakeups: Wakeups | None = None,
) -> Dispatcher:
    """The dispatcher with the customer chat, and the operator desk when a group is configured.

    Several processes serving the same chats share the flood counts and the operator desk's
    hand-over state through `flood` and `handovers` (bot.shared); one process keeps them itself.

    Middleware order on messages: language (so every notice is translated), flood guard (so a
    flood costs nothing), per-chat order around the handler, then the blocked-chat check (in
    order, so messages queued behind a block are not answered). Button presses: language,
    per-chat order, then the one answer every press gets.
    """
    i18n = load_i18n(config.languages)
    order = ChatOrder()
    blocked = BlockedChats()
    if desk is None and config.operator_chat_id:
        desk = OperatorDesk(engine, config.operator_chat_id, config.languages, handovers=handovers)
    # No handler keeps conversation state in aiogram's FSM: its middleware would look up a state
    # for every update.
    dp = Dispatcher(
        disable_fsm=True,
        engine=engine,
        desk=desk or LoggedDesk(engine),
        bot_config=config,
        drafts=DraftSupport(enabled=config.drafts),
        i18n=i18n,
        chat_order=order,
        blocked=blocked,
        pressed=PressedMessages(),
    )
    language = LanguageMiddleware(i18n, config.languages)
    for observer in (dp.message, dp.edited_message, dp.callback_query, dp.errors):
        observer.outer_middleware(language)
    dp.message.outer_middleware(
        FloodGuard(
            config.flood_messages,
            config.flood_window_s,
            operator_chat_id=config.operator_chat_id,
            window=flood,
        )
    )
    for observer in (dp.message, dp.edited_message, dp.callback_query):
        observer.outer_middleware(order)
    dp.message.outer_middleware(blocked)
    dp.callback_query.outer_middleware(AnswerEveryPress())
    if isinstance(desk, OperatorDesk):
        # Before the customer router, which leaves the operators' group alone anyway.
        dp.include_router(desk.router())
        dp.startup.register(desk.restore)
    dp.include_router(customer_router(config))
    dp.include_router(leftover_presses())
    dp.errors.register(apologise)
    dp.startup.register(watch_blocks)
    dp.startup.register(set_commands)
    dp.shutdown.register(finish_replies)
    # Every process runs one; each reply goes out once (bot.outbox).
    outbox = ConsoleOutbox(
        engine,
        operator_chat_id=config.operator_chat_id,
        interval_s=config.outbox_interval_s,
        reclaim_s=config.outbox_reclaim_s,
        desk=desk if isinstance(desk, OperatorDesk) else None,
        wakeups=wakeups,
    )
    dp["outbox"] = outbox
    dp.startup.register(outbox.start)
    dp.shutdown.register(outbox.stop)
    return dp


async def watch_blocks(bot: Bot, blocked: BlockedChats) -> None:
    """Note 403s from the bot's requests, so a chat that blocked the bot is left in peace."""
    blocked.attach(bot)


async def set_commands(bot: Bot, i18n: I18n) -> None:
    """The command menu in English (everyone) and in each translated language."""
    await bot.set_my_commands([BotCommand(command=c, description=d) for c, d in COMMANDS])
    for locale in i18n.available_locales:
        commands = [
            BotCommand(command=c, description=i18n.gettext(d, locale=locale)) for c, d in COMMANDS
        ]
        await bot.set_my_commands(commands, language_code=locale)


async def finish_replies(chat_order: ChatOrder, bot_config: BotConfig) -> None:
    """On shutdown: replies in progress finish (or are cancelled) before the log closes."""
    await chat_order.drain(bot_config.shutdown_grace_s)


async def apologise(event: ErrorEvent, bot: Bot) -> None:
    """The one place errors are caught: log the traceback, tell the customer briefly.

    A chat that blocked the bot gets nothing (its block was recorded when Telegram said so).
    """
    if isinstance(event.exception, TelegramForbiddenError):
        log.info("update %s not answered: %s", event.update.update_id, event.exception.message)
        return
    log.error("update %s failed", event.update.update_id, exc_info=event.exception)
    message = event.update.message or (
        event.update.callback_query.message if event.update.callback_query else None
    )
    if isinstance(message, Message):
        try:
            await bot.send_message(
                message.chat.id,
                _("Sorry, something went wrong on my side. Please try again in a moment."),
                message_thread_id=message.message_thread_id if message.is_topic_message else None,
            )
        except Exception:  # the apology is best effort; the traceback is logged above
            log.exception("could not apologise in chat=%s", message.chat.id)
