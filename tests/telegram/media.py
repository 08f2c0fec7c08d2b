"""Telegram's objects for stored files: photo sizes, Document, Sticker, Voice."""

from __future__ import annotations

from typing import Any

from tests.telegram.world import StoredFile


def photo_sizes(stored: StoredFile, *sizes: tuple[int, int]) -> list[dict[str, Any]]:
    """One PhotoSize per (width, height), smallest first, as Telegram lists them."""
    return [
        {
            "file_id": stored.file_id,
            "file_unique_id": f"{stored.file_unique_id}{index}",
            "width": width,
            "height": height,
            "file_size": len(stored.data),
        }
        for index, (width, height) in enumerate(sizes)
    ]


def document(stored: StoredFile) -> dict[str, Any]:
    """A Document for a stored file; name and type only when known."""
    found: dict[str, Any] = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": len(stored.data),
    }
    if stored.file_name:
        found["file_name"] = stored.file_name
    if stored.mime_type:
        found["mime_type"] = stored.mime_type
    return found


def sticker(stored: StoredFile, emoji: str) -> dict[str, Any]:
    """A static 512 by 512 sticker from a fake set."""
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "emoji": emoji,
        "set_name": "FakeStickers",
        "file_size": len(stored.data),
    }


def voice(stored: StoredFile, duration: int) -> dict[str, Any]:
    """A voice note of `duration` seconds."""
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "duration": duration,
        "mime_type": stored.mime_type or "audio/ogg",
        "file_size": len(stored.data),
    }
