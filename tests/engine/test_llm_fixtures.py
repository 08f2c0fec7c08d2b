"""The LLM fixtures skip only for a missing extra, fail for it under CI=true, and never hide
any other error: a broken backend must not end green."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.engine.llm_fixtures import EXTRAS, require_extra

HERE = Path(__file__).resolve().parent
ABSENT = "supportbot_absent_extra_module"


@pytest.fixture
def part(monkeypatch: pytest.MonkeyPatch) -> str:
    """A made-up real part whose extra is not installed."""
    monkeypatch.setitem(EXTRAS, "a made-up part", (("json", ABSENT), "bash scripts/setup.sh x"))
    return "a made-up part"


def test_a_missing_extra_skips_with_the_install_command(
    part: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=f"needs {ABSENT}: bash scripts/setup.sh x"):
        require_extra(part)


@pytest.mark.parametrize("ci", ["true", "TRUE"])
def test_a_missing_extra_fails_under_ci(
    part: str, ci: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="CI installs every extra"):
        require_extra(part)


def test_an_installed_but_broken_backend_is_not_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The check finds the module without importing it, so an import that raises reaches the
    # fixture and errors the test instead of skipping it.
    (tmp_path / "supportbot_broken_backend.py").write_text("raise RuntimeError('broken')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(EXTRAS, "broken", (("supportbot_broken_backend",), "setup"))
    for ci in ("", "true"):
        monkeypatch.setenv("CI", ci)
        require_extra("broken")
    with pytest.raises(RuntimeError, match="broken"):
        __import__("supportbot_broken_backend")


def _skips(path: Path) -> list[tuple[str, int]]:
    """(enclosing function, line) of every pytest.skip / importorskip / skip mark in a file."""
    found: list[tuple[str, int]] = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef | ast.Module):
            continue
        name = getattr(func, "name", "<module>")
        for node in ast.walk(func):
            if isinstance(node, ast.Attribute) and node.attr in {
                "skip",
                "skipif",
                "importorskip",
                "xfail",
            }:
                found.append((name, node.lineno))
    return found


def test_only_the_missing_part_rule_skips_in_the_generator_contract() -> None:
    # require_extra skips through tests/missing.py, which fails instead under CI=true; a skip
    # written anywhere else in the fixtures or the contract would not.
    for name in ("llm_fixtures.py", "test_generators.py"):
        found = _skips(HERE / name)
        assert found == [], f"{name} skips at {found}"
    rule = {name for name, _ in _skips(HERE.parent / "missing.py") if name != "<module>"}
    assert rule == {"missing"}
