"""The period and channel a report asks for, read by `Period.of_days` as the text report
(`python -m engine.log report`) reads them; here only a bad value becomes a 400."""

from __future__ import annotations

from bot.web.errors import ApiError
from engine.log.summary import BadPeriod, Period

# The channels the web app serves and reports on; "all" (or none) is every one.
CHANNELS = ("telegram", "web")


def period_of(since: str | None, until: str | None, channel: str | None) -> Period:
    """The conversations started from the UTC day `since` to the end of `until` (YYYY-MM-DD),
    on `channel`; 400 for a malformed day or an unknown channel, naming the parameter."""
    try:
        return Period.of_days(since, until, channel, channels=CHANNELS)
    except BadPeriod as error:
        code = "channel" if error.field == "channel" else "bad_date"
        raise ApiError(400, str(error), code=code, param=error.field) from None
