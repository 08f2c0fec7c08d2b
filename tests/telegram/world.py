"""What the fake Telegram remembers: users, chats, their messages and topics, members, files."""

from __future__ import annotations

import copy
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

# Keys of a message that describe where and when it was sent rather than what it says.
ENVELOPE = frozenset(
    {
        "message_id",
        "from",
        "sender_chat",
        "chat",
        "date",
        "edit_date",
        "message_thread_id",
        "is_topic_message",
        "reply_to_message",
        "reply_markup",
        "forward_origin",
        "author_signature",
    }
)


@dataclass
class StoredMessage:
    """One message in a chat as Telegram would return it, and who sent it."""

    payload: dict[str, Any]
    from_bot: bool
    service: bool = False
    deleted: bool = False

    @property
    def content(self) -> dict[str, Any]:
        """What copying the message repeats: text or media with caption."""
        return {k: copy.deepcopy(v) for k, v in self.payload.items() if k not in ENVELOPE}


DEFAULT_ICON_COLOR = 7322096


@dataclass
class Topic:
    """A forum topic; its id is the id of the service message that created it."""

    thread_id: int
    name: str
    icon_color: int
    closed: bool = False


@dataclass
class Chat:
    """A chat with its message counter; supergroups are forums unless set otherwise."""

    id: int
    type: str
    title: str | None = None
    first_name: str | None = None
    is_forum: bool = False
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    topics: dict[int, Topic] = field(default_factory=dict)
    members: dict[int, str] = field(default_factory=dict)
    last_message_id: int = 0

    def next_message_id(self) -> int:
        self.last_message_id += 1
        return self.last_message_id

    def payload(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.type == "private":
            chat["first_name"] = self.first_name or "Alice"
        else:
            chat["title"] = self.title or f"Chat {self.id}"
        if self.is_forum:
            chat["is_forum"] = True
        return chat


@dataclass(frozen=True)
class StoredFile:
    """A file Telegram holds: uploaded by the bot, sent by a user, or named by URL."""

    file_id: str
    file_unique_id: str
    kind: str
    data: bytes = b""
    file_name: str | None = None
    mime_type: str | None = None
    url: str | None = None

    @property
    def file_path(self) -> str:
        suffix = self.file_name.rsplit(".", 1)[-1] if self.file_name else "bin"
        return f"{self.kind}s/file_{self.file_unique_id}.{suffix}"


def chat_type_for(chat_id: int) -> str:
    """The type a chat id implies: users are positive, supergroups start with -100."""
    if chat_id > 0:
        return "private"
    return "supergroup" if str(chat_id).startswith("-100") else "group"


class World:
    """Users, chats, messages and files shared by the Bot API methods and the test's helpers."""

    def __init__(self) -> None:
        self.chats: dict[int, Chat] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.files: dict[str, StoredFile] = {}
        # Users who blocked the bot: their private chats answer 403 until they write again.
        self.blocked: set[int] = set()
        self._file_numbers = itertools.count(1)

    def chat(self, chat_id: int, chat_type: str | None = None, **details: Any) -> Chat:
        """The chat with this id, created on first use with the type its id implies."""
        chat = self.chats.get(chat_id)
        if chat is None:
            kind = chat_type or chat_type_for(chat_id)
            chat = Chat(chat_id, kind, is_forum=kind == "supergroup")
            self.chats[chat_id] = chat
        elif chat_type is not None:
            chat.type = chat_type
        for name, value in details.items():
            if value is not None:
                setattr(chat, name, value)
        return chat

    def user(self, user_id: int, **details: Any) -> dict[str, Any]:
        """The user with this id; known details are updated from each use."""
        user = self.users.setdefault(
            user_id, {"id": user_id, "is_bot": False, "first_name": f"User {user_id}"}
        )
        user.update({k: v for k, v in details.items() if v is not None})
        return dict(user)

    def add_message(
        self,
        chat: Chat,
        sender: dict[str, Any],
        content: dict[str, Any],
        *,
        from_bot: bool,
        thread_id: int | None = None,
        reply_to: StoredMessage | None = None,
        reply_markup: dict[str, Any] | None = None,
        service: bool = False,
    ) -> StoredMessage:
        """Append a message to the chat with the chat's next message id."""
        payload: dict[str, Any] = {
            "message_id": chat.next_message_id(),
            "from": dict(sender),
            "chat": chat.payload(),
            "date": int(time.time()),
        }
        if thread_id is not None:
            payload["message_thread_id"] = thread_id
            if chat.is_forum:
                payload["is_topic_message"] = True
        if reply_to is not None:
            payload["reply_to_message"] = {
                k: v for k, v in reply_to.payload.items() if k != "reply_to_message"
            }
        payload.update(content)
        if reply_markup is not None:
            payload["reply_markup"] = reply_markup
        message = StoredMessage(payload, from_bot=from_bot, service=service)
        chat.messages[payload["message_id"]] = message
        return message

    def message(self, chat_id: int, message_id: int) -> StoredMessage | None:
        """A message still in the chat, or None when unknown or deleted."""
        chat = self.chats.get(chat_id)
        message = chat.messages.get(message_id) if chat else None
        return None if message is None or message.deleted else message

    def store_file(
        self,
        kind: str,
        data: bytes = b"",
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        url: str | None = None,
    ) -> StoredFile:
        """Keep a file under a new file_id, as Telegram does for every upload."""
        number = next(self._file_numbers)
        unique = f"AgAD{number:06d}"
        stored = StoredFile(
            f"{kind.upper()[:3]}ACAgIAAxk{number:08d}",
            unique,
            kind,
            data,
            file_name,
            mime_type,
            url,
        )
        self.files[stored.file_id] = stored
        return stored
