"""`python -m engine.log copy`: SQLite to PostgreSQL and back, compared, safe to run again."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from engine.log import LogConfig, Retrieved, open_store
from engine.log.__main__ import main
from engine.log.copy import checksum, copy_log
from tests.conftest import ROOT


async def fill(path: Path, customers: int) -> None:
    async with await open_store(LogConfig(path=path)) as log:
        for n in range(customers):
            c = await log.start_conversation("telegram", f"user-{n}", language="en")
            await log.add_turn(
                c,
                "customer",
                f"question {n} from jane{n}@example.com",
                sentiment_label="neutral",
                sentiment_score=0.1,
                models={"sentiment": "lexicon"},
                external_id=f"update-{n}",
            )
            reply = await log.add_turn(
                c,
                "bot",
                f"answer {n}",
                action="answer",
                reason=f"confident: score 0.{n}",
                reason_code="confident",
                retrieved=[Retrieved(f"faq-{n}", 0.5 + n / 100), Retrieved("other", 0.1)],
                latencies_ms={"retrieval": 1.25},
                delivery="delivered",
            )
            if n % 2:
                await log.add_feedback(reply, 1)
                handover = await log.open_handover(c, "human_requested", topic_id=n)
                await log.add_turn(c, "operator", f"operator {n}")
                await log.close_handover(handover, operator_id="op")
        await log.erase_customer("telegram", "user-0")


async def test_a_log_goes_to_postgres_and_back_unchanged(tmp_path: Path, postgres_url: str) -> None:
    source = tmp_path / "source.db"
    await fill(source, 7)

    there = await copy_log(LogConfig(path=source), LogConfig(url=postgres_url), batch_size=4)
    assert there.identical and there.copied == 6
    assert there.target_counts == {
        "conversations": 6,
        "turns": 15,
        "retrieved": 12,
        "feedback": 3,
        "handovers": 3,
    }
    back = await copy_log(LogConfig(url=postgres_url), LogConfig(path=tmp_path / "back.db"))
    assert back.identical and back.source_checksum == there.source_checksum

    # Both copies go on as logs of their own: new ids after the copied ones.
    async with await open_store(LogConfig(url=postgres_url)) as log:
        fresh = await log.start_conversation("telegram", "new")
        assert fresh > 7
        assert (await log.get_conversation(fresh)) is not None


async def test_copying_again_changes_nothing_and_brings_over_what_is_new(
    tmp_path: Path, postgres_url: str
) -> None:
    source = tmp_path / "source.db"
    await fill(source, 3)
    target = LogConfig(url=postgres_url)
    first = await copy_log(LogConfig(path=source), target)
    again = await copy_log(LogConfig(path=source), target)
    assert first.identical and again.identical
    assert again.target_counts == first.target_counts
    assert again.target_checksum == first.target_checksum

    async with await open_store(LogConfig(path=source)) as log:
        c = await log.start_conversation("telegram", "later")
        await log.add_turn(c, "customer", "one more")
        old = await log.latest_conversation_id("telegram", "user-1")
        assert old is not None
        await log.close_conversation(old)
    third = await copy_log(LogConfig(path=source), target)
    assert third.identical
    assert third.target_counts["conversations"] == first.target_counts["conversations"] + 1


def test_a_target_holding_other_customers_under_the_same_ids_is_refused(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "source.db"
    asyncio.run(fill(source, 2))
    asyncio.run(start_others(postgres_url, 5))
    code = main(["copy", "--from", str(source), "--to", postgres_url, "--no-progress"])
    assert code == 1
    assert "already holds a different conversation 2" in capsys.readouterr().err
    (customer,) = asyncio.run(customers(postgres_url, 2))
    assert customer == "someone-1"  # left as it was


def test_a_target_holding_more_conversations_is_reported(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "source.db"
    asyncio.run(fill(source, 2))
    assert main(["copy", "--from", str(source), "--to", postgres_url, "--no-progress"]) == 0
    asyncio.run(start_others(postgres_url, 1))
    assert main(["copy", "--from", str(source), "--to", postgres_url, "--no-progress"]) == 1
    out, err = capsys.readouterr()
    assert "conversations         1          2   <- differs" in out
    assert "the logs differ after the copy" in err


async def start_others(url: str, count: int) -> None:
    async with await open_store(LogConfig(url=url)) as log:
        for n in range(count):
            await log.start_conversation("web", f"someone-{n}")


async def customers(url: str, conversation_id: int) -> list[str]:
    async with await open_store(LogConfig(url=url)) as log:
        found = await log.get_conversation(conversation_id)
    return [found.external_user_id] if found is not None else []


async def test_the_checksum_sees_a_changed_byte(tmp_path: Path, postgres_url: str) -> None:
    source = tmp_path / "source.db"
    await fill(source, 3)
    result = await copy_log(LogConfig(path=source), LogConfig(url=postgres_url))
    import asyncpg  # the postgres extra; postgres_url skips without it

    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(
            "UPDATE turns SET text = text || '.' WHERE id = (SELECT max(id) FROM turns)"
        )
    finally:
        await conn.close()
    async with await open_store(LogConfig(url=postgres_url)) as log:
        assert await checksum(log) != result.target_checksum


def test_the_command_line_copies_both_ways(tmp_path: Path, postgres_url: str) -> None:
    source = tmp_path / "source.db"
    asyncio.run(fill(source, 4))
    for origin, target in ((str(source), postgres_url), (postgres_url, str(tmp_path / "b.db"))):
        done = subprocess.run(
            [
                sys.executable,
                "-W",
                "error",
                "-m",
                "engine.log",
                "copy",
                "--from",
                origin,
                "--to",
                target,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "identical: row counts and checksum match" in done.stdout
        assert "conversations         3          3" in done.stdout
    report = subprocess.run(
        [sys.executable, "-m", "engine.log", "--db", postgres_url, "--top", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "conversations     3" in report.stdout and "handed over" in report.stdout


def test_copying_a_log_onto_itself_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "x.db")
    assert main(["copy", "--from", path, "--to", path, "--no-progress"]) == 1


async def test_hand_over_holders_ratings_and_announcements_survive_a_copy(
    tmp_path: Path, postgres_url: str
) -> None:
    source = tmp_path / "source.db"
    async with await open_store(LogConfig(path=source)) as log:
        c = await log.start_conversation("telegram", "held")
        await log.add_turn(c, "customer", "a person, please")
        rated = await log.open_handover(c, "human_requested", topic_id=9)
        await log.assign_handover(rated, "olaf")
        await log.close_handover(rated, operator_id="olaf")
        await log.ask_rating(rated)
        assert await log.rate_handover(rated, 4)
        held = await log.open_handover(c, "human_requested", topic_id=9)
        await log.assign_handover(held, "ann")
        assert await log.claim_assignment_notice(held, "ann")  # announced in its topic
    there = await copy_log(LogConfig(path=source), LogConfig(url=postgres_url))
    back_config = LogConfig(path=tmp_path / "back.db")
    back = await copy_log(LogConfig(url=postgres_url), back_config)
    assert there.identical and back.identical
    async with await open_store(back_config) as log:
        copied = await log.get_conversation(c)
        assert copied is not None
        first, second = copied.handovers
        assert (first.assignee, first.operator_id, first.rating) == ("olaf", "olaf", 4)
        assert None not in (first.assigned_at, first.rating_asked_at, first.rated_at)
        assert (second.id, second.assignee, second.closed_at) == (held, "ann", None)
        # Announced before the copy: the outbox must not say "Taken by ann" again.
        assert second.announced_assignee == "ann"
        assert not await log.claim_assignment_notice(held, "ann")
