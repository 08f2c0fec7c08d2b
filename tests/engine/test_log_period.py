"""`Period.of_days`: the one reading of a report's days and channel, for the command line and
the web app alike."""

from __future__ import annotations

import calendar
import math
from pathlib import Path

import pytest

from engine.log import ConversationLog, summary
from engine.log.summary import BadPeriod, Period, channels_of

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
    assert str(caught.value) == f"{field}={value!r}: give a UTC day as YYYY-MM-DD"


@pytest.mark.parametrize(
    "day", ["2026-3-2", "20260302", "2026-W10-1", "2026-03-02T00", " 2026-3-02"]
)
def test_only_a_day_written_yyyy_mm_dd_is_read(day: str) -> None:
    with pytest.raises(BadPeriod) as caught:
        Period.of_days(since=day)
    assert caught.value.field == "since"


def test_until_before_since_is_refused_naming_until() -> None:
    with pytest.raises(BadPeriod) as caught:
        Period.of_days("2026-03-02", "2026-03-01")
    assert caught.value.field == "until"
    assert str(caught.value) == "until='2026-03-01' is before since='2026-03-02'"


async def test_the_channels_of_a_log_are_the_known_ones_and_those_it_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A channel the log holds is accepted even when it is not among the recent conversations
    listed (one of them here); one it never held is refused, listing what it has."""
    monkeypatch.setattr(summary, "_LISTED_FROM", 1)
    log = await ConversationLog.open(tmp_path / "log.db")
    try:
        assert await channels_of(log) == ("telegram", "telegram-chat", "terminal", "web")
        await log.start_conversation("kiosk", "k1")
        await log.start_conversation("web", "w1")  # now the most recent: kiosk is not listed
        assert await channels_of(log) == ("telegram", "telegram-chat", "terminal", "web")
        held = await channels_of(log, "kiosk")
        assert held == ("kiosk", "telegram", "telegram-chat", "terminal", "web")
        assert Period.of_days(channel="kiosk", channels=held).channel == "kiosk"
        with pytest.raises(BadPeriod) as caught:
            Period.of_days(channel="kisok", channels=await channels_of(log, "kisok"))
    finally:
        await log.close()
    assert (
        str(caught.value) == "channel='kisok': one of all, telegram, telegram-chat, terminal, web"
    )
