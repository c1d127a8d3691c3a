"""The one place that builds stores and services from ``Settings``.

Everything else receives what it needs from here; nothing constructs a store
or reads configuration on its own. Each store's module is imported where its URL
chooses it, so a command imports only the backends it opens.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from argon2 import PasswordHasher

from ministry.core.login_limits import login_limits
from ministry.core.masking import mask_url
from ministry.errors import InvalidRequest
from ministry.services import scratch_kinds
from ministry.services.backup import LocalStores
from ministry.services.declared_indexes import declare_indexes
from ministry.services.indexes import IndexService
from ministry.services.manifests import journalled_store
from ministry.services.timed_store import timed_store
from ministry.settings import Settings
from ministry.storage.private_files import close_to_others
from ministry.storage.protocols import BlobStore, MetadataStore, Scratch
from ministry.storage.temporary import OwnedScratch

if TYPE_CHECKING:
    from ministry.services.accounts import AccountService
    from ministry.services.audit import AuditService
    from ministry.services.auth import AuthService
    from ministry.services.bundle import Bundles
    from ministry.services.catalog import Catalog, FilePath, ProvenancePath
    from ministry.services.export import StaticExport
    from ministry.services.maintenance import MaintenanceService
    from ministry.services.metrics import Metrics
    from ministry.services.mirror import Mirror
    from ministry.services.ownership import OwnershipService
    from ministry.services.promote import PromoteService
    from ministry.services.proxy_cache import ProxyCache
    from ministry.services.proxy_files import ProxyFiles
    from ministry.services.proxy_pages import ProxyPages
    from ministry.services.publishers import PublisherService
    from ministry.services.rollback import Clearable, RollbackWatch
    from ministry.services.search import SearchService
    from ministry.services.stored_files import StoredFiles
    from ministry.services.trusted_publishing import TrustedPublishing
    from ministry.services.uploads import UploadService
    from ministry.services.upstream import UpstreamClient
    from ministry.services.verify import Verifier

__all__ = [
    "Services",
    "blob_store",
    "build_services",
    "local_stores",
    "metadata_file",
    "metadata_store",
    "password_hasher",
]


@dataclass(frozen=True)
class Services:
    """The stores and the services built on them, for one server or one command.

    Each service is built, and its module imported, when first used: a command takes
    only what it touches (``user list`` needs no upstream client, catalog or web of
    caches). The server uses them all, from its first request on.
    """

    settings: Settings
    #: The metadata store; every lasting change through it also writes its manifest
    #: into ``blobs`` (``services.manifests``).
    metadata: MetadataStore
    #: The same store without manifests: what a rebuild writes into, since everything
    #: it puts back came from the manifests.
    bare_metadata: MetadataStore
    blobs: BlobStore
    scratch: Scratch
    indexes: IndexService
    file_path: FilePath
    #: A server's metrics, made before its stores so that every store call is timed into
    #: them; None for a command (see ``metrics``).
    server_metrics: Metrics | None = None
    #: The Integrity API's URL paths (from the URL table); None: no provenance URLs.
    provenance_path: ProvenancePath | None = None

    @cached_property
    def metrics(self) -> Metrics:
        """The counters and timings ``/-/metrics`` shows. A command makes them only when a
        service it runs counts something, so that ``user list`` does not import the
        metrics library."""
        if self.server_metrics is not None:
            return self.server_metrics
        from ministry.services.metrics import Metrics

        return Metrics()

    @cached_property
    def auth(self) -> AuthService:
        """Logins. Its decoy hash takes an Argon2 hash's time and memory, so the server
        builds it at start (``ministry.cli.serve.serving``), before anyone logs in."""
        from ministry.services.auth import AuthService

        settings = self.settings
        hasher = password_hasher(settings.password_hash_cost)
        return AuthService(
            self.metadata,
            hasher,
            login_limits(settings.login_failures),
            publishers=self.metadata,
        )

    @cached_property
    def trusted_publishing(self) -> TrustedPublishing:
        """CI identity tokens exchanged for upload tokens. The server builds it at start
        when keys are pinned, so that a bad key file stops the start."""
        from ministry.services.issuer_keys import IssuerKeys
        from ministry.services.trusted_publishing import TrustedPublishing

        settings = self.settings
        keys = IssuerKeys(
            settings.oidc_jwks,
            allow_internal=settings.upstream_allow_internal,
            timeout=settings.upstream_timeout,
        )
        lifetime = timedelta(seconds=settings.publish_token_lifetime)
        return TrustedPublishing(self.metadata, keys, settings.audience, lifetime)

    @cached_property
    def publishers(self) -> PublisherService:
        """Which workflows may publish which projects."""
        from ministry.services.publishers import PublisherService

        return PublisherService(self.metadata, self.indexes)

    @cached_property
    def accounts(self) -> AccountService:
        """Users, groups and tokens."""
        from ministry.services.accounts import AccountService

        return AccountService(self.metadata, password_hasher(self.settings.password_hash_cost))

    @cached_property
    def upstream(self) -> UpstreamClient:
        """The HTTP client of proxy indexes."""
        from ministry.services.upstream import UpstreamClient

        settings = self.settings
        return UpstreamClient(settings.upstream_timeout, settings.upstream_allow_internal)

    @cached_property
    def proxy_pages(self) -> ProxyPages:
        """Upstream project pages, fetched and kept."""
        from ministry.services.proxy_pages import ProxyPages

        offline = self.settings.offline
        return ProxyPages(self.metadata, self.upstream, self.metrics, offline=offline)

    @cached_property
    def proxy_files(self) -> ProxyFiles:
        """Upstream files, fetched once and cached."""
        from ministry.services.proxy_files import ProxyFiles

        return ProxyFiles(
            self.metadata,
            self.blobs,
            self.upstream,
            self.scratch,
            self.metrics,
            offline=self.settings.offline,
            cache=self.proxy_cache,
        )

    @cached_property
    def proxy_cache(self) -> ProxyCache:
        """The bounds of the proxy caches, and the eviction that holds them."""
        from ministry.services.proxy_cache import CacheReaders, ProxyCache

        return ProxyCache(
            self.metadata, self.blobs, self.metrics, CacheReaders(), self.settings.max_cache_size
        )

    @cached_property
    def catalog(self) -> Catalog:
        """Every read of an index's projects and files."""
        from ministry.services.catalog import Catalog
        from ministry.services.projects import ProjectResolver

        resolver = ProjectResolver(self.metadata, self.proxy_pages)
        return Catalog(
            self.metadata,
            self.blobs,
            resolver,
            self.proxy_files,
            self.file_path,
            provenance_path=self.provenance_path,
        )

    @cached_property
    def uploads(self) -> UploadService:
        """Uploads, checked and published."""
        from ministry.services.uploads import UploadService

        size = self.settings.max_upload_size
        return UploadService(self.metadata, self.blobs, self.indexes, self.scratch, size)

    @cached_property
    def maintenance(self) -> MaintenanceService:
        """Yank, unyank and delete."""
        from ministry.services.maintenance import MaintenanceService

        return MaintenanceService(self.metadata, self.indexes)

    @cached_property
    def promote(self) -> PromoteService:
        """Releases of one hosted index published in another, bytes untouched."""
        from ministry.services.promote import PromoteService

        return PromoteService(self.metadata, self.blobs, self.indexes)

    @cached_property
    def search(self) -> SearchService:
        """Search over the projects an identity may see."""
        from ministry.services.search import SearchService

        return SearchService(self.metadata, self.catalog)

    @cached_property
    def export(self) -> StaticExport:
        """Static copies of an index."""
        from ministry.services.export import StaticExport

        return StaticExport(self.indexes, self.catalog, self.stored_files)

    @cached_property
    def stored_files(self) -> StoredFiles:
        """What an export can write without an upstream, and fetching the rest when asked."""
        from ministry.services.stored_files import StoredFiles

        return StoredFiles(self.catalog, self.proxy_files)

    @cached_property
    def bundles(self) -> Bundles:
        """Bundles of an index, written and imported."""
        from ministry.services.bundle import Bundles

        return Bundles(
            self.indexes,
            self.catalog,
            self.stored_files,
            self.uploads,
            self.maintenance,
            self.scratch,
        )

    @cached_property
    def ownership(self) -> OwnershipService:
        """Who owns and maintains each project."""
        from ministry.services.ownership import OwnershipService

        return OwnershipService(self.metadata, self.indexes)

    @cached_property
    def audit(self) -> AuditService:
        """The log of changes."""
        from ministry.services.audit import AuditService

        return AuditService(self.metadata)

    @cached_property
    def mirror(self) -> Mirror:
        """Mirror runs that fill a proxy index ahead of time."""
        from ministry.services.mirror import Mirror

        return Mirror(
            self.indexes,
            self.proxy_pages,
            self.proxy_files,
            self.blobs,
            self.upstream,
            self.settings.spool_directory,
        )

    @cached_property
    def rollback(self) -> RollbackWatch:
        """A server's watch on its metadata store going back (``services.rollback``): fed
        each serial a request reads, it drops the caches kept by serial when it must."""
        from ministry.services.rollback import RollbackWatch

        return RollbackWatch(
            self.metadata, self.metrics.metadata_rollbacks.inc, self._serial_caches
        )

    def _serial_caches(self) -> list[Clearable]:
        """The caches kept by serial that this process has built so far, and what the
        logins remember (judged against the store as it was)."""
        names = ("catalog", "search", "proxy_pages", "auth")
        built = [self.__dict__.get(name) for name in names]
        return [self.indexes, *(cache for cache in built if cache is not None)]

    @cached_property
    def verifier(self) -> Verifier:
        """The consistency check of metadata and blobs."""
        from ministry.services.verify import Verifier

        return Verifier(self.metadata, self.blobs, self.indexes, self.catalog)

    async def start(self) -> None:
        """Open the stores, clear what a crash left half-done, set up ``main``, its upstream
        and the config file's indexes."""
        settings = self.settings
        settings.data.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(close_to_others, private_paths(settings))
        await self.metadata.open()
        await self.blobs.open()
        if self.server_metrics is not None:  # a server, which lives on across rollbacks
            self.indexes.watch(self.rollback.observe)
        for kind in scratch_kinds.LEFT_BY_CRASHES:
            self.scratch.sweep(kind)
        await self.indexes.ensure_default()
        if settings.upstream:
            from ministry.services.upstream import resolve_upstreams

            upstreams = await asyncio.to_thread(resolve_upstreams, settings.upstream)
            await self.indexes.ensure_upstream(
                upstreams, page_ttl=settings.upstream_ttl, min_age=settings.upstream_min_age
            )
        if settings.file is not None:
            await declare_indexes(self.indexes, self.metadata, settings.file.indexes)

    async def stop(self) -> None:
        """Close the stores and the upstream connections (if any were made)."""
        if "proxy_cache" in self.__dict__:
            await self.proxy_cache.stop()
        if "upstream" in self.__dict__:
            await self.upstream.close()
        if "trusted_publishing" in self.__dict__:
            await self.trusted_publishing.close()
        await self.blobs.close()
        await self.metadata.close()


def metadata_file(settings: Settings) -> Path | None:
    """The SQLite file of the metadata store; None when the store is elsewhere (Redis)."""
    if urlsplit(settings.db_url).scheme != "sqlite":
        return None
    path = _path_of(settings.db_url)
    # ``sqlite:////srv/m.sqlite3`` reads as //srv/m.sqlite3, the same file: named as /srv/…
    return Path("/", *path.parts[1:]) if path.is_absolute() else path


def private_paths(settings: Settings) -> list[Path]:
    """What must be closed to other users: the data directory, the SQLite files, the blob tree."""
    paths = [settings.data, settings.spool_directory]
    database = metadata_file(settings)
    if database is not None:
        paths += [database.parent, database]
        paths += [database.with_name(database.name + suffix) for suffix in ("-wal", "-shm")]
    if urlsplit(settings.storage_url).scheme == "file":
        blobs = _path_of(settings.storage_url)
        paths += [blobs, blobs / "sha256", blobs / ".tmp"]
    return paths


def _path_of(url: str) -> Path:
    parts = urlsplit(url)
    return Path(unquote(parts.netloc + parts.path))


def _missing_extra(extra: str, url: str) -> InvalidRequest:
    return InvalidRequest(
        f"{url.split(':', 1)[0]}:// stores need the {extra!r} extra: "
        f"pip install 'ministry-of-packages[{extra}]'."
    )


def metadata_store(url: str, settings: Settings) -> MetadataStore:
    """The metadata store a URL names: ``sqlite:///path`` or ``redis://host:port/N``
    (with the ``redis_*`` settings)."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from ministry.storage.sqlite import SqliteMetadataStore

        return SqliteMetadataStore(_path_of(url))
    if scheme in ("redis", "rediss", "unix"):
        try:
            from ministry.storage.redis import RedisMetadataStore
            from ministry.storage.redis.durability import RedisOptions
        except ImportError as exc:
            raise _missing_extra("redis", url) from exc
        options = RedisOptions(
            durability="warn" if settings.redis_durability == "warn" else "strict",
            wait_replicas=settings.redis_wait_replicas,
            wait_timeout_ms=settings.redis_wait_timeout,
            timeout=settings.redis_timeout,
        )
        return RedisMetadataStore(url, options)
    raise InvalidRequest(
        f"Unknown metadata store {mask_url(url)!r}: use sqlite:///PATH or redis://HOST:PORT/N."
    )


def blob_store(url: str, *, redirect: bool = False) -> BlobStore:
    """The blob store a URL names: ``file:///path`` or ``s3://bucket/prefix``."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if redirect:
            raise InvalidRequest(
                "--storage-redirect needs an S3 store (--storage s3://BUCKET/PREFIX): files "
                "in a directory can only be sent by the server itself."
            )
        from ministry.storage.filesystem import FileBlobStore

        return FileBlobStore(_path_of(url))
    if parts.scheme == "s3":
        try:
            from ministry.storage.s3 import S3BlobStore
        except ImportError as exc:
            raise _missing_extra("s3", url) from exc
        return S3BlobStore(parts.netloc, parts.path.strip("/"), redirect=redirect)
    raise InvalidRequest(
        f"Unknown blob store {mask_url(url)!r}: use file:///PATH or s3://BUCKET/PREFIX."
    )


def local_stores() -> LocalStores:
    """The stores of a backup's files: a SQLite snapshot, a blob directory, temporary files."""
    from ministry.storage.filesystem import FileBlobStore
    from ministry.storage.sqlite import SqliteMetadataStore

    return LocalStores(snapshot=SqliteMetadataStore, blobs=FileBlobStore, scratch=OwnedScratch)


def password_hasher(cost: str) -> PasswordHasher:
    """Argon2id at its standard cost, or at the least one for test suites.

    Verifying reads the cost from each stored hash, so hashes of either cost are
    checked alike; only new ones (and the decoy each process makes at start) differ.
    """
    if cost == "minimal":
        return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    return PasswordHasher()


def build_services(
    settings: Settings,
    file_path: FilePath,
    metrics: Metrics | None = None,
    provenance_path: ProvenancePath | None = None,
) -> Services:
    """The stores and services for these settings; ``file_path`` comes from the URL table.

    A server passes its ``metrics``, into which every store call is then timed; a
    command has no use for those timings.
    """
    bare = metadata_store(settings.db_url, settings)
    if metrics is not None:
        bare = timed_store(bare, metrics.store_seconds)
    blobs = blob_store(settings.storage_url, redirect=settings.storage_redirect)
    metadata = journalled_store(bare, blobs)
    if settings.accel_redirect is not None and urlsplit(settings.storage_url).scheme != "file":
        raise InvalidRequest(
            "--accel-redirect needs a file store: nginx reads the blob directory itself."
        )
    return Services(
        settings=settings,
        metadata=metadata,
        bare_metadata=bare,
        blobs=blobs,
        scratch=OwnedScratch(settings.spool_directory),
        server_metrics=metrics,
        indexes=IndexService(metadata),
        file_path=file_path,
        provenance_path=provenance_path,
    )
