"""The period and channel a report asks for, read by `Period.of_days` as the text report
(`python -m engine.log report`) reads them; here only a bad value becomes a 400."""

from __future__ import annotations

from bot.web.errors import ApiError
from engine.log.port import ConversationStore
from engine.log.summary import KNOWN_CHANNELS, BadPeriod, Period, channels_of

# The channels any log may be reported on; "all" (or none) is every one, and a channel the log
# holds is accepted too (`channels_of`).
CHANNELS = KNOWN_CHANNELS


async def period_of(
    log: ConversationStore, since: str | None, until: str | None, channel: str | None
) -> Period:
    """The conversations started from the UTC day `since` to the end of `until` (YYYY-MM-DD),
    on `channel`: a known channel or one the log holds; 400 for a malformed day, `until` before
    `since` or any other channel, naming the parameter."""
    try:
        channels = await channels_of(log, channel) if channel not in (None, "", "all") else None
        return Period.of_days(since, until, channel, channels=channels)
    except BadPeriod as error:
        code = "channel" if error.field == "channel" else "bad_date"
        raise ApiError(400, str(error), code=code, param=error.field) from None
