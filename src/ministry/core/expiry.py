"""Token expiry as people write it: ``30d``, ``12h``, ``2w``, or an ISO 8601 date or time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from ministry.errors import InvalidRequest

__all__ = ["parse_expiry"]

_DURATION = re.compile(r"(\d+)\s*([mhdw])\Z")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_expiry(text: str, now: datetime | None = None) -> datetime:
    """The moment a token expires; naive ISO times are read as UTC."""
    now = now or datetime.now(UTC)
    match = _DURATION.match(text.strip().lower())
    if match:
        return now + timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidRequest(
            f"Invalid expiry {text[:40]!r}: write a duration like 30d, 12h or 2w, "
            "or a date like 2027-01-31."
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
