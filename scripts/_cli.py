"""What every command-line entry point shares: config file, logging, offline model loading."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from engine import Settings, load_settings


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, help="TOML config file (default: ./supportbot.toml if present)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")


def setup(args: argparse.Namespace) -> Settings:
    """Configure logging, forbid model downloads, and read the config once."""
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Models come from local folders only; never wait on a hub that is not reachable.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # The per-tensor "Loading weights" bar on every start is noise; our own bars stay.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return load_settings(args.config)
