"""Cutting off uploads whose body stalls or trickles (slow POST; docs/security.md, "HTTP abuse").

Tornado's body timeout is a deadline for the whole body, which either cuts a large
upload on a slow link or lets a client that sends a byte now and then hold the
connection for as long. An upload is instead asked to keep moving: at least
``STALL_MINIMUM`` bytes in every window of the client timeout (the ``client_timeout``
setting; at its default of 60 s a pace of about 2 kbit/s, which any real link keeps
and no trickle does).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

__all__ = ["STALL_MINIMUM", "StallGuard"]

log = logging.getLogger(__name__)

#: Bytes an upload must send in every window.
STALL_MINIMUM = 16 * 1024


class StallGuard:
    """Calls ``on_stall`` once when a window of ``window`` seconds passes with too few
    bytes received."""

    def __init__(self, on_stall: Callable[[], None], window: float) -> None:
        self._on_stall = on_stall
        self._window = window
        self._received = 0
        self._timer: asyncio.TimerHandle | None = None

    def deadline(self, size: int) -> float:
        """Seconds the longest body of ``size`` bytes may take while keeping the pace."""
        return self._window * (size // STALL_MINIMUM + 2)

    def start(self) -> None:
        """Start the first window (on the running event loop)."""
        self._timer = asyncio.get_running_loop().call_later(self._window, self._check)

    def received(self, count: int) -> None:
        """``count`` more bytes of the body arrived."""
        self._received += count

    def stop(self) -> None:
        """The body is complete, or the connection gone: nothing more to watch."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        if self._received < STALL_MINIMUM:
            self._timer = None
            log.info(
                "closing a stalled upload: %d bytes in the last %.0f s",
                self._received,
                self._window,
            )
            self._on_stall()
            return
        self._received = 0
        self.start()
