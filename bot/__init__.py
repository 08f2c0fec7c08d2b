"""The Telegram front end (aiogram)."""

__all__: list[str] = []
