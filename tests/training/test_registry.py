"""Versioned models on a real folder: add, promote, current, rollback."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.registry import ModelRegistry


def _model(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / "src" / name
    folder.mkdir(parents=True)
    (folder / "weights.bin").write_text(name)
    return folder


def test_promote_and_rollback(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    assert registry.current("lora") is None
    versions = [
        registry.add("lora", _model(tmp_path, f"m{i}"), {"metrics": {"validation_loss": i}})
        for i in range(3)
    ]
    assert [v.version for v in registry.versions("lora")] == sorted(v.version for v in versions)
    assert registry.current("lora") is None, "adding does not make a version live"
    for version in versions:
        registry.promote("lora", version.version)
    current = registry.current("lora")
    assert current is not None and current.version == versions[2].version
    assert (current.path / "weights.bin").read_text() == "m2"
    assert current.metadata["metrics"] == {"validation_loss": 2}
    assert "created" in current.metadata
    assert registry.rollback("lora").version == versions[1].version
    assert registry.rollback("lora").version == versions[0].version
    assert registry.current_path("lora") == versions[0].path
    with pytest.raises(ValueError, match="only one"):
        registry.rollback("lora")
    assert not list((tmp_path / "models" / "lora").glob(".*CURRENT*"))


def test_rollback_needs_a_live_model(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    with pytest.raises(ValueError, match="nothing to roll back"):
        registry.rollback("sentiment")


def test_unknown_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="valid: embedder, lora, sentiment"):
        ModelRegistry(tmp_path).current("llm")
