"""Hypothesis strategies for Bot API updates as Telegram sends them, odd ones included.

Updates are JSON dicts: messages (text, captioned and bare media, stickers, edits) in private
chats, groups and forum topics, from people, from chats speaking for themselves and from nobody,
with entities at odd offsets, empty and huge texts; and button presses with any data, on
messages that exist, that are inaccessible, or on no message at all. Chat ids follow
Telegram's signs (people positive, groups negative, supergroups -100...), as the fake expects.
"""

from __future__ import annotations

import time
from typing import Any

from hypothesis import strategies as st

ENTITY_TYPES = (
    "mention",
    "hashtag",
    "bot_command",
    "url",
    "bold",
    "italic",
    "code",
    "pre",
    "text_link",
    "text_mention",
    "custom_emoji",
    "spoiler",
    "blockquote",
)
BOT_USERNAME = "support_test_bot"
_CHARACTERS = st.characters(codec="utf-8", exclude_categories=["Cs"])

user_ids = st.integers(min_value=1, max_value=2**40)
texts = st.one_of(
    st.just(""),
    st.text(_CHARACTERS, max_size=40),
    st.sampled_from(
        [
            "How long do I have to return an item?",
            "<b>bold</b> & <script>x</script> &amp; &#0; &lt",
            "/start",
            "/help@" + BOT_USERNAME,
            "/forget",
            "/reset",
            "/human",
            "/unknown_command with args",
            f"@{BOT_USERNAME}",
            f"@{BOT_USERNAME} Can I pay with PayPal?",
            "2",
            "👍🏽🇨🇳 退货需要多长时间？",
        ]
    ),
    st.text(_CHARACTERS, min_size=4000, max_size=4200),
)


@st.composite
def users(draw: st.DrawFn, user_id: int | None = None) -> dict[str, Any]:
    user: dict[str, Any] = {
        "id": user_id if user_id is not None else draw(user_ids),
        "is_bot": False,
        "first_name": draw(st.text(_CHARACTERS, max_size=64)),
    }
    for key, values in (
        ("last_name", st.text(_CHARACTERS, max_size=64)),
        ("username", st.from_regex(r"[A-Za-z][A-Za-z0-9_]{4,31}", fullmatch=True)),
        ("language_code", st.sampled_from(["en", "zh", "zh-hans", "de", "", "xx-YY-zz"])),
    ):
        if draw(st.booleans()):
            user[key] = draw(values)
    return user


@st.composite
def chats(draw: st.DrawFn, user_id: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(["private", "group", "supergroup"]))
    if kind == "private":
        return {"id": user_id, "type": "private", "first_name": "Customer"}
    number = draw(st.integers(min_value=1, max_value=10**9))
    chat: dict[str, Any] = {"type": kind, "title": draw(st.text(_CHARACTERS, max_size=128))}
    chat["id"] = -number if kind == "group" else -(10**12 + number)
    if kind == "supergroup" and draw(st.booleans()):
        chat["is_forum"] = True
    return chat


@st.composite
def entities(draw: st.DrawFn) -> list[dict[str, Any]]:
    found = []
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        entity: dict[str, Any] = {
            "type": draw(st.sampled_from(ENTITY_TYPES)),
            "offset": draw(st.integers(min_value=0, max_value=5000)),
            "length": draw(st.integers(min_value=0, max_value=5000)),
        }
        if entity["type"] == "text_link":
            entity["url"] = "https://example.com/"
        elif entity["type"] == "text_mention":
            entity["user"] = draw(users())
        elif entity["type"] == "custom_emoji":
            entity["custom_emoji_id"] = "5368324170671202286"
        elif entity["type"] == "pre" and draw(st.booleans()):
            entity["language"] = "python"
        found.append(entity)
    return found


def _photo() -> list[dict[str, Any]]:
    return [{"file_id": "AgACAgIAAxk", "file_unique_id": "AQAD", "width": 90, "height": 68}]


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    user = draw(users())
    chat = draw(chats(user["id"]))
    message: dict[str, Any] = {
        "message_id": draw(st.integers(min_value=0, max_value=2**31 - 1)),
        "date": int(time.time()),
        "chat": chat,
    }
    sender = draw(st.sampled_from(["person", "person", "nobody", "anonymous admin", "channel"]))
    if sender == "person":
        message["from"] = user
    elif sender == "anonymous admin" and chat["type"] != "private":
        message["from"] = {"id": 1087968824, "is_bot": True, "first_name": "Group"}
        message["sender_chat"] = {"id": chat["id"], "type": chat["type"], "title": "Group"}
        if draw(st.booleans()):
            message["author_signature"] = draw(st.text(_CHARACTERS, max_size=20))
    elif sender == "channel":
        message["from"] = {"id": 777000, "is_bot": False, "first_name": "Telegram"}
        message["sender_chat"] = {"id": -(10**12 + 7), "type": "channel", "title": "News"}
        message["is_automatic_forward"] = True
    if chat.get("is_forum") and draw(st.booleans()):
        message["message_thread_id"] = draw(st.integers(min_value=1, max_value=10**6))
        message["is_topic_message"] = True
    kind = draw(st.sampled_from(["text", "text", "text", "photo", "sticker", "document"]))
    if kind == "text":
        message["text"] = draw(texts)
        if draw(st.booleans()):
            message["entities"] = draw(entities())
    elif kind == "photo":
        message["photo"] = _photo()
    elif kind == "sticker":
        message["sticker"] = {
            "file_id": "CAACAgIAAxk",
            "file_unique_id": "AgAD",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        }
    else:
        message["document"] = {"file_id": "BQACAgIAAxk", "file_unique_id": "AgADBQ"}
    if kind in ("photo", "document") and draw(st.booleans()):
        message["caption"] = draw(texts)[:1024]
        if draw(st.booleans()):
            message["caption_entities"] = draw(entities())
    return message


@st.composite
def presses(draw: st.DrawFn, bot_user: dict[str, Any]) -> dict[str, Any]:
    """A callback query; give each a fresh id before queuing it (Telegram never repeats one)."""
    user = draw(users())
    chat = draw(chats(user["id"]))
    query: dict[str, Any] = {
        "id": "fuzz",
        "from": user,
        "chat_instance": str(draw(st.integers(min_value=1))),
    }
    where = draw(st.sampled_from(["message", "inaccessible", "inline"]))
    message_id = draw(st.integers(min_value=1, max_value=2**31 - 1))
    if where == "message":
        query["message"] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat,
            "from": {k: bot_user[k] for k in ("id", "is_bot", "first_name", "username")},
            "text": draw(st.text(_CHARACTERS, min_size=1, max_size=40)),
        }
    elif where == "inaccessible":
        query["message"] = {"message_id": message_id, "date": 0, "chat": chat}
    else:
        query["inline_message_id"] = draw(st.text(min_size=1, max_size=20))
    turn = draw(st.integers(min_value=-5, max_value=2**40))
    seal = draw(st.from_regex(r"[A-Za-z0-9_-]{0,22}", fullmatch=True))
    data = draw(
        st.one_of(
            st.none(),
            st.text(_CHARACTERS, max_size=64),
            st.sampled_from(["vote", "choice", "erase"]).map(lambda p: f"{p}:{turn}:1:{seal}"),
            st.just(f"erase:1:{seal}"),
            st.just(f"choice:{turn}:{turn % 7}:{seal}"),
        )
    )
    if data is not None:
        query["data"] = data
    return query


@st.composite
def updates(draw: st.DrawFn, bot_user: dict[str, Any]) -> dict[str, Any]:
    """One update without its update_id (the fake numbers them)."""
    kind = draw(st.sampled_from(["message", "message", "edited_message", "callback_query"]))
    if kind == "callback_query":
        return {"callback_query": draw(presses(bot_user))}
    message = draw(messages())
    if kind == "edited_message":
        message["edit_date"] = message["date"]
    return {kind: message}
