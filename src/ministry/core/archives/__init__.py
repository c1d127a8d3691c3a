"""Inspect an uploaded wheel or sdist and return its core metadata, refusing hostile archives.

An upload is untrusted bytes that pip, uv and our own metadata parser read later, so every
ambiguity between archive readers is refused rather than resolved: duplicate names, a local
header that disagrees with the central directory, bytes hidden before, between or after zip
members, a file that is both a zip and a tar (docs/security.md, "Hostile uploads"). Nothing is
extracted to disk. Members are read one at a time, in chunks, under fixed caps on member
count, decompressed bytes, compression ratio and metadata size, so a bomb costs bounded
memory and time. The code is synchronous because the upload service runs it in a worker thread.
"""

from __future__ import annotations

from pathlib import Path

from ministry.core.archives.common import CORRUPT, ArchiveInfo, ArchiveLimits, refuse
from ministry.core.archives.sdists import inspect_sdist_file
from ministry.core.archives.wheels import inspect_wheel_file

__all__ = ["ArchiveInfo", "ArchiveLimits", "inspect_sdist", "inspect_wheel"]

_DEFAULTS = ArchiveLimits()


def inspect_wheel(path: Path, filename: str, limits: ArchiveLimits = _DEFAULTS) -> ArchiveInfo:
    """Check the wheel at ``path`` and return its METADATA, or raise InvalidUpload."""
    try:
        with path.open("rb") as fp:
            return inspect_wheel_file(fp, filename, limits)
    except CORRUPT as exc:
        raise refuse(f"File is not a valid zipfile: {exc}") from exc


def inspect_sdist(path: Path, filename: str, limits: ArchiveLimits = _DEFAULTS) -> ArchiveInfo:
    """Check the sdist at ``path`` and return its ``PKG-INFO``, or raise InvalidUpload."""
    try:
        with path.open("rb") as fp:
            return inspect_sdist_file(fp, path, filename.removesuffix(".tar.gz"), limits)
    except CORRUPT as exc:
        raise refuse(f"File is not a valid tar.gz archive: {exc}") from exc
