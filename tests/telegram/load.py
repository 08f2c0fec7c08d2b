"""Paced customer traffic through the fake Bot API, and what came back for each question.

`SteadyChats` sends instead at a fixed rate whatever the bot does (an open loop), and notes
when each question's first visible reply arrived.

Each chat sends its next question once the previous one is answered (at most `window`
unanswered at a time), like a person waiting for the answer; the latency of a question is from
its update being queued to the bot's final message arriving at the fake. Messages the bot sends
besides answers are told apart by their text (`Notes`); a message quoting a question
(reply_parameters) is attributed to that question, any other to the chat's oldest unanswered one.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.telegram.fake_api import Call, FakeTelegram


@dataclass(frozen=True)
class Notes:
    """Prefixes of the bot's messages that are not answers."""

    recovery: str = ""
    flood: str = ""
    handover: str = ""
    apology: str = ""


@dataclass
class Question:
    """One customer message and what the bot sent for it."""

    chat_id: int
    index: int
    text: str
    sent_at: float = 0.0
    message_id: int = 0
    update_id: int = 0
    replies: list[float] = field(default_factory=list)
    reply_texts: list[str] = field(default_factory=list)
    noticed: bool = False
    shown_at: float = 0.0  # the first visible reply (message, draft or edit) reached the fake

    @property
    def resolved(self) -> bool:
        return bool(self.replies) or self.noticed


class PacedChats:
    """Drive `questions[chat]` into the fake, chat by chat in order, and attribute the replies."""

    def __init__(
        self,
        tg: FakeTelegram,
        questions: Mapping[int, Sequence[str]],
        *,
        notes: Notes,
        window: int = 1,
        on_resolved: Callable[[Question], None] | None = None,
    ) -> None:
        self._tg = tg
        self._notes = notes
        self._window = window
        self._on_resolved = on_resolved
        self.questions = {
            chat: [Question(chat, i, text) for i, text in enumerate(texts)]
            for chat, texts in questions.items()
        }
        self._next = dict.fromkeys(questions, 0)
        self._open: dict[int, deque[Question]] = {chat: deque() for chat in questions}
        self._by_message: dict[tuple[int, int], Question] = {}
        self.unexpected: list[tuple[int, str]] = []
        self.counts = {"flood": 0, "handover": 0, "apology": 0, "recovery": 0}
        self.resolved = 0
        self.total = sum(len(q) for q in self.questions.values())
        self.first_sent = 0.0
        self.last_reply = 0.0
        tg.observe(self._seen)

    def start(self) -> None:
        """Send each chat's first `window` questions."""
        self.first_sent = time.monotonic()
        for chat in self.questions:
            for _ in range(self._window):
                self._send_next(chat)

    @property
    def done(self) -> bool:
        return self.resolved >= self.total

    def _send_next(self, chat: int) -> None:
        index = self._next[chat]
        if index >= len(self.questions[chat]):
            return
        self._next[chat] = index + 1
        question = self.questions[chat][index]
        question.sent_at = time.monotonic()
        message = self._tg.send_text(chat, question.text)
        question.message_id = message["message_id"]
        question.update_id = self._tg._updates.pending[-1]["update_id"]
        self._by_message[(chat, question.message_id)] = question
        self._open[chat].append(question)

    def _seen(self, call: Call) -> None:
        if call.method != "sendMessage" or not call.ok:
            return
        chat, text = call["chat_id"], call.get("text", "")
        if chat not in self._open:
            return
        quoted = (call.get("reply_parameters") or {}).get("message_id")
        kind = self._kind(text)
        if kind == "recovery" and quoted is not None:
            self.counts["recovery"] += 1
            question = self._by_message.get((chat, quoted))
            if question is not None:
                was_resolved = question.resolved
                question.noticed = True
                if question in self._open[chat]:
                    self._open[chat].remove(question)
                if not was_resolved:
                    self._resolve(question)
            return
        if kind in ("flood", "handover"):
            self.counts[kind] += 1
            return
        if kind == "apology":
            self.counts["apology"] += 1
        if not self._open[chat]:
            self.unexpected.append((chat, text))
            return
        question = self._open[chat].popleft()
        question.replies.append(call.time)
        question.reply_texts.append(text)
        self.last_reply = max(self.last_reply, call.time)
        self._resolve(question)

    def _resolve(self, question: Question) -> None:
        self.resolved += 1
        if self._on_resolved is not None:
            self._on_resolved(question)
        self._send_next(question.chat_id)

    def _kind(self, text: str) -> str:
        return _kind(self._notes, text)

    def all_questions(self) -> list[Question]:
        return [q for chat in self.questions.values() for q in chat]


# What a customer sees of a reply: a message, a draft streaming into the chat, or an edit.
VISIBLE = frozenset({"sendMessage", "sendMessageDraft", "editMessageText"})


class SteadyChats:
    """`rate` questions a second for `seconds`, from chats taking turns, whatever the bot does.

    Question n comes from chat n mod len(chats) at `n / rate` seconds after `run` starts (late
    only when the event loop is, and then at once). Per question: when its update was queued,
    when the first visible reply to it reached the fake (`shown_at`) and when its answer did
    (`replies`, a sendMessage that is no note). A chat's replies belong to its oldest question
    still open; one chat's questions are answered in order.
    """

    def __init__(
        self,
        tg: FakeTelegram,
        chats: Mapping[int, Sequence[str]],
        *,
        rate: float,
        seconds: float,
        notes: Notes,
    ) -> None:
        self._tg = tg
        self._notes = notes
        self._rate = rate
        order = list(chats)
        count = max(1, round(rate * seconds))
        asked = Counter[int]()
        self.questions: list[Question] = []
        for n in range(count):
            chat = order[n % len(order)]
            texts = chats[chat]
            self.questions.append(Question(chat, n, texts[asked[chat] % len(texts)]))
            asked[chat] += 1
        self._open: dict[int, deque[Question]] = {chat: deque() for chat in order}
        self.counts = {"flood": 0, "handover": 0, "apology": 0, "recovery": 0}
        self.unexpected: list[tuple[int, str]] = []
        self.resolved = 0
        self.first_sent = 0.0
        self.last_sent = 0.0
        self.most_behind_s = 0.0  # how far the sending fell behind its schedule at worst
        tg.observe(self._seen)

    @property
    def done(self) -> bool:
        return self.resolved >= len(self.questions)

    async def run(self) -> None:
        """Send every question on its schedule; returns once the last one is queued."""
        start = self.first_sent = time.monotonic()
        for n, question in enumerate(self.questions):
            due = start + n / self._rate
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
            else:
                self.most_behind_s = max(self.most_behind_s, now - due)
            question.sent_at = self.last_sent = time.monotonic()
            message = self._tg.send_text(question.chat_id, question.text)
            question.message_id = message["message_id"]
            self._open[question.chat_id].append(question)

    def _seen(self, call: Call) -> None:
        if call.method not in VISIBLE or not call.ok:
            return
        chat = call["chat_id"]
        waiting = self._open.get(chat)
        if waiting is None:
            return
        kind = _kind(self._notes, call.get("text", "")) if call.method == "sendMessage" else ""
        if kind in ("recovery", "flood", "handover"):
            # A note, such as the hand-over notice after an answer: no reply of its own.
            self.counts[kind] += 1
            return
        if not waiting:
            if call.method == "sendMessage":
                self.unexpected.append((chat, call.get("text", "")))
            return
        question = waiting[0]
        if not question.shown_at:
            question.shown_at = call.time
        if call.method != "sendMessage":
            return
        if kind == "apology":
            self.counts["apology"] += 1
        waiting.popleft()
        question.replies.append(call.time)
        question.reply_texts.append(call.get("text", ""))
        self.resolved += 1


def _kind(notes: Notes, text: str) -> str:
    for kind in ("recovery", "flood", "handover", "apology"):
        prefix: str = getattr(notes, kind)
        if prefix and text.startswith(prefix):
            return kind
    return "answer"


def _pick(latencies: Sequence[float], share: float) -> float | None:
    if not latencies:
        return None
    ordered = sorted(latencies)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 1)


def summary(questions: Sequence[Question]) -> dict[str, Any]:
    """Latency percentiles (ms) of the questions answered once."""
    latencies = [q.replies[0] - q.sent_at for q in questions if q.replies]
    return {"p50_ms": _pick(latencies, 0.5), "p99_ms": _pick(latencies, 0.99)}


def steady_summary(chats: SteadyChats) -> dict[str, Any]:
    """What a steady phase measured: rates, first-visible and answer latency, what was lost."""
    questions = chats.questions
    shown = [q.shown_at - q.sent_at for q in questions if q.shown_at]
    answered = [q.replies[0] - q.sent_at for q in questions if q.replies]
    span = chats.last_sent - chats.first_sent
    return {
        "questions": len(questions),
        "sent_per_s": round((len(questions) - 1) / span, 1) if span > 0 else None,
        "most_behind_ms": round(chats.most_behind_s * 1000, 1),
        "shown": len(shown),
        "answered": len(answered),
        "first_visible_p50_ms": _pick(shown, 0.5),
        "first_visible_p99_ms": _pick(shown, 0.99),
        "first_visible_max_ms": _pick(shown, 1.0),
        "answer_p50_ms": _pick(answered, 0.5),
        "answer_p99_ms": _pick(answered, 0.99),
        "lost": sum(1 for q in questions if not q.replies),
        "duplicated": len(chats.unexpected),
        "flood_notices": chats.counts["flood"],
        "handover_notices": chats.counts["handover"],
        "apologies": chats.counts["apology"],
    }
