"""What a test does when a real part it needs is missing: an extra, a server, a browser, a tool
or the shared data. Locally it skips, saying what is missing and how to get it; with `CI=true`
it fails, because CI provides every part, so CI can never go green by skipping.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(part: str, install: str, *, ci: str) -> NoReturn:
    """Skip the test (or the whole module, called at its top) because `part` is missing, with
    `install`, the command that gets it; under `CI=true` fail instead, `ci` saying how CI has it.
    """
    __tracebackhide__ = True  # the skip is reported where the caller found the part missing
    message = f"{part}: {install}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; {ci}", pytrace=False)
    pytest.skip(message, allow_module_level=True)
