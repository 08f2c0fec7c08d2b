"""Copy a conversation log between stores (SQLite to PostgreSQL or back) without loss.

Conversations are read through the source's export stream and written with their ids through
the target's `restore`, which replaces rows that have the same ids: a copy that stopped half
way, or one run again after the source grew, ends in the same state. At the end both logs
are compared by row counts and by a checksum of their whole content.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass

from tqdm import tqdm

from engine.log.config import LogConfig
from engine.log.port import ConversationStore, open_store
from engine.log.records import Conversation

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CopyResult:
    """What a copy wrote and how the two logs compared afterwards."""

    copied: int
    source_counts: dict[str, int]
    target_counts: dict[str, int]
    source_checksum: str
    target_checksum: str

    @property
    def identical(self) -> bool:
        """Whether the target now holds exactly what the source holds."""
        return (
            self.source_counts == self.target_counts
            and self.source_checksum == self.target_checksum
        )

    def render(self) -> str:
        """The comparison as aligned plain-text lines."""
        lines = [f"copied {self.copied} conversations", "table            source     target"]
        for table, count in self.source_counts.items():
            theirs = self.target_counts.get(table)
            mark = "" if theirs == count else "   <- differs"
            lines.append(f"{table:<14} {count:>8} {theirs!s:>10}{mark}")
        lines.append(f"checksum  source {self.source_checksum}")
        lines.append(f"          target {self.target_checksum}")
        return "\n".join(lines)


async def copy_log(
    source: LogConfig, target: LogConfig, *, batch_size: int = 200, progress: bool = False
) -> CopyResult:
    """Copy every conversation of `source` into `target` (created or migrated as needed).

    Stop the bot writing to `source` first, or run the copy again afterwards: the second run
    brings over what changed meanwhile.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if source.location == target.location:
        raise ValueError(f"--from and --to are the same log ({source.location})")
    async with (
        await open_store(source, create=False) as origin,
        await open_store(target) as destination,
    ):
        total = (await origin.row_counts())["conversations"]
        copied = 0
        batch: list[Conversation] = []
        existing = _Existing(destination)
        with tqdm(total=total, unit="conv", desc="copying", disable=not progress) as bar:
            async for conversation in origin.export_conversations(batch_size=batch_size):
                await existing.check(conversation)
                batch.append(conversation)
                if len(batch) >= batch_size:
                    await destination.restore(batch)
                    copied += len(batch)
                    bar.update(len(batch))
                    batch = []
            if batch:
                await destination.restore(batch)
                copied += len(batch)
                bar.update(len(batch))
        await existing.close()
        result = CopyResult(
            copied,
            await origin.row_counts(),
            await destination.row_counts(),
            await checksum(origin),
            await checksum(destination),
        )
    log.info(
        "copied conversation log from=%s to=%s conversations=%d identical=%s",
        origin.url,
        destination.url,
        copied,
        result.identical,
    )
    return result


class _Existing:
    """Walks the target's conversations beside the source's (both in id order), so a copy
    never replaces a conversation of another customer that happens to have the same id."""

    def __init__(self, store: ConversationStore) -> None:
        self._stream = store.export_conversations()
        self._current: Conversation | None = None
        self._done = False

    async def check(self, incoming: Conversation) -> None:
        while not self._done and (self._current is None or self._current.id < incoming.id):
            try:
                self._current = await anext(self._stream)
            except StopAsyncIteration:
                self._done, self._current = True, None
        found = self._current
        if found is None or found.id != incoming.id:
            return
        if (found.channel, found.external_user_id, found.created_at) != (
            incoming.channel,
            incoming.external_user_id,
            incoming.created_at,
        ):
            raise ValueError(
                f"the target already holds a different conversation {incoming.id} "
                f"({found.channel} customer {found.external_user_id}); copy into an empty "
                "database, or into the one an earlier copy filled"
            )

    async def close(self) -> None:
        await self._stream.aclose()


async def checksum(store: ConversationStore) -> str:
    """A SHA-256 over every conversation, turn, hit, vote and hand-over, in id order.

    It depends only on the content, never on the database holding it.
    """
    digest = hashlib.sha256()
    async for conversation in store.export_conversations():
        digest.update(_canonical(conversation))
        digest.update(b"\n")
    return digest.hexdigest()


def _canonical(conversation: Conversation) -> bytes:
    return json.dumps(asdict(conversation), sort_keys=True, ensure_ascii=False).encode()
