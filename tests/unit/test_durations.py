"""Unit tests for ministry.core.durations: token expiry as durations or ISO 8601 dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ministry.core.durations import parse_duration, parse_expiry
from ministry.errors import InvalidRequest

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(weeks=2)),
        ("15m", timedelta(minutes=15)),
        ("1d", timedelta(days=1)),
        ("0h", timedelta(0)),
        ("365d", timedelta(days=365)),
        ("30D", timedelta(days=30)),
        (" 12 h ", timedelta(hours=12)),
    ],
)
def test_durations_count_from_now(text: str, delta: timedelta) -> None:
    """m, h, d and w: minutes, hours, days and weeks from now (any case, spaces trimmed)."""
    assert parse_expiry(text, now=NOW) == NOW + delta


def test_durations_default_to_the_current_time() -> None:
    """Without ``now`` the clock is read, in UTC."""
    before = datetime.now(UTC)
    moment = parse_expiry("1h")
    after = datetime.now(UTC)
    assert before + timedelta(hours=1) <= moment <= after + timedelta(hours=1)
    assert moment.tzinfo is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-01-31", datetime(2027, 1, 31, tzinfo=UTC)),
        ("2027-01-31T10:30", datetime(2027, 1, 31, 10, 30, tzinfo=UTC)),
        ("2027-01-31 10:30:15", datetime(2027, 1, 31, 10, 30, 15, tzinfo=UTC)),
        ("  2027-01-31  ", datetime(2027, 1, 31, tzinfo=UTC)),
    ],
)
def test_naive_dates_and_times_are_utc(text: str, expected: datetime) -> None:
    """An ISO date or time without an offset is read as UTC."""
    moment = parse_expiry(text, now=NOW)
    assert moment == expected
    assert moment.utcoffset() == timedelta(0)


def test_offsets_are_kept() -> None:
    """An ISO time with an offset keeps it (it compares correctly with UTC times)."""
    moment = parse_expiry("2027-01-31T10:00+02:00", now=NOW)
    assert moment.utcoffset() == timedelta(hours=2)
    assert moment == datetime(2027, 1, 31, 8, 0, tzinfo=UTC)
    assert parse_expiry("2027-01-31T10:00Z") == datetime(2027, 1, 31, 10, tzinfo=UTC)


def test_dates_in_the_past_are_parsed() -> None:
    """Parsing does not judge; creating a token refuses a past expiry."""
    assert parse_expiry("2000-01-01", now=NOW) == datetime(2000, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    ["", "soon", "30", "30x", "d30", "-1d", "1.5d", "30 days", "2027-13-01", "2027-02-30", "1y"],
)
def test_junk_is_refused_with_the_forms_to_use(text: str) -> None:
    """InvalidRequest (400) naming the accepted forms."""
    with pytest.raises(InvalidRequest, match=r"write a duration like 30d, 12h or 2w, or a date"):
        parse_expiry(text, now=NOW)


def test_long_junk_is_cut_in_the_message() -> None:
    """The message quotes at most 40 characters of what was given."""
    with pytest.raises(InvalidRequest) as caught:
        parse_expiry("x" * 1000, now=NOW)
    assert "x" * 41 not in caught.value.message


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("12h", 43200), ("3d", 259200), ("2w", 1209600), ("300", 300)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    """Durations for proxy settings: a unit letter, or bare seconds."""
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "soon", "3 days", "-5s", "1.5h"])
def test_parse_duration_refuses_junk(text: str) -> None:
    """Anything else is a clear error."""
    with pytest.raises(InvalidRequest, match="Invalid duration"):
        parse_duration(text)
