"""The SQL behind ConversationLog: each function runs its statements on the connection given."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from engine.log.connection import Connection
from engine.log.records import Conversation, ConversationSummary, Handover, Retrieved, Turn

# The columns of a new turn, in the order insert_turn expects its row.
TURN_FIELDS = (
    "conversation_id, role, text, created_at, action, reason, "
    "sentiment_label, sentiment_score, kb_version, models, latencies_ms, delivery, external_id, "
    "reason_code"
)
_TURN_COLUMNS = (
    "t.id, t.conversation_id, t.role, t.text, t.created_at, t.action, t.reason, "
    "t.sentiment_label, t.sentiment_score, t.kb_version, t.models, t.latencies_ms, f.value, "
    "t.delivery, t.external_id, f.created_at, t.reason_code"
)
_CONVERSATION_COLUMNS = (
    "c.id, c.channel, c.external_user_id, c.language, c.created_at, c.updated_at, c.closed_at"
)
_HANDOVER_COLUMNS = (
    "id, conversation_id, reason, opened_at, closed_at, operator_id, topic_id, reason_code, "
    "assignee, assigned_at, rating_asked_at, rating, rated_at, announced_assignee"
)
# Every table of the log, parents first: the order a copy writes them in.
TABLES = ("conversations", "turns", "retrieved", "feedback", "handovers")
_OF_CUSTOMER = "SELECT id FROM conversations WHERE channel = ? AND external_user_id = ?"
_OF_TURNS = f"SELECT id FROM turns WHERE conversation_id IN ({_OF_CUSTOMER})"


async def insert_conversation(
    conn: Connection, channel: str, user_id: str, language: str | None, now: float
) -> int:
    """Add a conversation row; returns its id."""
    return await _insert(
        conn,
        "INSERT INTO conversations (channel, external_user_id, language, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (channel, user_id, language, now, now),
    )


async def insert_turn(
    conn: Connection, row: Sequence[Any], hits: Sequence[tuple[str, float]]
) -> int:
    """Add a turn (`row` in TURN_FIELDS order) and its ranked hits; returns the turn id.

    A turn with an external id already stored for its conversation and role is not added
    again: its id is returned, so a redelivered message keeps exactly one turn.
    """
    conversation_id, role, created_at, external_id = row[0], row[1], row[3], row[12]
    if external_id is not None:
        rows = list(
            await conn.execute_fetchall(
                "SELECT id FROM turns WHERE conversation_id = ? AND role = ? AND external_id = ?",
                (conversation_id, role, external_id),
            )
        )
        if rows:
            existing: int = rows[0][0]
            return existing
    try:
        turn_id = await _insert(
            conn, f"INSERT INTO turns ({TURN_FIELDS}) VALUES ({', '.join('?' * 14)})", row
        )
    except sqlite3.IntegrityError as exc:
        if "FOREIGN KEY" not in str(exc):
            raise
        raise ValueError(
            f"no conversation {conversation_id} in the log (erased, or never started); "
            "start one with start_conversation()"
        ) from exc
    if hits:
        await conn.executemany(
            "INSERT INTO retrieved (turn_id, rank, faq_id, score) VALUES (?, ?, ?, ?)",
            [(turn_id, rank, faq_id, score) for rank, (faq_id, score) in enumerate(hits, 1)],
        )
    await conn.execute(
        "UPDATE conversations SET updated_at = max(updated_at, ?) WHERE id = ?",
        (created_at, conversation_id),
    )
    return turn_id


async def upsert_feedback(conn: Connection, turn_id: int, value: int, now: float) -> None:
    """Set the feedback on a bot or operator turn, replacing an earlier vote."""
    rows = list(await conn.execute_fetchall("SELECT role FROM turns WHERE id = ?", (turn_id,)))
    if not rows:
        raise ValueError(f"no turn {turn_id} in the log; use the id add_turn returned")
    if rows[0][0] == "customer":
        raise ValueError(f"turn {turn_id} is the customer's own; feedback rates replies")
    await conn.execute(
        "INSERT INTO feedback (turn_id, value, created_at) VALUES (?, ?, ?) ON CONFLICT (turn_id) "
        "DO UPDATE SET value = excluded.value, created_at = excluded.created_at",
        (turn_id, value, now),
    )


async def insert_handover(
    conn: Connection,
    conversation_id: int,
    reason: str,
    topic_id: int | None,
    now: float,
    reason_code: str | None = None,
) -> int:
    """Add an open handover; returns its id."""
    try:
        return await _insert(
            conn,
            "INSERT INTO handovers (conversation_id, reason, opened_at, topic_id, reason_code) "
            "VALUES (?, ?, ?, ?, ?)",
            (conversation_id, reason, now, topic_id, reason_code),
        )
    except sqlite3.IntegrityError as exc:
        raise ValueError(f"no conversation {conversation_id} in the log") from exc


async def close_handover(
    conn: Connection, handover_id: int, operator_id: str | None, now: float
) -> bool:
    """Close an open handover, noting its operator (when given); False: it was closed already."""
    cursor = await conn.execute(
        "UPDATE handovers SET closed_at = ?, operator_id = coalesce(?, operator_id) "
        "WHERE id = ? AND closed_at IS NULL",
        (now, operator_id, handover_id),
    )
    if cursor.rowcount == 1:
        return True
    if not list(
        await conn.execute_fetchall("SELECT 1 FROM handovers WHERE id = ?", (handover_id,))
    ):
        raise ValueError(f"no handover {handover_id}; use the id open_handover returned")
    return False


async def update_delivery(conn: Connection, turn_id: int, delivery: str) -> None:
    """Set whether a turn reached the customer."""
    cursor = await conn.execute("UPDATE turns SET delivery = ? WHERE id = ?", (delivery, turn_id))
    if cursor.rowcount == 0:
        raise ValueError(f"no turn {turn_id} in the log; use the id add_turn returned")


async def claim_delivery(conn: Connection, turn_id: int, now: float, stale_after_s: float) -> bool:
    """Compare and set: claim a pending turn nobody holds (or whose claim went stale)."""
    cursor = await conn.execute(
        "UPDATE turns SET delivery_claimed_at = ? WHERE id = ? AND delivery = 'pending' "
        "AND (delivery_claimed_at IS NULL OR delivery_claimed_at < ?)",
        (now, turn_id, now - stale_after_s),
    )
    return cursor.rowcount == 1


async def release_delivery(conn: Connection, turn_id: int) -> None:
    """Drop the claim on a turn still pending, so the next sender takes it."""
    await conn.execute(
        "UPDATE turns SET delivery_claimed_at = NULL WHERE id = ? AND delivery = 'pending'",
        (turn_id,),
    )


async def close_conversation(conn: Connection, conversation_id: int, now: float) -> None:
    """Set a conversation's closing time, once."""
    cursor = await conn.execute(
        "UPDATE conversations SET closed_at = coalesce(closed_at, ?) WHERE id = ?",
        (now, conversation_id),
    )
    if cursor.rowcount == 0:
        raise ValueError(f"no conversation {conversation_id} in the log")


async def delete_customer(conn: Connection, channel: str, user_id: str) -> int:
    """Delete a customer's conversations and everything hanging off them; returns how many."""
    customer = (channel, user_id)
    for table, where in (
        ("feedback", f"turn_id IN ({_OF_TURNS})"),
        ("retrieved", f"turn_id IN ({_OF_TURNS})"),
        ("turns", f"conversation_id IN ({_OF_CUSTOMER})"),
        ("handovers", f"conversation_id IN ({_OF_CUSTOMER})"),
    ):
        await conn.execute(f"DELETE FROM {table} WHERE {where}", customer)
    cursor = await conn.execute(
        "DELETE FROM conversations WHERE channel = ? AND external_user_id = ?", customer
    )
    return cursor.rowcount


async def truncate_wal(conn: Connection, path: Path) -> None:
    """Checkpoint the WAL into the database file and cut it to zero bytes."""
    rows = list(await conn.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)"))
    if rows[0][0] != 0:
        raise RuntimeError(
            f"could not checkpoint {path}: another connection kept reading it; close "
            "long-running readers (exports, sqlite3 shells) and call ConversationLog.checkpoint()"
        )


async def select_turns(conn: Connection, conversation_id: int, limit: int = -1) -> list[Turn]:
    """A conversation's last `limit` turns (all when negative), oldest first."""
    rows = list(
        await conn.execute_fetchall(
            f"SELECT {_TURN_COLUMNS} FROM turns t LEFT JOIN feedback f ON f.turn_id = t.id "
            "WHERE t.conversation_id = ? ORDER BY t.id DESC LIMIT ?",
            (conversation_id, limit),
        )
    )
    if not rows:
        return []
    rows.reverse()
    hits: defaultdict[int, list[Retrieved]] = defaultdict(list)
    for turn_id, faq_id, score in await conn.execute_fetchall(
        "SELECT r.turn_id, r.faq_id, r.score FROM retrieved r JOIN turns t ON t.id = r.turn_id "
        "WHERE t.conversation_id = ? AND t.id >= ? ORDER BY r.turn_id, r.rank",
        (conversation_id, rows[0][0]),
    ):
        hits[turn_id].append(Retrieved(faq_id, score))
    return [_turn(row, tuple(hits[row[0]])) for row in rows]


async def select_turn(conn: Connection, turn_id: int) -> Turn | None:
    """One turn with its hits and feedback, or None."""
    rows = list(
        await conn.execute_fetchall(
            f"SELECT {_TURN_COLUMNS} FROM turns t LEFT JOIN feedback f ON f.turn_id = t.id "
            "WHERE t.id = ?",
            (turn_id,),
        )
    )
    if not rows:
        return None
    hits = await conn.execute_fetchall(
        "SELECT faq_id, score FROM retrieved WHERE turn_id = ? ORDER BY rank", (turn_id,)
    )
    return _turn(rows[0], tuple(Retrieved(faq_id, score) for faq_id, score in hits))


async def select_conversation(conn: Connection, conversation_id: int) -> Conversation | None:
    """A conversation with all its turns, or None."""
    found = list(
        await conn.execute_fetchall(
            f"SELECT {_CONVERSATION_COLUMNS} FROM conversations c WHERE c.id = ?",
            (conversation_id,),
        )
    )
    if not found:
        return None
    turns = tuple(await select_turns(conn, conversation_id))
    handovers = await conn.execute_fetchall(
        f"SELECT {_HANDOVER_COLUMNS} FROM handovers WHERE conversation_id = ? ORDER BY id",
        (conversation_id,),
    )
    return _conversation(found[0], turns, tuple(Handover(*row) for row in handovers))


async def select_conversations_after(
    conn: Connection, after_id: int, limit: int
) -> list[Conversation]:
    """Up to `limit` whole conversations with ids above `after_id`, in id order."""
    found = list(
        await conn.execute_fetchall(
            f"SELECT {_CONVERSATION_COLUMNS} FROM conversations c WHERE c.id > ? "
            "ORDER BY c.id LIMIT ?",
            (after_id, limit),
        )
    )
    if not found:
        return []
    span = (found[0][0], found[-1][0])
    hits: defaultdict[int, list[Retrieved]] = defaultdict(list)
    for turn_id, faq_id, score in await conn.execute_fetchall(
        "SELECT r.turn_id, r.faq_id, r.score FROM retrieved r JOIN turns t ON t.id = r.turn_id "
        "WHERE t.conversation_id BETWEEN ? AND ? ORDER BY r.turn_id, r.rank",
        span,
    ):
        hits[turn_id].append(Retrieved(faq_id, score))
    turns: defaultdict[int, list[Turn]] = defaultdict(list)
    for row in await conn.execute_fetchall(
        f"SELECT {_TURN_COLUMNS} FROM turns t LEFT JOIN feedback f ON f.turn_id = t.id "
        "WHERE t.conversation_id BETWEEN ? AND ? ORDER BY t.id",
        span,
    ):
        turns[row[1]].append(_turn(row, tuple(hits[row[0]])))
    handovers: defaultdict[int, list[Handover]] = defaultdict(list)
    for row in await conn.execute_fetchall(
        f"SELECT {_HANDOVER_COLUMNS} FROM handovers WHERE conversation_id BETWEEN ? AND ? "
        "ORDER BY id",
        span,
    ):
        handovers[row[1]].append(Handover(*row))
    return [_conversation(row, tuple(turns[row[0]]), tuple(handovers[row[0]])) for row in found]


async def count_rows(conn: Connection) -> dict[str, int]:
    """Rows per table."""
    counts = {}
    for table in TABLES:
        rows = list(await conn.execute_fetchall(f"SELECT count(*) FROM {table}"))
        counts[table] = int(rows[0][0])
    return counts


async def upsert_conversations(conn: Connection, conversations: Sequence[Conversation]) -> None:
    """Write whole conversations with their ids, replacing rows that have the same keys."""
    for c in conversations:
        await conn.execute(
            "INSERT INTO conversations (id, channel, external_user_id, language, created_at, "
            "updated_at, closed_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            + _excluded("channel, external_user_id, language, created_at, updated_at, closed_at"),
            (
                c.id,
                c.channel,
                c.external_user_id,
                c.language,
                c.created_at,
                c.updated_at,
                c.closed_at,
            ),
        )
        for t in c.turns:
            await conn.execute(
                f"INSERT INTO turns (id, {TURN_FIELDS}) VALUES ({', '.join('?' * 15)}) "
                f"ON CONFLICT (id) DO UPDATE SET {_excluded(TURN_FIELDS)}",
                (t.id, *turn_row(t)),
            )
            await conn.executemany(
                "INSERT INTO retrieved (turn_id, rank, faq_id, score) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (turn_id, rank) DO UPDATE SET " + _excluded("faq_id, score"),
                [(t.id, rank, hit.faq_id, hit.score) for rank, hit in enumerate(t.retrieved, 1)],
            )
            if t.feedback is not None:
                await conn.execute(
                    "INSERT INTO feedback (turn_id, value, created_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (turn_id) DO UPDATE SET " + _excluded("value, created_at"),
                    (t.id, t.feedback, t.created_at if t.feedback_at is None else t.feedback_at),
                )
        await conn.executemany(
            f"INSERT INTO handovers ({_HANDOVER_COLUMNS}) VALUES ({', '.join('?' * 14)}) "
            "ON CONFLICT (id) DO UPDATE SET " + _excluded(_HANDOVER_COLUMNS.removeprefix("id, ")),
            [
                (
                    h.id,
                    h.conversation_id,
                    h.reason,
                    h.opened_at,
                    h.closed_at,
                    h.operator_id,
                    h.topic_id,
                    h.reason_code,
                    h.assignee,
                    h.assigned_at,
                    h.rating_asked_at,
                    h.rating,
                    h.rated_at,
                    h.announced_assignee,
                )
                for h in c.handovers
            ],
        )


def turn_row(turn: Turn) -> tuple[Any, ...]:
    """A turn's values in TURN_FIELDS order."""
    return (
        turn.conversation_id,
        turn.role,
        turn.text,
        turn.created_at,
        turn.action,
        turn.reason,
        turn.sentiment_label,
        turn.sentiment_score,
        turn.kb_version,
        json.dumps(dict(turn.models), sort_keys=True),
        json.dumps(dict(turn.latencies_ms), sort_keys=True),
        turn.delivery,
        turn.external_id,
        turn.reason_code,
    )


def _excluded(columns: str) -> str:
    return ", ".join(f"{c} = excluded.{c}" for c in columns.split(", "))


async def select_conversation_summaries(
    conn: Connection, channel: str | None, limit: int, offset: int
) -> list[ConversationSummary]:
    """Conversations most recently active first, with turn counts and open-handover flags."""
    where, parameters = ("WHERE c.channel = ?", [channel]) if channel is not None else ("", [])
    rows = await conn.execute_fetchall(
        f"SELECT {_CONVERSATION_COLUMNS}, "
        "(SELECT count(*) FROM turns t WHERE t.conversation_id = c.id), "
        "EXISTS (SELECT 1 FROM handovers h WHERE h.conversation_id = c.id "
        "AND h.closed_at IS NULL) "
        f"FROM conversations c {where} ORDER BY c.updated_at DESC, c.id DESC LIMIT ? OFFSET ?",
        (*parameters, limit, offset),
    )
    return [_summary(row) for row in rows]


async def select_pending_turns(conn: Connection, channel: str) -> list[tuple[str, Turn]]:
    """Every turn on a channel still waiting to be delivered, oldest first, with its customer."""
    rows = list(
        await conn.execute_fetchall(
            f"SELECT c.external_user_id, {_TURN_COLUMNS} FROM turns t "
            "JOIN conversations c ON c.id = t.conversation_id "
            "LEFT JOIN feedback f ON f.turn_id = t.id "
            "WHERE c.channel = ? AND t.delivery = 'pending' ORDER BY t.id",
            (channel,),
        )
    )
    hits: defaultdict[int, list[Retrieved]] = defaultdict(list)
    for turn_id, faq_id, score in await conn.execute_fetchall(
        "SELECT r.turn_id, r.faq_id, r.score FROM retrieved r JOIN turns t ON t.id = r.turn_id "
        "JOIN conversations c ON c.id = t.conversation_id "
        "WHERE c.channel = ? AND t.delivery = 'pending' ORDER BY r.turn_id, r.rank",
        (channel,),
    ):
        hits[turn_id].append(Retrieved(faq_id, score))
    return [(str(row[0]), _turn(row[1:], tuple(hits[row[1]]))) for row in rows]


async def select_latest_conversation_id(conn: Connection, channel: str, user_id: str) -> int | None:
    """The customer's newest conversation id on a channel, or None."""
    rows = list(
        await conn.execute_fetchall(
            "SELECT max(id) FROM conversations WHERE channel = ? AND external_user_id = ?",
            (channel, user_id),
        )
    )
    found: int | None = rows[0][0]
    return found


async def select_latest_turns(
    conn: Connection, channel: str, user_id: str, limit: int
) -> tuple[int | None, list[Turn]]:
    """The customer's newest conversation id on a channel and its last `limit` turns."""
    found = await select_latest_conversation_id(conn, channel, user_id)
    if found is None or limit == 0:
        return found, []
    return found, await select_turns(conn, found, limit)


async def select_open_conversation_id(conn: Connection, channel: str, user_id: str) -> int | None:
    """The customer's newest conversation id on a channel unless it is closed, or None."""
    rows = list(
        await conn.execute_fetchall(
            "SELECT id, closed_at FROM conversations WHERE channel = ? AND external_user_id = ? "
            "ORDER BY id DESC LIMIT 1",
            (channel, user_id),
        )
    )
    if not rows or rows[0][1] is not None:
        return None
    found: int = rows[0][0]
    return found


async def select_open_handover(
    conn: Connection, column: Literal["conversation_id", "topic_id"], value: int
) -> Handover | None:
    """The newest open handover of a conversation or of an operator-desk topic, or None."""
    rows = list(
        await conn.execute_fetchall(
            f"SELECT {_HANDOVER_COLUMNS} FROM handovers WHERE {column} = ? "
            "AND closed_at IS NULL ORDER BY id DESC LIMIT 1",
            (value,),
        )
    )
    return Handover(*rows[0]) if rows else None


async def assign_handover(
    conn: Connection,
    handover_id: int,
    assignee: str,
    now: float,
    take_over: bool,
    announced: bool,
) -> str | None:
    """Set an open handover's assignee (unless it has one and `take_over` is off); the holder."""
    await conn.execute(
        "UPDATE handovers SET assignee = ?, assigned_at = ?, "
        "announced_assignee = CASE WHEN ? THEN ? ELSE announced_assignee END "
        "WHERE id = ? AND closed_at IS NULL AND (? OR assignee IS NULL) AND assignee IS NOT ?",
        (assignee, now, announced, assignee, handover_id, take_over, assignee),
    )
    rows = list(
        await conn.execute_fetchall(
            "SELECT assignee FROM handovers WHERE id = ? AND closed_at IS NULL", (handover_id,)
        )
    )
    return str(rows[0][0]) if rows and rows[0][0] is not None else None


async def claim_assignment_notice(conn: Connection, handover_id: int, assignee: str) -> bool:
    """Compare and set: note `assignee` as announced unless it was, or no longer holds it."""
    cursor = await conn.execute(
        "UPDATE handovers SET announced_assignee = ? WHERE id = ? AND assignee = ? "
        "AND announced_assignee IS NOT ?",
        (assignee, handover_id, assignee, assignee),
    )
    return cursor.rowcount == 1


async def ask_rating(conn: Connection, handover_id: int, now: float) -> None:
    """Note when the customer was asked to rate a handover (the first time only)."""
    cursor = await conn.execute(
        "UPDATE handovers SET rating_asked_at = coalesce(rating_asked_at, ?) WHERE id = ?",
        (now, handover_id),
    )
    if cursor.rowcount == 0:
        raise ValueError(f"no handover {handover_id}; use the id open_handover returned")


async def rate_handover(conn: Connection, handover_id: int, score: int, now: float) -> bool:
    """Store the first rating of a handover whose rating was asked for."""
    cursor = await conn.execute(
        "UPDATE handovers SET rating = ?, rated_at = ? WHERE id = ? AND rating IS NULL "
        "AND rating_asked_at IS NOT NULL",
        (score, now, handover_id),
    )
    return cursor.rowcount == 1


async def select_newest_handover(conn: Connection, conversation_id: int) -> Handover | None:
    """The conversation's newest handover, open or closed."""
    rows = list(
        await conn.execute_fetchall(
            f"SELECT {_HANDOVER_COLUMNS} FROM handovers WHERE conversation_id = ? "
            "ORDER BY id DESC LIMIT 1",
            (conversation_id,),
        )
    )
    return Handover(*rows[0]) if rows else None


async def select_ratings(conn: Connection, since: float | None) -> list[int]:
    """The scores of rated handovers, rated at `since` or later (all when None)."""
    rows = await conn.execute_fetchall(
        "SELECT rating FROM handovers WHERE rating IS NOT NULL AND (? IS NULL OR rated_at >= ?) "
        "ORDER BY id",
        (since, since),
    )
    return [int(row[0]) for row in rows]


async def update_handover_topic(conn: Connection, handover_id: int, topic_id: int) -> None:
    """Note the operator-desk forum topic that carries a handover."""
    cursor = await conn.execute(
        "UPDATE handovers SET topic_id = ? WHERE id = ?", (topic_id, handover_id)
    )
    if cursor.rowcount == 0:
        raise ValueError(f"no handover {handover_id}; use the id open_handover returned")


async def select_latest_topic(conn: Connection, channel: str, user_id: str) -> int | None:
    """The forum topic of the customer's newest handover that had one, or None."""
    rows = list(
        await conn.execute_fetchall(
            f"SELECT topic_id FROM handovers WHERE conversation_id IN ({_OF_CUSTOMER}) "
            "AND topic_id IS NOT NULL ORDER BY id DESC LIMIT 1",
            (channel, user_id),
        )
    )
    return int(rows[0][0]) if rows else None


async def select_open_handover_customers(
    conn: Connection, channel: str
) -> list[tuple[str, Handover]]:
    """Every open handover on a channel with its customer's external id."""
    columns = ", ".join(f"h.{c}" for c in _HANDOVER_COLUMNS.split(", "))
    rows = await conn.execute_fetchall(
        f"SELECT c.external_user_id, {columns} FROM handovers h "
        "JOIN conversations c ON c.id = h.conversation_id "
        "WHERE c.channel = ? AND h.closed_at IS NULL ORDER BY h.id",
        (channel,),
    )
    return [(str(row[0]), Handover(*row[1:])) for row in rows]


async def _insert(conn: Connection, sql: str, parameters: Sequence[Any]) -> int:
    row = await conn.execute_insert(sql, parameters)
    assert row is not None, "SQLite returned no rowid for an insert"
    rowid: int = row[0]
    return rowid


def _conversation(
    row: Sequence[Any], turns: tuple[Turn, ...], handovers: tuple[Handover, ...]
) -> Conversation:
    conversation_id, channel, user_id, language, created_at, updated_at, closed_at = row
    return Conversation(
        conversation_id,
        channel,
        user_id,
        language,
        created_at,
        updated_at,
        turns,
        closed_at,
        handovers,
    )


def _summary(row: Sequence[Any]) -> ConversationSummary:
    conversation_id, channel, user_id, language, created_at, updated_at, closed_at = row[:7]
    turns, open_handover = row[7:]
    return ConversationSummary(
        conversation_id,
        channel,
        user_id,
        language,
        created_at,
        updated_at,
        closed_at,
        turns,
        bool(open_handover),
    )


def _turn(row: Sequence[Any], retrieved: tuple[Retrieved, ...]) -> Turn:
    turn_id, conversation_id, role, text, created_at, action, reason = row[:7]
    label, score, kb_version, models, latencies, feedback, delivery, external_id = row[7:15]
    return Turn(
        turn_id,
        conversation_id,
        role,
        text,
        created_at,
        action,
        reason,
        label,
        score,
        kb_version,
        json.loads(models),
        json.loads(latencies),
        retrieved,
        feedback,
        delivery,
        external_id,
        row[15],
        row[16],
    )
