"""The SQL behind PostgresConversationLog: statements, row mapping, upserts for copies."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import astuple
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from engine.log.records import Conversation, Handover, Retrieved, Turn

TABLES = ("conversations", "turns", "retrieved", "feedback", "handovers")
TURN_FIELDS = (
    "conversation_id, role, text, created_at, action, reason, sentiment_label, "
    "sentiment_score, kb_version, models, latencies_ms, delivery, external_id, reason_code"
)
TURN_COLUMNS = (
    "t.id, t.conversation_id, t.role, t.text, t.created_at, t.action, t.reason, "
    "t.sentiment_label, t.sentiment_score, t.kb_version, t.models, t.latencies_ms, f.value, "
    "t.delivery, t.external_id, f.created_at, t.reason_code"
)
SELECT_TURNS = f"SELECT {TURN_COLUMNS} FROM turns t LEFT JOIN feedback f ON f.turn_id = t.id"
CONVERSATION_COLUMNS = (
    "c.id, c.channel, c.external_user_id, c.language, c.created_at, c.updated_at, c.closed_at"
)
CONVERSATION_FIELDS = "channel, external_user_id, language, created_at, updated_at, closed_at"
HANDOVER_COLUMNS = (
    "id, conversation_id, reason, opened_at, closed_at, operator_id, topic_id, reason_code, "
    "assignee, assigned_at, rating_asked_at, rating, rated_at, announced_assignee"
)
OF_CUSTOMER = "SELECT id FROM conversations WHERE channel = $1 AND external_user_id = $2"
# Rows of every table that an erasure deletes from, so VACUUM can drop them for good.
VACUUM = "VACUUM (ANALYZE) " + ", ".join(TABLES)


def sequence_name(table: str) -> str:
    """The identity sequence behind a table's id column."""
    return f"{table}_id_seq"


async def select_conversations(
    conn: Any, where: str, turns_where: str, *args: Any
) -> list[Conversation]:
    found = await conn.fetch(
        f"SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE {where}", *args
    )
    if not found:
        return []
    rows = await conn.fetch(f"{SELECT_TURNS} WHERE {turns_where} ORDER BY t.id", *args)
    turns: defaultdict[int, list[Turn]] = defaultdict(list)
    for turn in await with_hits(conn, rows):
        turns[turn.conversation_id].append(turn)
    handovers: defaultdict[int, list[Handover]] = defaultdict(list)
    handover_where = turns_where.replace("t.", "")
    for row in await conn.fetch(
        f"SELECT {HANDOVER_COLUMNS} FROM handovers WHERE {handover_where} ORDER BY id", *args
    ):
        handovers[row[1]].append(Handover(*row))
    return [
        Conversation(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            tuple(turns[row[0]]),
            row[6],
            tuple(handovers[row[0]]),
        )
        for row in found
    ]


async def with_hits(conn: Any, rows: Sequence[Any]) -> list[Turn]:
    """Turns from rows in TURN_COLUMNS order, with their retrieved entries."""
    if not rows:
        return []
    hits: defaultdict[int, list[Retrieved]] = defaultdict(list)
    for turn_id, faq_id, score in await conn.fetch(
        "SELECT turn_id, faq_id, score FROM retrieved WHERE turn_id = ANY($1::bigint[]) "
        "ORDER BY turn_id, rank",
        [row[0] for row in rows],
    ):
        hits[turn_id].append(Retrieved(faq_id, score))
    return [_turn(row, tuple(hits[row[0]])) for row in rows]


def _turn(row: Sequence[Any], retrieved: tuple[Retrieved, ...]) -> Turn:
    return Turn(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        row[7],
        row[8],
        row[9],
        row[10],
        row[11],
        retrieved,
        row[12],
        row[13],
        row[14],
        row[15],
        row[16],
    )


async def upsert_conversations(conn: Any, conversations: Sequence[Conversation]) -> None:
    """Write whole conversations with their ids, replacing rows that have the same keys."""
    await conn.executemany(
        "INSERT INTO conversations (id, channel, external_user_id, language, created_at, "
        "updated_at, closed_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE "
        "SET "
        + _excluded("channel, external_user_id, language, created_at, updated_at, closed_at"),
        [
            (
                c.id,
                c.channel,
                c.external_user_id,
                c.language,
                c.created_at,
                c.updated_at,
                c.closed_at,
            )
            for c in conversations
        ],
    )
    turns = [t for c in conversations for t in c.turns]
    await conn.executemany(
        f"INSERT INTO turns (id, {TURN_FIELDS}) VALUES ({placeholders(15)}) "
        f"ON CONFLICT (id) DO UPDATE SET {_excluded(TURN_FIELDS)}",
        [
            (
                t.id,
                t.conversation_id,
                t.role,
                t.text,
                t.created_at,
                t.action,
                t.reason,
                t.sentiment_label,
                t.sentiment_score,
                t.kb_version,
                dict(t.models),
                dict(t.latencies_ms),
                t.delivery,
                t.external_id,
                t.reason_code,
            )
            for t in turns
        ],
    )
    await conn.executemany(
        "INSERT INTO retrieved (turn_id, rank, faq_id, score) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (turn_id, rank) DO UPDATE SET " + _excluded("faq_id, score"),
        [(t.id, rank, h.faq_id, h.score) for t in turns for rank, h in enumerate(t.retrieved, 1)],
    )
    await conn.executemany(
        "INSERT INTO feedback (turn_id, value, created_at) VALUES ($1, $2, $3) "
        "ON CONFLICT (turn_id) DO UPDATE SET " + _excluded("value, created_at"),
        [
            (t.id, t.feedback, t.created_at if t.feedback_at is None else t.feedback_at)
            for t in turns
            if t.feedback is not None
        ],
    )
    await conn.executemany(
        f"INSERT INTO handovers ({HANDOVER_COLUMNS}) VALUES ({placeholders(14)}) "
        "ON CONFLICT (id) DO UPDATE SET " + _excluded(HANDOVER_COLUMNS.removeprefix("id, ")),
        [
            astuple(h)  # the fields are HANDOVER_COLUMNS, in order
            for c in conversations
            for h in c.handovers
        ],
    )


class snapshot:
    """A read-only REPEATABLE READ transaction: a multi-query read sees one committed state."""

    def __init__(self, conn: Any) -> None:
        self._transaction = conn.transaction(isolation="repeatable_read", readonly=True)

    async def __aenter__(self) -> None:
        await self._transaction.start()

    async def __aexit__(self, *exc_info: object) -> None:
        if exc_info[0] is None:
            await self._transaction.commit()
        else:
            await self._transaction.rollback()


async def init_connection(conn: Any) -> None:
    """Set up a new pool connection: json and jsonb as Python objects."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


def placeholders(count: int) -> str:
    """ "$1, $2, ..." for `count` parameters."""
    return ", ".join(f"${n}" for n in range(1, count + 1))


def _excluded(columns: str) -> str:
    return ", ".join(f"{c} = excluded.{c}" for c in columns.split(", "))


def dsn(url: str) -> str:
    """The URL as asyncpg takes it."""
    # asyncpg takes postgresql:// and postgres://; drop a driver suffix such as +asyncpg.
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=parts.scheme.split("+")[0]))


def public_url(url: str) -> str:
    """The URL with its password masked, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
