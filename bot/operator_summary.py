"""The post that opens a hand-over in its topic: transcript, mood, entries, suggested reply."""

from __future__ import annotations

import html
from collections.abc import Sequence

from aiogram.types import User

from bot.formatting import MESSAGE_LIMIT, utf16_len
from engine import FinalReply
from engine.log import Turn

_ROLE_MARKS = {"customer": "👤", "bot": "🤖", "operator": "🧑‍💼"}
# A long turn is cut so that one message cannot crowd the rest of the transcript out.
_TURN_CHARS = 400
_SUGGESTION_CHARS = 1500


def topic_name(user: User | str) -> str:
    """The forum topic's name for a customer: their name and Telegram id (at most 128 chars).

    A customer of another channel is named by a string such as "web · shop:4f2a".
    """
    if isinstance(user, str):
        return user[:128]
    return f"{user.full_name[:96] or 'Customer'} · #{user.id}"


def summary(user: User | str, reason: str, turns: Sequence[Turn], reply: FinalReply | None) -> str:
    """The hand-over post as HTML within one message; the oldest turns go first when it is long."""
    if isinstance(user, str):
        customer = html.escape(user)
    else:
        who = html.escape(user.full_name or "Customer")
        if user.username:
            who += f" (@{html.escape(user.username)})"
        customer = f"{who}, id {user.id}"
    head = [f"<b>Hand-over</b>: {customer}", f"Reason: {html.escape(reason)}"]
    mood = _sentiment(turns, reply)
    if mood:
        head.append(f"Sentiment: {mood}")
    tail = _entries(turns, reply) + _suggestion(reply)
    tail.append("Write here to answer the customer; /close hands them back to the bot.")
    lines = [_turn_line(turn) for turn in turns]
    while True:
        transcript = ["", "<b>Recent conversation</b>", *lines] if lines else []
        text = "\n".join([*head, *transcript, "", *tail])
        if utf16_len(text) <= MESSAGE_LIMIT or not lines:
            break
        lines = lines[1:]
    if utf16_len(text) > MESSAGE_LIMIT:  # only a huge name or reason gets here
        text = "\n".join([*head[:1], "", tail[-1]])
    return text


def _turn_line(turn: Turn) -> str:
    mark = _ROLE_MARKS.get(turn.role, turn.role)
    return f"{mark} {html.escape(_cut(turn.text, _TURN_CHARS))}"


def _sentiment(turns: Sequence[Turn], reply: FinalReply | None) -> str:
    if reply is not None:
        return f"{reply.sentiment.label} ({reply.sentiment.score:+.2f})"
    for turn in reversed(turns):
        if turn.role == "customer" and turn.sentiment_score is not None:
            return f"{turn.sentiment_label} ({turn.sentiment_score:+.2f})"
    return ""


def _entries(turns: Sequence[Turn], reply: FinalReply | None) -> list[str]:
    if reply is not None:
        found = [
            f"{hit.score:.2f} {html.escape(hit.entry.question)} [{html.escape(hit.entry.id)}]"
            for hit in reply.hits
        ]
    else:
        bot_turns = [t for t in turns if t.role == "bot" and t.retrieved]
        last = bot_turns[-1].retrieved if bot_turns else ()
        found = [f"{r.score:.2f} [{html.escape(r.faq_id)}]" for r in last]
    return ["<b>Retrieved entries</b>", *found, ""] if found else []


def _suggestion(reply: FinalReply | None) -> list[str]:
    if reply is None:
        return []
    if reply.action == "answer":
        text = reply.text
    elif reply.hits:
        text = reply.hits[0].entry.answer
    else:
        return []
    return ["<b>Suggested reply</b>", html.escape(_cut(text, _SUGGESTION_CHARS)), ""]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
