"""The audit log: every change, who made it, when and from where."""

from __future__ import annotations

from ministry.core.models import Change
from ministry.core.permissions import Identity, check_admin
from ministry.storage.protocols import MetadataStore

__all__ = ["AuditService"]

_MAX_LIMIT = 10_000


class AuditService:
    """Reads the change log for administrators."""

    def __init__(self, metadata: MetadataStore) -> None:
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
        return found[:limit]
