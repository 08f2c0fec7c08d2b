"""Counts that say how the bot is doing, and the questions it could not answer."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from engine.log.export import LogTarget, read_log
from engine.log.port import ConversationStore
from engine.log.records import REASON_CODES, ReasonCode
from engine.resolution import LoggedTurn, resolution_rate


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
    # Bot turns per reason code, in REASON_CODES order; codes never given are left out.
    reasons: tuple[tuple[ReasonCode, int], ...] = ()
    # Conversations whose last bot answer stood (engine/resolution.py); None without any.
    resolution_rate: float | None = None
    # Customers' ratings (1-5) of resolved hand-overs.
    ratings: tuple[int, ...] = ()

    @property
    def csat(self) -> float | None:
        """The mean rating of resolved hand-overs; None without any."""
        return sum(self.ratings) / len(self.ratings) if self.ratings else None

    def render(self) -> str:
        """The report as aligned plain-text lines."""
        lines = [
            f"conversations     {self.conversations}",
            f"turns             {self.turns} ({self.customer_turns} from customers)",
            f"answered          {self.answered}",
            f"clarified         {self.clarified}",
            f"handed over       {self.handed_over} ({self.handovers} handovers opened)",
            f"feedback          +{self.feedback_up} / -{self.feedback_down}",
        ]
        if self.resolution_rate is not None:
            lines.append(f"resolution rate   {self.resolution_rate:.1%} (the bot's answer stood)")
        if self.csat is not None:
            lines.append(f"CSAT              {self.csat:.2f} of 5 ({len(self.ratings)} ratings)")
        if self.reasons:
            lines.append("reasons:")
            lines += [f"  {count:5d}  {code}" for code, count in self.reasons]
        lines.append("top unanswered questions:")
        lines += [f"  {q.count:5d}  {q.text}" for q in self.top_unanswered] or ["  (none)"]
        return "\n".join(lines)


def normalise_question(text: str) -> str:
    """Lower-case `text` with punctuation dropped and whitespace collapsed, for grouping."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


async def build_report(store: ConversationStore, *, top: int = 10) -> LogReport:
    """Count what the log holds, reading it through the export stream."""
    conversations = handovers = 0
    turns: Counter[str] = Counter()
    actions: Counter[str | None] = Counter()
    reasons: Counter[ReasonCode] = Counter()
    feedback: Counter[int] = Counter()
    unanswered: Counter[str] = Counter()
    outcomes: list[tuple[list[LoggedTurn], bool]] = []
    ratings: list[int] = []
    async for conversation in store.export_conversations():
        conversations += 1
        handovers += len(conversation.handovers)
        ratings += [h.rating for h in conversation.handovers if h.rating is not None]
        outcomes.append(
            (
                [LoggedTurn(t.role, t.action, t.feedback) for t in conversation.turns],
                bool(conversation.handovers),
            )
        )
        waiting: list[str] = []  # the customer messages the next reply answers
        for turn in conversation.turns:
            turns[turn.role] += 1
            if turn.feedback is not None:
                feedback[turn.feedback] += 1
            if turn.role == "customer":
                waiting.append(turn.text)
                continue
            if turn.role == "bot":
                actions[turn.action] += 1
                if turn.reason_code is not None:
                    reasons[turn.reason_code] += 1
                if turn.action in ("handoff", "clarify"):
                    unanswered.update(normalise_question(text) for text in waiting)
            waiting = []
    return LogReport(
        conversations=conversations,
        turns=sum(turns.values()),
        customer_turns=turns["customer"],
        answered=actions["answer"],
        clarified=actions["clarify"],
        handed_over=actions["handoff"],
        handovers=handovers,
        feedback_up=feedback[1],
        feedback_down=feedback[-1],
        top_unanswered=tuple(UnansweredQuestion(t, n) for t, n in unanswered.most_common(top)),
        reasons=tuple((code, reasons[code]) for code in REASON_CODES if reasons[code]),
        resolution_rate=resolution_rate(outcomes),
        ratings=tuple(ratings),
    )


def report(target: LogTarget, *, top: int = 10) -> LogReport:
    """Count what the log at `target` (a config, a file or a URL) holds; synchronous, so call
    `build_report` instead from async code."""
    return read_log(target, lambda store: build_report(store, top=top))
