"""The fake's Bot API methods over its `World`: what each checks, changes and returns.

Updates, webhooks and rate limits live in `fake_api`; everything here is synchronous.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from tests.telegram import media
from tests.telegram.html import EntityParseError, parse_html, utf16_len
from tests.telegram.params import ApiError, Upload, bad_request
from tests.telegram.world import DEFAULT_ICON_COLOR, Chat, StoredFile, StoredMessage, Topic, World

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CHAT_ACTIONS = frozenset(
    [
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    ]
)
_BUTTON_ACTIONS = frozenset(
    [
        "callback_data",
        "url",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "callback_game",
        "pay",
        "web_app",
        "copy_text",
    ]
)
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
_TEXT_BUTTON = (
    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
)
_QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
CALLBACK_TEXT_LIMIT = 200
# Methods that reach a chat: a user who blocked the bot gets none of them.
CHAT_METHODS = frozenset(
    {
        "sendMessage",
        "sendMessageDraft",
        "sendPhoto",
        "sendDocument",
        "copyMessage",
        "forwardMessage",
        "editMessageText",
        "editMessageReplyMarkup",
        "sendChatAction",
    }
)


class Methods:
    """Bot API methods that read and change the world; each returns the `result` Telegram sends."""

    def __init__(self, world: World, bot_user: dict[str, Any]) -> None:
        self.world = world
        self.bot_user = bot_user
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.callback_queries: dict[str, dict[str, Any] | None] = {}
        self.sender = {k: bot_user[k] for k in ("id", "is_bot", "first_name", "username")}
        self._handlers: dict[str, Callable[[dict[str, Any], dict[str, Upload]], Any]] = {
            "getMe": lambda p, u: dict(self.bot_user),
            "sendMessage": self._send_message,
            "sendMessageDraft": self._send_message_draft,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "sendChatAction": self._send_chat_action,
            "answerCallbackQuery": self._answer_callback_query,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": lambda p, u: self.commands.get(_scope_key(p), []),
            "deleteMyCommands": self._delete_my_commands,
            "createForumTopic": self._create_forum_topic,
            "closeForumTopic": lambda p, u: self._set_topic_closed(p, closed=True),
            "reopenForumTopic": lambda p, u: self._set_topic_closed(p, closed=False),
            "getChatMember": self._get_chat_member,
            "copyMessage": self._copy_message,
            "forwardMessage": self._forward_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "getFile": self._get_file,
        }
        self.files_used: dict[str, StoredFile] = {}

    def call(self, method: str, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        """Run one method; raises `ApiError` with Telegram's answer when it fails."""
        self.files_used = {}
        chat_id = params.get("chat_id")
        if method in CHAT_METHODS and chat_id in self.world.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return self._handlers[method](params, uploads)

    # Sending

    def _send_message(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        text, entities = _formatted(params, "text", "entities", TEXT_LIMIT, "message is too long")
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        return self._post(params, content).payload

    def _send_message_draft(self, params: dict[str, Any], uploads: dict[str, Upload]) -> bool:
        chat = self._chat(params["chat_id"])
        if chat.type != "private":
            raise bad_request("message drafts can be sent only to private chats")
        if params["draft_id"] == 0:
            raise bad_request("draft_id must be non-zero")
        if params.get("text"):
            _formatted(params, "text", "entities", TEXT_LIMIT, "message is too long")
        return True

    def _send_photo(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        stored = self._file(params, "photo", uploads, "photo")
        content: dict[str, Any] = {"photo": media.photo_sizes(stored, (90, 68), (1280, 960))}
        content.update(_caption(params))
        return self._post(params, content).payload

    def _send_document(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        stored = self._file(params, "document", uploads, "document")
        content: dict[str, Any] = {"document": media.document(stored), **_caption(params)}
        return self._post(params, content).payload

    def _copy_message(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        source = self._source(params, "message to copy not found")
        content = source.content
        if "caption" in params:
            content.pop("caption", None)
            content.pop("caption_entities", None)
            content.update(_caption(params))
        return {"message_id": self._post(params, content).payload["message_id"]}

    def _forward_message(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        source = self._source(params, "message to forward not found")
        origin = {
            "type": "user",
            "date": source.payload["date"],
            "sender_user": source.payload["from"],
        }
        posted = self._post(params, source.content)
        posted.payload["forward_origin"] = origin
        return posted.payload

    def _post(self, params: dict[str, Any], content: dict[str, Any]) -> StoredMessage:
        chat = self._chat(params["chat_id"])
        thread_id = params.get("message_thread_id")
        if thread_id is not None and chat.is_forum and thread_id not in chat.topics:
            raise bad_request("message thread not found")
        reply_to = None
        reply = params.get("reply_parameters") or {}
        reply_id = reply.get("message_id", params.get("reply_to_message_id"))
        if reply_id is not None:
            reply_chat = reply.get("chat_id", chat.id)
            reply_to = self.world.message(int(reply_chat), int(reply_id))
            lenient = reply.get("allow_sending_without_reply") or params.get(
                "allow_sending_without_reply"
            )
            if reply_to is None and not lenient:
                raise bad_request("message to be replied not found")
        return self.world.add_message(
            chat,
            self.sender,
            content,
            from_bot=True,
            thread_id=thread_id,
            reply_to=reply_to,
            reply_markup=_inline_markup(params.get("reply_markup")),
        )

    # Editing and deleting

    def _edit_message_text(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        message = self._editable(params)
        if "text" not in message.payload:
            raise bad_request("there is no text in the message to edit")
        text, entities = _formatted(params, "text", "entities", TEXT_LIMIT, "message is too long")
        markup = _inline_markup(params.get("reply_markup"))
        old = message.payload
        if (old["text"], old.get("entities", []), old.get("reply_markup")) == (
            text,
            entities,
            markup,
        ):
            raise bad_request(_NOT_MODIFIED)
        old["text"] = text
        _set_or_drop(old, "entities", entities or None)
        _set_or_drop(old, "reply_markup", markup)
        old["edit_date"] = int(time.time())
        return dict(old)

    def _edit_message_reply_markup(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        message = self._editable(params)
        markup = _inline_markup(params.get("reply_markup"))
        if message.payload.get("reply_markup") == markup:
            raise bad_request(_NOT_MODIFIED)
        _set_or_drop(message.payload, "reply_markup", markup)
        return dict(message.payload)

    def _delete_message(self, params: dict[str, Any], uploads: dict[str, Upload]) -> bool:
        message = self.world.message(params["chat_id"], params["message_id"])
        if message is None:
            raise bad_request("message to delete not found")
        message.deleted = True
        return True

    def _editable(self, params: dict[str, Any]) -> StoredMessage:
        if params.get("inline_message_id"):
            raise bad_request("inline messages are not supported by this server")
        if params.get("chat_id") is None or params.get("message_id") is None:
            raise bad_request("message identifier is not specified")
        message = self.world.message(params["chat_id"], params["message_id"])
        if message is None or message.service:
            raise bad_request("message to edit not found")
        if not message.from_bot:
            raise bad_request("message can't be edited")
        return message

    # Chats, topics, members

    def _send_chat_action(self, params: dict[str, Any], uploads: dict[str, Upload]) -> bool:
        self._chat(params["chat_id"])
        if params["action"] not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    def _create_forum_topic(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        chat = self._chat(params["chat_id"])
        if not chat.is_forum:
            raise bad_request("the chat is not a forum")
        name = params["name"]
        if not 1 <= len(name) <= 128:
            raise bad_request("TOPIC_TITLE_INVALID")
        color = params.get("icon_color", DEFAULT_ICON_COLOR)
        created = {"forum_topic_created": {"name": name, "icon_color": color}}
        thread_id = chat.last_message_id + 1
        chat.topics[thread_id] = topic = Topic(thread_id, name, color)
        self.world.add_message(
            chat, self.sender, created, from_bot=True, thread_id=thread_id, service=True
        )
        return {"message_thread_id": topic.thread_id, "name": name, "icon_color": color}

    def _set_topic_closed(self, params: dict[str, Any], *, closed: bool) -> bool:
        chat = self._chat(params["chat_id"])
        topic = chat.topics.get(params["message_thread_id"])
        if topic is None:
            raise bad_request("message thread not found")
        if topic.closed == closed:
            raise bad_request("TOPIC_NOT_MODIFIED")
        topic.closed = closed
        event = "forum_topic_closed" if closed else "forum_topic_reopened"
        self.world.add_message(
            chat, self.sender, {event: {}}, from_bot=True, thread_id=topic.thread_id, service=True
        )
        return True

    def _get_chat_member(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        chat = self._chat(params["chat_id"])
        user_id = params["user_id"]
        if user_id == self.bot_user["id"]:
            return chat_member(dict(self.bot_user), chat.members.get(user_id, "administrator"))
        return chat_member(self.world.user(user_id), chat.members.get(user_id, "left"))

    # Callbacks, commands, files

    def _answer_callback_query(self, params: dict[str, Any], uploads: dict[str, Upload]) -> bool:
        query_id = params["callback_query_id"]
        if query_id not in self.callback_queries or self.callback_queries[query_id] is not None:
            raise bad_request(_QUERY_INVALID)
        if len(params.get("text") or "") > CALLBACK_TEXT_LIMIT:
            raise bad_request("MESSAGE_TOO_LONG")
        self.callback_queries[query_id] = params
        return True

    def _set_my_commands(self, params: dict[str, Any], uploads: dict[str, Upload]) -> bool:
        commands = params["commands"]
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            if not isinstance(command, dict) or not _COMMAND.fullmatch(command.get("command", "")):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(command.get("description", "")) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        key = _scope_key(params)
        self.commands[key] = [dict(c) for c in commands]
        return True

    def _delete_my_commands(self, params: dict[str, Any], uploads: dict[str, Upload]) -> bool:
        self.commands.pop(_scope_key(params), None)
        return True

    def _get_file(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        stored = self.world.files.get(params["file_id"])
        if stored is None:
            raise bad_request("invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    def _file(
        self, params: dict[str, Any], name: str, uploads: dict[str, Upload], kind: str
    ) -> StoredFile:
        value = params[name]
        if isinstance(value, Upload):
            upload: Upload | None = value
        elif value.startswith("attach://"):
            upload = uploads.get(value.removeprefix("attach://"))
            if upload is None:
                raise bad_request(f"{name} must be non-empty")
        else:
            upload = None
        if upload is not None:
            if not upload.data:
                raise bad_request("file must be non-empty")
            stored = self.world.store_file(
                kind, upload.data, file_name=upload.filename, mime_type=upload.content_type
            )
        elif value.startswith(("http://", "https://")):
            stored = self.world.store_file(kind, url=value, file_name=value.rsplit("/", 1)[-1])
        elif value in self.world.files:
            stored = self.world.files[value]
        else:
            raise bad_request("wrong file identifier/HTTP URL specified")
        self.files_used[name] = stored
        return stored

    def _chat(self, chat_id: int | str) -> Chat:
        if isinstance(chat_id, str):
            raise bad_request("chat not found")
        return self.world.chat(chat_id)

    def _source(self, params: dict[str, Any], missing: str) -> StoredMessage:
        from_chat = params["from_chat_id"]
        source = (
            None
            if isinstance(from_chat, str)
            else self.world.message(from_chat, params["message_id"])
        )
        if source is None or source.service:
            raise bad_request(missing)
        return source


def chat_member(user: dict[str, Any], status: str) -> dict[str, Any]:
    """A ChatMember object of the given status with the fields aiogram requires."""
    member: dict[str, Any] = {"status": status, "user": user}
    if status == "creator":
        member["is_anonymous"] = False
    elif status == "administrator":
        member.update(
            can_be_edited=False,
            is_anonymous=False,
            can_manage_chat=True,
            can_delete_messages=True,
            can_manage_video_chats=True,
            can_restrict_members=True,
            can_promote_members=False,
            can_change_info=True,
            can_invite_users=True,
            can_post_stories=False,
            can_edit_stories=False,
            can_delete_stories=False,
            can_send_welcome_messages=False,
            can_manage_topics=True,
        )
    elif status == "kicked":
        member["until_date"] = 0
    elif status == "restricted":
        rights = (
            "can_send_messages can_send_audios can_send_documents can_send_photos can_send_videos "
            "can_send_video_notes can_send_voice_notes can_send_polls can_send_other_messages "
            "can_add_web_page_previews can_react_to_messages can_edit_tag can_change_info "
            "can_invite_users can_pin_messages can_manage_topics"
        )
        member.update(dict.fromkeys(rights.split(), False), is_member=True, until_date=0)
    elif status not in ("member", "left"):
        raise ValueError(f"unknown chat member status {status!r}")
    return member


def _formatted(
    params: dict[str, Any], text_key: str, entities_key: str, limit: int, too_long: str
) -> tuple[str, list[dict[str, Any]]]:
    source = params.get(text_key) or ""
    mode = (params.get("parse_mode") or "").lower()
    if mode == "html":
        try:
            text, entities = parse_html(source)
        except EntityParseError as error:
            raise bad_request(f"can't parse entities: {error}") from None
    else:
        text, entities = source.strip(), list(params.get(entities_key) or [])
    if text_key == "text" and not text:
        raise bad_request("message text is empty")
    if utf16_len(text) > limit:
        raise bad_request(too_long)
    return text, entities


def _caption(params: dict[str, Any]) -> dict[str, Any]:
    if not params.get("caption"):
        return {}
    text, entities = _formatted(
        params, "caption", "caption_entities", CAPTION_LIMIT, "message caption is too long"
    )
    return {"caption": text, "caption_entities": entities} if entities else {"caption": text}


def _inline_markup(markup: Any) -> dict[str, Any] | None:
    """The markup a sent message keeps: inline keyboards only, checked like Telegram does."""
    if not isinstance(markup, dict) or "inline_keyboard" not in markup:
        return None
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(
            "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
        )
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                raise bad_request(_TEXT_BUTTON)
            actions = _BUTTON_ACTIONS & button.keys()
            if len(actions) != 1:
                raise bad_request(_TEXT_BUTTON)
            if "callback_data" in button and not 1 <= len(button["callback_data"].encode()) <= 64:
                raise bad_request("BUTTON_DATA_INVALID")
    return {"inline_keyboard": [[dict(b) for b in row] for row in rows]}


def _scope_key(params: dict[str, Any]) -> tuple[str, str]:
    scope = params.get("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True), params.get("language_code") or ""


def _set_or_drop(payload: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        payload.pop(key, None)
    else:
        payload[key] = value
