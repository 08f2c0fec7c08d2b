"""Deliver to Telegram customers what operators wrote in the console, from the log.

The console logs an operator's reply to a Telegram customer as a turn with delivery `pending`;
every bot process runs this outbox, which sends such turns to the customer's chat, marks them
`delivered` and mirrors them into the hand-over's forum topic so the operators there see them.
A hand-over taken in the console is announced in its topic the same way, once per new holder.

Exactly once with several processes: a turn is sent only by the process whose compare-and-set
claim on it succeeds (`ConversationStore.claim_delivery`). The trade-off after a crash: a claim
older than `reclaim_s` is taken again, so a process that died between its claim and the send
loses nothing, and one that died after the send but before marking it delivered repeats the
message once, `reclaim_s` later. At-least-once after a crash, exactly once otherwise: losing an
operator's answer is worse than showing it twice.

With several processes on one Redis (bot.wakeups), the process that logs a reply to deliver
wakes every outbox at once; the poll every `interval_s` stays, for what a wake-up missed.

A send that fails on the way (network, Telegram's server, flood control waits longer than half
the claim) gives its claim back at once, so the next pass of any process retries it; this process
waits a growing delay (`BACKOFF_MAX_S` at most) before it tries that turn again. A send is cut off
after `reclaim_s / 2`, so it never outlives its claim while another process sends the same turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)

from bot.desk import CHANNEL
from bot.operator import OperatorDesk
from engine import Engine
from engine.log import Turn

if TYPE_CHECKING:  # the redis extra is needed only by several processes
    from bot.wakeups import Wakeups

log = logging.getLogger(__name__)

# The longest this process waits before it tries a failed turn again.
BACKOFF_MAX_S = 60.0
# Failures worth retrying: the message may go through later.
_TRANSIENT = (TelegramNetworkError, TelegramServerError, TelegramRetryAfter, TimeoutError)


class ConsoleOutbox:
    """Sends pending operator turns to Telegram customers; one per bot process."""

    def __init__(
        self,
        engine: Engine,
        *,
        operator_chat_id: int = 0,
        interval_s: float = 1.0,
        reclaim_s: float = 300.0,
        topic_channels: Sequence[str] = (CHANNEL, "web"),
        desk: OperatorDesk | None = None,
        wakeups: Wakeups | None = None,
    ) -> None:
        self._log = engine.conversation_log
        self._operator_chat_id = operator_chat_id
        self._interval_s = interval_s
        self._reclaim_s = reclaim_s
        self._topic_channels = tuple(topic_channels)
        self._desk = desk
        self._wakeups = wakeups
        # Hand-over id -> the holder this process saw last: the log is asked on a change only.
        self._holders: dict[int, str] = {}
        # Turn id -> (failed sends so far, when this process may try it again).
        self._backoff: dict[int, tuple[int, float]] = {}
        self._task: asyncio.Task[None] | None = None
        self._follow: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self.sent = 0

    async def start(self, bot: Bot) -> None:
        """Begin watching the log (a dispatcher startup hook)."""
        self._task = asyncio.create_task(self._run(bot), name="console-outbox")
        if self._wakeups is not None:
            self._follow = asyncio.create_task(self._follow_wakeups(), name="outbox-wakeups")

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop watching (a dispatcher shutdown hook) once the pass in progress ends.

        A send cut between Telegram's answer and the log's mark would be sent again after
        `reclaim_s`, so a pass gets `grace_s` to finish before it is cancelled.
        """
        if self._follow is not None:
            self._follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow
            self._follow = None
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        _, running = await asyncio.wait({self._task}, timeout=grace_s)
        for task in running:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None

    def wake(self) -> None:
        """Look at the log now rather than at the next interval."""
        self._wake.set()

    async def _follow_wakeups(self) -> None:
        assert self._wakeups is not None
        while True:
            await self._wakeups.next("delivery").wait()
            self._wake.set()

    async def _run(self, bot: Bot) -> None:
        while not self._stopping:
            try:
                await self.deliver(bot)
                await self.announce(bot)
            except Exception:  # a Telegram or log hiccup must not end the outbox
                log.exception("console outbox: delivery pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval_s)
            self._wake.clear()

    async def deliver(self, bot: Bot) -> int:
        """One pass: send every pending operator turn this process claims; returns how many."""
        sent, now = 0, asyncio.get_running_loop().time()
        pending = await self._log.undelivered_turns(CHANNEL)
        waiting = {turn.id for _, turn in pending}
        self._backoff = {t: b for t, b in self._backoff.items() if t in waiting}
        for external_id, turn in pending:
            if self._stopping:
                break
            # Bot turns are pending while their reply streams; the journal sees to those.
            if turn.role != "operator":
                continue
            if turn.id in self._backoff and self._backoff[turn.id][1] > now:
                continue  # failed lately here; another process may take it meanwhile
            if not await self._log.claim_delivery(turn.id, stale_after_s=self._reclaim_s):
                continue  # another process sends it
            if await self._send(bot, external_id, turn):
                sent += 1
        self.sent += sent
        return sent

    async def announce(self, bot: Bot) -> int:
        """One pass: say in each topic who took its hand-over in the console; returns how many."""
        if not self._operator_chat_id:
            return 0
        said, open_now = 0, set()
        for channel in self._topic_channels:
            for _, handover in await self._log.open_handovers(channel):
                open_now.add(handover.id)
                holder, topic = handover.assignee, handover.topic_id
                if holder is None or topic is None or self._holders.get(handover.id) == holder:
                    continue
                self._holders[handover.id] = holder
                # Takes in a topic were announced there already (the log says so).
                if not await self._log.claim_assignment_notice(handover.id, holder):
                    continue
                try:
                    await bot.send_message(
                        self._operator_chat_id,
                        f"Taken by {html.escape(holder)} in the console.",
                        message_thread_id=topic,
                    )
                except TelegramAPIError as error:  # a courtesy: the console shows the holder
                    log.warning("could not announce in topic=%s: %s", topic, error.message)
                    continue
                said += 1
        self._holders = {h: name for h, name in self._holders.items() if h in open_now}
        return said

    async def _send(self, bot: Bot, external_id: str, turn: Turn) -> bool:
        try:
            # Flood-control retries (bot.retry) included: done well before the claim goes stale.
            async with asyncio.timeout(self._reclaim_s / 2):
                await bot.send_message(int(external_id), html.escape(turn.text))
        except _TRANSIENT as error:
            await self._retry_later(turn, error)
            return False
        except TelegramAPIError as error:  # blocked, chat gone: it will never arrive
            log.warning("console reply turn=%s undeliverable: %s", turn.id, error.message)
            await self._log.set_delivery(turn.id, "undelivered")
            return False
        await self._log.set_delivery(turn.id, "delivered")
        log.info("console reply delivered conversation=%s turn=%s", turn.conversation_id, turn.id)
        handover = await self._log.open_handover_for(turn.conversation_id)
        if handover is None and self._desk is not None:
            # Resolved in the console (this was the rating question): the bot answers again.
            await self._desk.release(int(external_id))
        await self._mirror(bot, external_id, turn)
        return True

    async def _retry_later(self, turn: Turn, error: Exception) -> None:
        """Give the claim back so the next pass (of any process) retries; back off here."""
        failures = self._backoff.get(turn.id, (0, 0.0))[0] + 1
        delay = min(self._interval_s * 2**failures, BACKOFF_MAX_S)
        self._backoff[turn.id] = (failures, asyncio.get_running_loop().time() + delay)
        log.warning(
            "console reply turn=%s not sent (try %d, again in %.0f s): %s",
            turn.id,
            failures,
            delay,
            getattr(error, "message", None) or type(error).__name__,
        )
        await self._log.release_delivery(turn.id)

    async def _mirror(self, bot: Bot, external_id: str, turn: Turn) -> None:
        """Show the console's reply in the customer's forum topic, for the operators there."""
        if not self._operator_chat_id:
            return
        topic = await self._log.latest_topic(CHANNEL, external_id)
        if topic is None:
            return
        try:
            await bot.send_message(
                self._operator_chat_id,
                f"<i>Sent from the console:</i>\n{html.escape(turn.text)}",
                message_thread_id=topic,
            )
        except TelegramAPIError as error:  # the customer has it; the copy is a courtesy
            log.warning("could not mirror turn=%s into topic=%s: %s", turn.id, topic, error.message)
