"""The conversation log as a port: one Protocol, a store per database, chosen by URL."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Literal, Protocol, Self

from engine.log.activity import Activity, ActivityMark
from engine.log.config import LogConfig
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
from engine.log.summary import LogSummary, Period


class ConversationStore(Protocol):
    """Everything the engine, the front ends, the reports and training do with the log.

    Writes return once committed. Text is redacted before it is stored when the config says
    so. Erasure removes a customer from the database itself, not only from the answers.
    """

    @property
    def url(self) -> str:
        """The database, as a URL without its password."""
        ...

    async def close(self) -> None:
        """Finish every write queued so far and release the database."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    # Writes.

    async def start_conversation(
        self, channel: str, external_user_id: str, *, language: str | None = None
    ) -> int:
        """Start a conversation for a customer on a channel; returns its id."""
        ...

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
        ...

    async def set_delivery(self, turn_id: int, delivery: Delivery) -> None:
        """Record whether a turn reached the customer."""
        ...

    async def claim_delivery(self, turn_id: int, *, stale_after_s: float) -> bool:
        """Take a "pending" turn for sending; False when it is not pending or another sender
        holds it. A claim older than `stale_after_s` (its sender died) may be taken again."""
        ...

    async def release_delivery(self, turn_id: int) -> None:
        """Give up a claim on a turn not sent (Telegram unreachable): the next pass retries."""
        ...

    async def close_conversation(self, conversation_id: int) -> None:
        """Mark a conversation finished; once only."""
        ...

    async def add_feedback(self, turn_id: int, value: Literal[1, -1]) -> None:
        """A customer's thumbs up or down on a reply; a second vote replaces the first."""
        ...

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
        ...

    async def close_handover(self, handover_id: int, *, operator_id: str | None = None) -> bool:
        """Mark a handover closed; True for the call that closed it, False when it was closed
        already (closing twice changes nothing): of racing closers, one asks for a rating."""
        ...

    async def assign_handover(
        self, handover_id: int, assignee: str, *, take_over: bool = True, announced: bool = False
    ) -> str | None:
        """Give an open handover to an operator; returns who holds it now (None: not open).

        With `take_over` off a handover that has an operator keeps it (a first reply takes it).
        `announced`: the operator desk's topic knows already (it was taken there)."""
        ...

    async def claim_assignment_notice(self, handover_id: int, assignee: str) -> bool:
        """Whether the caller is the one to announce `assignee` in the handover's forum topic:
        true once per change of holder, for one of several processes asking."""
        ...

    async def ask_rating(self, handover_id: int, *, at: float | None = None) -> None:
        """Note that the customer was asked to rate a handover (the first time counts), now or
        `at` (Unix seconds, for state brought over from elsewhere)."""
        ...

    async def rate_handover(self, handover_id: int, score: int, *, at: float | None = None) -> bool:
        """Store the customer's rating (1-5) of a handover they were asked to rate; False when
        it was not asked for or is rated already (the first answer counts). Dated now or `at`."""
        ...

    async def assign_topic(self, handover_id: int, topic_id: int) -> None:
        """Note the operator-desk forum topic that carries a handover."""
        ...

    async def erase_customer(self, channel: str, external_user_id: str) -> int:
        """Delete every trace of a customer; returns how many conversations went."""
        ...

    # Reads.

    async def recent_turns(self, conversation_id: int, limit: int = 10) -> list[Turn]:
        """The last `limit` turns of a conversation, oldest first."""
        ...

    async def latest_turns(
        self, channel: str, external_user_id: str, limit: int = 10
    ) -> tuple[int | None, list[Turn]]:
        """The customer's most recent conversation on a channel (as `latest_conversation_id`)
        and its last `limit` turns, oldest first, read together; (None, []) when there is none."""
        ...

    async def get_conversation(self, conversation_id: int) -> Conversation | None:
        """A conversation with its turns and handovers, or None."""
        ...

    async def get_turn(self, turn_id: int) -> Turn | None:
        """One turn, or None."""
        ...

    async def list_conversations(
        self, channel: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[ConversationSummary]:
        """Conversations, most recently active first, a page at a time."""
        ...

    async def undelivered_turns(self, channel: str) -> list[tuple[str, Turn]]:
        """Turns still "pending" delivery on a channel, oldest first, with their customers."""
        ...

    async def latest_conversation_id(self, channel: str, external_user_id: str) -> int | None:
        """The customer's most recent conversation on a channel, if any."""
        ...

    async def open_conversation_id(self, channel: str, external_user_id: str) -> int | None:
        """The customer's most recent conversation on a channel unless it was closed; None
        when it was or there is none. One indexed row: no turns are read."""
        ...

    # Hand-overs and the operator desk's topics.

    async def open_handover_for(self, conversation_id: int) -> Handover | None:
        """The conversation's open handover, if any."""
        ...

    async def awaiting_rating(self, conversation_id: int, *, since: float) -> Handover | None:
        """The conversation's newest handover when it is closed and its rating, asked for at
        `since` or later, is not given yet; else None."""
        ...

    async def handover_ratings(self, since: float | None = None) -> list[int]:
        """The customers' ratings of handovers (CSAT), rated at `since` or later."""
        ...

    async def handover_for_topic(self, topic_id: int) -> Handover | None:
        """The open handover a forum topic belongs to, if any."""
        ...

    async def latest_topic(self, channel: str, external_user_id: str) -> int | None:
        """The forum topic of the customer's newest handover that had one."""
        ...

    async def open_handovers(self, channel: str) -> list[tuple[str, Handover]]:
        """Every open handover on a channel, oldest first, with its customer."""
        ...

    # Exports: training, reports and copies read the log through these only.

    def export_conversations(self, *, batch_size: int = 500) -> AsyncGenerator[Conversation, None]:
        """Every conversation in id order, with its turns, hits, feedback and handovers."""
        ...

    async def row_counts(self) -> dict[str, int]:
        """Rows per table, counted by the database: what a copy compares."""
        ...

    async def summarise(self, period: Period) -> LogSummary:
        """The aggregates analytics shows for the conversations of a period, computed by the
        database in one snapshot (engine/log/summary.py)."""
        ...

    async def activity(self, after: ActivityMark | None = None) -> Activity:
        """New turns and hand-overs since `after` (none when it is None), and the new mark:
        what the console's live updates follow."""
        ...

    async def restore(self, conversations: Sequence[Conversation]) -> None:
        """Write exported conversations with their ids, replacing rows with the same ids.

        Text is stored as given (it was redacted when first logged). Used by `copy`.
        """
        ...


StoreOpener = Callable[[LogConfig, bool], Awaitable[ConversationStore]]


async def _open_sqlite(config: LogConfig, create: bool) -> ConversationStore:
    from engine.log.store import ConversationLog

    return await ConversationLog.open(config=config, create=create)


async def _open_postgres(config: LogConfig, create: bool) -> ConversationStore:
    # Imported here: asyncpg is the optional postgres extra.
    from engine.log.postgres import PostgresConversationLog

    return await PostgresConversationLog.open(config)


# One entry per URL scheme.
STORES: dict[str, StoreOpener] = {"sqlite": _open_sqlite, "postgresql": _open_postgres}


async def open_store(config: LogConfig, *, create: bool = True) -> ConversationStore:
    """Open the log `config` points at, creating or migrating its schema.

    With `create=False` a missing SQLite file is a FileNotFoundError (readers never make one).
    """
    opener = STORES.get(config.scheme)
    if opener is None:
        raise ValueError(
            f"log url {config.location!r}: unknown database {config.scheme!r}; "
            f"use one of {sorted(STORES)} (sqlite:///PATH, postgresql://user@host/db)"
        )
    return await opener(config, create)
