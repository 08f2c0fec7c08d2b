"""State that every worker of several bot processes must see alike, kept in Redis.

One process keeps these itself (bot.flood, bot.operator); several processes serving the same
chats share them here, so any worker can serve any chat: the flood counts per chat and which
customers an operator has. Clarify options and the operator desk's topic map live in the
conversation log, which the processes share already. A streaming throttle belongs to one reply,
which one worker sends.
"""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from engine.settings import BotConfig, QueueConfig

# KEYS: the chat's window, its warned flag; ARGV: limit, window in ms, a unique member.
# Redis's clock, so processes on several hosts count alike.
_HIT = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms - tonumber(ARGV[2]))
redis.call('ZADD', KEYS[1], ms, ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if redis.call('ZCARD', KEYS[1]) <= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[2])
  return {0, 0}
end
if redis.call('SET', KEYS[2], 1, 'NX', 'PX', ARGV[2]) then return {1, 1} end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {1, 0}
"""


class RedisFloodWindow:
    """bot.flood's sliding window per chat, in Redis (a FloodWindow)."""

    def __init__(self, redis: Redis, prefix: str, limit: int, window_s: float) -> None:
        self._redis = redis
        self._prefix = f"{prefix}flood:"
        self._limit = limit
        self._window_ms = max(int(window_s * 1000), 1)
        self._hit = redis.register_script(_HIT)
        self._count = 0
        self._me = uuid.uuid4().hex[:12]  # members of one window differ across processes

    async def hit(self, chat_id: int) -> tuple[bool, bool]:
        self._count += 1
        key = f"{self._prefix}{chat_id}"
        member = f"{self._me}:{self._count}"
        flooding, first = await self._hit(
            keys=[key, f"{key}:warned"], args=[self._limit, self._window_ms, member]
        )
        return bool(flooding), bool(first)


# KEYS: the lease; ARGV: this process, lease in ms. 1 while this process holds the lease.
_LEAD = """
if redis.call('GET', KEYS[1]) == ARGV[1] or redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


class RedisHandoverBoard:
    """The customers an operator has now, as a Redis set (a bot.operator HandoverBoard).

    One process at a time leads the desk's watch of other channels: a lease in Redis, renewed
    on every watch and taken over by another process `lease_s` after its holder stopped.
    """

    def __init__(self, redis: Redis, prefix: str, lease_s: float = 10.0) -> None:
        self._redis = redis
        self._key = f"{prefix}with-operator"
        self._leader = f"{prefix}desk-watcher"
        self._lease_ms = int(lease_s * 1000)
        self._me = uuid.uuid4().hex
        self._lead = redis.register_script(_LEAD)

    async def mark(self, chat_id: int, with_operator: bool) -> None:
        if with_operator:
            await self._redis.sadd(self._key, chat_id)
        else:
            await self._redis.srem(self._key, chat_id)

    async def holds(self, chat_id: int) -> bool:
        return bool(await self._redis.sismember(self._key, str(chat_id)))

    async def lead(self) -> bool:
        return bool(await self._lead(keys=[self._leader], args=[self._me, self._lease_ms]))


def shared_state(
    redis: Redis, bot_config: BotConfig, queue_config: QueueConfig
) -> tuple[RedisFloodWindow, RedisHandoverBoard]:
    """The flood window and hand-over board of one deployment (`[queue] prefix`)."""
    flood = RedisFloodWindow(
        redis, queue_config.prefix, bot_config.flood_messages, bot_config.flood_window_s
    )
    return flood, RedisHandoverBoard(redis, queue_config.prefix)
