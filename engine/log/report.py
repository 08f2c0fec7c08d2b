"""Counts that say how the bot is doing, and the questions it could not answer.

The figures it shares with the console's analytics page and the HTML report (engine/analytics.py)
are defined as there: conversations that started in the period, on the channel, in which a
customer wrote; "handed over" counts those conversations with a hand-over, the reasons are the
hand-overs', and the unanswered questions are those the bot handed over, clarified or found
out of scope. Turn counts (answered, clarified, the `handed_over` field, reasons of bot turns)
stay per bot turn.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from engine.log.export import LogTarget, read_log
from engine.log.port import ConversationStore
from engine.log.records import REASON_CODES, ReasonCode
from engine.log.summary import Outcome, Period
from engine.resolution import LoggedTurn, conversation_resolved


@dataclass(frozen=True, slots=True)
class UnansweredQuestion:
    """A customer message whose next reply was the bot handing over, asking to clarify or
    finding it out of scope.

    `text` is the normalised message; `count` how many messages normalised to it.
    """

    text: str
    count: int


@dataclass(frozen=True, slots=True)
class LogReport:
    """Totals over a period's conversations (the whole log by default); `answered`,
    `clarified` and `handed_over` count bot turns, `conversations_handed_over` conversations
    with a hand-over in them (the console's "handed over")."""

    conversations: int
    turns: int
    customer_turns: int
    answered: int
    clarified: int
    handed_over: int
    # Hand-overs opened in the conversations with a customer message.
    handovers: int
    feedback_up: int
    feedback_down: int
    top_unanswered: tuple[UnansweredQuestion, ...]
    # Bot turns per reason code, in REASON_CODES order; codes never given are left out.
    reasons: tuple[tuple[ReasonCode, int], ...] = ()
    # Conversations with a customer message: what the console's figures count.
    with_customer: int = 0
    # Hand-overs per reason code ("other" for none), most first, as the console counts them.
    handover_reasons: tuple[tuple[str, int], ...] = ()
    conversations_handed_over: int = 0
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
            f"conversations     {self.conversations} ({self.with_customer} with a customer "
            "message: the figures below count those)",
            f"turns             {self.turns} ({self.customer_turns} from customers)",
            f"answered          {self.answered}",
            f"clarified         {self.clarified}",
            f"handed over       {self.conversations_handed_over} ({self.handovers} handovers "
            "opened)",
            f"feedback          +{self.feedback_up} / -{self.feedback_down}",
        ]
        if self.resolution_rate is not None:
            lines.append(f"resolution rate   {self.resolution_rate:.1%} (the bot's answer stood)")
        if self.csat is not None:
            lines.append(f"CSAT              {self.csat:.2f} of 5 ({len(self.ratings)} ratings)")
        if self.handover_reasons:
            lines.append("hand-overs by reason:")
            lines += [f"  {count:5d}  {code}" for code, count in self.handover_reasons]
        if self.reasons:
            lines.append("bot turns by reason:")
            lines += [f"  {count:5d}  {code}" for code, count in self.reasons]
        lines.append("top unanswered questions (handed over, clarified or out of scope):")
        lines += [f"  {q.count:5d}  {q.text}" for q in self.top_unanswered] or ["  (none)"]
        return "\n".join(lines)


def normalise_question(text: str) -> str:
    """Lower-case `text` with punctuation dropped and whitespace collapsed, for grouping."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


async def build_report(
    store: ConversationStore, *, top: int = 10, period: Period | None = None
) -> LogReport:
    """Count what the log holds for the conversations of `period` (default: all), from the
    aggregates the database computes (`summarise`)."""
    summary = await store.summarise(period or Period())
    turns: Counter[str] = Counter()
    actions: Counter[str | None] = Counter()
    reasons: Counter[ReasonCode] = Counter()
    for role, action, code, count in summary.turn_counts:
        turns[role] += count
        if role == "bot":
            actions[action] += count
            if code is not None:
                reasons[code] += count
    unanswered = Counter(normalise_question(q.text) for q in summary.questions)
    counted = {outcome.conversation_id for outcome in summary.outcomes}
    handovers = [h for h in summary.handovers if h.conversation_id in counted]
    resolved = sum(
        conversation_resolved(_last_turns(outcome), handed_over=outcome.handovers > 0)
        for outcome in summary.outcomes
    )
    outcomes = len(summary.outcomes)
    return LogReport(
        conversations=summary.conversations,
        turns=sum(turns.values()),
        customer_turns=turns["customer"],
        answered=actions["answer"],
        clarified=actions["clarify"],
        handed_over=actions["handoff"],
        handovers=len(handovers),
        feedback_up=summary.feedback_up,
        feedback_down=summary.feedback_down,
        top_unanswered=tuple(UnansweredQuestion(t, n) for t, n in unanswered.most_common(top)),
        reasons=tuple((code, reasons[code]) for code in REASON_CODES if reasons[code]),
        resolution_rate=round(resolved / outcomes, 4) if outcomes else None,
        ratings=summary.ratings,
        with_customer=outcomes,
        conversations_handed_over=sum(outcome.handovers > 0 for outcome in summary.outcomes),
        handover_reasons=tuple(Counter(h.reason_code or "other" for h in handovers).most_common()),
    )


def _last_turns(outcome: Outcome) -> list[LoggedTurn]:
    """What decides resolution: the bot's last turn, and whether anyone spoke after it."""
    last = [LoggedTurn("bot", outcome.last_bot_action, outcome.last_bot_feedback)]
    return [*last, LoggedTurn("customer")] if outcome.followed else last


def report(target: LogTarget, *, top: int = 10, period: Period | None = None) -> LogReport:
    """Count what the log at `target` (a config, a file or a URL) holds for `period`;
    synchronous, so call `build_report` instead from async code."""
    return read_log(target, lambda store: build_report(store, top=top, period=period))
