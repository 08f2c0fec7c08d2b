"""The conversation log: an SQLite file with one batching writer and a separate reader."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Literal, Self, TypeVar

from engine.log import activity as activity_sql
from engine.log import queries
from engine.log.activity import Activity, ActivityMark, activity_from_rows
from engine.log.config import LogConfig
from engine.log.connection import Connection, LogConnection, Query
from engine.log.records import (
    Action,
    Conversation,
    ConversationSummary,
    Delivery,
    Handover,
    ReasonCode,
    Retrieved,
    Role,
    Turn,
)
from engine.log.rules import (
    awaits_rating,
    check_delivery,
    check_feedback,
    check_page,
    check_rating,
    checked_turn_text,
    handover_code,
)
from engine.log.schema import prepare_file
from engine.log.summary import (
    CONVERSATIONS,
    FEEDBACK,
    HANDOVERS,
    LATENCIES_SQLITE,
    OUTCOMES,
    QUESTIONS,
    RATINGS,
    TURN_COUNTS,
    LogSummary,
    Period,
    period_parameters,
    summary_from_rows,
)
from engine.log.writer import BatchWriter

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# synchronous=FULL syncs the WAL at every commit, so an acknowledged write survives a power cut,
# not only a crash of the process; batching pays that fsync once per batch instead of per write.
# secure_delete zeroes deleted rows, so erased text does not linger in free pages.
_WRITER_PRAGMAS = (
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA secure_delete = ON",
    "PRAGMA busy_timeout = 5000",
)
_READER_PRAGMAS = ("PRAGMA query_only = ON", "PRAGMA busy_timeout = 5000")


class ConversationLog:
    """The log in an SQLite file: records conversations, turns, feedback and handovers.

    Create it with `await ConversationLog.open(...)` and end with `await log.close()` (or use
    `async with`). Every write method returns once its row is committed to disk.
    """

    def __init__(
        self,
        path: Path,
        config: LogConfig,
        writer: LogConnection,
        reader: LogConnection,
    ) -> None:
        self.path = path
        self._config = config
        self._writer_conn = writer
        self._reader = reader
        self._writer = BatchWriter(
            writer, batch_max=config.batch_max, wait_s=config.batch_wait_ms / 1000
        )
        self._read_lock = asyncio.Lock()

    @classmethod
    async def open(
        cls,
        path: Path | str | None = None,
        config: LogConfig | None = None,
        *,
        create: bool = True,
    ) -> ConversationLog:
        """Open the log at `path` (default: the config's file), creating or migrating it.

        With `create=False` a missing file is a FileNotFoundError.
        """
        config = config or LogConfig()
        path = Path(path) if path is not None else config.sqlite_path
        await asyncio.to_thread(prepare_file, path, create=create)
        writer = await _connect(path, _WRITER_PRAGMAS)
        try:
            reader = await _connect(path, _READER_PRAGMAS)
        except BaseException:
            await writer.close()
            raise
        log.info("conversation log open path=%s redact=%s", path, config.redact_pii)
        return cls(path, config, writer, reader)

    @property
    def url(self) -> str:
        """The log file as an `sqlite:///` URL."""
        return f"sqlite:///{self.path}"

    async def close(self) -> None:
        """Commit every write queued so far, then close the file."""
        try:
            await self._writer.close()
        finally:
            await self._reader.close()
            await self._writer_conn.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # Writes: each runs inside the writer task's transaction and returns once committed.

    async def start_conversation(
        self, channel: str, external_user_id: str, *, language: str | None = None
    ) -> int:
        """Start a new conversation for a customer on a channel ("telegram", "terminal")."""
        now = time.time()
        return await self._writer.submit(
            lambda conn: queries.insert_conversation(conn, channel, external_user_id, language, now)
        )

    async def add_turn(
        self,
        conversation_id: int,
        role: Role,
        text: str,
        *,
        action: Action | None = None,
        reason: str | None = None,
        reason_code: ReasonCode | None = None,
        sentiment_label: str | None = None,
        sentiment_score: float | None = None,
        kb_version: str | None = None,
        models: Mapping[str, str] | None = None,
        latencies_ms: Mapping[str, float] | None = None,
        retrieved: Sequence[Retrieved] = (),
        delivery: Delivery | None = None,
        external_id: str | None = None,
    ) -> int:
        """Store one message and what the bot retrieved for it; returns the turn id.

        The text is redacted first unless the config turned that off. `action` and `reason_code`
        are for bot turns.
        `delivery` starts a reply's delivery state ("pending" until the channel confirms it).
        `external_id` is the channel's id of the message: when the conversation already has a
        turn of this role with that id (the channel delivered the message again after a crash),
        nothing is written and the existing turn's id is returned.
        """
        text = checked_turn_text(
            self._config,
            role,
            text,
            action=action,
            sentiment_label=sentiment_label,
            sentiment_score=sentiment_score,
            delivery=delivery,
            reason_code=reason_code,
        )
        row = (
            conversation_id,
            role,
            text,
            time.time(),
            action,
            reason,
            sentiment_label,
            sentiment_score,
            kb_version,
            json.dumps(dict(models or {}), sort_keys=True),
            json.dumps(dict(latencies_ms or {}), sort_keys=True),
            delivery,
            external_id,
            reason_code,
        )
        hits = [(hit.faq_id, hit.score) for hit in retrieved]
        return await self._writer.submit(lambda conn: queries.insert_turn(conn, row, hits))

    async def set_delivery(self, turn_id: int, delivery: Delivery) -> None:
        """Record whether a turn reached the customer ("delivered") or gave up ("undelivered")."""
        check_delivery(delivery)
        await self._writer.submit(lambda conn: queries.update_delivery(conn, turn_id, delivery))

    async def claim_delivery(self, turn_id: int, *, stale_after_s: float) -> bool:
        """Take a "pending" turn for sending; False when it is not pending or another sender
        holds it. A claim older than `stale_after_s` (its sender died) may be taken again.

        The compare-and-set runs in the writer's transaction, which holds the file's write lock,
        so of several processes claiming at once exactly one gets the turn.
        """
        now = time.time()
        claimed: bool = await self._writer.submit(
            lambda conn: queries.claim_delivery(conn, turn_id, now, stale_after_s)
        )
        return claimed

    async def release_delivery(self, turn_id: int) -> None:
        """Give up a claim on a turn not sent (Telegram unreachable): the next pass retries."""
        await self._writer.submit(lambda conn: queries.release_delivery(conn, turn_id))

    async def close_conversation(self, conversation_id: int) -> None:
        """Mark a conversation finished (the customer or an operator ended it); once only."""
        now = time.time()
        await self._writer.submit(
            lambda conn: queries.close_conversation(conn, conversation_id, now)
        )

    async def add_feedback(self, turn_id: int, value: Literal[1, -1]) -> None:
        """Record a customer's thumbs up (+1) or down (-1) on a bot or operator turn.

        A second vote on the same turn replaces the first.
        """
        check_feedback(value)
        now = time.time()
        await self._writer.submit(lambda conn: queries.upsert_feedback(conn, turn_id, value, now))

    async def open_handover(
        self,
        conversation_id: int,
        reason: str,
        *,
        topic_id: int | None = None,
        reason_code: ReasonCode | None = None,
    ) -> int:
        """Record that a conversation went to a human operator; returns the handover id.

        Without `reason_code`, a `reason` that is itself a reason code is taken as the code.
        """
        code = handover_code(reason, reason_code)
        now = time.time()
        return await self._writer.submit(
            lambda conn: queries.insert_handover(conn, conversation_id, reason, topic_id, now, code)
        )

    async def close_handover(self, handover_id: int, *, operator_id: str | None = None) -> bool:
        """Mark a handover closed, noting the operator who handled it; True for the call that
        closed it, False when it was closed already (closing twice changes nothing)."""
        now = time.time()
        closed: bool = await self._writer.submit(
            lambda conn: queries.close_handover(conn, handover_id, operator_id, now)
        )
        return closed

    async def assign_handover(
        self, handover_id: int, assignee: str, *, take_over: bool = True, announced: bool = False
    ) -> str | None:
        """Give an open handover to an operator; returns who holds it now (None: not open).

        With `take_over` off a handover that has an operator keeps it (a first reply takes it).
        `announced`: the operator desk's topic knows already (it was taken there)."""
        now = time.time()
        return await self._writer.submit(
            lambda conn: queries.assign_handover(
                conn, handover_id, assignee, now, take_over, announced
            )
        )

    async def claim_assignment_notice(self, handover_id: int, assignee: str) -> bool:
        """Whether the caller is the one to announce `assignee` in the handover's forum topic:
        true once per change of holder, for one of several processes asking."""
        claimed: bool = await self._writer.submit(
            lambda conn: queries.claim_assignment_notice(conn, handover_id, assignee)
        )
        return claimed

    async def ask_rating(self, handover_id: int, *, at: float | None = None) -> None:
        """Note that the customer was asked to rate a handover (the first time counts), now or
        `at` (Unix seconds, for state brought over from elsewhere)."""
        now = time.time() if at is None else at
        await self._writer.submit(lambda conn: queries.ask_rating(conn, handover_id, now))

    async def rate_handover(self, handover_id: int, score: int, *, at: float | None = None) -> bool:
        """Store the customer's rating (1-5) of a handover they were asked to rate; False when
        it was not asked for or is rated already (the first answer counts). Dated now or `at`."""
        check_rating(score)
        now = time.time() if at is None else at
        rated: bool = await self._writer.submit(
            lambda conn: queries.rate_handover(conn, handover_id, score, now)
        )
        return rated

    async def assign_topic(self, handover_id: int, topic_id: int) -> None:
        """Note the operator-desk forum topic that carries a handover."""
        await self._writer.submit(
            lambda conn: queries.update_handover_topic(conn, handover_id, topic_id)
        )

    async def erase_customer(self, channel: str, external_user_id: str) -> int:
        """Delete every trace of a customer, then checkpoint so the text is gone from the files.

        Returns how many conversations were erased; later writes to them fail.
        """
        erased = await self._writer.submit(
            lambda conn: queries.delete_customer(conn, channel, external_user_id)
        )
        await self.checkpoint()
        log.info("erased customer channel=%s conversations=%d", channel, erased)
        return erased

    async def checkpoint(self) -> None:
        """Copy the WAL into the database file and truncate the WAL to zero bytes."""
        await self._writer.submit(
            lambda conn: queries.truncate_wal(conn, self.path), in_transaction=False
        )

    # Reads: on their own connection, so they never wait for the writer.

    async def recent_turns(self, conversation_id: int, limit: int = 10) -> list[Turn]:
        """The last `limit` turns of a conversation, oldest first: the dialogue memory."""
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, got {limit}")
        if limit == 0:
            return []
        async with self._read_lock:  # one round trip to the reader's thread, not one a query
            return await self._reader.run(
                lambda conn: _in_snapshot(
                    conn, lambda c: queries.select_turns(c, conversation_id, limit)
                )
            )

    async def latest_turns(
        self, channel: str, external_user_id: str, limit: int = 10
    ) -> tuple[int | None, list[Turn]]:
        """The customer's most recent conversation on a channel (as `latest_conversation_id`)
        and its last `limit` turns, oldest first, in one round trip to the reader's thread;
        (None, []) when there is none."""
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, got {limit}")
        async with self._read_lock:
            return await self._reader.run(
                lambda conn: _in_snapshot(
                    conn, lambda c: queries.select_latest_turns(c, channel, external_user_id, limit)
                )
            )

    async def get_conversation(self, conversation_id: int) -> Conversation | None:
        """A conversation with all its turns, or None if there is none with that id."""
        async with self._snapshot() as conn:
            return await queries.select_conversation(conn, conversation_id)

    async def get_turn(self, turn_id: int) -> Turn | None:
        """One turn with its hits, feedback and delivery state, or None."""
        async with self._snapshot() as conn:
            return await queries.select_turn(conn, turn_id)

    async def list_conversations(
        self, channel: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[ConversationSummary]:
        """Conversations (of one channel, or all), most recently active first, a page at a time."""
        check_page(limit, offset)
        async with self._snapshot() as conn:
            return await queries.select_conversation_summaries(conn, channel, limit, offset)

    async def undelivered_turns(self, channel: str) -> list[tuple[str, Turn]]:
        """Turns on a channel still "pending" delivery, oldest first, each with its customer's
        external id: what a restarted front end must still send (or apologise for)."""
        async with self._snapshot() as conn:
            return await queries.select_pending_turns(conn, channel)

    async def latest_conversation_id(self, channel: str, external_user_id: str) -> int | None:
        """The id of the customer's most recent conversation on a channel, if any."""
        async with self._snapshot() as conn:
            return await queries.select_latest_conversation_id(conn, channel, external_user_id)

    async def open_conversation_id(self, channel: str, external_user_id: str) -> int | None:
        """The customer's most recent conversation on a channel unless it was closed (then, or
        with none, None): one indexed row, no turns read."""
        async with self._snapshot() as conn:
            return await queries.select_open_conversation_id(conn, channel, external_user_id)

    async def open_handover_for(self, conversation_id: int) -> Handover | None:
        """The conversation's handover that is still open, if any."""
        async with self._snapshot() as conn:
            return await queries.select_open_handover(conn, "conversation_id", conversation_id)

    async def awaiting_rating(self, conversation_id: int, *, since: float) -> Handover | None:
        """The conversation's newest handover when it is closed and its rating, asked for at
        `since` or later, is not given yet; else None."""
        async with self._snapshot() as conn:
            newest = await queries.select_newest_handover(conn, conversation_id)
        return newest if awaits_rating(newest, since) else None

    async def handover_ratings(self, since: float | None = None) -> list[int]:
        """The customers' ratings of handovers (CSAT), rated at `since` or later."""
        async with self._snapshot() as conn:
            return await queries.select_ratings(conn, since)

    async def handover_for_topic(self, topic_id: int) -> Handover | None:
        """The open handover an operator-desk forum topic belongs to, if any."""
        async with self._snapshot() as conn:
            return await queries.select_open_handover(conn, "topic_id", topic_id)

    async def latest_topic(self, channel: str, external_user_id: str) -> int | None:
        """The forum topic of the customer's newest handover that had one, open or closed."""
        async with self._snapshot() as conn:
            return await queries.select_latest_topic(conn, channel, external_user_id)

    async def open_handovers(self, channel: str) -> list[tuple[str, Handover]]:
        """Every open handover on a channel, oldest first, with its customer's external id."""
        async with self._snapshot() as conn:
            return await queries.select_open_handover_customers(conn, channel)

    # Exports.

    async def export_conversations(
        self, *, batch_size: int = 500
    ) -> AsyncGenerator[Conversation, None]:
        """Every conversation in id order, with its turns, hits, feedback and handovers.

        Each batch is read in one snapshot; writes go on meanwhile.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        after = 0
        while True:
            async with self._snapshot() as conn:
                batch = await queries.select_conversations_after(conn, after, batch_size)
            if not batch:
                return
            for conversation in batch:
                yield conversation
            after = batch[-1].id

    async def row_counts(self) -> dict[str, int]:
        """Rows per table, counted in one snapshot."""
        async with self._snapshot() as conn:
            return await queries.count_rows(conn)

    async def summarise(self, period: Period) -> LogSummary:
        """The aggregates analytics shows for a period, computed by SQLite in one snapshot.

        On a connection of its own: the queries take a while on a large log, and the chat's
        reads on the shared reader must not wait for them (WAL lets readers run side by side).
        """
        named = period_parameters(period)
        conn = await _connect(self.path, _READER_PRAGMAS)
        try:
            await conn.execute("BEGIN")
            rows = [
                list(await conn.execute_fetchall(sql, named))
                for sql in (
                    OUTCOMES,
                    HANDOVERS,
                    FEEDBACK,
                    LATENCIES_SQLITE,
                    QUESTIONS,
                    CONVERSATIONS,
                    TURN_COUNTS,
                    RATINGS,
                )
            ]
            await conn.execute("COMMIT")
        finally:
            await conn.close()
        return summary_from_rows(*rows)

    async def activity(self, after: ActivityMark | None = None) -> Activity:
        """New turns and hand-overs since `after`, and the new mark (the current one for None)."""
        async with self._snapshot() as conn:
            if after is None:
                mark = next(iter(await conn.execute_fetchall(activity_sql.MARK)))
                last = next(iter(await conn.execute_fetchall(activity_sql.LAST_CHANGE)))
                return Activity(ActivityMark(int(mark[0]), int(mark[1]), max(last)))
            turns = list(await conn.execute_fetchall(activity_sql.NEW_TURNS, (after.turn_id,)))
            handovers = list(
                await conn.execute_fetchall(activity_sql.NEW_HANDOVERS, (after.handover_id,))
            )
            changed = list(
                await conn.execute_fetchall(
                    activity_sql.CHANGED_HANDOVERS, (after.changed_at, after.changed_at)
                )
            )
        return activity_from_rows(after, turns, handovers, changed)

    async def restore(self, conversations: Sequence[Conversation]) -> None:
        """Write exported conversations with their ids in one transaction, replacing rows with
        the same ids; text is stored as given."""
        batch = list(conversations)
        await self._writer.submit(lambda conn: queries.upsert_conversations(conn, batch))

    @asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[LogConnection]:
        # One read transaction, so a multi-query read sees a single committed state.
        async with self._read_lock:
            try:
                await self._reader.execute("BEGIN")
                yield self._reader
            finally:
                # Also after a cancelled BEGIN, which the reader's thread may have run all the same.
                await self._reader.call(_end_read)


def _end_read(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("COMMIT")


async def _connect(path: Path, pragmas: tuple[str, ...]) -> LogConnection:
    return await LogConnection.open(path, pragmas)


async def _in_snapshot(conn: Connection, read: Query[_T]) -> _T:
    """What `read` reads, in one transaction, so that it sees a single committed state."""
    await conn.execute("BEGIN")
    try:
        return await read(conn)
    finally:
        await conn.execute("COMMIT")
