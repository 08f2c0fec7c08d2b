"""The Telegram front end (aiogram): customer chat, streaming replies, polling and webhook."""

from bot.app import build_dispatcher, make_bot
from bot.desk import Desk, LoggedDesk
from bot.serving import run_polling, run_webhook

__all__ = ["Desk", "LoggedDesk", "build_dispatcher", "make_bot", "run_polling", "run_webhook"]
