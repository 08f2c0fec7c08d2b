"""What a test does when a real part it needs is missing: an extra, a server, a browser, a tool
or the shared data. Locally it skips, saying what is missing and how to get it; under CI (`CI` set
to anything but empty, "false" or "0": runners set `CI=true` or `CI=1`) it fails, because CI
provides every part, so CI can never go green by skipping.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def under_ci() -> bool:
    """Whether the tests run under CI: `CI` is set and not empty, "false" or "0"."""
    return os.environ.get("CI", "").strip().lower() not in {"", "false", "0"}


def missing(part: str, install: str, *, ci: str) -> NoReturn:
    """Skip the test (or the whole module, called at its top) because `part` is missing, with
    `install`, the command that gets it; under CI fail instead, `ci` saying how CI has it.
    """
    __tracebackhide__ = True  # the skip is reported where the caller found the part missing
    message = f"{part}: {install}"
    if under_ci():
        pytest.fail(f"{message}; {ci}", pytrace=False)
    pytest.skip(message, allow_module_level=True)
