"""The ConversationStore contract: the same cases over every store, SQLite and PostgreSQL.

What a store promises is checked in the database itself where it matters (erasure, redaction),
not only through the store's own reads.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from engine import Engine, EngineConfig, FinalReply
from engine.generators import ExtractiveGenerator
from engine.log import (
    STORES,
    ConversationLog,
    ConversationStore,
    LogConfig,
    Retrieved,
    build_report,
    export_all,
    open_store,
    pg_schema,
    schema,
)
from engine.sentiment import LexiconSentiment
from retrieval import KnowledgeBase
from tests.conftest import ROOT

if TYPE_CHECKING:
    from engine.log.postgres import PostgresConversationLog

KINDS = ("sqlite", "postgresql")


def test_the_contract_covers_every_store() -> None:
    assert set(STORES) == set(KINDS)


@pytest.fixture(params=KINDS)
def store_config(request: pytest.FixtureRequest, tmp_path: Path) -> LogConfig:
    """A config pointing at an empty database of the kind under test."""
    if request.param == "sqlite":
        return LogConfig(url=f"sqlite:///{tmp_path / 'conversations.db'}")
    url: str = request.getfixturevalue("postgres_url")
    return LogConfig(url=url)


@pytest.fixture
async def store(store_config: LogConfig) -> AsyncIterator[ConversationStore]:
    opened = await open_store(store_config)
    yield opened
    await opened.close()


def _typed(log: ConversationLog, pg: PostgresConversationLog) -> list[ConversationStore]:
    return [log, pg]  # mypy checks that both stores satisfy the Protocol


async def raw(config: LogConfig, sql: str) -> list[tuple[Any, ...]]:
    """Rows of `sql` read straight from the database, past the store."""
    if config.scheme == "sqlite":
        with closing(sqlite3.connect(config.sqlite_path)) as conn:
            return [tuple(row) for row in conn.execute(sql)]
    import asyncpg

    conn = await asyncpg.connect(config.url)
    try:
        return [tuple(row) for row in await conn.fetch(sql)]
    finally:
        await conn.close()


async def columns(config: LogConfig) -> list[tuple[str, str]]:
    """Every (table, column) of the database, the store's bookkeeping tables included."""
    if config.scheme == "sqlite":
        tables = await raw(config, "SELECT name FROM sqlite_master WHERE type = 'table'")
        found = []
        for (table,) in tables:
            found += [(table, row[1]) for row in await raw(config, f"PRAGMA table_info({table})")]
        return found
    rows = await raw(
        config,
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public'",
    )
    return [(str(t), str(c)) for t, c in rows]


async def places_holding(config: LogConfig, text: str) -> list[str]:
    """Every table.column in which any row contains `text`."""
    cast = "CAST({} AS TEXT)" if config.scheme == "sqlite" else "{}::text"
    found = []
    for table, column in await columns(config):
        sql = f"SELECT count(*) FROM {table} WHERE {cast.format(column)} LIKE '%{text}%'"
        if (await raw(config, sql))[0][0]:
            found.append(f"{table}.{column}")
    return found


async def fill(store: ConversationStore, user: str, word: str) -> int:
    conversation = await store.start_conversation("telegram", user, language="en")
    await store.add_turn(
        conversation,
        "customer",
        f"my {word} order",
        sentiment_label="negative",
        sentiment_score=-0.5,
        models={"sentiment": "lexicon"},
        external_id=f"update-{word}",
    )
    reply = await store.add_turn(
        conversation,
        "bot",
        f"about your {word}",
        action="answer",
        reason="confident",
        kb_version="v1",
        models={"generator": "extractive"},
        latencies_ms={"retrieval": 2.5},
        retrieved=[Retrieved(f"faq-{word}", 0.9), Retrieved("other", 0.3)],
        delivery="pending",
    )
    await store.add_feedback(reply, -1)
    handover = await store.open_handover(conversation, f"{word} handover", topic_id=7)
    await store.add_turn(conversation, "operator", f"operator on {word}")
    await store.close_handover(handover, operator_id="op-1")
    return conversation


async def test_a_conversation_round_trips_with_everything_it_records(
    store: ConversationStore,
) -> None:
    conversation = await fill(store, "1001", "parcel")
    found = await store.get_conversation(conversation)
    assert found is not None
    assert (found.channel, found.external_user_id, found.language) == ("telegram", "1001", "en")
    question, reply, operator = found.turns
    assert (question.role, question.text, question.sentiment_label) == (
        "customer",
        "my parcel order",
        "negative",
    )
    assert question.sentiment_score == -0.5 and question.external_id == "update-parcel"
    assert question.models == {"sentiment": "lexicon"}
    assert (reply.action, reply.reason, reply.kb_version, reply.feedback) == (
        "answer",
        "confident",
        "v1",
        -1,
    )
    assert reply.retrieved == (Retrieved("faq-parcel", 0.9), Retrieved("other", 0.3))
    assert reply.latencies_ms == {"retrieval": 2.5} and reply.delivery == "pending"
    assert reply.feedback_at is not None and reply.feedback_at >= reply.created_at
    assert operator.role == "operator"
    (handover,) = found.handovers
    assert (handover.reason, handover.operator_id, handover.topic_id) == (
        "parcel handover",
        "op-1",
        7,
    )
    assert await store.get_turn(reply.id) == reply
    assert await store.recent_turns(conversation, 2) == [reply, operator]
    assert await store.latest_conversation_id("telegram", "1001") == conversation
    assert await store.latest_conversation_id("web", "1001") is None
    assert await store.get_conversation(conversation + 100) is None


async def test_the_latest_turns_are_the_newest_conversations_read_together(
    store: ConversationStore,
) -> None:
    assert await store.latest_turns("web", "7") == (None, [])
    older = await fill(store, "7", "parcel")
    await store.start_conversation("telegram", "8")
    assert await store.latest_turns("telegram", "7", 2) == (
        older,
        await store.recent_turns(older, 2),
    )
    assert await store.latest_turns("telegram", "7", 0) == (older, [])
    # A closed newest conversation is still the latest, as in latest_conversation_id.
    newest = await store.start_conversation("telegram", "7")
    await store.close_conversation(newest)
    assert await store.latest_turns("telegram", "7") == (newest, [])
    with pytest.raises(ValueError, match="limit"):
        await store.latest_turns("telegram", "7", -1)


async def test_the_open_conversation_is_the_newest_unless_closed(
    store: ConversationStore,
) -> None:
    assert await store.open_conversation_id("web", "42") is None
    older = await store.start_conversation("web", "42")
    assert await store.open_conversation_id("web", "42") == older
    newest = await store.start_conversation("web", "42")
    await store.start_conversation("web", "43")
    await store.start_conversation("telegram", "42")
    assert await store.open_conversation_id("web", "42") == newest
    await store.close_conversation(newest)
    # The older one is still open, but a closed newest one means a new conversation is due.
    assert await store.open_conversation_id("web", "42") is None
    assert await store.latest_conversation_id("web", "42") == newest
    again = await store.start_conversation("web", "42")
    assert await store.open_conversation_id("web", "42") == again
    await store.erase_customer("web", "42")
    assert await store.open_conversation_id("web", "42") is None


async def test_bad_writes_are_refused_the_same_way(store: ConversationStore) -> None:
    conversation = await store.start_conversation("telegram", "1")
    question = await store.add_turn(conversation, "customer", "hi")
    with pytest.raises(ValueError, match="start one with start_conversation"):
        await store.add_turn(999, "customer", "hello?")
    with pytest.raises(ValueError, match="needs role 'bot'"):
        await store.add_turn(conversation, "customer", "hi", action="answer")
    with pytest.raises(ValueError, match="feedback rates replies"):
        await store.add_feedback(question, 1)
    with pytest.raises(ValueError, match="no turn 999"):
        await store.add_feedback(999, -1)
    with pytest.raises(ValueError, match="no handover 999"):
        await store.close_handover(999)
    with pytest.raises(ValueError, match="no conversation 999"):
        await store.open_handover(999, "angry")
    assert [t.text for t in await store.recent_turns(conversation)] == ["hi"]


async def test_personal_data_is_redacted_in_the_database(
    store: ConversationStore, store_config: LogConfig
) -> None:
    conversation = await store.start_conversation("telegram", "1")
    await store.add_turn(conversation, "customer", "I am jane@example.com, +44 20 7946 0958")
    (turn,) = await store.recent_turns(conversation)
    assert turn.text == "I am [email], [phone]"
    assert await places_holding(store_config, "jane@example") == []
    assert await places_holding(store_config, "7946") == []


async def test_hand_over_state_and_topics(store: ConversationStore) -> None:
    first = await store.start_conversation("telegram", "7")
    handover = await store.open_handover(first, "human_requested")
    assert await store.latest_topic("telegram", "7") is None
    await store.assign_topic(handover, 55)
    opened = await store.open_handover_for(first)
    assert opened is not None and opened.id == handover and opened.topic_id == 55
    assert await store.handover_for_topic(55) == opened
    assert await store.open_handovers("telegram") == [("7", opened)]
    assert await store.open_handovers("web") == []
    # Only the first close reports closing it: that caller alone asks for a rating.
    assert await store.close_handover(handover, operator_id="9") is True
    assert await store.close_handover(handover, operator_id="olaf") is False
    assert await store.open_handover_for(first) is None
    assert await store.handover_for_topic(55) is None
    await store.start_conversation("telegram", "7")
    assert await store.latest_topic("telegram", "7") == 55
    closed = await store.get_conversation(first)
    assert closed is not None and closed.handovers[0].operator_id == "9"
    assert closed.handovers[0].closed_at is not None


async def test_a_handover_is_assigned_and_its_holder_announced_once(
    store: ConversationStore, store_config: LogConfig
) -> None:
    conversation = await store.start_conversation("telegram", "8")
    handover = await store.open_handover(conversation, "human_requested")
    # Taken in the console: announced in the topic once, by one of several processes.
    assert await store.assign_handover(handover, "alice") == "alice"
    opened = await store.open_handover_for(conversation)
    assert opened is not None and opened.assignee == "alice" and opened.assigned_at is not None
    others = [await open_store(store_config) for _ in range(2)]
    try:
        claims = await asyncio.gather(
            store.claim_assignment_notice(handover, "alice"),
            *(other.claim_assignment_notice(handover, "alice") for other in others),
        )
    finally:
        for other in others:
            await other.close()
    assert sorted(claims) == [False, False, True]
    assert not await store.claim_assignment_notice(handover, "alice")
    # A first reply in the topic does not take it from its holder; an explicit take does.
    assert await store.assign_handover(handover, "Maria (Telegram)", take_over=False) == "alice"
    taken = await store.assign_handover(handover, "Maria (Telegram)", announced=True)
    assert taken == "Maria (Telegram)"
    assert not await store.claim_assignment_notice(handover, "Maria (Telegram)")
    assert not await store.claim_assignment_notice(handover, "alice")  # no longer holds it
    assert await store.assign_handover(handover, "alice") == "alice"
    assert await store.claim_assignment_notice(handover, "alice")  # a new change of holder
    [(_, listed)] = await store.open_handovers("telegram")
    assert listed.assignee == "alice"
    await store.close_handover(handover, operator_id="alice")
    assert await store.assign_handover(handover, "bob") is None  # closed: nobody takes it
    closed = await store.get_conversation(conversation)
    assert closed is not None and closed.handovers[0].assignee == "alice"
    unassigned = await store.open_handover(conversation, "human_requested")
    assert await store.assign_handover(unassigned, "bob", take_over=False) == "bob"


async def test_a_resolved_handover_takes_one_rating(store: ConversationStore) -> None:
    conversation = await store.start_conversation("web", "9")
    # The report's CSAT counts conversations in which a customer wrote, like every figure.
    await store.add_turn(conversation, "customer", "A person, please")
    handover = await store.open_handover(conversation, "human_requested")
    assert not await store.rate_handover(handover, 5)  # not asked for
    await store.close_handover(handover, operator_id="olaf")
    assert await store.awaiting_rating(conversation, since=0) is None
    await store.ask_rating(handover)
    waiting = await store.awaiting_rating(conversation, since=0)
    assert waiting is not None and waiting.id == handover and waiting.rating_asked_at is not None
    assert await store.awaiting_rating(conversation, since=waiting.rating_asked_at + 1) is None
    with pytest.raises(ValueError, match="a rating is 1 to 5"):
        await store.rate_handover(handover, 6)
    assert await store.rate_handover(handover, 4)
    assert not await store.rate_handover(handover, 1)  # the first answer counts
    assert await store.awaiting_rating(conversation, since=0) is None
    assert await store.handover_ratings() == [4]
    rated = await store.get_conversation(conversation)
    assert rated is not None and rated.handovers[0].rating == 4
    assert rated.handovers[0].rated_at is not None
    assert await store.handover_ratings(since=rated.handovers[0].rated_at + 1) == []
    report = await build_report(store)
    assert report.ratings == (4,) and "CSAT              4.00 of 5 (1 ratings)" in report.render()
    with pytest.raises(ValueError, match="no handover 999"):
        await store.ask_rating(999)
    # A newer hand-over hides the older one's question.
    other = await store.open_handover(conversation, "negative_sentiment")
    await store.close_handover(other)
    assert await store.awaiting_rating(conversation, since=0) is None
    # Brought over from elsewhere (an older console): the original times are kept.
    await store.ask_rating(other, at=1000.0)
    assert await store.rate_handover(other, 2, at=1500.0)
    dated = await store.get_conversation(conversation)
    assert dated is not None
    assert (dated.handovers[1].rating_asked_at, dated.handovers[1].rated_at) == (1000.0, 1500.0)


async def test_delivery_and_idempotent_customer_turns(store: ConversationStore) -> None:
    conversation = await store.start_conversation("telegram", "5")
    first = await store.add_turn(conversation, "customer", "where?", external_id="u-1")
    assert await store.add_turn(conversation, "customer", "where?", external_id="u-1") == first
    reply = await store.add_turn(conversation, "bot", "here", action="answer", delivery="pending")
    other = await store.start_conversation("web", "5")
    await store.add_turn(other, "bot", "web reply", delivery="pending")
    pending = await store.undelivered_turns("telegram")
    assert [(user, turn.id) for user, turn in pending] == [("5", reply)]
    await store.set_delivery(reply, "delivered")
    assert await store.undelivered_turns("telegram") == []
    turn = await store.get_turn(reply)
    assert turn is not None and turn.delivery == "delivered"
    with pytest.raises(ValueError, match="no turn 999"):
        await store.set_delivery(999, "delivered")
    assert len(await store.recent_turns(conversation)) == 2

    await store.open_handover(conversation, "human_requested")
    await store.close_conversation(other)
    listed = await store.list_conversations()
    assert [(c.id, c.turns, c.open_handover) for c in listed] == [
        (other, 1, False),
        (conversation, 2, True),
    ]
    assert listed[0].closed_at is not None and listed[1].closed_at is None
    assert [c.id for c in await store.list_conversations("telegram")] == [conversation]
    assert [c.id for c in await store.list_conversations(limit=1, offset=1)] == [conversation]


async def test_a_pending_turn_is_claimed_by_one_sender(
    store: ConversationStore, store_config: LogConfig
) -> None:
    conversation = await store.start_conversation("telegram", "6")
    reply = await store.add_turn(conversation, "operator", "from the console", delivery="pending")
    plain = await store.add_turn(conversation, "operator", "sent by the desk")
    # Several processes: each opens the log itself and all claim the turn at once.
    others = [await open_store(store_config) for _ in range(3)]
    try:
        claims = await asyncio.gather(
            store.claim_delivery(reply, stale_after_s=60),
            *(other.claim_delivery(reply, stale_after_s=60) for other in others),
        )
    finally:
        for other in others:
            await other.close()
    assert sorted(claims) == [False, False, False, True]
    assert not await store.claim_delivery(reply, stale_after_s=60)
    assert not await store.claim_delivery(plain, stale_after_s=60)  # nothing to send
    # The holder could not reach Telegram: released, any sender takes it at once.
    await store.release_delivery(reply)
    assert await store.claim_delivery(reply, stale_after_s=60)
    assert not await store.claim_delivery(reply, stale_after_s=60)
    await asyncio.sleep(0.01)
    # The holder died before marking it: once the claim is stale another sender takes it.
    assert await store.claim_delivery(reply, stale_after_s=0.001)
    await store.set_delivery(reply, "delivered")
    assert not await store.claim_delivery(reply, stale_after_s=0)
    assert await store.undelivered_turns("telegram") == []


async def test_erasure_leaves_no_trace_in_the_database(
    store: ConversationStore, store_config: LogConfig
) -> None:
    await fill(store, "erase-me", "zebrafish")
    kept = await fill(store, "keep-me", "giraffe")
    assert await places_holding(store_config, "zebrafish")

    assert await store.erase_customer("telegram", "erase-me") == 1
    assert await store.erase_customer("telegram", "erase-me") == 0
    assert await places_holding(store_config, "zebrafish") == []
    assert await places_holding(store_config, "erase-me") == []
    assert await store.latest_conversation_id("telegram", "erase-me") is None
    assert await store.get_conversation(kept) is not None
    assert sorted(await places_holding(store_config, "giraffe")) == [
        "handovers.reason",
        "retrieved.faq_id",
        "turns.external_id",
        "turns.text",
    ]
    if store_config.scheme == "postgresql":
        # The deleted row versions were vacuumed away, not left for autovacuum.
        vacuumed = await raw(
            store_config,
            "SELECT relname FROM pg_stat_user_tables WHERE last_vacuum IS NOT NULL",
        )
        assert {"turns", "conversations", "handovers", "retrieved", "feedback"} <= {
            name for (name,) in vacuumed
        }


async def test_exported_conversations_restore_exactly(
    store: ConversationStore, tmp_path: Path
) -> None:
    for n in range(3):
        await fill(store, f"user-{n}", f"word{n}")
    exported = [c async for c in store.export_conversations(batch_size=2)]
    assert [c.external_user_id for c in exported] == ["user-0", "user-1", "user-2"]
    counts = await store.row_counts()
    assert counts == {
        "conversations": 3,
        "turns": 9,
        "retrieved": 6,
        "feedback": 3,
        "handovers": 3,
    }

    async with await open_store(LogConfig(path=tmp_path / "copy.db")) as copy:
        await copy.restore(exported)
        await copy.restore(exported)  # again: nothing doubles
        assert [c async for c in copy.export_conversations()] == exported
        assert await copy.row_counts() == counts
        # New rows take ids after the restored ones.
        fresh = await copy.start_conversation("telegram", "new")
        assert fresh > max(c.id for c in exported)


async def test_restore_into_the_store_moves_its_id_sequences(
    store: ConversationStore, tmp_path: Path
) -> None:
    async with await open_store(LogConfig(path=tmp_path / "source.db")) as source:
        for n in range(2):
            await fill(source, f"user-{n}", f"word{n}")
        exported = [c async for c in source.export_conversations()]
    await store.restore(exported)
    assert [c async for c in store.export_conversations()] == exported
    conversation = await store.start_conversation("telegram", "after")
    turn = await store.add_turn(conversation, "customer", "next")
    handover = await store.open_handover(conversation, "x")
    assert conversation > exported[-1].id
    assert turn > max(t.id for c in exported for t in c.turns)
    assert handover > max(h.id for c in exported for h in c.handovers)


_WRITER = """
import asyncio, pathlib, sys, time
from engine.log import LogConfig, open_store

async def main(url, worker, shared, folder):
    async with await open_store(LogConfig(url=url)) as log:
        (folder / f"ready-{worker}").touch()
        while not (folder / "go").exists():
            await asyncio.sleep(0.01)
        for n in range(15):
            conversation = await log.start_conversation("telegram", f"w{worker}-{n}")
            for k in range(3):
                await log.add_turn(conversation, "customer", f"q{k}", external_id=f"u{k}")
        for k in range(10):
            await log.add_turn(shared, "customer", f"same {k}", external_id=f"s{k}")

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), pathlib.Path(sys.argv[4])))
"""


def _ready(folder: Path) -> int:
    return len(list(folder.glob("ready-*")))


async def test_several_processes_write_at_once(
    store: ConversationStore, store_config: LogConfig, tmp_path: Path
) -> None:
    shared = await store.start_conversation("telegram", "shared")
    workers = 3
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WRITER,
            store_config.location,
            str(n),
            str(shared),
            str(tmp_path),
            cwd=ROOT,
        )
        for n in range(workers)
    ]
    try:
        # Every writer has its store open before any writes, so the writes overlap.
        async with asyncio.timeout(120):
            while await asyncio.to_thread(_ready, tmp_path) < workers:
                assert all(p.returncode is None for p in processes), "a writer died starting"
                await asyncio.sleep(0.05)
        await asyncio.to_thread((tmp_path / "go").touch)
        async with asyncio.timeout(120):
            codes = [await p.wait() for p in processes]
    finally:
        for p in processes:
            if p.returncode is None:
                p.kill()
                await p.wait()
    assert codes == [0] * workers
    counts = await store.row_counts()
    # Every worker's conversations, and the shared messages once each despite three senders.
    assert counts["conversations"] == 1 + workers * 15
    assert counts["turns"] == workers * 15 * 3 + 10
    shared_turns = await store.recent_turns(shared, 100)
    assert sorted(t.external_id or "" for t in shared_turns) == [f"s{k}" for k in range(10)]


async def test_an_empty_database_is_created_at_the_current_version(
    store: ConversationStore, store_config: LogConfig
) -> None:
    if store_config.scheme == "sqlite":
        assert await raw(store_config, "PRAGMA user_version") == [(schema.SCHEMA_VERSION,)]
    else:
        versions = await raw(store_config, "SELECT version FROM log_schema_version ORDER BY 1")
        assert versions == [(n,) for n in range(1, pg_schema.SCHEMA_VERSION + 1)]
    tables = {table for table, _ in await columns(store_config)}
    assert {"conversations", "turns", "retrieved", "feedback", "handovers"} <= tables


# The last versions before decisions had reason codes: upgrading from them runs every later step.
BEFORE_CODES = {"sqlite": 2, "postgresql": 1}


async def previous_version(config: LogConfig) -> None:
    """Bring an empty database to the schema version before reason codes, with one turn."""
    if config.scheme == "sqlite":
        with closing(sqlite3.connect(config.sqlite_path, isolation_level=None)) as conn:
            schema.migrate(conn, schema.MIGRATIONS[: BEFORE_CODES["sqlite"]])
            conn.execute(
                "INSERT INTO conversations (id, channel, external_user_id, created_at, "
                "updated_at) VALUES (1, 'telegram', '3', 1.0, 1.0)"
            )
            conn.execute(
                "INSERT INTO turns (conversation_id, role, text, created_at, action, reason) "
                "VALUES (1, 'bot', 'old reply', 2.0, 'answer', 'confident: score 0.910')"
            )
        return
    import asyncpg

    conn = await asyncpg.connect(config.url)
    try:
        await pg_schema.migrate(conn, pg_schema.MIGRATIONS[: BEFORE_CODES["postgresql"]])
        if pg_schema.SCHEMA_VERSION > 1:
            conversation = await conn.fetchval(
                "INSERT INTO conversations (channel, external_user_id, created_at, updated_at) "
                "VALUES ('telegram', '3', 1.0, 1.0) RETURNING id"
            )
            await conn.execute(
                "INSERT INTO turns (conversation_id, role, text, created_at, action, reason) "
                "VALUES ($1, 'bot', 'old reply', 2.0, 'answer', 'confident: score 0.910')",
                conversation,
            )
    finally:
        await conn.close()


async def test_a_database_at_the_previous_version_is_migrated_and_keeps_its_rows(
    store_config: LogConfig,
) -> None:
    await previous_version(store_config)
    async with await open_store(store_config) as store:
        exported = [c async for c in store.export_conversations()]
        if store_config.scheme == "sqlite" or pg_schema.SCHEMA_VERSION > 1:
            (conversation,) = exported
            (turn,) = conversation.turns
            assert (turn.text, turn.action) == ("old reply", "answer")
            # The old free-text decision was read into its code once, by the migration.
            assert (turn.reason_code, turn.reason) == ("confident", "confident: score 0.910")
        else:
            assert exported == []
        fresh = await store.start_conversation("telegram", "new")
        assert await store.add_turn(
            fresh, "customer", "x", external_id="e"
        ) == await store.add_turn(fresh, "customer", "x", external_id="e")


async def test_a_database_newer_than_the_code_is_refused(store_config: LogConfig) -> None:
    async with await open_store(store_config):
        pass
    if store_config.scheme == "sqlite":
        with closing(sqlite3.connect(store_config.sqlite_path)) as conn:
            conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    else:
        import asyncpg

        conn = await asyncpg.connect(store_config.url)
        try:
            await conn.execute(
                "INSERT INTO log_schema_version (version) VALUES ($1)",
                pg_schema.SCHEMA_VERSION + 1,
            )
        finally:
            await conn.close()
    with pytest.raises(RuntimeError, match=r"newer than this code knows.*upgrade supportbot"):
        await open_store(store_config)


async def test_an_unknown_database_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown database 'mysql'.*postgresql.*sqlite"):
        await open_store(LogConfig(url="mysql://localhost/db"))


async def test_exports_for_training_are_the_same_from_every_store(
    store: ConversationStore,
) -> None:
    c = await store.start_conversation("telegram", "a")
    await store.add_turn(
        c,
        "customer",
        "how do refunds work",
        sentiment_label="neutral",
        sentiment_score=0.0,
        models={"sentiment": "lexicon"},
    )
    options = [Retrieved("refund-time", 0.71), Retrieved("refund-method", 0.7)]
    await store.add_turn(
        c, "bot", "Which one?", action="clarify", reason_code="ambiguous", retrieved=options
    )
    await store.add_turn(c, "customer", "2")
    answer = await store.add_turn(
        c,
        "bot",
        "To your card.",
        action="answer",
        reason="clarify choice: option 2",
        reason_code="clarify_choice",
        retrieved=[Retrieved("refund-method", 0.7)],
    )
    await store.add_feedback(answer, 1)
    angry = await store.add_turn(
        c, "customer", "this is useless", sentiment_label="negative", sentiment_score=-0.8
    )
    await store.add_turn(
        c, "bot", "A colleague will help.", action="handoff", reason_code="negative_sentiment"
    )
    handover = await store.open_handover(c, "negative_sentiment")
    await store.add_turn(c, "customer", "hello?")
    reply = await store.add_turn(c, "operator", "Refunds take five days.")
    await store.close_handover(handover, operator_id="op")
    await store.add_turn(c, "customer", "thanks")

    exports = await export_all(store, context_turns=3)
    assert [
        (p.question, p.faq_id, p.feedback, p.conversation_id) for p in exports.answer_pairs
    ] == [("how do refunds work", "refund-method", 1, c)]
    assert [(e.role, e.reply, e.handed_over) for e in exports.dialogue_examples] == [
        ("bot", "Which one?", False),
        ("bot", "To your card.", False),
        ("bot", "A colleague will help.", True),
        ("operator", "Refunds take five days.", False),
    ]
    assert [(s.text, s.label, s.escalated) for s in exports.sentiment_labels] == [
        ("how do refunds work", "neutral", False),
        ("this is useless", "negative", True),
    ]
    (exchange,) = exports.handover_exchanges
    assert (
        exchange.handover.id == handover and exchange.handover.reason_code == "negative_sentiment"
    )
    assert [t.text for t in exchange.answers] == ["Refunds take five days."]
    assert [t.id for t in exchange.answers] == [reply]
    assert [t.text for t in exchange.questions] == [
        "how do refunds work",
        "2",
        "this is useless",
        "hello?",
    ]
    assert exchange.questions[2].id == angry

    summary = await build_report(store)
    assert (summary.answered, summary.clarified, summary.handed_over, summary.handovers) == (
        1,
        1,
        1,
        1,
    )
    assert summary.reasons == (("clarify_choice", 1), ("ambiguous", 1), ("negative_sentiment", 1))
    assert summary.resolution_rate == 0.0  # the one conversation was handed over
    with pytest.raises(ValueError, match="reason_code 'maybe' needs role 'bot'"):
        await store.add_turn(c, "bot", "x", reason_code="maybe")  # type: ignore[arg-type]


async def test_the_engine_logs_its_replies_the_same_way_in_every_store(
    store: ConversationStore, sample_kb: KnowledgeBase
) -> None:
    engine = Engine(sample_kb, ExtractiveGenerator(), LexiconSentiment(), store, EngineConfig())
    conversation = await engine.conversation("telegram", "42")

    async def say(text: str, external_id: str) -> FinalReply:
        events = [e async for e in engine.reply(conversation, text, external_id=external_id)]
        final = events[-1]
        assert isinstance(final, FinalReply)
        return final

    answered = await say("how long does delivery take?", "m1")
    again = await say("how long does delivery take?", "m1")  # the update came twice
    human = await say("I want to talk to a real person", "m2")
    assert (answered.action, answered.reason_code) == ("answer", "confident")
    assert again.turn_id == answered.turn_id
    assert (human.action, human.reason_code) == ("handoff", "human_requested")

    found = await store.get_conversation(conversation)
    assert found is not None
    assert [(t.role, t.reason_code) for t in found.turns] == [
        ("customer", None),
        ("bot", "confident"),
        ("customer", None),
        ("bot", "human_requested"),
    ]
    (handover,) = found.handovers
    assert handover.reason_code == "human_requested" and handover.closed_at is None


async def test_a_reply_in_the_current_conversation_finds_it_as_conversation_does(
    store: ConversationStore, sample_kb: KnowledgeBase
) -> None:
    engine = Engine(sample_kb, ExtractiveGenerator(), LexiconSentiment(), store, EngineConfig())

    async def say(text: str, external_id: str) -> FinalReply:
        replying = engine.reply_in_current("telegram", "42", text, external_id=external_id)
        events = [e async for e in replying]
        final = events[-1]
        assert isinstance(final, FinalReply)
        return final

    first = await say("how long does delivery take?", "m1")  # none yet: one is started
    assert first.conversation_id == await engine.conversation("telegram", "42")
    again = await say("how long does delivery take?", "m1")  # the update came twice
    assert (again.conversation_id, again.turn_id) == (first.conversation_id, first.turn_id)
    newer = await engine.conversation("telegram", "42", new=True)  # /start
    await store.close_conversation(newer)
    later = await say("how long does delivery take?", "m2")
    assert later.conversation_id == newer == await engine.conversation("telegram", "42")
    found = await store.get_conversation(first.conversation_id)
    assert found is not None and [t.role for t in found.turns] == ["customer", "bot"]
