"""Directory flushes shared by the writers that need them (group commit).

A file renamed into a directory is durable only once that directory is fsynced.
Uploads arriving together often rename into the same directory (a manifest
fan-out directory, a fresh store's first levels), and each would fsync it on its
own. Here a writer asks for a flush of a directory *after* its rename: if no
flush of it is in progress, it runs one itself; if one is, it waits for the next,
which the first of the writers waiting runs for all of them. One flush that began
after a writer's rename covers that rename, so every writer waits for exactly one
flush that began after it asked, and a burst of N writers costs two fsyncs of the
directory rather than N. A flush that began before the rename never counts for
it: that is why a writer arriving during a flush waits for the next.

Writers are worker threads (the blob store's puts run in the thread pool), so a
put flushes its directories in the thread that renamed, without another trip
through the event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DirectoryFlushes"]


@dataclass
class _Directory:
    """The flushes of one directory, numbered from 1 as they begin."""

    begun: int = 0
    ended: int = 0
    running: bool = False
    waiting: int = 0
    #: The failures of flushes some writer may still be waiting on, by number.
    failures: dict[int, Exception] = field(default_factory=dict)


class DirectoryFlushes:
    """Coalesces fsyncs of the same directory across threads (see the module docstring)."""

    def __init__(self, sync: Callable[[Path], None]) -> None:
        self._sync = sync
        self._changed = threading.Condition()
        self._directories: dict[Path, _Directory] = {}

    def flush(self, directory: Path) -> None:
        """Return once a flush of ``directory`` that began after this call has ended;
        raise its error if it failed."""
        with self._changed:
            state = self._directories.setdefault(directory, _Directory())
            wanted = state.begun + 1  # the next flush to begin is the first that counts
            state.waiting += 1
            try:
                while state.ended < wanted:
                    if state.running:
                        self._changed.wait()
                    else:
                        self._run(directory, state)
                failure = state.failures.get(wanted)
            finally:
                state.waiting -= 1
                if state.waiting == 0 and not state.running:
                    del self._directories[directory]  # no one left who needs its history
        if failure is not None:
            raise failure

    def flush_all(self, directories: Iterable[Path]) -> None:
        """Flush each distinct directory, in the order given."""
        for directory in dict.fromkeys(directories):
            self.flush(directory)

    def _run(self, directory: Path, state: _Directory) -> None:
        """Run the next flush for every writer waiting (called holding the lock)."""
        state.running = True
        state.begun += 1
        number = state.begun
        self._changed.release()
        failure: Exception | None = None
        try:
            self._sync(directory)
        except Exception as exc:  # every writer sharing the flush hears of it
            failure = exc
        finally:
            self._changed.acquire()
            if failure is not None:
                state.failures[number] = failure
            state.running = False
            state.ended = number
            self._changed.notify_all()
