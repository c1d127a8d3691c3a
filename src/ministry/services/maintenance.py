"""Yanking, unyanking and deleting files and releases of an index.

Only an index's own files can be changed through it: a file inherited from a
base is changed in the base. Owners and maintainers of a project yank and
unyank its files, owners delete them (with the index's admins and server admins:
docs/security.md, "Project ownership"). Deleting needs the index's permission
(``allow_delete``, off by default); a deleted filename stays retired, so it can
never come back with other bytes. The bytes themselves stay in the blob store,
which other indexes may share.
"""

from __future__ import annotations

from packaging.utils import NormalizedName

from ministry.core.models import DistFile
from ministry.core.permissions import Identity, check_project_action
from ministry.core.releases import release_key
from ministry.errors import NotFound, PermissionDenied
from ministry.services.indexes import IndexService
from ministry.storage.protocols import PackageStore

__all__ = ["MaintenanceService"]


class MaintenanceService:
    """Changes the state of published files on behalf of an identity."""

    def __init__(self, metadata: PackageStore, indexes: IndexService) -> None:
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
        existing = await self._metadata.get_project(index, project)
        roles = await self._metadata.list_roles(index, project)
        if config.kind == "hosted" and existing is None and not roles:
            raise NotFound(f"Project {project!r} in index {index!r} has no files.")
        check_project_action(
            identity, config, project, roles, action, owners_only=action == "delete"
        )
        if config.kind != "hosted":
            raise PermissionDenied(f"Index {index!r} mirrors its upstream; {action} there.")
        if action == "delete" and not config.allow_delete:
            raise PermissionDenied(
                f"Index {index!r} keeps published files forever; an index admin can allow "
                "deleting with 'ministry index update --allow-delete'."
            )
        files = await self._metadata.list_files(index, project)
        if version is not None:
            wanted = release_key(version)
            files = [f for f in files if release_key(f.version) == wanted]
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
