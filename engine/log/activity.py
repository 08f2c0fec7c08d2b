"""What happened in the log since a mark: new turns, new hand-overs, hand-overs taken or
closed, for live updates.

The log is the source of truth for every process that writes to it, so a reader that asks
"what is new since the ids I saw last?" hears of a customer's message whichever process logged
it. Ids only grow (SQLite's rowids and PostgreSQL's identities), so a mark is two ids and the
latest time a hand-over was taken or closed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from engine.log.records import Role

# Rows read per poll; the rest come at the next one.
BATCH = 500


@dataclass(frozen=True, slots=True)
class ActivityMark:
    """The newest turn and hand-over ids seen so far, and when a hand-over was last taken or
    closed (Unix seconds)."""

    turn_id: int
    handover_id: int
    changed_at: float = 0.0


@dataclass(frozen=True, slots=True)
class ActivityEvent:
    """A new turn ("message", with who wrote it), or a hand-over opened, taken or closed, in a
    conversation."""

    kind: Literal["message", "handover"]
    conversation_id: int
    role: Role | None = None


@dataclass(frozen=True, slots=True)
class Activity:
    """The events since a mark, oldest first, and the mark to ask from next."""

    mark: ActivityMark
    events: tuple[ActivityEvent, ...] = ()


MARK = (
    "SELECT (SELECT coalesce(max(id), 0) FROM turns), (SELECT coalesce(max(id), 0) FROM handovers)"
)
NEW_TURNS = f"SELECT id, conversation_id, role FROM turns WHERE id > ? ORDER BY id LIMIT {BATCH}"
NEW_HANDOVERS = f"SELECT id, conversation_id FROM handovers WHERE id > ? ORDER BY id LIMIT {BATCH}"
# Hand-overs taken or closed after a time: `?` is that time twice.
CHANGED_HANDOVERS = (
    "SELECT conversation_id, coalesce(closed_at, 0), coalesce(assigned_at, 0) FROM handovers "
    "WHERE closed_at > ? OR assigned_at > ? ORDER BY id"
)
LAST_CHANGE = "SELECT coalesce(max(closed_at), 0), coalesce(max(assigned_at), 0) FROM handovers"


def activity_from_rows(
    after: ActivityMark,
    turns: Sequence[Sequence[Any]],
    handovers: Sequence[Sequence[Any]],
    changed: Sequence[Sequence[Any]] = (),
) -> Activity:
    """The activity after `after` from the rows of NEW_TURNS, NEW_HANDOVERS and
    CHANGED_HANDOVERS."""
    events = [ActivityEvent("handover", int(row[1])) for row in handovers]
    events += [
        ActivityEvent("handover", int(row[0]))
        for row in changed
        if ActivityEvent("handover", int(row[0])) not in events
    ]
    events += [ActivityEvent("message", int(row[1]), row[2]) for row in turns]
    mark = ActivityMark(
        _last(turns, after.turn_id),
        _last(handovers, after.handover_id),
        max([after.changed_at, *(max(float(row[1]), float(row[2])) for row in changed)]),
    )
    return Activity(mark, tuple(events))


def _last(rows: Iterable[Sequence[Any]], default: int) -> int:
    return max((int(row[0]) for row in rows), default=default)
