"""What Telegram's users do in the fake: write, send media, edit, press buttons."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from typing import Any, TypedDict, Unpack

from tests.telegram import media
from tests.telegram.html import utf16_len
from tests.telegram.updates import UpdateQueue
from tests.telegram.world import DEFAULT_ICON_COLOR, Topic, World

DEFAULT_GROUP_USER = 1000
# The accounts Telegram puts in `from` when a chat speaks: an anonymous group admin, a channel's
# post forwarded into its discussion group.
GROUP_ANONYMOUS_BOT = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}
TELEGRAM_SERVICE = {"id": 777000, "is_bot": False, "first_name": "Telegram"}
_ENTITY_PATTERNS = (
    ("bot_command", re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")),
    ("mention", re.compile(r"(?<![\w@])@[A-Za-z0-9_]{5,32}")),
)


class Sender(TypedDict, total=False):
    """Who sends a fake incoming message, and where."""

    user_id: int | None
    first_name: str
    language_code: str
    chat_type: str | None
    message_thread_id: int | None
    reply_to_message_id: int | None
    sender_chat_id: int | None
    author_signature: str | None


class ChatUsers:
    """Users acting in chats; each action stores its message and queues the update for the bot."""

    def __init__(
        self,
        world: World,
        updates: UpdateQueue,
        callback_queries: dict[str, dict[str, Any] | None],
        on_update: Callable[[], None],
    ) -> None:
        self.world = world
        self._updates = updates
        self._callback_queries = callback_queries
        self._on_update = on_update
        self._query_ids = itertools.count(4_000_000_001)

    def add_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update for the bot; assigns the next update_id unless one is given.

        A callback query in it can be answered once, as Telegram allows.
        """
        query = update.get("callback_query")
        if isinstance(query, dict) and isinstance(query.get("id"), str):
            self._callback_queries.setdefault(query["id"], None)
        queued = self._updates.add(update)
        self._on_update()
        return queued

    def send_text(
        self,
        chat_id: int,
        text: str,
        *,
        entities: list[dict[str, Any]] | None = None,
        **sender: Unpack[Sender],
    ) -> dict[str, Any]:
        """A user writes `text` in the chat; returns the Message of the queued update."""
        content: dict[str, Any] = {"text": text}
        found = _auto_entities(text) if entities is None else entities
        if found:
            content["entities"] = found
        return self._incoming(chat_id, content, **sender)

    def send_photo(
        self,
        chat_id: int,
        *,
        caption: str | None = None,
        data: bytes = b"\x89PNG\r\n\x1a\n",
        **sender: Unpack[Sender],
    ) -> dict[str, Any]:
        """A user sends a photo, optionally captioned."""
        stored = self.world.store_file("photo", data, file_name="photo.jpg", mime_type="image/jpeg")
        content = {"photo": media.photo_sizes(stored, (90, 68), (800, 600))}
        return self._incoming(chat_id, content | _caption(caption), **sender)

    def send_sticker(
        self, chat_id: int, *, emoji: str = "👍", **sender: Unpack[Sender]
    ) -> dict[str, Any]:
        """A user sends a static sticker."""
        stored = self.world.store_file("sticker", b"RIFF\0\0\0\0WEBP", mime_type="image/webp")
        return self._incoming(chat_id, {"sticker": media.sticker(stored, emoji)}, **sender)

    def send_voice(
        self,
        chat_id: int,
        *,
        duration: int = 3,
        data: bytes = b"OggS\x00\x02",
        **sender: Unpack[Sender],
    ) -> dict[str, Any]:
        """A user sends a voice note."""
        stored = self.world.store_file("voice", data, mime_type="audio/ogg")
        return self._incoming(chat_id, {"voice": media.voice(stored, duration)}, **sender)

    def send_document(
        self,
        chat_id: int,
        *,
        file_name: str = "invoice.pdf",
        data: bytes = b"%PDF-1.4\n%fake\n",
        mime_type: str = "application/pdf",
        caption: str | None = None,
        **sender: Unpack[Sender],
    ) -> dict[str, Any]:
        """A user sends a file."""
        stored = self.world.store_file("document", data, file_name=file_name, mime_type=mime_type)
        content = {"document": media.document(stored)} | _caption(caption)
        return self._incoming(chat_id, content, **sender)

    def block(self, user_id: int) -> None:
        """The user blocks the bot: what it sends them answers 403 until they write again."""
        self.world.blocked.add(user_id)

    def edit_text(self, chat_id: int, message_id: int, new_text: str) -> dict[str, Any]:
        """The user edits an earlier text message: an edited_message update."""
        message = self.world.message(chat_id, message_id)
        if message is None or message.from_bot or "text" not in message.payload:
            raise ValueError(f"no text message {message_id} from a user in chat {chat_id}")
        payload = message.payload
        payload["text"] = new_text
        payload.pop("entities", None)
        if found := _auto_entities(new_text):
            payload["entities"] = found
        payload["edit_date"] = int(time.time())
        edited: dict[str, Any] = self.add_update({"edited_message": payload})["edited_message"]
        return edited

    def press_button(
        self, chat_id: int, message_id: int, data: str, user_id: int | None = None
    ) -> str:
        """A user presses the inline button with callback `data`; returns the query id."""
        message = self.world.message(chat_id, message_id)
        if message is None or not message.from_bot:
            raise ValueError(f"the bot has no message {message_id} in chat {chat_id}")
        rows = (message.payload.get("reply_markup") or {}).get("inline_keyboard", [])
        offered = [b.get("callback_data") for row in rows for b in row]
        if data not in offered:
            raise ValueError(f"message {message_id} has no button {data!r}; it has {offered}")
        chat = self.world.chat(chat_id)
        if user_id is None:
            user_id = chat_id if chat.type == "private" else DEFAULT_GROUP_USER
        query_id = str(next(self._query_ids))
        self._callback_queries[query_id] = None
        query = {
            "id": query_id,
            "from": self.world.user(user_id),
            "message": message.payload,
            "chat_instance": str(abs(chat_id) * 7919),
            "data": data,
        }
        self.add_update({"callback_query": query})
        return query_id

    def _incoming(
        self,
        chat_id: int,
        content: dict[str, Any],
        *,
        user_id: int | None = None,
        first_name: str = "Alice",
        language_code: str = "en",
        chat_type: str | None = None,
        message_thread_id: int | None = None,
        reply_to_message_id: int | None = None,
        sender_chat_id: int | None = None,
        author_signature: str | None = None,
    ) -> dict[str, Any]:
        chat = self.world.chat(chat_id, chat_type)
        if user_id is None:
            user_id = chat_id if chat.type == "private" else DEFAULT_GROUP_USER
        if chat.type == "private" and chat.first_name is None:
            chat.first_name = first_name
        if chat.type == "private":
            self.world.blocked.discard(user_id)  # writing to a bot unblocks it
        user = self.world.user(user_id, first_name=first_name, language_code=language_code)
        if sender_chat_id is not None:
            # The group itself (an anonymous admin) or a channel speaks; `from` is a placeholder.
            user = dict(GROUP_ANONYMOUS_BOT if sender_chat_id == chat_id else TELEGRAM_SERVICE)
            content = {"sender_chat": self.world.chat(sender_chat_id).payload(), **content}
            if author_signature is not None:
                content["author_signature"] = author_signature
        if message_thread_id is not None and chat.is_forum:
            chat.topics.setdefault(
                message_thread_id,
                Topic(message_thread_id, f"Topic {message_thread_id}", DEFAULT_ICON_COLOR),
            )
        reply_to = None
        if reply_to_message_id is not None:
            reply_to = self.world.message(chat_id, reply_to_message_id)
            if reply_to is None:
                raise ValueError(f"no message {reply_to_message_id} in chat {chat_id}")
        message = self.world.add_message(
            chat, user, content, from_bot=False, thread_id=message_thread_id, reply_to=reply_to
        )
        queued: dict[str, Any] = self.add_update({"message": message.payload})["message"]
        return queued


def _caption(caption: str | None) -> dict[str, Any]:
    return {"caption": caption} if caption else {}


def _auto_entities(text: str) -> list[dict[str, Any]]:
    """The bot_command and mention entities Telegram adds to a user's text."""
    entities = []
    for kind, pattern in _ENTITY_PATTERNS:
        for match in pattern.finditer(text):
            offset = utf16_len(text[: match.start()])
            entities.append({"type": kind, "offset": offset, "length": utf16_len(match.group(0))})
    return sorted(entities, key=lambda e: e["offset"])
