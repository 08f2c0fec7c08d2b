"""Updates Telegram holds for the bot until confirmed, and the record of handing them out."""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from typing import Any

# What Telegram sends when allowed_updates was never given or given empty.
_NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


class UpdateQueue:
    """Pending updates in order; getUpdates offsets and 2xx webhook answers confirm them."""

    def __init__(self) -> None:
        self.pending: list[dict[str, Any]] = []
        self.delivered_update_ids: list[int] = []
        self.confirmed_update_ids: list[int] = []
        self.delivery_counts: Counter[int] = Counter()
        self._allowed: frozenset[str] | None = None
        self._ids = itertools.count(1)

    @property
    def allowed(self) -> frozenset[str] | None:
        return self._allowed

    def add(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue a copy of `update`, assigning the next update_id unless it has one."""
        update = copy.deepcopy(update)
        if "update_id" in update:
            self._ids = itertools.count(max(update["update_id"] + 1, next(self._ids)))
        else:
            update = {"update_id": next(self._ids), **update}
        self.pending.append(update)
        return update

    def allow(self, kinds: list[str] | None) -> None:
        """Keep the bot's allowed_updates; None leaves them, an empty list restores the default."""
        if kinds is not None:
            self._allowed = frozenset(kinds) or None

    def take(self, limit: int) -> list[dict[str, Any]]:
        """The first `limit` pending updates the bot wants; unwanted ones are dropped."""
        wanted: list[dict[str, Any]] = []
        kept: list[dict[str, Any]] = []
        for update in self.pending:
            kind = next(k for k in update if k != "update_id")
            if kind in self._allowed if self._allowed else kind not in _NOT_BY_DEFAULT:
                kept.append(update)
                if len(wanted) < limit:
                    wanted.append(update)
            else:
                self.confirmed_update_ids.append(update["update_id"])
        self.pending = kept
        return wanted

    def hand_out(self, update: dict[str, Any]) -> None:
        update_id = update["update_id"]
        if update_id not in self.delivery_counts:
            self.delivered_update_ids.append(update_id)
        self.delivery_counts[update_id] += 1

    def confirm_below(self, offset: int) -> None:
        """Confirm by getUpdates offset: ids below it, or all but the last -offset ones."""
        if offset < 0:
            confirmed, self.pending = self.pending[:offset], self.pending[offset:]
        else:
            confirmed = [u for u in self.pending if u["update_id"] < offset]
            self.pending = [u for u in self.pending if u["update_id"] >= offset]
        self.confirmed_update_ids.extend(u["update_id"] for u in confirmed)

    def confirm(self, update: dict[str, Any]) -> None:
        if update in self.pending:
            self.pending.remove(update)
            self.confirmed_update_ids.append(update["update_id"])

    def drop_pending(self) -> None:
        self.confirmed_update_ids.extend(u["update_id"] for u in self.pending)
        self.pending = []

    def not_handed_out(self) -> int:
        return sum(u["update_id"] not in self.delivery_counts for u in self.pending)
