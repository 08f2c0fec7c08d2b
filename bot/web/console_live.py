"""Live updates for the console: the Server-Sent Events stream behind /console/events.

Every stream follows the conversation log itself (`ConversationStore.activity`): the log is
the source of truth for all processes that write to it (the web front end, the Telegram bot,
other replicas), so a customer's message shows in the console whichever process logged it.
The log is read every `interval_s`, and at once when another process says it logged a turn
(bot.wakeups, with several processes on one Redis).
An event carries a kind and ids only, never customer text; the page script
(static/console-live.js) fetches the page again and swaps in its main part.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from engine.log import ConversationStore

if TYPE_CHECKING:  # the redis extra is needed only by several processes
    from bot.wakeups import Wakeups

SCRIPT = Path(__file__).parent / "static" / "console-live.js"
# A comment line this often keeps proxies from closing a quiet stream.
KEEP_ALIVE_S = 15.0
# How long a browser waits before reconnecting after the stream broke.
RETRY_MS = 3000
# The least time between two reads of the log when wake-ups come faster, as a share of the
# poll interval: a busy fleet costs each stream at most WAKE_READS times the polling reads,
# while a turn after a quiet moment shows at once.
WAKE_READS = 4


async def events(
    log: ConversationStore,
    *,
    interval_s: float,
    gone: Callable[[], Awaitable[bool]],
    wakeups: Wakeups | None = None,
) -> AsyncGenerator[str, None]:
    """The event stream's text: "handover" for a hand-over opened, taken or closed, "message"
    for a new turn (with its role), from the moment the stream opened until `gone()` says the
    client left."""
    mark = (await log.activity()).mark
    yield f"retry: {RETRY_MS}\n: open\n\n"
    quiet_since = time.monotonic()
    after_wake = False  # whether the last read answered a wake-up, not the poll
    while not await gone():
        woken = wakeups.next("turn") if wakeups is not None else None
        read_at = time.monotonic()
        activity = await log.activity(mark)
        mark = activity.mark
        for event in activity.events:
            data: dict[str, object] = {"conversation": event.conversation_id}
            if event.role is not None:
                data["role"] = event.role
            yield f"event: {event.kind}\ndata: {json.dumps(data)}\n\n"
            quiet_since = time.monotonic()
        if time.monotonic() - quiet_since >= KEEP_ALIVE_S:
            yield ": keep-alive\n\n"
            quiet_since = time.monotonic()
        if woken is None:
            await asyncio.sleep(interval_s)
            continue
        try:
            await asyncio.wait_for(woken.wait(), interval_s)
        except TimeoutError:
            after_wake = False
            continue
        if after_wake:
            # A burst of turns elsewhere costs WAKE_READS reads per interval, not one per turn.
            await asyncio.sleep(max(0.0, read_at + interval_s / WAKE_READS - time.monotonic()))
        after_wake = True
