"""Inline buttons under replies and what their presses carry."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

_BUTTON_CHARS = 60


class Vote(CallbackData, prefix="vote"):
    """A thumbs up (+1) or down (-1) on a bot turn."""

    turn: int
    value: int


class Choice(CallbackData, prefix="choice"):
    """One option of a clarifying question, by its number (1-based)."""

    number: int


class Erase(CallbackData, prefix="erase"):
    """The answer to "delete my data?"."""

    confirmed: bool


def feedback_keyboard(turn_id: int, chosen: int | None = None) -> InlineKeyboardMarkup:
    """👍 / 👎 under an answer; the chosen one is marked once pressed."""
    builder = InlineKeyboardBuilder()
    for value, face in ((1, "👍"), (-1, "👎")):
        label = f"{face} ✓" if value == chosen else face
        builder.button(text=label, callback_data=Vote(turn=turn_id, value=value))
    return builder.as_markup()


def choice_keyboard(options: Sequence[str]) -> InlineKeyboardMarkup:
    """One button per option of a clarifying question, one per row."""
    builder = InlineKeyboardBuilder()
    for number, option in enumerate(options, 1):
        text = f"{number}. {option}"
        if len(text) > _BUTTON_CHARS:
            text = text[: _BUTTON_CHARS - 1].rstrip() + "…"
        builder.button(text=text, callback_data=Choice(number=number))
    builder.adjust(1)
    return builder.as_markup()


def erase_keyboard() -> InlineKeyboardMarkup:
    """Confirm or cancel erasing the customer's data."""
    builder = InlineKeyboardBuilder()
    builder.button(text=_("Delete my data"), callback_data=Erase(confirmed=True))
    builder.button(text=_("Cancel"), callback_data=Erase(confirmed=False))
    return builder.as_markup()
