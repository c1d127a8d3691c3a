"""The one place that builds stores and services from ``Settings``.

Everything else receives what it needs from here; nothing constructs a store
or reads configuration on its own.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from argon2 import PasswordHasher

from ministry.services.accounts import AccountService
from ministry.services.audit import AuditService
from ministry.services.auth import AuthService
from ministry.services.catalog import Catalog, FilePath
from ministry.services.indexes import IndexService
from ministry.services.maintenance import MaintenanceService
from ministry.services.metrics import Metrics
from ministry.services.projects import ProjectResolver
from ministry.services.proxy_files import ProxyFiles
from ministry.services.proxy_pages import ProxyPages
from ministry.services.uploads import UploadService
from ministry.services.upstream import UpstreamClient, pip_index_url
from ministry.settings import Settings
from ministry.storage.filesystem import FileBlobStore
from ministry.storage.protocols import BlobStore, MetadataStore
from ministry.storage.sqlite import SqliteMetadataStore

__all__ = ["Services", "build_services"]


@dataclass(frozen=True)
class Services:
    """The stores and the services built on them, for one server or one command."""

    settings: Settings
    metadata: MetadataStore
    blobs: BlobStore
    auth: AuthService
    accounts: AccountService
    indexes: IndexService
    catalog: Catalog
    uploads: UploadService
    maintenance: MaintenanceService
    audit: AuditService
    upstream: UpstreamClient
    proxy_files: ProxyFiles
    metrics: Metrics

    async def start(self) -> None:
        """Open the stores, clear what a crash left half-done, create ``main`` and its upstream."""
        settings = self.settings
        settings.data.mkdir(parents=True, exist_ok=True)
        await self.metadata.open()
        await self.blobs.open()
        self.uploads.sweep()
        self.proxy_files.sweep()
        await self.indexes.ensure_default()
        if settings.upstream is not None:
            url = settings.upstream
            if url == "pip":
                url = await asyncio.to_thread(pip_index_url)
            await self.indexes.ensure_upstream(
                url, page_ttl=settings.upstream_ttl, min_age=settings.upstream_min_age
            )

    async def stop(self) -> None:
        """Close the stores and the upstream connections."""
        await self.upstream.close()
        await self.blobs.close()
        await self.metadata.close()


def build_services(settings: Settings, file_path: FilePath) -> Services:
    """Build every service for these settings; ``file_path`` comes from the URL table."""
    metadata = SqliteMetadataStore(settings.database_path)
    blobs = FileBlobStore(settings.blob_directory)
    hasher = PasswordHasher()
    indexes = IndexService(metadata)
    metrics = Metrics()
    upstream = UpstreamClient(settings.upstream_timeout)
    pages = ProxyPages(metadata, upstream, metrics, offline=settings.offline)
    proxy_files = ProxyFiles(
        metadata, blobs, upstream, settings.spool_directory, metrics, offline=settings.offline
    )
    return Services(
        settings=settings,
        metadata=metadata,
        blobs=blobs,
        auth=AuthService(metadata, hasher),
        accounts=AccountService(metadata, hasher),
        indexes=indexes,
        catalog=Catalog(metadata, blobs, ProjectResolver(metadata, pages), proxy_files, file_path),
        uploads=UploadService(
            metadata, blobs, indexes, settings.spool_directory, settings.max_upload_size
        ),
        maintenance=MaintenanceService(metadata, indexes),
        audit=AuditService(metadata),
        upstream=upstream,
        proxy_files=proxy_files,
        metrics=metrics,
    )
