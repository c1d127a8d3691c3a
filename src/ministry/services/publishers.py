"""Setting up trusted publishers: who may name which workflow for which project.

A project's owners (and its index's admins) add and remove its publishers, as they
manage its maintainers. A publisher may also name a project that does not exist yet
("pending"): anyone who may create projects in the index may add one, and becomes
the owner of the project its first trusted publish creates; publishers added from
the command line name that owner with ``--owner`` (else the index's admins own it).
Every change is in the audit log.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Protocol

from packaging.utils import NormalizedName

from ministry.core.models import IndexConfig
from ministry.core.permissions import Identity, check_manage_roles, check_upload_index
from ministry.core.trusted_publishing import (
    DEFAULT_ISSUERS,
    Provider,
    TrustedPublisher,
    checked_workflow,
)
from ministry.errors import InvalidRequest, NotFound, PermissionDenied
from ministry.services.indexes import IndexService
from ministry.storage.protocols import AccountStore, PackageStore, PublisherStore

__all__ = ["PublisherAdminStore", "PublisherService"]


class PublisherAdminStore(AccountStore, PackageStore, PublisherStore, Protocol):
    """Publishers, and the projects, roles and users they are checked against."""


class PublisherService:
    """Adds, lists and removes the trusted publishers of projects."""

    def __init__(self, metadata: PublisherAdminStore, indexes: IndexService) -> None:
        self._metadata = metadata
        self._indexes = indexes

    async def add(
        self,
        identity: Identity,
        index: str,
        project: NormalizedName,
        provider: Provider,
        repository: str,
        workflow: str,
        *,
        environment: str | None = None,
        issuer: str | None = None,
        owner: str | None = None,
    ) -> TrustedPublisher:
        """Let a workflow publish the project; ``owner`` only from the command line."""
        config = await self._hosted(index)
        repository, workflow, environment, issuer = checked_workflow(
            provider, repository, workflow, environment, issuer or DEFAULT_ISSUERS[provider]
        )
        pending = await self._check_manager(identity, config, project)
        if owner is not None:
            if not identity.user.startswith("cli:"):
                raise PermissionDenied(
                    "Only the command line names the owner of a pending project."
                )
            if await self._metadata.get_user(owner) is None:
                raise NotFound(f"No user {owner!r}.")
        elif pending and not identity.user.startswith("cli:"):
            owner = identity.user
        publisher = TrustedPublisher(
            publisher_id=secrets.token_hex(6),
            index=config.name,
            project=project,
            provider=provider,
            repository=repository,
            workflow=workflow,
            environment=environment,
            issuer=issuer,
            owner=owner if pending else None,
            added_by=identity.user,
            created=datetime.now(UTC),
        )
        await self._metadata.add_publisher(publisher, identity.actor)
        return publisher

    async def list(
        self, identity: Identity, index: str, project: NormalizedName | None = None
    ) -> list[TrustedPublisher]:
        """The publishers of one project, or of every project of the index its caller manages."""
        config = await self._hosted(index)
        found = await self._metadata.list_publishers(config.name, project)
        shown = []
        for publisher in found:
            try:
                await self._check_manager(identity, config, publisher.project)
            except PermissionDenied:
                if project is not None:
                    raise
                continue
            shown.append(publisher)
        return shown

    async def remove(self, identity: Identity, publisher_id: str) -> TrustedPublisher:
        """Stop a publisher; the tokens minted for it stop uploading at once."""
        publisher = await self._metadata.get_publisher(publisher_id)
        if publisher is None:
            raise NotFound(f"No trusted publisher {publisher_id!r}.")
        config = await self._hosted(publisher.index)
        await self._check_manager(identity, config, publisher.project)
        await self._metadata.remove_publisher(publisher_id, identity.actor)
        return publisher

    async def _hosted(self, index: str) -> IndexConfig:
        config = await self._indexes.get(index)
        if config.kind != "hosted":
            raise InvalidRequest(
                f"Index {index!r} mirrors its upstream: only hosted indexes have publishers."
            )
        return config

    async def _check_manager(
        self, identity: Identity, config: IndexConfig, project: NormalizedName
    ) -> bool:
        """Refuse who may not set up publishers for the project; True if it is pending."""
        existing = await self._metadata.get_project(config.name, project)
        roles = await self._metadata.list_roles(config.name, project)
        if existing is not None or roles:
            check_manage_roles(identity, config, project, roles)
            return False
        if identity.token_id is not None:
            raise PermissionDenied(
                "API tokens only read and upload; publishers need your password."
            )
        check_upload_index(identity, config)
        return True
