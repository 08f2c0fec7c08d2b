"""A fake Telegram Bot API server for end-to-end tests of the bot."""

from tests.telegram.fake_api import Call, FakeTelegram, Sender, StoredFile

__all__ = ["Call", "FakeTelegram", "Sender", "StoredFile"]
