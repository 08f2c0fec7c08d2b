"""The conversation log in PostgreSQL (asyncpg): for several bot processes on one database.

asyncpg over psycopg 3: it speaks PostgreSQL's binary protocol directly (no libpq), keeps a
connection pool with prepared-statement caches per connection, and is the faster of the two on
the small, many, short queries the log makes. It is imported only here (the postgres extra).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self

try:
    import asyncpg
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the PostgreSQL conversation log needs asyncpg: pip install 'supportbot[postgres]'"
    ) from exc

from engine.log import activity as activity_sql
from engine.log.activity import Activity, ActivityMark, activity_from_rows
from engine.log.config import LogConfig
from engine.log.pg_queries import (
    CONVERSATION_COLUMNS,
    HANDOVER_COLUMNS,
    OF_CUSTOMER,
    SELECT_TURNS,
    TABLES,
    TURN_COLUMNS,
    TURN_FIELDS,
    VACUUM,
    dsn,
    init_connection,
    placeholders,
    public_url,
    select_conversations,
    sequence_name,
    snapshot,
    upsert_conversations,
    with_hits,
)
from engine.log.pg_schema import migrate
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
from engine.log.summary import (
    CONVERSATIONS,
    FEEDBACK,
    HANDOVERS,
    LATENCIES_POSTGRES,
    OUTCOMES,
    QUESTIONS,
    RATINGS,
    TURN_COUNTS,
    LogSummary,
    Period,
    postgres_parameters,
    postgres_sql,
    summary_from_rows,
)

log = logging.getLogger(__name__)


class PostgresConversationLog:
    """The log in a PostgreSQL database, shared by any number of processes.

    Create it with `await PostgresConversationLog.open(config)`; every write is its own
    transaction and returns once committed.
    """

    def __init__(self, pool: Any, config: LogConfig) -> None:
        self._pool = pool
        self._config = config

    @classmethod
    async def open(cls, config: LogConfig) -> PostgresConversationLog:
        """Connect to `config.url`, creating or migrating the log's tables."""
        try:
            pool = await asyncpg.create_pool(
                dsn(config.url), min_size=1, max_size=config.pool_max, init=init_connection
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise RuntimeError(
                f"cannot reach the conversation log at {public_url(config.url)} ({exc}); "
                "check [log] url and that PostgreSQL is running"
            ) from exc
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
        except BaseException:
            await pool.close()
            raise
        log.info(
            "conversation log open url=%s redact=%s", public_url(config.url), config.redact_pii
        )
        return cls(pool, config)

    @property
    def url(self) -> str:
        """The database URL without its password."""
        return public_url(self._config.url)

    async def close(self) -> None:
        """Close the pool's connections (each write has already committed)."""
        await self._pool.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # Writes.

    async def start_conversation(
        self, channel: str, external_user_id: str, *, language: str | None = None
    ) -> int:
        """Start a new conversation for a customer on a channel."""
        now = time.time()
        found: int = await self._pool.fetchval(
            "INSERT INTO conversations (channel, external_user_id, language, created_at, "
            "updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING id",
            channel,
            external_user_id,
            language,
            now,
        )
        return found

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
        """Store one message; a repeated (conversation, role, external_id) returns the first."""
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
        now = time.time()
        row = (
            conversation_id,
            role,
            text,
            now,
            action,
            reason,
            sentiment_label,
            sentiment_score,
            kb_version,
            dict(models or {}),
            dict(latencies_ms or {}),
            delivery,
            external_id,
            reason_code,
        )
        async with self._pool.acquire() as conn, conn.transaction():
            try:
                turn_id = await conn.fetchval(
                    f"INSERT INTO turns ({TURN_FIELDS}) VALUES ({placeholders(14)}) "
                    "ON CONFLICT (conversation_id, role, external_id) "
                    "WHERE external_id IS NOT NULL DO NOTHING RETURNING id",
                    *row,
                )
            except asyncpg.ForeignKeyViolationError as exc:
                raise ValueError(
                    f"no conversation {conversation_id} in the log (erased, or never started); "
                    "start one with start_conversation()"
                ) from exc
            if turn_id is None:  # the channel delivered this message before
                existing: int = await conn.fetchval(
                    "SELECT id FROM turns WHERE conversation_id = $1 AND role = $2 "
                    "AND external_id = $3",
                    conversation_id,
                    role,
                    external_id,
                )
                return existing
            if retrieved:
                await conn.executemany(
                    "INSERT INTO retrieved (turn_id, rank, faq_id, score) VALUES ($1, $2, $3, $4)",
                    [(turn_id, rank, h.faq_id, h.score) for rank, h in enumerate(retrieved, 1)],
                )
            await conn.execute(
                "UPDATE conversations SET updated_at = greatest(updated_at, $1) WHERE id = $2",
                now,
                conversation_id,
            )
        added: int = turn_id
        return added

    async def set_delivery(self, turn_id: int, delivery: Delivery) -> None:
        """Record whether a turn reached the customer."""
        check_delivery(delivery)
        status = await self._pool.execute(
            "UPDATE turns SET delivery = $1 WHERE id = $2", delivery, turn_id
        )
        if status == "UPDATE 0":
            raise ValueError(f"no turn {turn_id} in the log; use the id add_turn returned")

    async def claim_delivery(self, turn_id: int, *, stale_after_s: float) -> bool:
        """Take a "pending" turn for sending; False when it is not pending or another sender
        holds it. A claim older than `stale_after_s` (its sender died) may be taken again.

        One UPDATE with its condition: PostgreSQL re-checks the row after a concurrent update,
        so of several processes claiming at once exactly one gets the turn.
        """
        now = time.time()
        status = await self._pool.execute(
            "UPDATE turns SET delivery_claimed_at = $1 WHERE id = $2 AND delivery = 'pending' "
            "AND (delivery_claimed_at IS NULL OR delivery_claimed_at < $3)",
            now,
            turn_id,
            now - stale_after_s,
        )
        return bool(status == "UPDATE 1")

    async def release_delivery(self, turn_id: int) -> None:
        """Give up a claim on a turn not sent (Telegram unreachable): the next pass retries."""
        await self._pool.execute(
            "UPDATE turns SET delivery_claimed_at = NULL WHERE id = $1 AND delivery = 'pending'",
            turn_id,
        )

    async def close_conversation(self, conversation_id: int) -> None:
        """Mark a conversation finished; once only."""
        status = await self._pool.execute(
            "UPDATE conversations SET closed_at = coalesce(closed_at, $1) WHERE id = $2",
            time.time(),
            conversation_id,
        )
        if status == "UPDATE 0":
            raise ValueError(f"no conversation {conversation_id} in the log")

    async def add_feedback(self, turn_id: int, value: Literal[1, -1]) -> None:
        """A customer's thumbs up or down on a reply; a second vote replaces the first."""
        check_feedback(value)
        async with self._pool.acquire() as conn, conn.transaction():
            role = await conn.fetchval("SELECT role FROM turns WHERE id = $1", turn_id)
            if role is None:
                raise ValueError(f"no turn {turn_id} in the log; use the id add_turn returned")
            if role == "customer":
                raise ValueError(f"turn {turn_id} is the customer's own; feedback rates replies")
            await conn.execute(
                "INSERT INTO feedback (turn_id, value, created_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (turn_id) DO UPDATE SET value = excluded.value, "
                "created_at = excluded.created_at",
                turn_id,
                value,
                time.time(),
            )

    async def open_handover(
        self,
        conversation_id: int,
        reason: str,
        *,
        topic_id: int | None = None,
        reason_code: ReasonCode | None = None,
    ) -> int:
        """Record that a conversation went to a human operator; returns the handover id."""
        code = handover_code(reason, reason_code)
        try:
            found: int = await self._pool.fetchval(
                "INSERT INTO handovers (conversation_id, reason, opened_at, topic_id, reason_code) "
                "VALUES ($1, $2, $3, $4, $5) RETURNING id",
                conversation_id,
                reason,
                time.time(),
                topic_id,
                code,
            )
        except asyncpg.ForeignKeyViolationError as exc:
            raise ValueError(f"no conversation {conversation_id} in the log") from exc
        return found

    async def close_handover(self, handover_id: int, *, operator_id: str | None = None) -> bool:
        """Mark a handover closed, noting its operator; True for the call that closed it, False
        when it was closed already (a racing close waits on the row lock, then sees it closed)."""
        status = await self._pool.execute(
            "UPDATE handovers SET closed_at = $1, operator_id = coalesce($2, operator_id) "
            "WHERE id = $3 AND closed_at IS NULL",
            time.time(),
            operator_id,
            handover_id,
        )
        if status == "UPDATE 1":
            return True
        if await self._pool.fetchval("SELECT 1 FROM handovers WHERE id = $1", handover_id) is None:
            raise ValueError(f"no handover {handover_id}; use the id open_handover returned")
        return False

    async def assign_handover(
        self, handover_id: int, assignee: str, *, take_over: bool = True, announced: bool = False
    ) -> str | None:
        """Give an open handover to an operator; returns who holds it now (None: not open).

        With `take_over` off a handover that has an operator keeps it (a first reply takes it).
        `announced`: the operator desk's topic knows already (it was taken there)."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE handovers SET assignee = $1, assigned_at = $2, "
                "announced_assignee = CASE WHEN $3 THEN $1 ELSE announced_assignee END "
                "WHERE id = $4 AND closed_at IS NULL AND ($5 OR assignee IS NULL) "
                "AND assignee IS DISTINCT FROM $1",
                assignee,
                time.time(),
                announced,
                handover_id,
                take_over,
            )
            holder: str | None = await conn.fetchval(
                "SELECT assignee FROM handovers WHERE id = $1 AND closed_at IS NULL", handover_id
            )
        return holder

    async def claim_assignment_notice(self, handover_id: int, assignee: str) -> bool:
        """Whether the caller is the one to announce `assignee` in the handover's forum topic:
        true once per change of holder, for one of several processes asking."""
        status = await self._pool.execute(
            "UPDATE handovers SET announced_assignee = $1 WHERE id = $2 AND assignee = $1 "
            "AND announced_assignee IS DISTINCT FROM $1",
            assignee,
            handover_id,
        )
        return bool(status == "UPDATE 1")

    async def ask_rating(self, handover_id: int, *, at: float | None = None) -> None:
        """Note that the customer was asked to rate a handover (the first time counts), now or
        `at` (Unix seconds, for state brought over from elsewhere)."""
        status = await self._pool.execute(
            "UPDATE handovers SET rating_asked_at = coalesce(rating_asked_at, $1) WHERE id = $2",
            time.time() if at is None else at,
            handover_id,
        )
        if status == "UPDATE 0":
            raise ValueError(f"no handover {handover_id}; use the id open_handover returned")

    async def rate_handover(self, handover_id: int, score: int, *, at: float | None = None) -> bool:
        """Store the customer's rating (1-5) of a handover they were asked to rate; False when
        it was not asked for or is rated already (the first answer counts). Dated now or `at`."""
        check_rating(score)
        status = await self._pool.execute(
            "UPDATE handovers SET rating = $1, rated_at = $2 WHERE id = $3 AND rating IS NULL "
            "AND rating_asked_at IS NOT NULL",
            score,
            time.time() if at is None else at,
            handover_id,
        )
        return bool(status == "UPDATE 1")

    async def assign_topic(self, handover_id: int, topic_id: int) -> None:
        """Note the operator-desk forum topic that carries a handover."""
        status = await self._pool.execute(
            "UPDATE handovers SET topic_id = $1 WHERE id = $2", topic_id, handover_id
        )
        if status == "UPDATE 0":
            raise ValueError(f"no handover {handover_id}; use the id open_handover returned")

    async def erase_customer(self, channel: str, external_user_id: str) -> int:
        """Delete every trace of a customer, then VACUUM so the dead rows leave the tables.

        Returns how many conversations were erased; later writes to them fail. Rows stay in
        PostgreSQL's write-ahead log and in backups until those are recycled.
        """
        customer = (channel, external_user_id)
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                of_turns = f"SELECT id FROM turns WHERE conversation_id IN ({OF_CUSTOMER})"
                for table, where in (
                    ("feedback", f"turn_id IN ({of_turns})"),
                    ("retrieved", f"turn_id IN ({of_turns})"),
                    ("turns", f"conversation_id IN ({OF_CUSTOMER})"),
                    ("handovers", f"conversation_id IN ({OF_CUSTOMER})"),
                ):
                    await conn.execute(f"DELETE FROM {table} WHERE {where}", *customer)
                status = await conn.execute(
                    "DELETE FROM conversations WHERE channel = $1 AND external_user_id = $2",
                    *customer,
                )
            # Outside any transaction: VACUUM removes the deleted row versions from the heap
            # and the indexes instead of leaving them until autovacuum comes round.
            await conn.execute(VACUUM)
        erased = int(status.split()[-1])
        log.info("erased customer channel=%s conversations=%d", channel, erased)
        return erased

    # Reads.

    async def recent_turns(self, conversation_id: int, limit: int = 10) -> list[Turn]:
        """The last `limit` turns of a conversation, oldest first."""
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, got {limit}")
        if limit == 0:
            return []
        async with self._pool.acquire() as conn, snapshot(conn):
            rows = await conn.fetch(
                f"{SELECT_TURNS} WHERE t.conversation_id = $1 ORDER BY t.id DESC LIMIT $2",
                conversation_id,
                limit,
            )
            rows.reverse()
            return await with_hits(conn, rows)

    async def latest_turns(
        self, channel: str, external_user_id: str, limit: int = 10
    ) -> tuple[int | None, list[Turn]]:
        """The customer's most recent conversation on a channel (as `latest_conversation_id`)
        and its last `limit` turns, oldest first, in one snapshot; (None, []) when none."""
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, got {limit}")
        async with self._pool.acquire() as conn, snapshot(conn):
            found: int | None = await conn.fetchval(
                "SELECT max(id) FROM conversations WHERE channel = $1 AND external_user_id = $2",
                channel,
                external_user_id,
            )
            if found is None or limit == 0:
                return found, []
            rows = await conn.fetch(
                f"{SELECT_TURNS} WHERE t.conversation_id = $1 ORDER BY t.id DESC LIMIT $2",
                found,
                limit,
            )
            rows.reverse()
            return found, await with_hits(conn, rows)

    async def get_conversation(self, conversation_id: int) -> Conversation | None:
        """A conversation with its turns and handovers, or None."""
        async with self._pool.acquire() as conn, snapshot(conn):
            found = await select_conversations(
                conn, "c.id = $1 ORDER BY c.id", "t.conversation_id = $1", conversation_id
            )
        return found[0] if found else None

    async def get_turn(self, turn_id: int) -> Turn | None:
        """One turn, or None."""
        async with self._pool.acquire() as conn, snapshot(conn):
            rows = await conn.fetch(f"{SELECT_TURNS} WHERE t.id = $1", turn_id)
            turns = await with_hits(conn, rows)
        return turns[0] if turns else None

    async def list_conversations(
        self, channel: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[ConversationSummary]:
        """Conversations, most recently active first, a page at a time."""
        check_page(limit, offset)
        rows = await self._pool.fetch(
            f"SELECT {CONVERSATION_COLUMNS}, "
            "(SELECT count(*) FROM turns t WHERE t.conversation_id = c.id), "
            "EXISTS (SELECT 1 FROM handovers h WHERE h.conversation_id = c.id "
            "AND h.closed_at IS NULL) FROM conversations c "
            "WHERE $1::text IS NULL OR c.channel = $1 "
            "ORDER BY c.updated_at DESC, c.id DESC LIMIT $2 OFFSET $3",
            channel,
            limit,
            offset,
        )
        return [ConversationSummary(*row) for row in rows]

    async def undelivered_turns(self, channel: str) -> list[tuple[str, Turn]]:
        """Turns still "pending" delivery on a channel, oldest first, with their customers."""
        async with self._pool.acquire() as conn, snapshot(conn):
            rows = await conn.fetch(
                f"SELECT c.external_user_id, {TURN_COLUMNS} FROM turns t "
                "JOIN conversations c ON c.id = t.conversation_id "
                "LEFT JOIN feedback f ON f.turn_id = t.id "
                "WHERE c.channel = $1 AND t.delivery = 'pending' ORDER BY t.id",
                channel,
            )
            turns = await with_hits(conn, [row[1:] for row in rows])
        return [(str(row[0]), turn) for row, turn in zip(rows, turns, strict=True)]

    async def latest_conversation_id(self, channel: str, external_user_id: str) -> int | None:
        """The customer's most recent conversation on a channel, if any."""
        found: int | None = await self._pool.fetchval(
            "SELECT max(id) FROM conversations WHERE channel = $1 AND external_user_id = $2",
            channel,
            external_user_id,
        )
        return found

    async def open_conversation_id(self, channel: str, external_user_id: str) -> int | None:
        """The customer's most recent conversation on a channel unless it was closed (then, or
        with none, None): one indexed row, no turns read."""
        row = await self._pool.fetchrow(
            "SELECT id, closed_at FROM conversations WHERE channel = $1 "
            "AND external_user_id = $2 ORDER BY id DESC LIMIT 1",
            channel,
            external_user_id,
        )
        if row is None or row["closed_at"] is not None:
            return None
        found: int = row["id"]
        return found

    # Hand-overs and topics.

    async def open_handover_for(self, conversation_id: int) -> Handover | None:
        """The conversation's open handover, if any."""
        return await self._open_handover("conversation_id", conversation_id)

    async def awaiting_rating(self, conversation_id: int, *, since: float) -> Handover | None:
        """The conversation's newest handover when it is closed and its rating, asked for at
        `since` or later, is not given yet; else None."""
        row = await self._pool.fetchrow(
            f"SELECT {HANDOVER_COLUMNS} FROM handovers WHERE conversation_id = $1 "
            "ORDER BY id DESC LIMIT 1",
            conversation_id,
        )
        newest = Handover(*row) if row is not None else None
        return newest if awaits_rating(newest, since) else None

    async def handover_ratings(self, since: float | None = None) -> list[int]:
        """The customers' ratings of handovers (CSAT), rated at `since` or later."""
        rows = await self._pool.fetch(
            "SELECT rating FROM handovers WHERE rating IS NOT NULL "
            "AND ($1::double precision IS NULL OR rated_at >= $1) ORDER BY id",
            since,
        )
        return [int(row[0]) for row in rows]

    async def handover_for_topic(self, topic_id: int) -> Handover | None:
        """The open handover a forum topic belongs to, if any."""
        return await self._open_handover("topic_id", topic_id)

    async def latest_topic(self, channel: str, external_user_id: str) -> int | None:
        """The forum topic of the customer's newest handover that had one."""
        found = await self._pool.fetchval(
            f"SELECT topic_id FROM handovers WHERE conversation_id IN ({OF_CUSTOMER}) "
            "AND topic_id IS NOT NULL ORDER BY id DESC LIMIT 1",
            channel,
            external_user_id,
        )
        return None if found is None else int(found)

    async def open_handovers(self, channel: str) -> list[tuple[str, Handover]]:
        """Every open handover on a channel, oldest first, with its customer."""
        columns = ", ".join(f"h.{c}" for c in HANDOVER_COLUMNS.split(", "))
        rows = await self._pool.fetch(
            f"SELECT c.external_user_id, {columns} FROM handovers h "
            "JOIN conversations c ON c.id = h.conversation_id "
            "WHERE c.channel = $1 AND h.closed_at IS NULL ORDER BY h.id",
            channel,
        )
        return [(str(row[0]), Handover(*row[1:])) for row in rows]

    async def _open_handover(
        self, column: Literal["conversation_id", "topic_id"], value: int
    ) -> Handover | None:
        row = await self._pool.fetchrow(
            f"SELECT {HANDOVER_COLUMNS} FROM handovers WHERE {column} = $1 "
            "AND closed_at IS NULL ORDER BY id DESC LIMIT 1",
            value,
        )
        return Handover(*row) if row is not None else None

    # Exports.

    async def export_conversations(
        self, *, batch_size: int = 500
    ) -> AsyncGenerator[Conversation, None]:
        """Every conversation in id order, with its turns, hits, feedback and handovers."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        after = 0
        while True:
            async with self._pool.acquire() as conn, snapshot(conn):
                ids = [
                    row[0]
                    for row in await conn.fetch(
                        "SELECT id FROM conversations WHERE id > $1 ORDER BY id LIMIT $2",
                        after,
                        batch_size,
                    )
                ]
                if not ids:
                    return
                batch = await select_conversations(
                    conn,
                    "c.id BETWEEN $1 AND $2 ORDER BY c.id",
                    "t.conversation_id BETWEEN $1 AND $2",
                    ids[0],
                    ids[-1],
                )
            for conversation in batch:
                yield conversation
            after = ids[-1]

    async def row_counts(self) -> dict[str, int]:
        """Rows per table, counted in one snapshot."""
        async with self._pool.acquire() as conn, snapshot(conn):
            return {
                table: int(await conn.fetchval(f"SELECT count(*) FROM {table}")) for table in TABLES
            }

    async def summarise(self, period: Period) -> LogSummary:
        """The aggregates analytics shows for a period, computed by PostgreSQL in one snapshot."""
        values = postgres_parameters(period)
        async with self._pool.acquire() as conn, snapshot(conn):
            rows = [
                await conn.fetch(postgres_sql(sql), *values)
                for sql in (
                    OUTCOMES,
                    HANDOVERS,
                    FEEDBACK,
                    LATENCIES_POSTGRES,
                    QUESTIONS,
                    CONVERSATIONS,
                    TURN_COUNTS,
                    RATINGS,
                )
            ]
        return summary_from_rows(*rows)

    async def activity(self, after: ActivityMark | None = None) -> Activity:
        """New turns and hand-overs since `after`, and the new mark (the current one for None)."""
        async with self._pool.acquire() as conn, snapshot(conn):
            if after is None:
                mark = await conn.fetchrow(activity_sql.MARK)
                last = await conn.fetchrow(activity_sql.LAST_CHANGE)
                return Activity(ActivityMark(int(mark[0]), int(mark[1]), max(last)))
            turns = await conn.fetch(activity_sql.NEW_TURNS.replace("?", "$1"), after.turn_id)
            handovers = await conn.fetch(
                activity_sql.NEW_HANDOVERS.replace("?", "$1"), after.handover_id
            )
            changed = await conn.fetch(
                activity_sql.CHANGED_HANDOVERS.replace("?", "$1"), after.changed_at
            )
        return activity_from_rows(after, turns, handovers, changed)

    async def restore(self, conversations: Sequence[Conversation]) -> None:
        """Write exported conversations with their ids in one transaction, replacing rows with
        the same ids; text is stored as given."""
        async with self._pool.acquire() as conn, conn.transaction():
            await upsert_conversations(conn, conversations)
            for table in ("conversations", "turns", "handovers"):
                # Ids written explicitly do not move the sequence: move it past them.
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), m) "
                    f"FROM (SELECT max(id) AS m FROM {table}) s "
                    f"WHERE m > (SELECT last_value FROM {sequence_name(table)})"
                )
