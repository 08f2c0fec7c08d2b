"""`Period.of_days`: the one reading of a report's days and channel, for the command line and
the web app alike."""

from __future__ import annotations

import calendar
import math

import pytest

from engine.log.summary import BadPeriod, Period

MARCH_2 = calendar.timegm((2026, 3, 2, 0, 0, 0))


def test_days_are_utc_and_until_includes_its_day() -> None:
    period = Period.of_days("2026-03-02", "2026-03-03", "web")
    assert period == Period(since=MARCH_2, until=MARCH_2 + 2 * 86400, channel="web")
    one_day = Period.of_days("2026-03-02", "2026-03-02")
    assert one_day.until - one_day.since == 86400


@pytest.mark.parametrize("channel", [None, "", "all"])
def test_no_bounds_and_all_channels_are_the_whole_log(channel: str | None) -> None:
    assert Period.of_days(None, "", channel) == Period(0.0, math.inf, None)
    assert Period.of_days(channel=channel, channels=("web",)).channel is None


def test_a_channel_outside_the_known_ones_is_refused_only_when_they_are_given() -> None:
    assert Period.of_days(channel="terminal").channel == "terminal"
    with pytest.raises(BadPeriod) as caught:
        Period.of_days(channel="fax", channels=("telegram", "web"))
    assert caught.value.field == "channel"
    assert str(caught.value) == "channel='fax': one of all, telegram, web"


@pytest.mark.parametrize(
    ("since", "until", "field", "value"),
    [("May", None, "since", "May"), ("2026-03-02", "2026-02-30", "until", "2026-02-30")],
)
def test_a_bad_day_names_its_field(since: str, until: str | None, field: str, value: str) -> None:
    with pytest.raises(BadPeriod) as caught:
        Period.of_days(since, until)
    assert caught.value.field == field
    assert str(caught.value) == f"{field}={value!r}: give a day as YYYY-MM-DD"
