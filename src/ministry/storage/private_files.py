"""Keeping the data on disk to its owner: the database holds password and token hashes,
the blobs hold private indexes' files (docs/security.md, "Secrets at rest and on screen").

Every command runs under the umask 0o077, so what it creates is 0700 or 0600.
What an older release or an operator left open is closed when the stores open:
the data directory, the database with its WAL and shared-memory files, and the
top directories of the blob tree. The blobs below are not walked (a store may
hold millions): a directory closed to others closes everything under it.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterable
from pathlib import Path

__all__ = ["PRIVATE_UMASK", "PUBLISHED_UMASK", "close_to_others"]

#: Group and others get no bits on anything a command creates.
PRIVATE_UMASK = 0o077
#: A static export is made for a web server to publish: everyone may read it.
PUBLISHED_UMASK = 0o022

log = logging.getLogger(__name__)


def close_to_others(paths: Iterable[Path]) -> list[Path]:
    """Take every group and other permission off the paths that exist; the ones changed.

    One warning line names them all. Symbolic links are followed: the data may
    live wherever a link points.
    """
    changed: list[Path] = []
    for path in dict.fromkeys(paths):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & PRIVATE_UMASK:
            path.chmod(mode & ~PRIVATE_UMASK)
            changed.append(path)
    if changed:
        log.warning(
            "closed to other users (removed group and other permissions): %s",
            ", ".join(str(path) for path in changed),
        )
    return changed
