"""Log set-up for every command: a text line per record, or one JSON object per line.

JSON is for log shippers (Loki, Elasticsearch, CloudWatch): every record, the
access lines included, becomes one object a machine can read without a parser
for our text format.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["JsonFormatter", "configure_logging", "text_formatter"]

# The process id tells the workers of ``serve --processes N`` apart.
_TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
# httpx and botocore log every request or credential lookup at INFO; the server's own
# log lines say what matters.
_CHATTY = ("httpx", "botocore", "boto3", "s3transfer")
# Access-record fields written to JSON, in this order.
_ACCESS_FIELDS = (
    "request_id", "method", "path", "status", "bytes", "duration_ms",
    "user", "index", "address", "route",
)  # fmt: skip


class JsonFormatter(logging.Formatter):
    """One JSON object per record; access records carry their request's fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON (newlines inside values are escaped)."""
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "process": record.process,
        }
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            document.update((name, access.get(name)) for name in _ACCESS_FIELDS)
        else:
            document["logger"] = record.name
            document["message"] = record.getMessage()
        if record.exc_info:
            document["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


def text_formatter() -> logging.Formatter:
    """The text format: time, level, process id, logger and message on one line."""
    return logging.Formatter(_TEXT_FORMAT)


# The name of the handler configure_logging installs: a second call replaces it, and
# leaves alone handlers that others (a program running commands in-process) installed.
_HANDLER_NAME = "ministry-stderr"


def configure_logging(log_format: str) -> None:
    """Log INFO and above to stderr, as text lines or (``"json"``) JSON objects."""
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(text_formatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for chatty in _CHATTY:
        logging.getLogger(chatty).setLevel(logging.WARNING)
