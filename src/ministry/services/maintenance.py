"""Yanking, unyanking and deleting files and releases of an index.

Only an index's own files can be changed through it: a file inherited from a
base is changed in the base. Deleting needs the index's permission
(``allow_delete``, off by default); a deleted filename stays retired, so it can
never come back with other bytes. The bytes themselves stay in the blob store,
which other indexes may share.
"""

from __future__ import annotations

from packaging.utils import NormalizedName, canonicalize_version

from ministry.core.models import DistFile
from ministry.core.permissions import Identity, check_maintain
from ministry.errors import NotFound, PermissionDenied
from ministry.services.indexes import IndexService
from ministry.storage.protocols import MetadataStore

__all__ = ["MaintenanceService"]


class MaintenanceService:
    """Changes the state of published files on behalf of an identity."""

    def __init__(self, metadata: MetadataStore, indexes: IndexService) -> None:
        self._metadata = metadata
        self._indexes = indexes

    async def _targets(
        self,
        identity: Identity,
        index: str,
        project: NormalizedName,
        version: str | None,
        filename: str | None,
        action: str,
    ) -> list[str]:
        """Check the right to ``action`` and return the filenames it applies to."""
        config = await self._indexes.readable(index, identity)
        check_maintain(identity, config, action, uploaders=action != "delete")
        if config.kind != "hosted":
            raise PermissionDenied(f"Index {index!r} mirrors its upstream; {action} there.")
        if action == "delete" and not config.allow_delete:
            raise PermissionDenied(
                f"Index {index!r} keeps published files forever; an index admin can allow "
                "deleting with 'ministry index update --allow-delete'."
            )
        files = await self._metadata.list_files(index, project)
        if version is not None:
            wanted = canonicalize_version(version)
            files = [f for f in files if canonicalize_version(f.version) == wanted]
        if filename is not None:
            files = [f for f in files if f.filename == filename]
        if not files:
            what = filename or (f"version {version}" if version else "files")
            raise NotFound(f"Project {project!r} in index {index!r} has no {what}.")
        return [f.filename for f in files]

    async def yank(
        self,
        identity: Identity,
        index: str,
        project: NormalizedName,
        *,
        version: str | None = None,
        filename: str | None = None,
        reason: str = "",
    ) -> list[DistFile]:
        """Yank a release (``version``) or one file (PEP 592: pinned installs still get it)."""
        targets = await self._targets(identity, index, project, version, filename, "yank")
        return await self._metadata.set_yanked(index, targets, reason, identity.actor)

    async def unyank(
        self,
        identity: Identity,
        index: str,
        project: NormalizedName,
        *,
        version: str | None = None,
        filename: str | None = None,
    ) -> list[DistFile]:
        """Take a yank back."""
        targets = await self._targets(identity, index, project, version, filename, "unyank")
        return await self._metadata.set_yanked(index, targets, None, identity.actor)

    async def delete(
        self,
        identity: Identity,
        index: str,
        project: NormalizedName,
        *,
        version: str | None = None,
        filename: str | None = None,
    ) -> list[DistFile]:
        """Delete a project, a release or a file, where the index allows deleting."""
        targets = await self._targets(identity, index, project, version, filename, "delete")
        return await self._metadata.delete_files(index, targets, identity.actor)
