"""The update queue between webhook receivers and workers: a Redis stream and a consumer group.

A receiver answers Telegram once `enqueue` has written the update to the stream; workers of one
consumer group take updates (`read`), and take over those of a worker that died (`claim`, with
XAUTOCLAIM after `claim_idle_s` without a heartbeat). Three guarantees, all kept in Redis so any
worker can serve any chat:

- Once: an update id is queued once (a redelivery of a queued update is only acknowledged), and
  each update has a state, `received`, `sending` (its answer may have gone out) or `done`, as in
  bot.journal. A claimed `received` update is handled again; a claimed `sending` one gets the
  recovery notice instead of a second answer.
- Order per chat: `enqueue` gives each update of a chat the chat's next ticket, in the same
  script that appends it, so tickets follow the stream's order; a worker serves ticket n only when
  the chat's now-serving counter is n (as Rasa's ticket lock store does), and `finish` moves the
  counter on. Chats are served in parallel.
- Ownership: only the worker that holds an update in the group's pending list may mark it
  `sending` or finish it, so a worker that was only slow, and lost its update to another, sends
  nothing more for it.

Every write is one Lua script, so a worker killed at any point leaves a consistent state.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from engine.settings import QueueConfig

log = logging.getLogger(__name__)

State = Literal["received", "sending", "done"]

_ENQUEUE = """
if not redis.call('SET', KEYS[2], 'received', 'NX', 'EX', ARGV[3]) then return 0 end
local ticket = 0
if ARGV[4] ~= '' then
  ticket = redis.call('HINCRBY', KEYS[3], 'next', 1)
  redis.call('HSETNX', KEYS[3], 'serving', 1)
  redis.call('EXPIRE', KEYS[3], ARGV[3])
end
redis.call('XADD', KEYS[1], '*', 'update', ARGV[1], 'id', ARGV[2], 'chat', ARGV[4],
  'ticket', ticket)
return 1
"""
# KEYS: stream, state; ARGV: group, consumer, entry id. True while the consumer holds the entry.
_HOLDS = """
local function holds()
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
  return #p > 0 and p[1][2] == ARGV[2]
end
"""
_SENDING = (
    _HOLDS
    + """
if not holds() then return 0 end
if redis.call('GET', KEYS[2]) == 'received' then
  redis.call('SET', KEYS[2], 'sending', 'KEEPTTL')
end
return 1
"""
)
# KEYS: stream, state, chat; ARGV: group, consumer, entry id, ticket, keep_s.
_FINISH = (
    _HOLDS
    + """
if not holds() then return 0 end
redis.call('SET', KEYS[2], 'done', 'EX', ARGV[5])
if ARGV[4] ~= '0' then
  local serving = tonumber(redis.call('HGET', KEYS[3], 'serving') or '1')
  if serving == tonumber(ARGV[4]) then redis.call('HSET', KEYS[3], 'serving', serving + 1) end
  redis.call('EXPIRE', KEYS[3], ARGV[5])
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
return 1
"""
)
# KEYS: stream; ARGV: group, consumer, entry ids. Resets the idle time of the entries it holds.
_HEARTBEAT = """
local kept = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p > 0 and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    kept = kept + 1
  end
end
return kept
"""


class QueueUnavailable(Exception):
    """Redis refused or could not be reached; the message says where and what to check."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One queued update: its stream entry, the Bot API JSON, and its chat's ticket (0: none)."""

    entry_id: str
    update_id: int
    body: dict[str, Any]
    chat: str
    ticket: int


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """What the queue holds: not yet taken, taken and not finished, the oldest one's age."""

    waiting: int
    pending: int
    oldest_age_s: float


class UpdateQueue:
    """The update stream of one deployment (`config.prefix`) as seen by one consumer."""

    def __init__(self, redis: Redis, config: QueueConfig, consumer: str = "") -> None:
        self._redis = redis
        self._config = config
        self.consumer = consumer
        self.stream = f"{config.prefix}updates"
        self._enqueue = redis.register_script(_ENQUEUE)
        self._sending = redis.register_script(_SENDING)
        self._finish = redis.register_script(_FINISH)
        self._heartbeat = redis.register_script(_HEARTBEAT)
        # Where the next take-over scan of the pending list starts; XAUTOCLAIM looks at a
        # bounded part of it per call and says where to go on ("0-0": from the start again).
        self._claim_from = "0-0"

    @classmethod
    def connect(cls, config: QueueConfig, consumer: str = "") -> UpdateQueue:
        """A queue on a new connection pool to `config.url` (closed by `close`)."""
        return cls(Redis.from_url(config.url), config, consumer)

    async def close(self) -> None:
        await self._redis.aclose()

    async def check(self) -> None:
        """Reach Redis and create the consumer group if it is new; QueueUnavailable if not."""
        try:
            await self._redis.ping()
            await self._redis.xgroup_create(self.stream, self._config.group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise QueueUnavailable(f"Redis at {self._config.url}: {error}") from None
        except (OSError, ConnectionError) as error:
            raise QueueUnavailable(
                f"cannot reach Redis at {self._config.url} ([queue] url): {error}"
            ) from None

    def _state_key(self, update_id: int) -> str:
        return f"{self._config.prefix}update:{update_id}"

    def _chat_key(self, chat: str) -> str:
        return f"{self._config.prefix}chat:{chat}"

    # The receiver's side.

    async def enqueue(self, update_id: int, body: dict[str, Any], chat: str) -> bool:
        """Append an update with its chat's next ticket; False when it was queued before.

        `chat` names the conversation whose order the update keeps ("" for none).
        """
        added = await self._enqueue(
            keys=[self.stream, self._state_key(update_id), self._chat_key(chat or "-")],
            args=[json.dumps(body, separators=(",", ":")), update_id, self._keep_s, chat],
        )
        return bool(added)

    # The workers' side.

    async def read(self, count: int, block_s: float) -> list[Entry]:
        """Up to `count` updates no worker has taken yet, waiting up to `block_s` for one."""
        # RESP2: [[stream, [(id, fields), ...]]]; typed loosely by redis-py.
        found: Any = await self._redis.xreadgroup(
            self._config.group,
            self.consumer,
            {self.stream: ">"},
            count=count,
            block=max(int(block_s * 1000), 1),
        )
        return [_entry(i, f) for _, entries in found or () for i, f in entries if f]

    async def claim(self, count: int) -> list[Entry]:
        """Take up to `count` updates that another worker took and stopped touching (it died)."""
        result = await self._redis.xautoclaim(
            self.stream,
            self._config.group,
            self.consumer,
            min_idle_time=int(self._config.claim_idle_s * 1000),
            start_id=self._claim_from,
            count=count,
        )
        self._claim_from = _text(result[0])
        entries = [_entry(i, f) for i, f in result[1] if f]
        for entry in entries:
            log.warning(
                "took over update %s chat=%s from a stopped worker", entry.update_id, entry.chat
            )
        return entries

    async def heartbeat(self, entries: Sequence[Entry]) -> int:
        """Show the updates this worker holds are alive; how many it still holds."""
        if not entries:
            return 0
        kept = await self._heartbeat(
            keys=[self.stream],
            args=[self._config.group, self.consumer, *(e.entry_id for e in entries)],
        )
        return int(kept)

    async def state(self, update_id: int) -> State | None:
        raw = await self._redis.get(self._state_key(update_id))
        return None if raw is None else cast("State", _text(raw))

    async def wait_turn(self, entry: Entry, poll_s: float = 0.05) -> None:
        """Return when the entry's chat serves its ticket (at once for updates outside a chat)."""
        if not entry.ticket:
            return
        delay = 0.002
        key = self._chat_key(entry.chat)
        while True:
            raw = await self._redis.hget(key, "serving")
            serving = int(raw) if raw is not None else 1
            if serving >= entry.ticket:
                if serving > entry.ticket:
                    log.warning("update %s ticket %d passed", entry.update_id, entry.ticket)
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, poll_s)

    async def sending(self, entry: Entry) -> bool:
        """Mark the update's answer as going out; False when another worker took it over."""
        held = await self._sending(
            keys=[self.stream, self._state_key(entry.update_id)],
            args=[self._config.group, self.consumer, entry.entry_id],
        )
        return bool(held)

    async def finish(self, entry: Entry) -> bool:
        """Mark the update done, serve the chat's next ticket, acknowledge and drop the entry.

        False when another worker took it over meanwhile (then that one finishes it).
        """
        held = await self._finish(
            keys=[self.stream, self._state_key(entry.update_id), self._chat_key(entry.chat or "-")],
            args=[
                self._config.group,
                self.consumer,
                entry.entry_id,
                entry.ticket,
                self._keep_s,
            ],
        )
        return bool(held)

    async def depth(self) -> QueueDepth:
        """The queue's depth, pending updates and the age of the oldest unfinished one."""
        waiting = pending = 0
        for group in await self._redis.xinfo_groups(self.stream):
            if _text(group.get("name")) == self._config.group:
                waiting = int(group.get("lag") or 0)
                pending = int(group.get("pending") or 0)
        first = await self._redis.xrange(self.stream, count=1)
        oldest = 0.0
        if first:
            millis = int(_text(first[0][0]).split("-")[0])
            oldest = max(time.time() - millis / 1000, 0.0)
        return QueueDepth(waiting, pending, oldest)

    @property
    def _keep_s(self) -> int:
        return int(self._config.keep_s)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry(entry_id: object, fields: dict[Any, Any]) -> Entry:
    values = {_text(k): _text(v) for k, v in fields.items()}
    return Entry(
        entry_id=_text(entry_id),
        update_id=int(values["id"]),
        body=json.loads(values["update"]),
        chat=values["chat"],
        ticket=int(values["ticket"]),
    )
