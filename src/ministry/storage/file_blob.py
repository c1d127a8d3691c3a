"""A blob read through an open file descriptor: the file store's blobs, and a proxied
download's checked copy before the cache has kept it (services/proxy_files.py), share
one reader rather than two."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from ministry.errors import StorageError

_CHUNK = 1024 * 1024


class FileBlob:
    """An open blob file."""

    def __init__(self, handle: int, size: int) -> None:
        self._handle = handle
        self._size = size

    @property
    def size(self) -> int:
        """Length in bytes."""
        return self._size

    async def chunks(self, start: int, end: int) -> AsyncIterator[bytes]:
        """Read ``start``..``end`` (inclusive) in the loop's default thread pool."""
        loop = asyncio.get_running_loop()
        position = start
        while position <= end:
            length = min(_CHUNK, end - position + 1)
            chunk = await loop.run_in_executor(None, os.pread, self._handle, length, position)
            if not chunk:
                raise StorageError("A stored file is shorter than recorded.")
            position += len(chunk)
            yield chunk

    async def close(self) -> None:
        """Close the file."""
        os.close(self._handle)
