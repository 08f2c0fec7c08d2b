"""Imports go one way: bot -> engine -> retrieval; training reads engine and retrieval."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import ROOT

ALLOWED = {
    "bot": {"bot", "engine", "retrieval"},
    "engine": {"engine", "retrieval"},
    "retrieval": {"retrieval"},
    "training": {"training", "engine", "retrieval"},
}


def imported_packages(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_lower_layers(package: str) -> None:
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = imported_packages(path.read_text(encoding="utf-8")) - ALLOWED[package]
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_check_finds_a_wrong_import() -> None:
    assert imported_packages("from bot import x\nimport engine.log\n") == {"bot", "engine"}
