"""Optional JSON log lines, one object per event, for a log collector (Loki, Elasticsearch)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: int, *, json_lines: bool = False) -> None:
    """Set up the root logger for an entry point: plain text lines, or JSON lines.

    Called again with `json_lines` (the config file asked for them), it switches the stream
    handler it installed to JSON; handlers someone else installed (a test runner's) are kept.
    """
    logging.basicConfig(level=level, format=_FORMAT)
    if json_lines:
        for handler in logging.getLogger().handlers:
            if type(handler) is logging.StreamHandler:
                handler.setFormatter(JsonFormatter())
