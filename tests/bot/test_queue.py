"""The Redis update queue: once per update id, tickets per chat, take-over of a dead worker's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from bot.queue import Entry, UpdateQueue
from engine.settings import QueueConfig
from tests.services import RedisNamespace

QueueFactory = Callable[[str], UpdateQueue]
# Long enough that no pause of a loaded machine between two Redis calls makes an update idle,
# short enough to wait out in a test. Waits for an outcome are generous (TURN_S); they end as
# soon as it happens.
CLAIM_IDLE_S = 1.0
TURN_S = 30.0


@pytest.fixture
async def queues(redis_namespace: RedisNamespace) -> AsyncIterator[QueueFactory]:
    """Consumers of one queue under the test's key prefix; a short take-over time."""
    config = QueueConfig(
        url=redis_namespace.url, prefix=redis_namespace.prefix, claim_idle_s=CLAIM_IDLE_S
    )
    opened: list[UpdateQueue] = []

    def consumer(name: str) -> UpdateQueue:
        queue = UpdateQueue.connect(config, name)
        opened.append(queue)
        return queue

    yield consumer
    for queue in opened:
        await queue.close()


async def claim_when_idle(queue: UpdateQueue) -> list[Entry]:
    """Claim as soon as something has been idle for the take-over time."""
    deadline = time.monotonic() + TURN_S
    while not (claimed := await queue.claim(10)):
        assert time.monotonic() < deadline, "nothing was taken over"
        await asyncio.sleep(0.05)
    return claimed


def update(update_id: int, chat: int) -> dict[str, object]:
    return {"update_id": update_id, "message": {"chat": {"id": chat}, "text": f"q{update_id}"}}


async def test_an_update_is_queued_once_and_read_by_one_worker(queues: QueueFactory) -> None:
    receiver, one, two = queues("receiver"), queues("one"), queues("two")
    await receiver.check()
    assert await receiver.enqueue(1, update(1, 7), "7")
    assert not await receiver.enqueue(1, update(1, 7), "7")  # Telegram delivered it again
    taken = await one.read(10, block_s=0.1) + await two.read(10, block_s=0.1)
    assert [(e.update_id, e.chat, e.ticket) for e in taken] == [(1, "7", 1)]
    assert taken[0].body == update(1, 7)
    assert await receiver.state(1) == "received"
    depth = await receiver.depth()
    assert (depth.waiting, depth.pending) == (0, 1)


async def test_a_chat_is_served_in_ticket_order_across_workers(queues: QueueFactory) -> None:
    receiver, one, two = queues("receiver"), queues("one"), queues("two")
    await receiver.check()
    for update_id in (1, 2, 3):
        await receiver.enqueue(update_id, update(update_id, 7), "7")
    await receiver.enqueue(4, update(4, 8), "8")
    first = await one.read(1, block_s=0.1)
    rest = await two.read(10, block_s=0.1)
    assert [e.ticket for e in first + rest] == [1, 2, 3, 1]
    second, third, other_chat = rest
    await asyncio.wait_for(two.wait_turn(other_chat), TURN_S)  # another chat does not wait
    waiting = asyncio.create_task(two.wait_turn(second))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    assert await one.finish(first[0])
    await asyncio.wait_for(waiting, TURN_S)
    assert not await one.finish(second)  # only the worker holding an update finishes it
    assert await two.finish(second)
    await asyncio.wait_for(two.wait_turn(third), TURN_S)
    assert await receiver.state(1) == "done"
    assert await receiver.state(3) == "received"


async def test_a_dead_workers_update_is_taken_over_and_the_slow_one_stops(
    queues: QueueFactory,
) -> None:
    receiver, dead, alive = queues("receiver"), queues("dead"), queues("alive")
    await receiver.check()
    await receiver.enqueue(1, update(1, 7), "7")
    await receiver.enqueue(2, update(2, 7), "7")
    [taken] = await dead.read(1, block_s=0.1)
    assert await dead.sending(taken)
    assert await alive.claim(10) == []  # not idle long enough yet
    [claimed] = await claim_when_idle(alive)
    assert claimed == taken
    assert await alive.state(1) == "sending"  # its answer may have gone out: a notice is due
    assert not await dead.sending(taken)
    assert not await dead.finish(taken)
    assert await alive.finish(claimed)
    [following] = await alive.read(1, block_s=0.1)
    await asyncio.wait_for(alive.wait_turn(following), TURN_S)


async def test_a_heartbeat_keeps_a_long_reply_with_its_worker(queues: QueueFactory) -> None:
    receiver, busy, idle = queues("receiver"), queues("busy"), queues("idle")
    await receiver.check()
    await receiver.enqueue(1, update(1, 7), "7")
    [taken] = await busy.read(1, block_s=0.1)
    # Well past the take-over time, so only the heartbeats keep it.
    deadline = time.monotonic() + 2 * CLAIM_IDLE_S
    while time.monotonic() < deadline:
        await asyncio.sleep(CLAIM_IDLE_S / 4)
        assert await busy.heartbeat([taken]) == 1
        assert await idle.claim(10) == []
    assert await busy.finish(taken)
    assert await busy.heartbeat([taken]) == 0


async def test_updates_outside_a_chat_need_no_turn(queues: QueueFactory) -> None:
    receiver, worker = queues("receiver"), queues("worker")
    await receiver.check()
    await receiver.check()  # the group exists already: no error
    assert await receiver.enqueue(5, {"update_id": 5, "poll": {}}, "")
    [entry] = await worker.read(1, block_s=0.1)
    assert entry.ticket == 0
    await asyncio.wait_for(worker.wait_turn(entry), TURN_S)
    assert await worker.finish(entry)
    depth = await receiver.depth()
    assert (depth.waiting, depth.pending, depth.oldest_age_s) == (0, 0, 0.0)
