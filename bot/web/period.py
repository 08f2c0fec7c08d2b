"""The days a report asks for, as the text report (`python -m engine.log report`) reads them:
YYYY-MM-DD in UTC, `since` from the start of its day, `until` to the end of its day."""

from __future__ import annotations

import calendar
import time

from bot.web.errors import ApiError

DAY_S = 86400


def day_start(value: str | None, name: str = "since") -> float | None:
    """The start of the UTC day given as YYYY-MM-DD, in Unix seconds; None for no day."""
    if not value:
        return None
    try:
        return calendar.timegm(time.strptime(value, "%Y-%m-%d"))
    except ValueError:
        raise ApiError(
            400, f"{name}={value!r}: give a date as YYYY-MM-DD", code="bad_date", param=name
        ) from None


def day_end(value: str | None, name: str = "until") -> float | None:
    """The end of the UTC day given (the day included), in Unix seconds; None for no day."""
    start = day_start(value, name)
    return None if start is None else start + DAY_S
