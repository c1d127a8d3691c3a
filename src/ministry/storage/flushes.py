"""Directory flushes shared by the writers that need them (group commit).

A file renamed into a directory is durable only once that directory is fsynced.
Uploads arriving together often rename into the same directory (a manifest
fan-out directory, a fresh store's first levels), and each would fsync it on its
own. Here a writer asks for a flush of a directory *after* its rename: if no
flush of it is waiting to begin, one is scheduled, to begin once the flush in
progress (if any) ends; writers arriving before it begins join it. One flush that
began after a writer's rename covers that rename, so every writer waits for
exactly one flush that began after it asked, and a burst of N writers costs two
fsyncs of the directory rather than N. A flush that began before the rename never
counts for it: that is why a writer arriving during a flush waits for the next.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

__all__ = ["DirectoryFlushes"]


class DirectoryFlushes:
    """Coalesces fsyncs of the same directory (see the module docstring)."""

    def __init__(self, sync: Callable[[Path], Awaitable[None]]) -> None:
        self._sync = sync
        #: Per directory: the flush that has not begun yet, which a new writer joins.
        self._waiting: dict[Path, asyncio.Task[None]] = {}
        #: Per directory: the flush in progress, which a new writer must not count on.
        self._running: dict[Path, asyncio.Task[None]] = {}

    async def flush(self, directory: Path) -> None:
        """Return once a flush of ``directory`` that began after this call has ended.

        The flush runs as a task of its own: a writer that gives up waiting (a
        cancelled request) does not cancel it for the others.
        """
        flush = self._waiting.get(directory)
        if flush is None:
            flush = asyncio.ensure_future(self._flush(directory, self._running.get(directory)))
            self._waiting[directory] = flush
        await asyncio.shield(flush)

    async def flush_all(self, directories: Iterable[Path]) -> None:
        """Flush each distinct directory, all at once."""
        await asyncio.gather(*(self.flush(d) for d in set(directories)))

    async def _flush(self, directory: Path, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # its outcome belongs to its own writers
        this = asyncio.current_task()
        assert this is not None
        # From here on a new writer waits for the flush after this one.
        del self._waiting[directory]
        self._running[directory] = this
        try:
            await self._sync(directory)
        finally:
            if self._running.get(directory) is this:
                del self._running[directory]
