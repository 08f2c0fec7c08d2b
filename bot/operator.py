"""The operator desk: one forum topic per customer in the operators' supergroup.

A hand-over opens (or reuses) the customer's topic and posts what the operator needs there. What
a member of the group writes in the topic goes to the customer and is logged as an operator
turn, and the first to write holds the hand-over (`/take` takes it from another holder; the
console shows the holder, bot.outbox announces the console's takes here); `/close` hands the
customer back to the bot. Which customers are with an operator, and
which topic is whose, lives in the conversation log, so a restart keeps both.

Hand-overs from other channels (the web chat) come through the log too: the desk watches it for
their open hand-overs, opens a topic for each and posts their customers' new messages there; an
operator's reply to such a customer is logged, and the channel delivers it from the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from aiogram import Bot, Router
from aiogram.enums import ChatMemberStatus, ContentType
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import Message, User
from aiogram.utils.i18n import gettext as _

from bot.desk import CHANNEL
from bot.filters import InChat
from bot.i18n import pick_language
from bot.operator_summary import summary, topic_name
from engine import Engine, FinalReply
from engine.log import Handover
from engine.rating import QUESTION as RATING_QUESTION
from engine.rating import rating_key

log = logging.getLogger(__name__)

OPERATOR_STATUSES = frozenset(
    {ChatMemberStatus.CREATOR, ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.MEMBER}
)
# What an operator can send a customer; service messages (topic created, pinned, …) are not.
RELAYED = frozenset(
    {
        ContentType.TEXT,
        ContentType.PHOTO,
        ContentType.DOCUMENT,
        ContentType.VIDEO,
        ContentType.VOICE,
        ContentType.AUDIO,
        ContentType.ANIMATION,
        ContentType.STICKER,
        ContentType.VIDEO_NOTE,
    }
)


class HandoverBoard(Protocol):
    """Which customers' chats an operator has now, shared by every process serving them."""

    async def mark(self, chat_id: int, with_operator: bool) -> None:
        """Record whether an operator has the chat now."""
        ...

    async def holds(self, chat_id: int) -> bool:
        """Whether an operator has the chat."""
        ...

    async def lead(self) -> bool:
        """Whether this process watches the log for other channels (one process does)."""
        ...


class OperatorDesk:
    """A `Desk` backed by a forum supergroup whose members answer handed-over customers.

    Customers are addressed by their Telegram user id, which is their private chat's id.
    """

    def __init__(
        self,
        engine: Engine,
        chat_id: int,
        languages: Sequence[str],
        *,
        membership_ttl_s: float = 60.0,
        transcript_turns: int = 10,
        clock: Callable[[], float] = time.monotonic,
        other_channels: Sequence[str] = ("web",),
        watch_interval_s: float = 1.0,
        handovers: HandoverBoard | None = None,
    ) -> None:
        if not chat_id:
            raise ValueError("the operator desk needs [bot] operator_chat_id")
        self.chat_id = chat_id
        self._engine = engine
        self._log = engine.conversation_log
        self._languages = tuple(languages)
        self._membership_ttl_s = membership_ttl_s
        self._transcript_turns = transcript_turns
        self._clock = clock
        # This process's view; with `handovers` (several processes) refreshed per update.
        self._with_operator: set[int] = set()
        self._board = handovers
        self._locales: dict[int, str] = {}
        self._members: dict[int, tuple[bool, float]] = {}
        self._other_channels = tuple(c for c in other_channels if c != CHANNEL)
        self._watch_interval_s = watch_interval_s
        self._watcher: asyncio.Task[None] | None = None
        # Hand-over id -> the last turn of its conversation already posted in its topic.
        self._posted: dict[int, int] = {}

    async def restore(self) -> None:
        """Take back the customers whose hand-over is still open in the log (run at start-up)."""
        open_now = await self._log.open_handovers(CHANNEL)
        self._with_operator = {int(user_id) for user_id, _ in open_now}
        for chat_id in self._with_operator:
            await self._mark(chat_id, True)
        log.info("operator desk chat=%s open hand-overs=%d", self.chat_id, len(open_now))

    def router(self) -> Router:
        """Handlers for the operators' group; include it before the customer router."""
        router = Router(name="operator")
        router.message.filter(InChat(self.chat_id))
        router.message.register(self.close_topic, Command("close"))
        router.message.register(self.take_topic, Command("take"))
        router.message.register(self.relay)
        if self._other_channels:
            router.startup.register(self.start_watching)
            router.shutdown.register(self.stop_watching)
        return router

    # Other channels' hand-overs, through the log.

    async def start_watching(self, bot: Bot) -> None:
        """Watch the log for other channels' hand-overs and messages (run at start-up)."""
        self._watcher = asyncio.create_task(self._watch(bot), name="operator-desk-watch")

    async def stop_watching(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None

    async def sync_other_channels(self, bot: Bot) -> None:
        """Open a topic for each new hand-over of another channel; post customers' new messages."""
        for channel in self._other_channels:
            for external_id, handover in await self._log.open_handovers(channel):
                if handover.topic_id is None:
                    await self._open_topic(bot, channel, external_id, handover)
                else:
                    await self._post_new_messages(bot, handover)

    async def _watch(self, bot: Bot) -> None:
        while True:
            try:
                # Several processes: one posts, or every new message would be posted N times.
                if self._board is None or await self._board.lead():
                    await self.sync_other_channels(bot)
            except Exception:  # a Telegram or log hiccup must not end the watch
                log.exception("operator desk: watching other channels failed; retrying")
            await asyncio.sleep(self._watch_interval_s)

    async def _open_topic(
        self, bot: Bot, channel: str, external_id: str, handover: Handover
    ) -> None:
        customer = f"{channel} · {external_id}"
        turns = await self._log.recent_turns(handover.conversation_id, self._transcript_turns)
        post = summary(customer, handover.reason, turns, None)
        topic = await self._log.latest_topic(channel, external_id)
        if topic is not None:
            topic = await self._post_in_old_topic(bot, topic, post)
        if topic is None:
            created = await bot.create_forum_topic(self.chat_id, topic_name(customer))
            topic = created.message_thread_id
            await bot.send_message(self.chat_id, post, message_thread_id=topic)
        await self._log.assign_topic(handover.id, topic)
        self._posted[handover.id] = max((t.id for t in turns), default=0)
        log.info(
            "handed over channel=%s conversation=%s topic=%s",
            channel,
            handover.conversation_id,
            topic,
        )

    async def _post_new_messages(self, bot: Bot, handover: Handover) -> None:
        turns = await self._log.recent_turns(handover.conversation_id, 20)
        newest = max((t.id for t in turns), default=0)
        last = self._posted.get(handover.id)
        self._posted[handover.id] = newest
        if last is None:  # first seen after a restart: what came before was posted already
            return
        for turn in turns:
            if turn.id > last and turn.role == "customer":
                await bot.send_message(
                    self.chat_id, html.escape(turn.text), message_thread_id=handover.topic_id
                )

    # The customer side (Desk).

    def is_with_operator(self, chat_id: int) -> bool:
        return chat_id in self._with_operator

    async def refresh(self, chat_id: int) -> None:
        """Take the shared hand-over state of a chat before handling its update."""
        if self._board is None:
            return
        if await self._board.holds(chat_id):
            self._with_operator.add(chat_id)
        else:
            self._with_operator.discard(chat_id)

    async def release(self, chat_id: int) -> None:
        """The customer is back with the bot: an operator resolved the hand-over elsewhere."""
        await self._mark(chat_id, False)

    async def _mark(self, chat_id: int, with_operator: bool) -> None:
        if with_operator:
            self._with_operator.add(chat_id)
        else:
            self._with_operator.discard(chat_id)
        if self._board is not None:
            await self._board.mark(chat_id, with_operator)

    async def hand_over(self, bot: Bot, chat_id: int, user: User, reply: FinalReply | None) -> None:
        conversation = await self._engine.conversation(CHANNEL, str(user.id))
        handover = await self._log.open_handover_for(conversation)
        if handover is None:
            reason = reply.reason if reply else "human_requested"
            handover_id = await self._log.open_handover(conversation, reason)
            handover = await self._log.open_handover_for(conversation)
            assert handover is not None and handover.id == handover_id
        turns = await self._log.recent_turns(conversation, self._transcript_turns)
        post = summary(user, handover.reason, turns, reply)
        topic = handover.topic_id or await self._log.latest_topic(CHANNEL, str(user.id))
        if topic is not None:
            topic = await self._post_in_old_topic(bot, topic, post)
        if topic is None:
            created = await bot.create_forum_topic(self.chat_id, topic_name(user))
            topic = created.message_thread_id
            await bot.send_message(self.chat_id, post, message_thread_id=topic)
        if handover.topic_id != topic:
            await self._log.assign_topic(handover.id, topic)
        await self._mark(chat_id, True)
        self._locales[chat_id] = pick_language(user.language_code, self._languages)
        log.info("handed over chat=%s conversation=%s topic=%s", chat_id, conversation, topic)
        await bot.send_message(
            chat_id,
            _(
                "A colleague from our team will join this chat shortly. "
                "Until then, anything you write here goes straight to them."
            ),
        )

    async def forward_to_operator(self, bot: Bot, message: Message) -> None:
        assert message.from_user is not None, "customer messages have a sender"
        user_id = str(message.from_user.id)
        self._locales[message.chat.id] = pick_language(
            message.from_user.language_code, self._languages
        )
        conversation = await self._engine.conversation(CHANNEL, user_id)
        handover = await self._log.open_handover_for(conversation)
        if handover is None or handover.topic_id is None:
            # Closed elsewhere (another process, /forget): the bot answers from now on.
            await self._mark(message.chat.id, False)
            await message.answer(_("Your chat is back with the bot. Please send that again."))
            return
        if message.text is not None:
            await bot.send_message(
                self.chat_id, html.escape(message.text), message_thread_id=handover.topic_id
            )
        else:
            await bot.copy_message(
                self.chat_id,
                message.chat.id,
                message.message_id,
                message_thread_id=handover.topic_id,
            )
        await self._log.add_turn(conversation, "customer", _turn_text(message))
        log.info("forwarded chat=%s topic=%s", message.chat.id, handover.topic_id)

    # The operator side.

    async def relay(self, message: Message, bot: Bot) -> None:
        """An operator's message in a customer's topic goes to that customer and into the log."""
        found = await self._operator_input(message, bot)
        if found is None or message.content_type not in RELAYED:
            return
        handover, (channel, external_id) = found
        operator = message.from_user
        assert operator is not None
        conversation = handover.conversation_id
        # The first reply takes an unheld hand-over; another holder keeps it (shown in the console).
        await self._log.assign_handover(
            handover.id, desk_name(operator), take_over=False, announced=True
        )
        if channel != CHANNEL:
            # The customer's channel reads operator turns from the log and shows them.
            if message.text is None:
                await message.reply("Only text reaches customers on this channel; not sent.")
                return
            await self._log.add_turn(conversation, "operator", message.text)
            log.info(
                "operator reply channel=%s conversation=%s operator=%s",
                channel,
                conversation,
                operator.id,
            )
            return
        customer = int(external_id)
        if not await self._operator_has_written(handover):
            await bot.send_message(
                customer,
                _(
                    "{name} from our team has joined the chat.", locale=self._locale(customer)
                ).format(name=html.escape(operator.first_name)),
            )
        if message.text is not None:
            await bot.send_message(customer, message.html_text)
        else:
            await bot.copy_message(customer, self.chat_id, message.message_id)
        await self._log.add_turn(conversation, "operator", _turn_text(message))
        log.info(
            "operator reply chat=%s conversation=%s operator=%s",
            customer,
            conversation,
            operator.id,
        )

    async def take_topic(self, message: Message, bot: Bot) -> None:
        """`/take`: the operator holds the hand-over now, also as the console shows it."""
        found = await self._operator_input(message, bot)
        if found is None:
            return
        operator = message.from_user
        assert operator is not None
        name = desk_name(operator)
        await self._log.assign_handover(found[0].id, name, announced=True)
        await message.reply(f"Taken by {html.escape(name)}.")
        log.info("taken conversation=%s operator=%s", found[0].conversation_id, operator.id)

    async def close_topic(self, message: Message, bot: Bot) -> None:
        """`/close`: the customer goes back to the bot, and the topic is closed until next time."""
        found = await self._operator_input(message, bot)
        if found is None:
            return
        handover, (channel, external_id) = found
        operator = message.from_user
        assert operator is not None
        closed = await self._log.close_handover(handover.id, operator_id=desk_name(operator))
        self._posted.pop(handover.id, None)
        if not closed:  # resolved in the console meanwhile, which asked for the rating
            await message.reply("This hand-over was already resolved.")
            return
        # The customer's next message, if a rating, is stored on the hand-over (engine.rating).
        await self._log.ask_rating(handover.id)
        customer = int(external_id) if channel == CHANNEL else None
        if customer is not None:  # other channels learn of the close from the log
            await self._mark(customer, False)
            await bot.send_message(
                customer,
                _(
                    "Our colleague has left the chat. I'm back: ask me anything, or write "
                    "/human to reach a person again.",
                    locale=self._locale(customer),
                ),
            )
            await bot.send_message(customer, _(RATING_QUESTION, locale=self._locale(customer)))
        # Logged as sent by the desk (Telegram) or for the channel to show (the web chat).
        await self._log.add_turn(
            handover.conversation_id,
            "operator",
            RATING_QUESTION,
            external_id=rating_key(handover.id),
        )
        await message.reply("Closed: the customer is back with the bot.")
        topic = handover.topic_id
        assert topic is not None
        try:
            await bot.close_forum_topic(self.chat_id, topic)
        except TelegramAPIError as error:  # already closed, or the bot may not manage topics
            log.warning("could not close topic=%s: %s", topic, error.message)
        log.info(
            "closed conversation=%s topic=%s operator=%s",
            handover.conversation_id,
            topic,
            operator.id,
        )

    async def is_operator(self, bot: Bot, user_id: int) -> bool:
        """Whether the user is a member of the operators' group now (cached briefly)."""
        now = self._clock()
        cached = self._members.get(user_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            member = await bot.get_chat_member(self.chat_id, user_id)
            allowed = member.status in OPERATOR_STATUSES
        except TelegramBadRequest:  # not a user the group knows
            allowed = False
        self._members[user_id] = (allowed, now + self._membership_ttl_s)
        return allowed

    async def _operator_input(
        self, message: Message, bot: Bot
    ) -> tuple[Handover, tuple[str, str]] | None:
        """The open hand-over and customer (channel, id) a message acts on; None: not input."""
        user = message.from_user
        if (
            message.chat.id != self.chat_id
            or user is None
            or user.is_bot
            or not message.is_topic_message
            or message.message_thread_id is None
        ):
            return None
        if not await self.is_operator(bot, user.id):
            log.warning("ignored non-member user=%s in the operator group", user.id)
            return None
        handover = await self._log.handover_for_topic(message.message_thread_id)
        if handover is None:
            if message.content_type in RELAYED:
                await message.reply("This topic has no open hand-over; nothing was sent.")
            return None
        found = await self._log.get_conversation(handover.conversation_id)
        assert found is not None, "an open hand-over belongs to a conversation"
        return handover, (found.channel, found.external_user_id)

    async def _post_in_old_topic(self, bot: Bot, topic: int, post: str) -> int | None:
        """Post in the customer's earlier topic; None when it is gone (deleted by an operator)."""
        try:
            await bot.reopen_forum_topic(self.chat_id, topic)
        except TelegramAPIError as error:  # open already: Telegram says TOPIC_NOT_MODIFIED
            log.debug("reopen topic=%s: %s", topic, error.message)
        try:
            await bot.send_message(self.chat_id, post, message_thread_id=topic)
        except TelegramBadRequest as error:
            log.warning("topic=%s unusable (%s); opening a new one", topic, error.message)
            return None
        return topic

    async def _operator_has_written(self, handover: Handover) -> bool:
        turns = await self._log.recent_turns(handover.conversation_id, 50)
        return any(t.role == "operator" and t.created_at >= handover.opened_at for t in turns)

    def _locale(self, chat_id: int) -> str:
        return self._locales.get(chat_id, self._languages[0])


def desk_name(operator: User) -> str:
    """How a Telegram operator is named as a hand-over's holder (console names have no spaces)."""
    return f"{operator.full_name} (Telegram)"


def _turn_text(message: Message) -> str:
    """What the log keeps of a message: its text or caption, else what kind of message it was."""
    return message.text or message.caption or f"[{ContentType(message.content_type).value}]"
