"""Worker processes for ``ministry serve --processes N``.

The parent binds the socket once and forks N workers that all accept on it (the
kernel spreads the connections). The parent forwards SIGINT and SIGTERM to the
workers, waits for them to finish what they are doing, and starts a new worker
when one dies unexpectedly. Given something to do on SIGHUP (reload the TLS
certificate), it does it and forwards SIGHUP to the workers, which do it too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

__all__ = ["supervise"]

log = logging.getLogger("ministry")


def _start(work: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:
        status = 0
        try:
            work()
        except BaseException:
            log.exception("worker %d failed", os.getpid())
            status = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    return pid


def supervise(
    count: int, work: Callable[[], None], on_hangup: Callable[[], object] | None = None
) -> int:
    """Run ``work`` in ``count`` forked workers until told to stop; returns the exit status.

    With ``on_hangup``, SIGHUP runs it here and is passed on to every worker; without,
    SIGHUP keeps its default action.
    """
    workers = {_start(work) for _ in range(count)}
    stopping = False

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if signum == signal.SIGHUP and on_hangup is not None:
            on_hangup()
        else:
            stopping = True
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    if on_hangup is not None:
        signal.signal(signal.SIGHUP, forward)
    failed = False
    while workers:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        workers.discard(pid)
        if os.waitstatus_to_exitcode(status) != 0:
            failed = True
            if not stopping:
                log.warning("worker %d died (status %d); starting another", pid, status)
                workers.add(_start(work))
    log.info("stopped")
    return 1 if failed and not stopping else 0
