"""The one place that builds stores and services from ``Settings``.

Everything else receives what it needs from here; nothing constructs a store
or reads configuration on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from ministry.services.auth import AuthService
from ministry.services.catalog import Catalog, FilePath
from ministry.services.uploads import UploadService
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
    catalog: Catalog
    uploads: UploadService

    async def start(self) -> None:
        """Open the stores and clear what a crash may have left half-done."""
        self.settings.data.mkdir(parents=True, exist_ok=True)
        await self.metadata.open()
        await self.blobs.open()
        self.uploads.sweep()

    async def stop(self) -> None:
        """Close the stores."""
        await self.blobs.close()
        await self.metadata.close()


def build_services(settings: Settings, file_path: FilePath) -> Services:
    """Build every service for these settings; ``file_path`` comes from the URL table."""
    metadata = SqliteMetadataStore(settings.database_path)
    blobs = FileBlobStore(settings.blob_directory)
    return Services(
        settings=settings,
        metadata=metadata,
        blobs=blobs,
        auth=AuthService(metadata),
        catalog=Catalog(metadata, blobs, file_path),
        uploads=UploadService(metadata, blobs, settings.spool_directory, settings.max_upload_size),
    )
