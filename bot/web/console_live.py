"""Live updates for the console: the Server-Sent Events stream behind /console/events.

Every stream follows the conversation log itself (`ConversationStore.activity`): the log is
the source of truth for all processes that write to it (the web front end, the Telegram bot,
other replicas), so a customer's message shows in the console whichever process logged it.
An event carries a kind and ids only, never customer text; the page script
(static/console-live.js) fetches the page again and swaps in its main part.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from engine.log import ConversationStore

SCRIPT = Path(__file__).parent / "static" / "console-live.js"
# A comment line this often keeps proxies from closing a quiet stream.
KEEP_ALIVE_S = 15.0
# How long a browser waits before reconnecting after the stream broke.
RETRY_MS = 3000


async def events(
    log: ConversationStore,
    *,
    interval_s: float,
    gone: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    """The event stream's text: "handover" for a hand-over opened, taken or closed, "message"
    for a new turn (with its role), from the moment the stream opened until `gone()` says the
    client left."""
    mark = (await log.activity()).mark
    yield f"retry: {RETRY_MS}\n: open\n\n"
    quiet_since = time.monotonic()
    while not await gone():
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
        await asyncio.sleep(interval_s)
