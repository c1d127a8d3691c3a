"""AuditService.newest: the audit log page by page, newest first, for administrators only."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ministry.core.models import IndexConfig
from ministry.core.permissions import Identity
from ministry.errors import PermissionDenied
from ministry.services.audit import AuditService
from ministry.storage.sqlite import SqliteMetadataStore

ROOT = Identity("root", is_admin=True)


def test_pages_go_back_from_the_newest(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = SqliteMetadataStore(tmp_path / "ministry.sqlite3")
        await store.open()
        try:
            for number in range(5):
                await store.create_index(IndexConfig(f"i{number}"), ROOT.actor)
            audit = AuditService(store)
            first, older = await audit.newest(ROOT, limit=2)
            assert [c.index for c in first] == ["i4", "i3"]
            assert older is not None
            second, older = await audit.newest(ROOT, before=older, limit=2)
            assert [c.index for c in second] == ["i2", "i1"]
            last, older = await audit.newest(ROOT, before=older, limit=2)
            assert [c.index for c in last] == ["i0"] and older is None
            with pytest.raises(PermissionDenied):
                await audit.newest(Identity("alice"))
        finally:
            await store.close()

    asyncio.run(scenario())
