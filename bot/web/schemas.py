"""The OpenAI-compatible chat API's bodies, and the `supportbot` extension on its replies."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.web.talk import Relayed
from engine import FinalReply


class ContentPart(BaseModel):
    """A part of a message's content; only text parts are read."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """One message of the request; only the last one (the customer's) is answered."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None


class ChatCompletionRequest(BaseModel):
    """OpenAI's request body; sampling parameters are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=256)
    stream: bool = False
    user: str | None = Field(
        default=None,
        max_length=128,
        description="Your id for the customer; the bot's memory is its conversation",
    )


class Source(BaseModel):
    """A knowledge-base entry retrieved for the reply, best first."""

    id: str
    question: str
    score: float
    source: str


class Option(BaseModel):
    """A choice offered by a clarifying question; send its number (or its words) to pick it."""

    number: int
    id: str
    question: str


class SentimentOut(BaseModel):
    label: str
    score: float


class Extension(BaseModel):
    """What the bot decided: the `supportbot` field of a completion and of its last chunk.

    `action` is answer, clarify or handoff (the bot's), or relayed (an operator has the
    conversation and will reply; read those replies from the conversation's events). `text`
    is the authoritative reply: in the rare case a streamed generated answer failed the
    grounding check, it differs from the streamed text and replaces it.
    """

    conversation_id: int
    turn_id: int
    action: Literal["answer", "clarify", "handoff", "relayed"]
    reason: str
    escalate: bool
    text: str
    sources: list[Source] = []
    options: list[Option] = []
    sentiment: SentimentOut | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"


class Usage(BaseModel):
    """Words, not model tokens: the bot may answer without a language model."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    supportbot: Extension


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "supportbot"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


def extension(said: FinalReply | Relayed) -> Extension:
    """The extension field for a finished reply."""
    if isinstance(said, Relayed):
        return Extension(
            conversation_id=said.conversation_id,
            turn_id=said.turn_id,
            action="relayed",
            reason=said.reason,
            escalate=False,
            text=said.text,
        )
    return Extension(
        conversation_id=said.conversation_id,
        turn_id=said.turn_id,
        action=said.action,
        reason=said.reason,
        escalate=said.escalate,
        text=said.text,
        sources=[
            Source(id=h.entry.id, question=h.entry.question, score=h.score, source=h.entry.source)
            for h in said.hits
        ],
        options=[
            Option(number=n, id=e.id, question=e.question) for n, e in enumerate(said.options, 1)
        ],
        sentiment=SentimentOut(label=said.sentiment.label, score=said.sentiment.score),
    )
