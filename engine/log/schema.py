"""The log's tables, and the migrations that bring an older log file up to them."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

# Step N (1-based) runs once, in its own transaction, and sets PRAGMA user_version to N.
# Never edit a step that has shipped; append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            channel TEXT NOT NULL,
            external_user_id TEXT NOT NULL,
            language TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        # Finding a customer's conversations: the chat handlers and erasure.
        "CREATE INDEX conversations_by_customer ON conversations (channel, external_user_id, id)",
        """CREATE TABLE turns (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('customer', 'bot', 'operator')),
            text TEXT NOT NULL,
            created_at REAL NOT NULL,
            action TEXT CHECK (action IN ('answer', 'clarify', 'handoff')),
            reason TEXT,
            sentiment_label TEXT,
            sentiment_score REAL,
            kb_version TEXT,
            models TEXT NOT NULL DEFAULT '{}',
            latencies_ms TEXT NOT NULL DEFAULT '{}'
        )""",
        # Dialogue memory (last N turns), exports in conversation order, erasure.
        "CREATE INDEX turns_by_conversation ON turns (conversation_id, id)",
        """CREATE TABLE retrieved (
            turn_id INTEGER NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
            rank INTEGER NOT NULL CHECK (rank >= 1),
            faq_id TEXT NOT NULL,
            score REAL NOT NULL,
            PRIMARY KEY (turn_id, rank)
        ) WITHOUT ROWID""",
        """CREATE TABLE feedback (
            turn_id INTEGER PRIMARY KEY REFERENCES turns (id) ON DELETE CASCADE,
            value INTEGER NOT NULL CHECK (value IN (-1, 1)),
            created_at REAL NOT NULL
        )""",
        """CREATE TABLE handovers (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            reason TEXT NOT NULL,
            opened_at REAL NOT NULL,
            closed_at REAL,
            operator_id TEXT,
            topic_id INTEGER
        )""",
        "CREATE INDEX handovers_by_conversation ON handovers (conversation_id, id)",
        # The operator desk maps a forum topic back to the open handover.
        "CREATE INDEX open_handovers_by_topic ON handovers (topic_id) WHERE closed_at IS NULL",
    ),
    (
        # Whether a reply reached the customer, so a restart can finish the ones that did not.
        "ALTER TABLE turns ADD COLUMN delivery TEXT "
        "CHECK (delivery IN ('pending', 'delivered', 'undelivered'))",
        # The channel's id of a message: a redelivered update finds the turn it already made.
        "ALTER TABLE turns ADD COLUMN external_id TEXT",
        "CREATE UNIQUE INDEX turns_by_external_id ON turns (conversation_id, role, external_id) "
        "WHERE external_id IS NOT NULL",
        "CREATE INDEX pending_turns ON turns (conversation_id) WHERE delivery = 'pending'",
        "ALTER TABLE conversations ADD COLUMN closed_at REAL",
        # Listings newest first.
        "CREATE INDEX conversations_by_update ON conversations (updated_at, id)",
    ),
    (
        # A turn's decision as a typed code beside its free-text reason: what older versions
        # wrote as one string is read once, here, and never parsed again.
        "ALTER TABLE turns ADD COLUMN reason_code TEXT",
        "UPDATE turns SET reason_code = CASE "
        "WHEN action = 'answer' AND reason LIKE '%generation failed%' THEN 'generation_failed' "
        "WHEN action = 'answer' AND reason LIKE '%ungrounded%' THEN 'ungrounded' "
        "WHEN action = 'answer' AND reason LIKE 'clarify choice:%' THEN 'clarify_choice' "
        "WHEN action = 'answer' THEN 'confident' "
        "WHEN action = 'clarify' THEN 'ambiguous' "
        "WHEN reason LIKE 'human_requested%' THEN 'human_requested' "
        "WHEN reason LIKE 'negative_sentiment%' THEN 'negative_sentiment' "
        "WHEN reason LIKE 'repeated_failure%' THEN 'repeated_failure' "
        "ELSE 'out_of_scope' END WHERE role = 'bot' AND action IS NOT NULL",
        "ALTER TABLE handovers ADD COLUMN reason_code TEXT",
        "UPDATE handovers SET reason_code = CASE "
        "WHEN reason IN ('human_requested', 'negative_sentiment', 'repeated_failure', "
        "'out_of_scope') THEN reason "
        "WHEN lower(reason) LIKE '%sentiment%' OR lower(reason) LIKE '%upset%' "
        "THEN 'negative_sentiment' END",
    ),
    (
        # When a sender took a "pending" turn to send it: several bot processes deliver the
        # console's replies, and one claim per turn keeps each from being sent twice.
        "ALTER TABLE turns ADD COLUMN delivery_claimed_at REAL",
    ),
    (
        # Who holds a hand-over, shared by the console and the operator desk; and the holder
        # last announced in the hand-over's forum topic, so one process announces a change once.
        "ALTER TABLE handovers ADD COLUMN assignee TEXT",
        "ALTER TABLE handovers ADD COLUMN assigned_at REAL",
        "ALTER TABLE handovers ADD COLUMN announced_assignee TEXT",
    ),
    (
        # The customer's rating of a resolved hand-over (CSAT): when it was asked for, the score.
        "ALTER TABLE handovers ADD COLUMN rating_asked_at REAL",
        "ALTER TABLE handovers ADD COLUMN rating INTEGER CHECK (rating BETWEEN 1 AND 5)",
        "ALTER TABLE handovers ADD COLUMN rated_at REAL",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def open_database(path: Path, *, create: bool = True) -> sqlite3.Connection:
    """A connection to the log at `path` in WAL mode, migrated to the current schema.

    The connection is in autocommit mode (`isolation_level=None`); the caller closes it.
    """
    if not path.exists():
        if not create:
            raise FileNotFoundError(
                f"no conversation log at {path}; check the path (the bot creates it on first start)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise RuntimeError(
                f"{path}: SQLite could not switch to WAL mode (got {mode!r}); "
                "put the log on a local file system"
            )
        migrate(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise RuntimeError(
            f"{path} is not a usable conversation log ({exc}); point the log path at another file"
        ) from exc
    except BaseException:
        conn.close()
        raise
    return conn


def prepare_file(path: Path, *, create: bool = True) -> None:
    """Create the log at `path` (unless `create` is False) or migrate it, in WAL mode."""
    open_database(path, create=create).close()


def schema_version(conn: sqlite3.Connection) -> int:
    """The number of migration steps the connected file has had."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate(conn: sqlite3.Connection, migrations: Sequence[Sequence[str]] = MIGRATIONS) -> int:
    """Apply the steps the file lacks, one transaction each, and return its version.

    A file newer than `migrations` is an error: this code would misread it.
    """
    for number in range(schema_version(conn) + 1, len(migrations) + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have run this step while we waited for the write lock.
            if schema_version(conn) < number:
                for statement in migrations[number - 1]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number:d}")
                log.info("migrated conversation log to schema version %d", number)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    version = schema_version(conn)
    if version > len(migrations):
        raise RuntimeError(
            f"the conversation log has schema version {version}, newer than this code knows "
            f"({len(migrations)}); upgrade supportbot, or point the log path at another file"
        )
    return version
