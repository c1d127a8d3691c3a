"""Unit tests for ministry.core.ranges: single byte ranges for downloads
(docs/protocol.md, "Byte ranges")."""

from __future__ import annotations

import pytest

from ministry.core.ranges import ByteRange, parse_range
from ministry.errors import RangeNotSatisfiable

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=0-99", 0, 99),
        ("bytes=100-199", 100, 199),
        ("bytes=999-999", 999, 999),
        ("bytes=0-999", 0, 999),
    ],
)
def test_closed_range(header: str, start: int, end: int) -> None:
    """``bytes=a-b`` is the inclusive range a..b."""
    assert parse_range(header, SIZE) == ByteRange(start, end, SIZE)


@pytest.mark.parametrize(("header", "start"), [("bytes=0-", 0), ("bytes=500-", 500)])
def test_open_ended_range_runs_to_the_end(header: str, start: int) -> None:
    """``bytes=a-`` (pip's resume) runs from a to the last byte."""
    assert parse_range(header, SIZE) == ByteRange(start, SIZE - 1, SIZE)


@pytest.mark.parametrize(("suffix", "start"), [(1, 999), (22, 978), (1000, 0)])
def test_suffix_range_reads_the_tail(suffix: int, start: int) -> None:
    """``bytes=-N`` (poetry's and uv's lazy wheel) is the last N bytes."""
    byte_range = parse_range(f"bytes=-{suffix}", SIZE)
    assert byte_range == ByteRange(start, SIZE - 1, SIZE)
    assert byte_range.length == suffix


def test_suffix_larger_than_file_is_the_whole_file() -> None:
    """A suffix larger than the file returns the whole file (as a 206)."""
    assert parse_range("bytes=-5000", SIZE) == ByteRange(0, SIZE - 1, SIZE)


@pytest.mark.parametrize("header", ["bytes=0-5000", "bytes=900-1000", "bytes=999-99999999999999"])
def test_end_is_clamped_to_last_byte(header: str) -> None:
    """RFC 9110 14.1.2: a last-pos past the end is read as the last byte."""
    byte_range = parse_range(header, SIZE)
    assert byte_range is not None
    assert byte_range.end == SIZE - 1


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-1001", "bytes=5000-6000"])
def test_start_past_end_is_not_satisfiable(header: str) -> None:
    """A first byte at or past the end -> 416, and the error carries the size."""
    with pytest.raises(RangeNotSatisfiable) as caught:
        parse_range(header, SIZE)
    assert caught.value.size == SIZE


def test_zero_length_suffix_is_not_satisfiable() -> None:
    """RFC 9110 14.1.1: ``bytes=-0`` selects nothing -> 416 with the size."""
    with pytest.raises(RangeNotSatisfiable) as caught:
        parse_range("bytes=-0", SIZE)
    assert caught.value.size == SIZE


@pytest.mark.parametrize("header", ["bytes=0-", "bytes=0-0", "bytes=-1"])
def test_any_range_of_an_empty_file_is_not_satisfiable(header: str) -> None:
    """RFC 9110 14.1.1: an empty file has no bytes to select -> 416 ``*/0``."""
    with pytest.raises(RangeNotSatisfiable) as caught:
        parse_range(header, 0)
    assert caught.value.size == 0


def test_end_before_start_is_ignored() -> None:
    """RFC 9110 14.1.1: ``bytes=5-3`` is invalid, so the header is ignored (200, whole file)."""
    assert parse_range("bytes=5-3", SIZE) is None


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=0-1, 5-6", "bytes=-1,0-"])
def test_multiple_ranges_are_ignored(header: str) -> None:
    """Multi-range is not needed; the header is ignored and the whole file sent."""
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize(
    "header",
    ["", "bytes=", "bytes=-", "bytes=a-b", "items=0-1", "bytes 0-1", "0-1", "bytes=1.5-2", "x"],
)
def test_malformed_range_is_ignored(header: str) -> None:
    """RFC 9110 14.2: a Range the server does not understand is ignored -> None, never raises."""
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", "bytes 0-99/1000"),
        ("bytes=500-", "bytes 500-999/1000"),
        ("bytes=-10", "bytes 990-999/1000"),
        ("bytes=-5000", "bytes 0-999/1000"),
        ("bytes=900-5000", "bytes 900-999/1000"),
    ],
)
def test_content_range_header(header: str, expected: str) -> None:
    """A 206 carries ``Content-Range: bytes a-b/TOTAL``."""
    byte_range = parse_range(header, SIZE)
    assert byte_range is not None
    assert byte_range.content_range == expected


def test_length_counts_both_ends() -> None:
    """ByteRange.length is end - start + 1 (the Content-Length of the 206)."""
    byte_range = parse_range("bytes=10-19", SIZE)
    assert byte_range is not None
    assert byte_range.length == 10


@pytest.mark.parametrize("digits", [20, 5000])
def test_positions_too_long_for_any_file(digits: int) -> None:
    """docs/security.md, "HTTP abuse": a position of thousands of digits is past the end (416),
    never a crash."""
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=" + "9" * digits + "-", SIZE)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=" + "1" * digits + "-" + "2" * digits, SIZE)
    assert parse_range("bytes=-" + "9" * digits, SIZE) == ByteRange(0, SIZE - 1, SIZE)
    assert parse_range("bytes=0-" + "9" * digits, SIZE) == ByteRange(0, SIZE - 1, SIZE)


def test_leading_zeros_do_not_count_as_digits() -> None:
    """RFC 9110: ``0…05`` is 5, however many zeros lead it."""
    assert parse_range("bytes=" + "0" * 5000 + "5-9", SIZE) == ByteRange(5, 9, SIZE)


def test_non_ascii_digits_are_no_range() -> None:
    """RFC 9110 digits are ASCII: ``bytes=٣-`` is malformed and ignored."""
    assert parse_range("bytes=\u0663-", SIZE) is None
