"""Paced customer traffic through the fake Bot API, and what came back for each question.

Each chat sends its next question once the previous one is answered (at most `window`
unanswered at a time), like a person waiting for the answer; the latency of a question is from
its update being queued to the bot's final message arriving at the fake. Messages the bot sends
besides answers are told apart by their text (`Notes`); a message quoting a question
(reply_parameters) is attributed to that question, any other to the chat's oldest unanswered one.
"""

from __future__ import annotations

import time
from collections import deque
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
        for kind in ("recovery", "flood", "handover", "apology"):
            prefix: str = getattr(self._notes, kind)
            if prefix and text.startswith(prefix):
                return kind
        return "answer"

    def all_questions(self) -> list[Question]:
        return [q for chat in self.questions.values() for q in chat]


def summary(questions: Sequence[Question]) -> dict[str, Any]:
    """Latency percentiles (ms) of the questions answered once."""
    latencies = sorted(q.replies[0] - q.sent_at for q in questions if q.replies)
    if not latencies:
        return {"p50_ms": None, "p99_ms": None}

    def pick(share: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(share * len(latencies)))] * 1000, 1)

    return {"p50_ms": pick(0.5), "p99_ms": pick(0.99)}
