"""A missing real part skips locally with how to get it, and fails under CI (true or 1)."""

from __future__ import annotations

import pytest

from tests.missing import missing


@pytest.mark.parametrize("ci", [None, "", "false", "False", "0"])
def test_a_missing_part_skips_with_the_install_command(
    ci: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception) as skipped:
        missing("a part is missing", "apt-get install part", ci="CI has it")
    assert skipped.value.msg == "a part is missing: apt-get install part"
    # Called at a test module's top, it skips the module instead of stopping the collection.
    assert skipped.value.allow_module_level


@pytest.mark.parametrize("ci", ["true", "TRUE", "True", "1", "yes"])
def test_a_missing_part_fails_under_ci(ci: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception) as failed:
        missing("a part is missing", "apt-get install part", ci="CI has it")
    assert failed.value.msg == "a part is missing: apt-get install part; CI has it"
    assert not failed.value.pytrace
