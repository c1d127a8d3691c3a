"""Owners and maintainers of the projects of hosted indexes (docs/security.md, "Project ownership").

The first user to publish a project owns it (the store records that with the
file, see ``UploadService``); owners and the index's admins then add and remove
owners and maintainers here. Every change is in the audit log.
"""

from __future__ import annotations

from typing import Protocol

from packaging.utils import NormalizedName

from ministry.core.models import IndexConfig, ProjectRole, RoleName
from ministry.core.permissions import EVERYONE, Identity, check_manage_roles
from ministry.errors import InvalidRequest, NotFound
from ministry.services.indexes import IndexService
from ministry.storage.protocols import AccountStore, PackageStore

__all__ = ["OwnershipService", "OwnershipStore"]


class OwnershipStore(AccountStore, PackageStore, Protocol):
    """The roles ownership uses: projects and their roles, and the users and groups named."""


class OwnershipService:
    """Reads and changes the roles of a project."""

    def __init__(self, metadata: OwnershipStore, indexes: IndexService) -> None:
        self._metadata = metadata
        self._indexes = indexes

    async def roles(self, index: str, project: NormalizedName) -> list[ProjectRole]:
        """The owners, then the maintainers; ``NotFound`` for a project the index lacks.

        An empty list: nobody owns the project, so its index's admins decide.
        """
        config = await self._indexes.get(index)
        return await self._existing(config, project)

    async def _existing(self, config: IndexConfig, project: NormalizedName) -> list[ProjectRole]:
        if config.kind != "hosted":
            raise NotFound(
                f"Index {config.name!r} mirrors its upstream: its projects have no owners here."
            )
        existing = await self._metadata.get_project(config.name, project)
        roles = await self._metadata.list_roles(config.name, project)
        if not roles and existing is None:
            raise NotFound(f"No project {project!r} in index {config.name!r}.")
        return roles

    async def add(
        self,
        identity: Identity,
        index: str,
        project: NormalizedName,
        principal: str,
        role: RoleName,
    ) -> list[ProjectRole]:
        """Make a user or ``@group`` an owner or a maintainer; returns the roles after."""
        await self._check_manager(identity, index, project)
        await self._check_principal(principal)
        await self._metadata.add_role(ProjectRole(index, project, principal, role), identity.actor)
        return await self._metadata.list_roles(index, project)

    async def remove(
        self,
        identity: Identity,
        index: str,
        project: NormalizedName,
        principal: str,
        role: RoleName,
    ) -> list[ProjectRole]:
        """Take a role away (never the last owner's); returns the roles after."""
        await self._check_manager(identity, index, project)
        await self._metadata.remove_role(
            ProjectRole(index, project, principal, role), identity.actor
        )
        return await self._metadata.list_roles(index, project)

    async def _check_manager(self, identity: Identity, index: str, project: NormalizedName) -> None:
        """Owners and the index's admins change roles; a private index the caller may not
        read answers as a missing one."""
        config = await self._indexes.readable(index, identity)
        check_manage_roles(identity, config, project, await self._existing(config, project))

    async def _check_principal(self, principal: str) -> None:
        """Roles go to users and groups that exist, never to ``@all`` (every user)."""
        if principal == EVERYONE:
            raise InvalidRequest(
                "A project's roles name users and groups, not @all: every uploader of the "
                "index would own or maintain it."
            )
        if principal.startswith("@"):
            groups = {g.name for g in await self._metadata.list_groups()}
            if principal[1:] not in groups:
                raise NotFound(
                    f"No group {principal[1:]!r}: create it first (ministry group create)."
                )
        elif not principal or await self._metadata.get_user(principal) is None:
            raise NotFound(f"No user {principal[:70]!r}.")
