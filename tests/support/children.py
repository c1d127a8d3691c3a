"""The servers the suite starts stop with it, however it ends.

Each long-lived process the tests start (``ministry serve``, redis-server, SeaweedFS,
nginx, pypiserver) is recorded here while it runs, with the temporary directory its
launcher made. Three things then stop them when the test process does not get to its
fixtures' teardown:

- SIGTERM is turned into KeyboardInterrupt, as Ctrl-C's SIGINT is, so that pytest tears
  the fixtures down and reports the run as interrupted instead of dying on the spot. The
  pytest-xdist controller passes the signal on to its workers, which do the same.
- At exit, whatever is still recorded is stopped (SIGTERM, then SIGKILL) and the
  directories are removed: for a teardown that was itself interrupted.
- On Linux every recorded process is started with ``PR_SET_PDEATHSIG``: the kernel sends
  it SIGTERM when the thread that started it ends, even by SIGKILL or by ``os._exit``
  (pytest-timeout's thread method), when nothing of the test process runs any more. So
  a server must be started from a thread that lives as long as the server should: the
  fixtures' (the main thread). A directory is left behind then; pytest keeps only the
  last three runs' temporary directories, and ``/tmp/ministry-*`` names the others.

tests/unit/test_suite_cleanup.py kills pytest sessions each of these ways.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

__all__ = ["die_with_parent", "install", "removed", "started", "stopped", "temporary"]

_PR_SET_PDEATHSIG = 1
_STOP_GRACE = 5.0

_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
_lock = threading.Lock()
# What is running, and whether it leads a process group of its own (signalled whole).
_running: dict[subprocess.Popen[bytes], bool] = {}
_directories: set[Path] = set()


def _set_death_signal(parent: int) -> None:
    # Runs in the child between fork and exec: the system call, and nothing that locks.
    assert _prctl is not None
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent was gone before the call: no signal will come
        os.kill(os.getpid(), signal.SIGKILL)


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send the child SIGTERM when the calling thread
    ends (None off Linux)."""
    return None if _prctl is None else functools.partial(_set_death_signal, os.getpid())


def started(process: subprocess.Popen[bytes], *, group: bool = False) -> None:
    """Record a running server; ``group``: it leads a process group of its own."""
    with _lock:
        _running[process] = group


def stopped(process: subprocess.Popen[bytes]) -> None:
    """Forget a server its owner has stopped."""
    with _lock:
        _running.pop(process, None)


def temporary(path: Path) -> None:
    """Record a temporary directory to remove at exit unless ``removed`` first."""
    with _lock:
        _directories.add(path)


def removed(path: Path) -> None:
    """Forget a directory its owner has removed."""
    with _lock:
        _directories.discard(path)


def _signal(process: subprocess.Popen[bytes], group: bool, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)


def _stop_everything() -> None:
    """SIGTERM what is still running, SIGKILL what has not stopped after a grace, then
    remove the directories."""
    with _lock:
        running, directories = dict(_running), set(_directories)
        _running.clear()
        _directories.clear()
    for process, group in running.items():
        if process.poll() is None:
            _signal(process, group, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_GRACE
    for process, group in running.items():
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        _signal(process, group, signal.SIGKILL)  # the group may hold more than the leader
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=_STOP_GRACE)
    for path in directories:
        shutil.rmtree(path, ignore_errors=True)


def _children() -> list[int]:
    """The processes whose parent is this one (Linux's /proc; none elsewhere)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # "pid (command) state ppid …": the command may hold spaces and parentheses.
            if int(entry.read_text().rpartition(")")[2].split()[1]) == os.getpid():
                found.append(int(entry.parent.name))
    return found


def install(*, forward: bool) -> None:
    """Stop everything at exit, and take SIGTERM as an interruption; ``forward``: pass it
    on to the child processes first (the pytest-xdist controller, whose children are its
    workers)."""
    atexit.register(_stop_everything)

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        if forward:
            for pid in _children():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signum)
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)
