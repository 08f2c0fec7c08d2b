"""Local TCP ports for servers the tests and benchmarks start on 127.0.0.1."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A local TCP port nothing listens on (at the time of asking)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
