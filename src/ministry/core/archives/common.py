"""What wheel and sdist inspection share: limits, refusals, member names, size caps.

Every error the standard library raises on corrupt input becomes one
``InvalidUpload`` whose message starts "Invalid distribution file.", so a hostile
archive can never surface as a 500.
"""

from __future__ import annotations

import csv
import re
import struct
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from packaging.metadata import parse_email
from packaging.version import Version

from ministry.errors import InvalidUpload

__all__ = [
    "CHUNK",
    "CORRUPT",
    "ArchiveInfo",
    "ArchiveLimits",
    "check_license_files",
    "check_member_name",
    "check_totals",
    "reading",
    "refuse",
    "show",
]

CHUNK = 1024 * 1024
_RATIO_FLOOR = 10 * 1024 * 1024  # small archives may compress well; only big ones are bombs
# Errors that the standard library raises on corrupt input; each becomes an InvalidUpload.
CORRUPT: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    EOFError,
    zlib.error,
    OSError,
    ValueError,  # includes UnicodeDecodeError and packaging's InvalidVersion
    struct.error,
    csv.Error,
    NotImplementedError,
    OverflowError,
)


@dataclass(frozen=True)
class ArchiveLimits:
    """Fixed caps that bound the memory and time one inspection may take."""

    max_metadata_bytes: int = 4 * 1024 * 1024
    max_members: int = 50_000
    max_uncompressed_bytes: int = 2 * 1024**3
    max_compression_ratio: float = 200.0
    verify_record: bool = True


@dataclass(frozen=True)
class ArchiveInfo:
    """The core metadata file of a distribution, byte for byte, and its path in the archive."""

    metadata: bytes
    metadata_path: str


def refuse(reason: str) -> InvalidUpload:
    return InvalidUpload(f"Invalid distribution file. {reason}")


def show(text: str) -> str:
    """Quote a name from the archive for a message: escaped, and cut short if very long."""
    shown = repr(text)
    return shown if len(shown) <= 200 else f"{shown[:200]}...'"


@contextmanager
def reading(name: str) -> Iterator[None]:
    """Turn a corrupt-data error while reading one member into a refusal naming it."""
    try:
        yield
    except CORRUPT as exc:
        raise refuse(f"Member {show(name)} could not be read: {exc}") from exc


def check_totals(total: int, compressed: int, limits: ArchiveLimits, what: str) -> None:
    """Apply the size cap and, above 10 MiB, the ratio cap to ``total`` uncompressed bytes."""
    if total > limits.max_uncompressed_bytes:
        raise refuse(
            f"The archive's {what} is over the limit of {limits.max_uncompressed_bytes} bytes "
            f"(at least {total} bytes)."
        )
    if total > _RATIO_FLOOR and total > limits.max_compression_ratio * max(compressed, 1):
        raise refuse(
            f"The archive's {what} (at least {total} bytes from {compressed} compressed) is over "
            f"the compression ratio limit of {limits.max_compression_ratio:g} (a zip bomb?)."
        )


def check_member_name(name: str, *, strict: bool) -> None:
    """Refuse names that escape, hide or confuse; ``strict`` also refuses '' and '.' segments."""
    shown = show(name)
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in name):
        raise refuse(f"Member {shown} has a control character or invalid UTF-8 in its name.")
    if "\\" in name:
        raise refuse(f"Member {shown} has a backslash in its name; use '/' between directories.")
    parts = name.removesuffix("/").split("/")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise refuse(f"Member {shown} has an absolute path.")
    if ".." in parts:
        raise refuse(f"Member {shown} has a '..' path segment.")
    if strict and ("" in parts or "." in parts):
        raise refuse(f"Member {shown} has an empty or '.' path segment.")


def _license_files(metadata: bytes) -> list[str]:
    """The License-File paths that core metadata 2.4+ promises exist; else none
    (docs/protocol.md, "Archive contents")."""
    try:
        raw, _ = parse_email(metadata)
        if Version(raw.get("metadata_version", "0")) < Version("2.4"):
            return []
    except ValueError:
        return []  # unreadable metadata is refused, with a better message, by its own parser
    return raw.get("license_files", [])


def check_license_files(metadata: bytes, names: set[str], prefix: str, filename: str) -> None:
    for license_file in _license_files(metadata):
        if f"{prefix}{license_file}" not in names:
            raise refuse(
                f"License-File {license_file} does not exist in distribution file {filename} "
                f"at {prefix}{license_file}."
            )
