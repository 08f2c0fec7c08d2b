"""REST for conversations: list, read, rate a turn, hand over, close, live events, erase."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from bot.web.access import CHANNEL, AdminKey, ChatKey, Served, Services, customer_id, owns
from bot.web.errors import ApiError, documented
from bot.web.period import CHANNELS, period_of
from engine.log import Conversation, Turn, build_report
from engine.log.records import ConversationSummary

router = APIRouter(tags=["conversations"])
_KEYED = documented(401, 403, 429)
_FOUND = documented(400, 401, 403, 404, 429)
Id = Annotated[int, Path(ge=1, le=2**62)]


class RetrievedOut(BaseModel):
    faq_id: str
    score: float


class TurnOut(BaseModel):
    """One message: the customer's, the bot's (with what it decided) or an operator's."""

    id: int
    role: str
    text: str
    created_at: float
    action: str | None = None
    reason: str | None = None
    sentiment_label: str | None = None
    sentiment_score: float | None = None
    retrieved: list[RetrievedOut] = []
    feedback: int | None = None


class SummaryOut(BaseModel):
    id: int
    channel: str
    external_user_id: str
    created_at: float
    updated_at: float
    closed_at: float | None
    turns: int
    open_handover: bool


class ConversationOut(BaseModel):
    id: int
    channel: str
    external_user_id: str
    created_at: float
    updated_at: float
    closed_at: float | None
    open_handover: bool
    turns: list[TurnOut]


class Feedback(BaseModel):
    value: Literal[1, -1] = Field(description="1: helpful (👍), -1: not helpful (👎)")


class HandoverIn(BaseModel):
    reason: str = Field(default="human_requested", min_length=1, max_length=200)


class Done(BaseModel):
    ok: bool = True
    conversation_id: int | None = None


class Erased(BaseModel):
    conversations: int


class ReportOut(BaseModel):
    """The text report's figures (`python -m engine.log report`), with its definitions."""

    conversations: int = Field(description="conversations started in the period, on the channel")
    with_customer: int = Field(
        description="those with a customer message: the conversation figures count these"
    )
    turns: int
    customer_turns: int
    answered: int = Field(description="bot turns that answered")
    clarified: int = Field(description="bot turns that asked to clarify")
    handoff_turns: int = Field(
        description="bot turns that handed over or offered a person (the handoff action), "
        "whether or not a hand-over was opened; handed_over counts conversations with one"
    )
    handed_over: int = Field(description="conversations with a hand-over")
    handovers: int = Field(description="hand-overs opened in those conversations")
    handover_reasons: dict[str, int] = Field(
        description='hand-overs per reason code ("other" for none), most first'
    )
    resolution_rate: float | None = Field(
        description="share of conversations whose bot answer stood; null without any"
    )
    csat: float | None = Field(description="mean rating (1-5) of resolved hand-overs")
    ratings: int = Field(description="how many ratings the CSAT is the mean of")
    feedback_up: int
    feedback_down: int
    top_unanswered: list[dict[str, str | int]] = Field(
        description="questions the bot handed over, clarified or found out of scope"
    )
    reasons: dict[str, int] = Field(
        default={}, description="bot turns per reason code (why it answered, asked or handed over)"
    )


@router.get("/api/conversations", responses=_KEYED)
async def list_conversations(
    key: AdminKey,
    found: Served,
    channel: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[SummaryOut]:
    """Conversations, most recently active first (admin keys)."""
    rows = await found.engine.conversation_log.list_conversations(channel, limit, offset)
    return [_summary(row) for row in rows]


@router.get("/api/conversations/{conversation_id}", responses=_FOUND)
async def read_conversation(conversation_id: Id, key: ChatKey, found: Served) -> ConversationOut:
    """A conversation with every turn; chat keys read only their own customers'."""
    conversation = await _owned(found, key, conversation_id)
    handover = await found.engine.conversation_log.open_handover_for(conversation_id)
    return ConversationOut(
        id=conversation.id,
        channel=conversation.channel,
        external_user_id=conversation.external_user_id,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
        closed_at=conversation.closed_at,
        open_handover=handover is not None,
        turns=[_turn(t) for t in conversation.turns],
    )


@router.post("/api/conversations/{conversation_id}/turns/{turn_id}/feedback", responses=_FOUND)
async def rate_turn(
    conversation_id: Id, turn_id: Id, body: Feedback, key: ChatKey, found: Served
) -> Done:
    """👍 (1) or 👎 (-1) on a reply of the bot or an operator; a second vote replaces the first."""
    await _owned(found, key, conversation_id)
    turn = await found.engine.conversation_log.get_turn(turn_id)
    if turn is None or turn.conversation_id != conversation_id:
        raise ApiError(404, f"conversation {conversation_id} has no turn {turn_id}")
    if turn.role == "customer":
        raise ApiError(400, "feedback rates replies; this turn is the customer's", param="turn_id")
    await found.engine.conversation_log.add_feedback(turn_id, body.value)
    return Done(conversation_id=conversation_id)


@router.post("/api/conversations/{conversation_id}/handover", responses=_FOUND)
async def hand_over(conversation_id: Id, body: HandoverIn, key: ChatKey, found: Served) -> Done:
    """Give the conversation to a human operator (no-op when one has it already)."""
    await _owned(found, key, conversation_id)
    log = found.engine.conversation_log
    if await log.open_handover_for(conversation_id) is None:
        await log.open_handover(conversation_id, body.reason)
    return Done(conversation_id=conversation_id)


@router.post("/api/conversations/{conversation_id}/close", responses=_FOUND)
async def close(conversation_id: Id, key: AdminKey, found: Served) -> Done:
    """End a conversation (and its hand-over); the customer's next message starts a new one."""
    await _owned(found, key, conversation_id)
    log = found.engine.conversation_log
    handover = await log.open_handover_for(conversation_id)
    if handover is not None:
        await log.close_handover(handover.id, operator_id=f"api:{key.name}")
    await log.close_conversation(conversation_id)
    return Done(conversation_id=conversation_id)


@router.get(
    "/api/conversations/{conversation_id}/events",
    responses={
        **_FOUND,
        200: {
            "description": "SSE: `operator` events (a human's reply) and `handover` events "
            "(open or closed)",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
    },
    response_class=StreamingResponse,
)
async def events(
    conversation_id: Id,
    key: ChatKey,
    found: Served,
    request: Request,
    after: Annotated[int, Query(ge=0, le=2**62, description="last turn id seen")] = 0,
) -> StreamingResponse:
    """Operators' replies as they are logged, and hand-over changes, as server-sent events."""
    await _owned(found, key, conversation_id)
    return StreamingResponse(
        _watch(found, conversation_id, after, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.delete("/v1/users/{user}", responses=_KEYED, tags=["chat"])
async def erase_own_customer(
    user: Annotated[str, Path(min_length=1, max_length=128)], key: ChatKey, found: Served
) -> Erased:
    """Erase everything logged about one of your customers (as named in `user`), for good."""
    erased = await found.engine.conversation_log.erase_customer(CHANNEL, customer_id(key, user))
    return Erased(conversations=erased)


@router.delete("/api/customers/{channel}/{external_user_id}", responses=_KEYED)
async def erase_customer(
    channel: Annotated[str, Path(min_length=1, max_length=64)],
    external_user_id: Annotated[str, Path(min_length=1, max_length=200)],
    key: AdminKey,
    found: Served,
) -> Erased:
    """Erase a customer of any channel, as /forget does on Telegram (admin keys)."""
    erased = await found.engine.conversation_log.erase_customer(channel, external_user_id)
    return Erased(conversations=erased)


@router.get("/api/report", responses=documented(400, 401, 403, 429))
async def log_report(
    key: AdminKey,
    found: Served,
    top: Annotated[int, Query(ge=1, le=100)] = 10,
    since: Annotated[
        str | None,
        Query(max_length=10, description="conversations started from this UTC day (YYYY-MM-DD)"),
    ] = None,
    until: Annotated[
        str | None, Query(max_length=10, description="up to this UTC day, included (YYYY-MM-DD)")
    ] = None,
    channel: Annotated[
        str | None,
        Query(
            max_length=64,
            description=f"{', '.join(CHANNELS)} or another channel the log holds; "
            "all (or none): every one",
        ),
    ] = None,
) -> ReportOut:
    """The report `python -m engine.log report` prints, for the same period and channel
    (admin keys)."""
    period = await period_of(found.engine.conversation_log, since, until, channel)
    counted = await build_report(found.engine.conversation_log, top=top, period=period)
    return ReportOut(
        conversations=counted.conversations,
        with_customer=counted.with_customer,
        turns=counted.turns,
        customer_turns=counted.customer_turns,
        answered=counted.answered,
        clarified=counted.clarified,
        handoff_turns=counted.handed_over,
        handed_over=counted.conversations_handed_over,
        handovers=counted.handovers,
        handover_reasons=dict(counted.handover_reasons),
        resolution_rate=counted.resolution_rate,
        csat=counted.csat,
        ratings=len(counted.ratings),
        feedback_up=counted.feedback_up,
        feedback_down=counted.feedback_down,
        top_unanswered=[{"text": q.text, "count": q.count} for q in counted.top_unanswered],
        reasons={str(code): count for code, count in counted.reasons},
    )


async def _owned(found: Services, key: ChatKey, conversation_id: int) -> Conversation:
    conversation = await found.engine.conversation_log.get_conversation(conversation_id)
    # Another customer's conversation reads as missing, so ids cannot be probed.
    if conversation is None or not owns(key, conversation.channel, conversation.external_user_id):
        raise ApiError(404, f"no conversation {conversation_id}", code="conversation_not_found")
    return conversation


async def _watch(
    found: Services, conversation_id: int, after: int, request: Request
) -> AsyncIterator[str]:
    log = found.engine.conversation_log
    last = after
    handed: bool | None = None
    beat = time.monotonic()
    while not await request.is_disconnected():
        for turn in await log.recent_turns(conversation_id, 20):
            if turn.id > last and turn.role == "operator":
                yield _event("operator", {"turn_id": turn.id, "text": turn.text})
            last = max(last, turn.id)
        now_open = await log.open_handover_for(conversation_id) is not None
        if now_open != handed:
            handed = now_open
            yield _event("handover", {"open": now_open})
        if time.monotonic() - beat > 15:
            beat = time.monotonic()
            yield ": keep-alive\n\n"
        await asyncio.sleep(found.config.poll_interval_s)


def _event(name: str, data: dict[str, object]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _turn(turn: Turn) -> TurnOut:
    return TurnOut(
        id=turn.id,
        role=turn.role,
        text=turn.text,
        created_at=turn.created_at,
        action=turn.action,
        reason=turn.reason,
        sentiment_label=turn.sentiment_label,
        sentiment_score=turn.sentiment_score,
        retrieved=[RetrievedOut(faq_id=r.faq_id, score=r.score) for r in turn.retrieved],
        feedback=turn.feedback,
    )


def _summary(row: ConversationSummary) -> SummaryOut:
    return SummaryOut(
        id=row.id,
        channel=row.channel,
        external_user_id=row.external_user_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        closed_at=row.closed_at,
        turns=row.turns,
        open_handover=row.open_handover,
    )
