"""Temporary files that name their owner, so a restart removes only what a dead process left.

Several processes may share a data directory (a server and an admin command, or
``--processes N``); sweeping every temporary file at start would delete another
live process's upload in flight. Each name carries the writer's PID and, where
the system tells it, the process's start time: a server restarted in a container
is PID 1 again, and must still recognise its previous life's files as orphans.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ["OwnedScratch", "create_temporary", "create_temporary_directory", "sweep_orphans"]


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), or "0" if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "0"
    # The command name (field 2) may contain spaces; the fields after it do not.
    return stat.rpartition(")")[2].split()[19]


@cache
def _tag_of(pid: int) -> str:
    """The tag of the process ``pid`` (a process's start time never changes; keyed by
    PID, so a forked worker gets its own)."""
    return f"{pid}.{_start_time(pid)}"


def _owner_tag() -> str:
    return _tag_of(os.getpid())


def create_temporary(directory: Path, kind: str) -> tuple[int, Path]:
    """A new temporary file (descriptor, path) owned by this process."""
    descriptor, name = tempfile.mkstemp(prefix=f"{kind}-{_owner_tag()}-", dir=directory)
    return descriptor, Path(name)


def create_temporary_directory(directory: Path, kind: str) -> Path:
    """A new temporary directory owned by this process (for files that need their own name)."""
    return Path(tempfile.mkdtemp(prefix=f"{kind}-{_owner_tag()}-", dir=directory))


def _owner_alive(tag: str) -> bool:
    pid_text, _, start = tag.partition(".")
    if not pid_text.isdigit() or int(pid_text) <= 0:
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else
    return start in ("0", _start_time(pid))


def sweep_orphans(directory: Path, kind: str) -> int:
    """Remove temporary files (and directories) of ``kind`` whose process is gone."""
    directory.mkdir(parents=True, exist_ok=True)
    removed = 0
    for path in directory.glob(f"{kind}-*"):
        if _owner_alive(path.name.split("-")[1]):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    return removed


@dataclass(frozen=True)
class OwnedScratch:
    """The ``Scratch`` of one directory: what the wiring hands the services that spool."""

    directory: Path

    def new_file(self, kind: str) -> tuple[int, Path]:
        """A new temporary file of ``kind`` owned by this process: (descriptor, path)."""
        return create_temporary(self.directory, kind)

    def new_directory(self, kind: str) -> Path:
        """A new temporary directory of ``kind`` owned by this process."""
        return create_temporary_directory(self.directory, kind)

    def sweep(self, kind: str) -> int:
        """Remove what dead processes left of ``kind``; returns how many there were."""
        return sweep_orphans(self.directory, kind)
