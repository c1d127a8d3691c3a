"""The audit log: every change, who made it, when and from where."""

from __future__ import annotations

from dataclasses import replace

from ministry.core.masking import mask_text
from ministry.core.models import Change
from ministry.core.permissions import Identity, check_admin
from ministry.storage.protocols import ChangeLog

__all__ = ["AuditService"]

_MAX_LIMIT = 10_000
# Serials read at a time when reading the log back from its end.
_WINDOW = 1000


class AuditService:
    """Reads the change log for administrators."""

    def __init__(self, metadata: ChangeLog) -> None:
        self._metadata = metadata

    async def changes(
        self, identity: Identity, *, since: int = 0, limit: int = 100, index: str | None = None
    ) -> list[Change]:
        """Changes after serial ``since``, oldest first, optionally of one index only."""
        check_admin(identity, "read the audit log")
        limit = max(1, min(limit, _MAX_LIMIT))
        found: list[Change] = []
        while len(found) < limit:
            batch = await self._metadata.changes_since(since, limit)
            if not batch:
                break
            found += [c for c in batch if index is None or c.index == index]
            since = batch[-1].serial
        return [_shown(c) for c in found[:limit]]

    async def latest(
        self, identity: Identity, *, since: int = 0, limit: int = 100, index: str | None = None
    ) -> list[Change]:
        """The newest ``limit`` changes after serial ``since``, newest first, optionally of
        one index only.

        Read back from the end a window of serials at a time, so that the newest few of
        a long log are found without reading it whole.
        """
        check_admin(identity, "read the audit log")
        limit = max(1, min(limit, _MAX_LIMIT))
        end = await self._metadata.last_serial()
        found: list[Change] = []
        while len(found) < limit and end > since:
            start = max(since, end - _WINDOW)
            batch = await self._metadata.changes_since(start, end - start)
            found += [c for c in reversed(batch) if c.serial <= end and index in (None, c.index)]
            end = start
        return [_shown(c) for c in found[:limit]]

    async def newest(
        self, identity: Identity, *, before: int | None = None, limit: int = 200
    ) -> tuple[list[Change], int | None]:
        """Up to ``limit`` changes below serial ``before`` (default: all), newest first.

        Also the ``before`` that shows the page after this one, or None at the start.
        """
        check_admin(identity, "read the audit log")
        end = await self._metadata.last_serial() + 1 if before is None else before
        since = max(0, end - 1 - limit)
        changes = await self.changes(identity, since=since, limit=limit)
        return [c for c in changes if c.serial < end][::-1], (since + 1 if since > 0 else None)


def _shown(change: Change) -> Change:
    """The change as administrators see it: the log keeps an index's settings as they
    were, its upstream's password too, which no page, answer or command shows."""
    return replace(change, detail=mask_text(change.detail)) if change.detail else change
