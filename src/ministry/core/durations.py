"""Durations and moments as people write them: ``30d``, ``12h``, ``2w``, ``90s``, ISO 8601."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from ministry.errors import InvalidRequest

__all__ = ["parse_duration", "parse_expiry"]

_DURATION = re.compile(r"(\d+)\s*([smhdw])\Z")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``3d``, ``12h``, ``15m``, ``90s``, ``2w``, or a number of seconds."""
    cleaned = text.strip().lower()
    if cleaned.isdigit():
        return timedelta(seconds=int(cleaned))
    match = _DURATION.match(cleaned)
    if match is None:
        raise InvalidRequest(
            f"Invalid duration {text[:40]!r}: write a number with s, m, h, d or w, like 3d."
        )
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def parse_expiry(text: str, now: datetime | None = None) -> datetime:
    """The moment a token expires; naive ISO times are read as UTC."""
    now = now or datetime.now(UTC)
    if _DURATION.match(text.strip().lower()):
        return now + parse_duration(text)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidRequest(
            f"Invalid expiry {text[:40]!r}: write a duration like 30d, 12h or 2w, "
            "or a date like 2027-01-31."
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
