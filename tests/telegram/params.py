"""The Bot API methods the fake knows, their parameters, and decoding them from a request.

Telegram takes every parameter as a string (query, url-encoded or multipart form) or as JSON;
aiogram sends forms with objects and lists JSON-encoded. Parameters are decoded here by their
declared kind, so recorded calls hold ints, bools, dicts and lists rather than strings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

_INTEGER = re.compile(r"-?[0-9]+")

# Parameter kinds: int, float, str, bool, json, chat (an id or "@username"), file (file_id, URL or
# "attach://name" for a multipart part; decoded by the server, not here).
_COMMON_SEND = {
    "business_connection_id": "str",
    "message_thread_id": "int",
    "direct_messages_topic_id": "int",
    "disable_notification": "bool",
    "protect_content": "bool",
    "allow_paid_broadcast": "bool",
    "message_effect_id": "str",
    "suggested_post_parameters": "json",
    "reply_parameters": "json",
    "reply_markup": "json",
    "allow_sending_without_reply": "bool",
    "reply_to_message_id": "int",
}
_CAPTION = {
    "caption": "str",
    "parse_mode": "str",
    "caption_entities": "json",
    "show_caption_above_media": "bool",
}


@dataclass(frozen=True)
class MethodSpec:
    """What one Bot API method takes: every known parameter's kind and the required ones."""

    kinds: dict[str, str]
    required: frozenset[str] = field(default_factory=frozenset)


def _spec(required: str = "", **kinds: str) -> MethodSpec:
    return MethodSpec(kinds, frozenset(required.split()))


METHODS: dict[str, MethodSpec] = {
    "getMe": _spec(),
    "getUpdates": _spec(offset="int", limit="int", timeout="int", allowed_updates="json"),
    "sendMessage": _spec(
        "chat_id text",
        chat_id="chat",
        text="str",
        parse_mode="str",
        entities="json",
        link_preview_options="json",
        disable_web_page_preview="bool",
        **_COMMON_SEND,
    ),
    "sendMessageDraft": _spec(
        "chat_id draft_id",
        chat_id="int",
        draft_id="int",
        message_thread_id="int",
        text="str",
        parse_mode="str",
        entities="json",
        can_stop="bool",
        keep_on_stop="bool",
    ),
    "editMessageText": _spec(
        "text",
        business_connection_id="str",
        chat_id="chat",
        message_id="int",
        inline_message_id="str",
        text="str",
        parse_mode="str",
        entities="json",
        link_preview_options="json",
        disable_web_page_preview="bool",
        reply_markup="json",
    ),
    "editMessageReplyMarkup": _spec(
        business_connection_id="str",
        chat_id="chat",
        message_id="int",
        inline_message_id="str",
        reply_markup="json",
    ),
    "deleteMessage": _spec("chat_id message_id", chat_id="chat", message_id="int"),
    "sendChatAction": _spec(
        "chat_id action",
        business_connection_id="str",
        chat_id="chat",
        message_thread_id="int",
        action="str",
    ),
    "answerCallbackQuery": _spec(
        "callback_query_id",
        callback_query_id="str",
        text="str",
        show_alert="bool",
        url="str",
        cache_time="int",
    ),
    "setMyCommands": _spec("commands", commands="json", scope="json", language_code="str"),
    "getMyCommands": _spec(scope="json", language_code="str"),
    "deleteMyCommands": _spec(scope="json", language_code="str"),
    "createForumTopic": _spec(
        "chat_id name", chat_id="chat", name="str", icon_color="int", icon_custom_emoji_id="str"
    ),
    "closeForumTopic": _spec("chat_id message_thread_id", chat_id="chat", message_thread_id="int"),
    "reopenForumTopic": _spec("chat_id message_thread_id", chat_id="chat", message_thread_id="int"),
    "getChatMember": _spec("chat_id user_id", chat_id="chat", user_id="int"),
    "copyMessage": _spec(
        "chat_id from_chat_id message_id",
        chat_id="chat",
        from_chat_id="chat",
        message_id="int",
        video_start_timestamp="int",
        **_CAPTION,
        **_COMMON_SEND,
    ),
    "forwardMessage": _spec(
        "chat_id from_chat_id message_id",
        chat_id="chat",
        from_chat_id="chat",
        message_id="int",
        message_thread_id="int",
        direct_messages_topic_id="int",
        video_start_timestamp="int",
        disable_notification="bool",
        protect_content="bool",
        message_effect_id="str",
        suggested_post_parameters="json",
    ),
    "sendPhoto": _spec(
        "chat_id photo",
        chat_id="chat",
        photo="file",
        has_spoiler="bool",
        **_CAPTION,
        **_COMMON_SEND,
    ),
    "sendDocument": _spec(
        "chat_id document",
        chat_id="chat",
        document="file",
        thumbnail="file",
        disable_content_type_detection="bool",
        **_CAPTION,
        **_COMMON_SEND,
    ),
    "getFile": _spec("file_id", file_id="str"),
    "setWebhook": _spec(
        "url",
        url="str",
        certificate="file",
        ip_address="str",
        max_connections="int",
        allowed_updates="json",
        drop_pending_updates="bool",
        secret_token="str",
    ),
    "deleteWebhook": _spec(drop_pending_updates="bool"),
    "getWebhookInfo": _spec(),
}

_BY_LOWER = {name.lower(): name for name in METHODS}


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request."""

    filename: str
    data: bytes
    content_type: str | None


class ApiError(Exception):
    """A Bot API error answer: HTTP status, Telegram's description, optional retry_after."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(reason: str) -> ApiError:
    return ApiError(400, f"Bad Request: {reason}")


def canonical_method(name: str) -> str | None:
    """The method's canonical spelling; Bot API method names are case-insensitive."""
    return _BY_LOWER.get(name.lower())


def _decode(name: str, kind: str, raw: Any) -> Any:
    if not isinstance(raw, str) or kind in ("str", "file"):
        return raw
    if kind == "int" or (kind == "chat" and not raw.startswith("@")):
        if not _INTEGER.fullmatch(raw.strip()):
            raise bad_request(f"invalid {name} specified")
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "bool":
        return raw.strip().lower() in ("true", "1")
    if kind == "json":
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise bad_request(f"can't parse {name} JSON object") from None
    return raw


def decode_params(method: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Typed parameters of a call to `method`; missing required ones answer 400 like Telegram."""
    spec = METHODS[method]
    for name in sorted(spec.required):
        if raw.get(name) in (None, "") and not (name == "url" and method == "setWebhook"):
            if name == "text":
                raise bad_request("message text is empty")
            raise bad_request(f"{name} is empty")
    return {name: _decode(name, spec.kinds.get(name, "str"), value) for name, value in raw.items()}


async def read_request(
    request: web.Request, method: str
) -> tuple[dict[str, Any], dict[str, Upload]]:
    """Raw parameters from the query string and a JSON, url-encoded or multipart body.

    A file part named like a file parameter is that parameter; other file parts are uploads
    that parameters reference as "attach://<name>".
    """
    raw: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except json.JSONDecodeError:
            raise bad_request("can't parse JSON request body") from None
        if isinstance(body, dict):
            raw.update(body)
    elif request.can_read_body:
        form = await request.post()
        spec = METHODS.get(canonical_method(method) or "")
        for key, value in form.items():
            if isinstance(value, web.FileField):
                upload = Upload(value.filename, value.file.read(), value.content_type)
                if spec is not None and spec.kinds.get(key) == "file":
                    raw[key] = upload
                else:
                    uploads[key] = upload
            else:
                raw[key] = value
    return raw, uploads
