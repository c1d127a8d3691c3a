"""Sizes as people write them (``5G``, ``500M``, ``10GiB``, plain bytes) and as they read them.

One parser for every door a size comes through: the command line, the config file,
the environment and the management API, so each takes and refuses the same values.
Units are binary: ``K`` is 1024 bytes, with or without ``iB`` or ``B`` after it.
"""

from __future__ import annotations

import re

__all__ = ["exact_size", "format_size", "parse_size"]

_SIZE = re.compile(r"(\d+)\s*([kmgt]?)(i?b)?\Z", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str) -> int:
    """Parse ``100M``, ``1GiB``, ``512k`` or a number of bytes."""
    match = _SIZE.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a size; write bytes or a number with K, M or G")
    return int(match[1]) * _UNITS[match[2].lower()]


def format_size(size: int) -> str:
    """A size for people: bytes below 1 KiB, else one decimal in the largest unit that fits."""
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    units = ["KiB", "MiB", "GiB", "TiB"]
    while value >= 1024 and len(units) > 1:
        value /= 1024
        units.pop(0)
    return f"{value:.1f} {units[0]}"


def exact_size(size: int) -> str:
    """A size in the largest unit that divides it exactly (``5 GiB``, ``1536 KiB``,
    ``1000 B``): readable, and ``parse_size`` reads it back to the same bytes, so a
    form can show it and take it back unchanged."""
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"
