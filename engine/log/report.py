"""Counts that say how the bot is doing, and the questions it could not answer."""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from engine.log.export import open_for_reading


@dataclass(frozen=True, slots=True)
class UnansweredQuestion:
    """A customer message whose next reply was the bot handing over or asking to clarify.

    `text` is the normalised message; `count` how many messages normalised to it.
    """

    text: str
    count: int


@dataclass(frozen=True, slots=True)
class LogReport:
    """Totals over the whole log; `answered`, `clarified` and `handed_over` count bot turns."""

    conversations: int
    turns: int
    customer_turns: int
    answered: int
    clarified: int
    handed_over: int
    handovers: int
    feedback_up: int
    feedback_down: int
    top_unanswered: tuple[UnansweredQuestion, ...]

    def render(self) -> str:
        """The report as aligned plain-text lines."""
        lines = [
            f"conversations     {self.conversations}",
            f"turns             {self.turns} ({self.customer_turns} from customers)",
            f"answered          {self.answered}",
            f"clarified         {self.clarified}",
            f"handed over       {self.handed_over} ({self.handovers} handovers opened)",
            f"feedback          +{self.feedback_up} / -{self.feedback_down}",
            "top unanswered questions:",
        ]
        lines += [f"  {q.count:5d}  {q.text}" for q in self.top_unanswered] or ["  (none)"]
        return "\n".join(lines)


def normalise_question(text: str) -> str:
    """Lower-case `text` with punctuation dropped and whitespace collapsed, for grouping."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def report(path: Path, *, top: int = 10) -> LogReport:
    """Count what the log at `path` holds; synchronous, so call it via asyncio.to_thread from
    async code."""
    with closing(open_for_reading(path)) as conn:
        conn.execute("BEGIN")  # one snapshot for every count
        (conversations,) = conn.execute("SELECT count(*) FROM conversations").fetchone()
        turns: Counter[str | None] = Counter()
        actions: Counter[str | None] = Counter()
        for role, action, count in conn.execute(
            "SELECT role, action, count(*) FROM turns GROUP BY role, action"
        ):
            turns[role] += count
            if role == "bot":
                actions[action] += count
        feedback = dict(conn.execute("SELECT value, count(*) FROM feedback GROUP BY value"))
        (handovers,) = conn.execute("SELECT count(*) FROM handovers").fetchone()
        unanswered = _unanswered(conn)
        conn.execute("COMMIT")
    return LogReport(
        conversations=conversations,
        turns=sum(turns.values()),
        customer_turns=turns["customer"],
        answered=actions["answer"],
        clarified=actions["clarify"],
        handed_over=actions["handoff"],
        handovers=handovers,
        feedback_up=feedback.get(1, 0),
        feedback_down=feedback.get(-1, 0),
        top_unanswered=tuple(UnansweredQuestion(t, n) for t, n in unanswered.most_common(top)),
    )


def _unanswered(conn: sqlite3.Connection) -> Counter[str]:
    rows = conn.execute(
        "SELECT q.text FROM turns q JOIN turns reply ON reply.id = ("
        "SELECT r.id FROM turns r WHERE r.conversation_id = q.conversation_id AND r.id > q.id "
        "AND r.role <> 'customer' ORDER BY r.id LIMIT 1) WHERE q.role = 'customer' "
        "AND reply.role = 'bot' AND reply.action IN ('handoff', 'clarify')"
    )
    return Counter(normalise_question(text) for (text,) in rows)
