"""The OpenAI-compatible chat API: /v1/chat/completions (streamed or not) and /v1/models.

The customer is the request's `user` field (or the X-Supportbot-User header); only the last
user message is read, because the bot's memory is its own conversation log, not what the
caller says the conversation was.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from bot.web.access import CHANNEL, ChatKey, Served, customer_id
from bot.web.errors import ApiError, documented
from bot.web.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    Model,
    ModelList,
    Usage,
    extension,
)
from bot.web.talk import Relayed, say
from engine import FinalReply, TextDelta

USER_HEADER = "X-Supportbot-User"
_USER_MAX = 128  # as the `user` field
router = APIRouter(tags=["chat"])


@router.get("/v1/models", responses=documented(401, 403, 429))
async def models(key: ChatKey, found: Served) -> ModelList:
    """The one model this server answers as."""
    return ModelList(data=[Model(id=found.config.model_name)])


@router.get("/v1/models/{model}", responses=documented(401, 403, 404, 429))
async def model(model: str, key: ChatKey, found: Served) -> Model:
    if model != found.config.model_name:
        raise ApiError(404, _unknown_model(model, found.config.model_name), code="model_not_found")
    return Model(id=model)


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    responses={
        **documented(400, 401, 403, 404, 413, 429),
        200: {
            "description": "A chat.completion, or with `stream` an SSE stream of "
            "chat.completion.chunk objects ending with `data: [DONE]`",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
    },
)
async def complete(
    request: ChatCompletionRequest,
    key: ChatKey,
    found: Served,
    http: Request,
) -> Response:
    """Answer the last user message as the support bot, in OpenAI's format.

    The reply's `supportbot` field (on the completion, or on the stream's last chunk) says
    what the bot did: action, reason, sources, clarify options and sentiment.
    """
    user_header = _user_header(http)
    config = found.config
    if request.model != config.model_name:
        raise ApiError(
            404,
            _unknown_model(request.model, config.model_name),
            code="model_not_found",
            param="model",
        )
    user = request.user or user_header
    if not user or not user.strip():
        raise ApiError(
            400,
            f"say who the customer is: the `user` field or the {USER_HEADER} header "
            "(your stable id for them; their conversation and memory hang on it)",
            code="missing_user",
            param="user",
        )
    text = _last_user_text(request)
    if len(text) > config.max_message_chars:
        raise ApiError(
            400,
            f"the message has {len(text)} characters; the limit is {config.max_message_chars}",
            code="message_too_long",
            param="messages",
        )
    ident = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    said = say(found, customer_id(key, user.strip()), text)
    if request.stream:
        return StreamingResponse(
            _chunks(said, ident, created, request.model),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    final: FinalReply | Relayed | None = None
    async with contextlib.aclosing(said) as events:
        async for event in events:
            if not isinstance(event, TextDelta):
                final = event
    assert final is not None, "a reply always ends with a FinalReply or Relayed"
    words = len(final.text.split())
    asked = len(text.split())
    completion = ChatCompletion(
        id=ident,
        created=created,
        model=request.model,
        choices=[Choice(message=AssistantMessage(content=final.text))],
        usage=Usage(prompt_tokens=asked, completion_tokens=words, total_tokens=asked + words),
        supportbot=extension(final),
    )
    # Built and checked once above; FastAPI would validate a returned model a second time,
    # and pydantic writes the JSON itself at a fraction of the cost of json.dumps on its dict.
    return Response(completion.model_dump_json(), media_type="application/json")


async def _chunks(
    said: AsyncIterator[TextDelta | FinalReply | Relayed], ident: str, created: int, model: str
) -> AsyncIterator[str]:
    head = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model}

    def chunk(delta: dict[str, str], finish: str | None = None, **extra: object) -> str:
        body = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {_json({**body, **extra})}\n\n"

    # A reply streams a chunk per word: each is the same frame around its own text, so only
    # the text is encoded for it (the frames are the bytes chunk() would write).
    before, _, after = chunk({"content": _SLOT}).rpartition(_json(_SLOT))
    yield chunk({"role": "assistant", "content": ""})
    async with contextlib.aclosing(said) as events:  # type: ignore[type-var]
        async for event in events:
            if isinstance(event, TextDelta):
                yield f"{before}{_json(event.text)}{after}"
            else:
                if isinstance(event, Relayed):
                    yield chunk({"content": event.text})
                yield chunk({}, "stop", supportbot=extension(event).model_dump())
    yield "data: [DONE]\n\n"


# json.dumps(..., ensure_ascii=False) builds a new encoder on every call; this one is reused.
_json = json.JSONEncoder(ensure_ascii=False).encode
_SLOT = "\x00"  # the text's place in a frame: the frame's last string


def _last_user_text(request: ChatCompletionRequest) -> str:
    last = request.messages[-1]
    if last.role != "user":
        raise ApiError(
            400,
            f"the last message must be the customer's (role 'user'), got {last.role!r}",
            code="invalid_messages",
            param="messages",
        )
    if isinstance(last.content, str):
        text = last.content
    else:
        text = "\n".join(p.text for p in last.content or [] if p.type == "text" and p.text)
    if not text.strip():
        raise ApiError(
            400, "the last user message has no text", code="empty_message", param="messages"
        )
    return text.strip()


def _user_header(http: Request) -> str | None:
    """The X-Supportbot-User header, checked as a FastAPI Header parameter would check it.

    Read here because FastAPI's parameter machinery costs every request about 35 us for it.
    """
    found = http.headers.get(USER_HEADER)
    if found is not None and len(found) > _USER_MAX:
        where = f"header.{USER_HEADER}"
        raise ApiError(
            400,
            f"{where}: String should have at most {_USER_MAX} characters",
            code="invalid_request",
            param=where,
        )
    return found


def _unknown_model(asked: str, served: str) -> str:
    return f"the model {asked!r} does not exist here; use {served!r} (see GET /v1/models)"


__all__ = ["CHANNEL", "USER_HEADER", "router"]
