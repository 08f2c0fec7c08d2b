"""The TOML configuration: documented defaults, overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import Settings, load_settings
from retrieval import RetrievalConfig
from tests.conftest import EXAMPLES


def test_documented_config_matches_the_defaults() -> None:
    assert load_settings(EXAMPLES / "config.toml") == Settings()


def test_overrides_are_typed(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[retrieval]\nkb_dir = "x/kb"\ncentroid_weight = 0\ntop_k = 3\n')
    settings = load_settings(cfg)
    assert settings.retrieval == RetrievalConfig(kb_dir=Path("x/kb"), centroid_weight=0.0, top_k=3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[retrieval]\ntop_kk = 3\n", "unknown key 'top_kk'"),
        ("[retreival]\n", "unknown section"),
        ('[retrieval]\ntop_k = "3"\n', "top_k must be int"),
        ("[import]\nmax_file_mb = true\n", "max_file_mb must be float"),
        ("[retrieval\n", "invalid TOML"),
        ("[bot]\noutbox_reclaim_s = 5.0\n", "outbox_reclaim_s must be 240 or more"),
        ("[bot]\noutbox_interval_s = 0.0\n", "outbox_interval_s must be above 0"),
        ("[retrieval]\nthreads = -1\n", r"\[retrieval\] threads must be 0"),
    ],
)
def test_bad_config_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_settings(cfg)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
