"""Notices, on every node, a metadata store that went back in time, and recovers from it.

A Redis restarted from an older snapshot (or empty), or a SQLite file put back from
a copy, counts its serials up again over numbers already handed out. The caches
that reuse an entry while the serial is unchanged would then serve pages of the
lost state, and a mirror following ``X-PyPI-Last-Serial`` would see one serial
stand for two different changes. So each node remembers the highest serial and
the store's generation it has seen; when the serial goes back or the generation
changes, it says so (an ERROR in the log, a metric, ``/-/ready``), drops every
cache kept by serial, and raises the store's serial above the highest seen, so
that serials stay strictly increasing across the rollback. Raising it also starts
a new generation, by which the other nodes notice even if their serial did not go
back. What the lost changes were is for the operator to find out (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from ministry.storage.protocols import ChangeLog

__all__ = ["Clearable", "Rollback", "RollbackWatch"]

log = logging.getLogger(__name__)


class Clearable(Protocol):
    """What a process keeps that a rollback makes wrong (caches kept by serial, the
    logins verified and refused), dropped all at once."""

    def clear(self) -> None:
        """Forget every entry."""


@dataclass(frozen=True)
class Rollback:
    """One rollback this node noticed: what it had seen, and what it found."""

    when: datetime
    seen_serial: int
    found_serial: int
    seen_generation: str
    found_generation: str

    def report(self) -> dict[str, object]:
        """What ``/-/ready`` shows of it."""
        return {
            "time": self.when.isoformat(),
            "seen_serial": self.seen_serial,
            "found_serial": self.found_serial,
            "seen_generation": self.seen_generation,
            "found_generation": self.found_generation,
        }


class RollbackWatch:
    """Checks each serial a request reads against the highest this process has seen."""

    def __init__(
        self,
        metadata: ChangeLog,
        count: Callable[[], None],
        caches: Callable[[], Iterable[Clearable]],
    ) -> None:
        self._metadata = metadata
        self._count = count
        # The caches built so far (a service not used yet has nothing to drop).
        self._caches = caches
        self._highest = -1
        self._generation: str | None = None
        self._lock = asyncio.Lock()
        #: The rollbacks noticed since the process started, oldest first.
        self.rollbacks: list[Rollback] = []

    async def observe(self, serial: int, generation: str) -> int:
        """Check a serial and generation just read from the store (``position``); returns
        the serial to go on with (after a rollback, the store's serial once raised)."""
        if self._steady(serial, generation):
            return serial
        async with self._lock:
            # Another request may have dealt with it meanwhile, or this serial was read
            # before a newer one another request observed first: look again. Only what was
            # seen before this look began can show the store went back; a request answered
            # while it was under way may have seen a serial committed after it was read.
            seen = self._highest
            serial, generation = await self._metadata.position()
            if generation == self._generation and serial >= seen:
                self._highest = max(self._highest, serial)
                return serial
            assert self._generation is not None
            rollback = Rollback(datetime.now(UTC), seen, serial, self._generation, generation)
            log.error(
                "The metadata store went back: this node had seen serial %d of generation %s, "
                "and now finds serial %d of generation %s. Changes may be lost; caches are "
                "dropped and the serial is raised above %d (docs/operations.md, 'When the "
                "metadata store goes back').",
                rollback.seen_serial, rollback.seen_generation,
                rollback.found_serial, rollback.found_generation, rollback.seen_serial,
            )  # fmt: skip
            self._count()
            for cache in self._caches():
                cache.clear()
            await self._metadata.raise_serial(self._highest)
            self._generation = await self._metadata.generation()
            serial = await self._metadata.last_serial()
            self._highest = max(self._highest, serial)
            self.rollbacks.append(rollback)
            return serial

    def _steady(self, serial: int, generation: str) -> bool:
        """Whether the store went on from what was seen (remembering it if so)."""
        if self._generation is None:  # the first look: nothing to compare with
            self._generation = generation
        if generation != self._generation or serial < self._highest:
            return False
        self._highest = serial
        return True
