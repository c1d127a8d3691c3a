"""Single byte ranges (RFC 9110 §14) for resumed downloads and lazy wheel reads.

pip resumes with ``bytes=a-``, poetry and uv read a wheel's tail with a suffix
range ``bytes=-N``. Multiple ranges are legal to ignore (the whole file is sent
instead), which also rules out range amplification.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ministry.errors import RangeNotSatisfiable

__all__ = ["ByteRange", "parse_range"]

_SINGLE = re.compile(r"bytes=(\d*)-(\d*)\Z", re.ASCII)
# A position with more significant digits than this is past the end of any file, and is
# not converted at all (``int`` refuses a string of thousands of digits).
_LONGEST_POSITION = 19
_PAST_ANY_END: int = 10**_LONGEST_POSITION


@dataclass(frozen=True)
class ByteRange:
    """An inclusive byte range within a file of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        """Number of bytes in the range."""
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        """The ``Content-Range`` header value for this range."""
        return f"bytes {self.start}-{self.end}/{self.size}"


def parse_range(header: str, size: int) -> ByteRange | None:
    """The range to send, or None to send the whole file; raises when it cannot be satisfied."""
    match = _SINGLE.match(header.strip().replace(" ", ""))
    if match is None:
        return None  # malformed or multi-range: ignore the header, send 200
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = _position(last)
        if suffix == 0 or size == 0:
            raise _unsatisfiable(header, size)
        return ByteRange(max(size - suffix, 0), size - 1, size)
    start = _position(first)
    if start >= size:
        raise _unsatisfiable(header, size)
    end = _position(last) if last else size - 1
    if end < start:
        return None  # syntactically invalid: ignore the header
    return ByteRange(start, min(end, size - 1), size)


def _position(digits: str) -> int:
    significant = digits.lstrip("0")
    if len(significant) > _LONGEST_POSITION:
        return _PAST_ANY_END
    return int(significant or "0")


def _unsatisfiable(header: str, size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(
        f"Range {header[:64]!r} lies outside the file ({size} bytes).", size=size
    )
