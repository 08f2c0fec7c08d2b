"""Telegram's 429 answers: forced for a chat's next calls, or from per-second flood rules."""

from __future__ import annotations

import math
import time
from collections import deque

from tests.telegram.params import ApiError

LIMITED_METHODS = frozenset(
    {
        "sendMessage",
        "sendMessageDraft",
        "sendPhoto",
        "sendDocument",
        "copyMessage",
        "forwardMessage",
        "editMessageText",
        "editMessageReplyMarkup",
    }
)


def too_many_requests(retry_after: int) -> ApiError:
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)


class RateLimits:
    """Which send and edit calls get 429, and how many 429s were served."""

    def __init__(self) -> None:
        self.served = 0
        self._forced: dict[int, list[int]] = {}
        self._per_chat: int | None = None
        self._global: int | None = None
        self._drafts = False
        self._chat_sends: dict[int, deque[float]] = {}
        self._all_sends: deque[float] = deque()

    def force(self, chat_id: int, retry_after: int, times: int) -> None:
        self._forced[chat_id] = [retry_after, times]

    def flood(self, per_chat: int | None, overall: int | None, *, drafts: bool) -> None:
        self._per_chat, self._global, self._drafts = per_chat, overall, drafts

    def check(self, method: str, chat_id: object) -> None:
        """Raise the 429 `ApiError` the call gets, if any."""
        if method not in LIMITED_METHODS:
            return
        forced = self._forced.get(chat_id) if isinstance(chat_id, int) else None
        if forced and forced[1] > 0:
            forced[1] -= 1
            self._refuse(forced[0])
        if not self._counts(method):
            return
        now = time.monotonic()
        windows = [(self._all_sends, self._global)]
        if isinstance(chat_id, int):
            windows.append((self._chat_sends.setdefault(chat_id, deque()), self._per_chat))
        for window, limit in windows:
            while window and window[0] <= now - 1.0:
                window.popleft()
            if limit is not None and len(window) >= limit:
                self._refuse(max(1, math.ceil(window[0] + 1.0 - now)))

    def record(self, method: str, chat_id: object) -> None:
        """Count an accepted call against the flood rules."""
        if method not in LIMITED_METHODS or not self._counts(method):
            return
        now = time.monotonic()
        self._all_sends.append(now)
        if isinstance(chat_id, int):
            self._chat_sends.setdefault(chat_id, deque()).append(now)

    def _counts(self, method: str) -> bool:
        return method != "sendMessageDraft" or self._drafts

    def _refuse(self, retry_after: int) -> None:
        self.served += 1
        raise too_many_requests(retry_after)
