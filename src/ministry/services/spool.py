"""Upload bodies on their way in: a temporary file in the data directory, hashed as it is written.

The file part of an upload can be large, so it is never held in memory; the
limit is enforced on the bytes actually received, whatever ``Content-Length``
claimed (docs/security.md, "Hostile uploads"). A disk that fills up or turns read-only while the
body streams ends the upload with the matching storage error, and the partial
file goes at once (docs/security.md, "Stores that fail").
"""

from __future__ import annotations

import contextlib
import logging
import os

from ministry.core.disk_errors import disk_error
from ministry.core.hashing import Digests, StreamingHasher
from ministry.errors import PayloadTooLarge
from ministry.services import scratch_kinds
from ministry.storage.protocols import Scratch

__all__ = ["Spool"]


log = logging.getLogger(__name__)


class Spool:
    """One upload's file part, being written."""

    def __init__(self, scratch: Scratch, max_size: int) -> None:
        try:
            descriptor, self.path = scratch.new_file(scratch_kinds.UPLOAD)
        except OSError as exc:
            raise disk_error(exc) from exc
        self._file = os.fdopen(descriptor, "wb")
        self._max_size = max_size
        self._hasher = StreamingHasher()

    def write(self, chunk: bytes) -> None:
        """Append and hash a chunk; refuse the upload once it passes the size limit."""
        if self._hasher.size + len(chunk) > self._max_size:
            self.discard()
            raise PayloadTooLarge(
                f"File too large. The limit is {_human(self._max_size)} per file; "
                "ask the administrator to raise --max-upload-size."
            )
        try:
            self._file.write(chunk)
        except OSError as exc:
            self.discard()
            raise disk_error(exc) from exc
        self._hasher.update(chunk)

    def finish(self) -> Digests:
        """Close the file and return its digests."""
        try:
            self._file.close()  # flushes the last buffered bytes: the disk may be full
        except OSError as exc:
            self.discard()
            raise disk_error(exc) from exc
        return self._hasher.digests()

    def discard(self) -> None:
        """Remove the file (safe to call more than once, and after a failed write)."""
        with contextlib.suppress(OSError):  # buffered bytes with nowhere to go: dropped
            self._file.close()
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            # The volume turned read-only under the upload; the next start sweeps it away.
            log.warning("cannot remove the upload spool %s: %s", self.path, exc)


def _human(size: int) -> str:
    if size >= 1024 * 1024 and size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MiB"
    return f"{size} bytes"
