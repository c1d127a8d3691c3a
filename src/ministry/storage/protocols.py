"""The narrow interfaces every backend implements.

``MetadataStore`` holds what the index knows (projects, releases, files, users,
tokens, the change log); ``BlobStore`` holds bytes, addressed by their sha256.
Services only ever see these protocols (and ``Scratch``, where they write their
temporary files), so SQLite and a local directory can be swapped for Redis and S3
without touching them; only the wiring names a backend.

``MetadataStore`` is the union of role protocols (packages, indexes, accounts, the
proxy cache, mirror runs, trusted publishers, the change log, transfer, the store's
lifecycle). The
backends implement the whole of it; each service takes only the roles it uses, so
a new query touches its role, the two backends and the services that ask for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from packaging.utils import NormalizedName

from ministry.core.models import (
    Actor,
    AddFileResult,
    CachedFile,
    CachedPage,
    Change,
    DistFile,
    Group,
    IndexConfig,
    MirrorRun,
    Project,
    ProjectRole,
    Publisher,
    Release,
    Token,
    User,
)
from ministry.core.project_list import ProjectList
from ministry.core.trusted_publishing import PublishToken, TrustedPublisher

__all__ = [
    "SUMMARY_BATCH",
    "AccountStore",
    "BlobReader",
    "BlobStore",
    "ChangeLog",
    "IndexStore",
    "MetadataStore",
    "MirrorRunStore",
    "PackageStore",
    "ProxyCacheStore",
    "PublisherStore",
    "Scratch",
    "Snapshots",
    "StoreLifecycle",
    "StoredBlob",
    "TransferStore",
]

#: Projects per list of ``PackageStore.newest_summaries``: small next to the index, big
#: enough that the round trips do not count.
SUMMARY_BATCH = 5_000


class StoreLifecycle(Protocol):
    """Opening, closing and checking a store."""

    async def open(self) -> None:
        """Connect and create or upgrade the schema."""

    async def exists(self) -> bool:
        """Whether the store was ever opened (its schema or layout is there), before
        ``open``, which would create it: a command refuses a store that is not there."""

    async def close(self) -> None:
        """Release connections and threads."""

    async def check(self) -> None:
        """Raise ``StorageError`` unless the store answers and takes writes (for ``/-/ready``)."""

    def risks(self) -> tuple[str, ...]:
        """Risks the operator chose to start despite (an override of a check at ``open``),
        reported by ``/-/ready`` and the metrics; empty for a store that keeps what it
        acknowledged."""


class ChangeLog(Protocol):
    """The serial and the change log that every change appends to."""

    async def last_serial(self) -> int:
        """The serial of the newest change (0 for an empty store)."""

    async def changes_since(self, serial: int, limit: int = 1000) -> list[Change]:
        """Change-log entries with a serial above ``serial``, oldest first."""

    async def generation(self) -> str:
        """A random id of this store's life: set when the store is first initialised (or
        found empty), and renewed by ``raise_serial``. A store restored from an older
        snapshot, or one that came back empty, shows its serials again; a node that
        remembers the generation and the highest serial it saw can tell
        (``services.rollback``)."""

    async def position(self) -> tuple[int, str]:
        """``last_serial`` and ``generation`` together: what every request looks at, so
        a store that can answers both in one round trip."""

    async def raise_serial(self, floor: int) -> None:
        """Make the next serial greater than ``floor``, so that after a rollback no serial is
        handed out twice; a no-op if it already is. When it raises the serial it also starts
        a new generation, so that every other node notices the rollback too."""


class PackageStore(Protocol):
    """Projects, their releases and files, and who owns and maintains them."""

    async def list_projects(self, index: str) -> list[Project]:
        """Every project of an index."""

    async def project_list(self, index: str) -> ProjectList:
        """Every project of an index in the compact form the listings keep, made as the
        projects are read rather than from a list of them all."""

    async def count_projects(self, index: str) -> int:
        """How many projects an index has, without reading them (the home page's count)."""

    async def get_project(self, index: str, name: NormalizedName) -> Project | None:
        """One project by normalized name."""

    async def projects_named(self, name: NormalizedName) -> list[Project]:
        """The project of this name in every index that has one."""

    async def list_files(self, index: str, project: NormalizedName) -> list[DistFile]:
        """Every file of a project."""

    async def get_file(self, index: str, filename: str) -> DistFile | None:
        """One file by filename (filenames are unique within an index)."""

    async def list_releases(self, index: str, project: NormalizedName) -> list[Release]:
        """Every release of a project, with its metadata."""

    def newest_summaries(
        self, index: str, *, batch: int = SUMMARY_BATCH
    ) -> AsyncIterator[list[tuple[str, str, str]]]:
        """(project, version, summary) of the newest release of each project of an index
        (``core.search.newest_summaries`` picks it), in lists of at most ``batch``
        projects, each project once, in name order across and within the lists.

        What the search needs of 700,000 projects, without their metadata, and without
        ever holding every release, or every project's summary, at once.
        """

    async def add_file(
        self,
        file: DistFile,
        display_name: str,
        metadata: dict[str, Any],
        actor: Actor,
        *,
        replace_existing: bool = False,
        publisher: Publisher | None = None,
    ) -> AddFileResult:
        """Publish a file in one transaction, or report what stands in its way.

        With a ``publisher``, the project's roles are judged in the same transaction
        first: a project that exists (or has roles) takes the file only from a
        principal holding a role in it (``NOT_PERMITTED`` otherwise), and a project
        the file creates gets ``publisher.owner`` as its owner, so that of two users
        racing to create a project exactly one owns it.

        The checks for a taken filename (replaced instead when ``replace_existing``
        and the bytes differ), a retired filename with other bytes, the same bytes
        under another filename, a second sdist of a release and a second wheel of
        its build and tags happen inside the same transaction as the insert, so that
        of two racing uploads exactly one wins. The stored file takes the serial of
        its change and the version spelling of its release (``1.0`` and ``1.0.0``
        are one release, ``core.releases``); a file joining a release whose files are
        all yanked is yanked too, with the release's reason.
        """

    async def set_yanked(
        self, index: str, filenames: Sequence[str], reason: str | None, actor: Actor
    ) -> list[DistFile]:
        """Yank (``reason`` a string, maybe empty) or unyank (None) files; returns them."""

    async def delete_files(
        self, index: str, filenames: Sequence[str], actor: Actor
    ) -> list[DistFile]:
        """Delete files; their names stay retired for other bytes. Returns the files deleted."""

    async def retire_filename(self, index: str, filename: str, sha256: str) -> bool:
        """Keep a filename retired for other bytes, as a deletion does, where the store
        never had the file (a rebuild putting back a deletion); False if it was retired
        already. Bookkeeping of a deletion the change log lost: no serial."""

    async def list_roles(self, index: str, project: NormalizedName) -> list[ProjectRole]:
        """The owners and maintainers of a project, by role then principal.

        Roles outlive the project's files: deleting every file leaves the name with
        its owners. Deleting the index removes them.
        """

    async def add_role(self, role: ProjectRole, actor: Actor) -> bool:
        """Give a principal a role in a project, replacing the role it had; False if it had it.

        ``Conflict`` when that would leave a project that has owners with none.
        """

    async def remove_role(self, role: ProjectRole, actor: Actor) -> None:
        """Take a role away; ``NotFound`` if the principal does not hold it,
        ``Conflict`` if it is the project's last owner."""


class IndexStore(Protocol):
    """The indexes and their settings."""

    async def list_indexes(self) -> list[IndexConfig]:
        """Every index, by name."""

    async def create_index(self, config: IndexConfig, actor: Actor) -> None:
        """Create an index; ``Conflict`` if the name is taken."""

    async def update_index(self, config: IndexConfig, actor: Actor) -> None:
        """Replace an index's settings; ``NotFound`` if it does not exist."""

    async def delete_index(self, name: str, actor: Actor) -> None:
        """Delete an index with all its projects, releases, files and trusted publishers.

        Its filenames stay retired under its name and tokens limited to it are revoked,
        so an index created again under the same name starts with neither.
        """


class AccountStore(Protocol):
    """Users, groups and API tokens."""

    async def add_user(self, user: User, actor: Actor) -> None:
        """Create a user; raises ``Conflict`` if the name is taken."""

    async def update_user(self, user: User, actor: Actor) -> None:
        """Store a user's password hash, admin role and disabled flag."""

    async def remove_user(self, name: str, actor: Actor) -> None:
        """Delete a user with their tokens (sessions too) and group memberships;
        ``NotFound`` if there is none."""

    async def get_user(self, name: str) -> User | None:
        """One user by name."""

    async def list_users(self) -> list[User]:
        """Every user, by name."""

    async def list_groups(self) -> list[Group]:
        """Every group with its members."""

    async def create_group(self, name: str, actor: Actor) -> None:
        """Create an empty group; ``Conflict`` if it exists."""

    async def delete_group(self, name: str, actor: Actor) -> None:
        """Delete a group; ``NotFound`` if it does not exist."""

    async def set_group_members(
        self, name: str, add: Sequence[str], remove: Sequence[str], actor: Actor
    ) -> None:
        """Add and remove members of a group."""

    async def add_token(self, token: Token, actor: Actor) -> None:
        """Store a new token (its secret already hashed)."""

    async def get_token(self, token_id: str) -> Token | None:
        """One token by its public id."""

    async def list_tokens(self, user: str) -> list[Token]:
        """The tokens of one user."""

    async def touch_token(self, token_id: str, when: datetime) -> None:
        """Record when a token was last used (bookkeeping, not a change: no serial)."""

    async def revoke_token(self, token_id: str, actor: Actor) -> None:
        """Revoke a token; ``NotFound`` if it does not exist."""


class ProxyCacheStore(Protocol):
    """What proxy indexes keep of their upstream: pages, files and pinned hashes."""

    async def get_cached_page(self, index: str, project: str) -> CachedPage | None:
        """The upstream page last fetched for a project, if any."""

    async def put_cached_page(self, page: CachedPage) -> None:
        """Keep a fetched upstream page (not a change: no serial)."""

    async def list_cached_projects(self, index: str) -> list[str]:
        """The projects an upstream is known to have (their pages are cached)."""

    async def get_cached_file(self, index: str, filename: str) -> CachedFile | None:
        """A cached upstream file, if it is cached."""

    async def put_cached_file(self, entry: CachedFile) -> None:
        """Record a file whose bytes are now in the blob store (not a change: no serial)."""

    async def touch_cached_file(self, index: str, filename: str, when: datetime) -> None:
        """Record a read of a cached file (for least-recently-used eviction)."""

    async def list_cached_files(self) -> list[CachedFile]:
        """Every cached file, least recently used first."""

    async def forget_cached_file(self, index: str, filename: str) -> None:
        """Drop a cached file's record (nothing happens when there is none)."""

    async def blobs_in_use(self, sha256s: Collection[str]) -> set[str]:
        """Which of these blobs a record still names: a hosted file of any index (its
        distribution, metadata or provenance blob) or a cached file of any proxy index.

        Blobs are content-addressed, so a proxied file with the same bytes as a hosted
        one shares its blob; an evicted cache record's blob may be deleted only when
        this says nothing names it.
        """

    async def pin_files(
        self, index: str, project: str, hashes: Mapping[str, str]
    ) -> dict[str, str]:
        """Pin the sha256 of each filename not pinned yet, all in one write; return the
        pinned sha256 of every filename in ``hashes`` (the first ever seen wins).

        A pin is never replaced: a filename once served keeps its bytes. Not a change:
        no serial.
        """


class MirrorRunStore(Protocol):
    """Scheduled mirror jobs: their last runs and the leases that let one worker run each."""

    async def put_mirror_run(self, run: MirrorRun) -> None:
        """Keep the last run of a scheduled mirror job, replacing the one before.

        Operational state, like the proxy caches: no serial, no change-log entry,
        so a mirror job running every few minutes does not flood the audit log.
        """

    async def list_mirror_runs(self) -> list[MirrorRun]:
        """The last run of every mirror job, by job name (what every node reports)."""

    async def claim_mirror_job(self, job: str, now: datetime, until: datetime) -> bool:
        """Take the lease on a scheduled job until ``until``; False if another holds it.

        Every worker process and cluster node schedules the same jobs, so each run
        first claims its job: the claim succeeds, atomically across processes and
        nodes, only when no claim exists or the existing one has expired (its
        ``until`` is at or before ``now``). Expiry is judged by ``now``, never by the
        store's own clock, so a node that died mid-run blocks the job only until
        its lease runs out. Times are timezone-aware.
        """

    async def release_mirror_job(self, job: str) -> None:
        """Drop a job's claim when its run ends, so the next run is not held back
        by a lease sized for the longest run."""


class PublisherStore(Protocol):
    """Trusted publishers, the upload tokens minted for their runs, and the identity
    tokens already exchanged."""

    async def add_publisher(self, publisher: TrustedPublisher, actor: Actor) -> None:
        """Store a publisher; ``Conflict`` if the project has one for the same workflow
        (same provider, issuer, repository, workflow and environment)."""

    async def list_publishers(
        self, index: str | None = None, project: NormalizedName | None = None
    ) -> list[TrustedPublisher]:
        """Publishers, of one index and one project when given, oldest first."""

    async def get_publisher(self, publisher_id: str) -> TrustedPublisher | None:
        """One publisher by id."""

    async def remove_publisher(self, publisher_id: str, actor: Actor) -> None:
        """Remove a publisher; ``NotFound`` if there is none with that id."""

    async def pin_publisher(self, publisher_id: str, pinned: tuple[tuple[str, str], ...]) -> None:
        """Record the repository ids a publisher's first exchange saw, unless some are
        recorded already (bookkeeping of the exchange, which the audit log shows)."""

    async def use_jti(self, issuer: str, jti: str, expires: datetime) -> bool:
        """Record an identity token's id; False if it was recorded before (a replay).
        Ids may be forgotten once ``expires`` has passed."""

    async def add_publish_token(self, token: PublishToken, actor: Actor) -> None:
        """Store a minted upload token (its secret already hashed) and audit the exchange."""

    async def get_publish_token(self, token_id: str) -> PublishToken | None:
        """One minted token by its public id."""

    async def revoke_publish_token(self, token_id: str, actor: Actor) -> None:
        """End a minted token before it expires; ``NotFound`` if there is none."""


class TransferStore(Protocol):
    """Every record in and out, for ``ministry migrate``, backups and restores."""

    def export_records(self) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Every value the store holds as ``(kind, record)``, for ``ministry migrate``."""

    async def import_records(self, records: AsyncIterable[tuple[str, dict[str, Any]]]) -> int:
        """Load exported records into an empty store, keeping every serial; returns how many."""


class MetadataStore(
    StoreLifecycle,
    ChangeLog,
    PackageStore,
    IndexStore,
    AccountStore,
    ProxyCacheStore,
    MirrorRunStore,
    PublisherStore,
    TransferStore,
    Protocol,
):
    """Transactional metadata, every role in one store: what the wiring builds and the
    backends implement. Every change is atomic and bumps the serial.

    A service takes only the roles it uses, so what it may touch is in its signature.
    """


@runtime_checkable
class Snapshots(Protocol):
    """A metadata store that can copy itself, as of one moment, into a file (SQLite can).

    Backups use it where a store offers it; other stores' records are read in one pass.
    """

    async def snapshot(self, target: Path) -> None:
        """Write a consistent copy of the whole store to ``target``, while it serves."""


@dataclass(frozen=True)
class StoredBlob:
    """A blob as a listing of the store shows it."""

    sha256: str
    size: int
    #: When the blob was stored or last put again (timezone-aware; the store's clock).
    modified: datetime


class BlobReader(Protocol):
    """An open blob; reads any byte range of it."""

    @property
    def size(self) -> int:
        """Length of the blob in bytes."""

    def chunks(self, start: int, end: int) -> AsyncIterator[bytes]:
        """The bytes from ``start`` to ``end`` inclusive, in chunks of bounded size."""

    async def close(self) -> None:
        """Release the underlying handle."""


class BlobStore(Protocol):
    """Immutable bytes addressed by their sha256."""

    async def open(self) -> None:
        """Prepare the store (create directories, check the bucket)."""

    async def close(self) -> None:
        """Release connections."""

    async def check(self) -> None:
        """Raise ``StorageError`` unless the store answers and takes writes (for ``/-/ready``)."""

    async def put_file(self, path: Path, sha256: str) -> None:
        """Take a local file whose sha256 was computed while it was written.

        The file is durable under its key when this returns, and ``path`` is gone.
        Putting a blob that exists already only removes ``path`` and makes the blob's
        ``modified`` time now: the caller is about to commit a record naming it, and
        ``ministry verify`` leaves young blobs alone (see ``list_blobs``).
        """

    async def put_bytes(self, data: bytes) -> str:
        """Store a small value (a metadata file) and return its sha256 (``put_file``'s rules)."""

    async def open_blob(self, sha256: str) -> BlobReader:
        """Open a blob for reading (its set-aside copy when its key holds none: see
        ``set_aside``); raises ``NotFound`` if it is missing."""

    def internal_path(self, sha256: str) -> str | None:
        """The blob's path below the store's root, for a front server that reads the
        store's directory itself (``X-Accel-Redirect``); None where there is none."""

    async def download_url(self, sha256: str, filename: str) -> str | None:
        """A URL clients may fetch the blob from directly (a pre-signed URL), or None.

        None means the server sends the bytes itself. ``filename`` is what a browser
        should save the download as.
        """

    def list_blobs(self) -> AsyncIterator[StoredBlob]:
        """Every blob in the served namespace, in no particular order.

        A store may hold millions of blobs: the listing is read a directory or a page
        at a time as it is consumed, never gathered whole. Blobs are put before the
        record naming them is committed, so a blob nothing names may be an upload a
        moment from its commit: its ``modified`` time is what tells the two apart.
        """

    async def put_manifest(self, kind: str, key: str, document: bytes) -> None:
        """Store a small JSON document about the index (``services.manifests``), durably,
        replacing the one under the same ``kind`` and ``key``.

        Manifests let ``ministry rebuild --from-storage`` recreate the metadata from the
        blob store alone. They live beside the blobs but outside their namespace:
        ``list_blobs`` never shows them and ``verify`` never quarantines them. ``kind``
        is a short lowercase word and ``key`` a sha256 in hex (``StorageError``
        otherwise), so no input can name another object.
        """

    async def get_manifest(self, kind: str, key: str) -> bytes | None:
        """One manifest, or None if there is none."""

    def list_manifests(self, kind: str) -> AsyncIterator[tuple[str, bytes]]:
        """Every manifest of a kind as (key, document), in no particular order, read a
        page at a time."""

    async def set_aside(self, sha256: str, unless_put_after: datetime) -> bool:
        """Move a blob out of the served namespace to ``evicting/<sha256>`` beside it,
        unless it was stored or put again after ``unless_put_after`` (a record naming it
        may be about to be committed: it stays). True if it was moved; False if it stayed
        or there was none, so setting aside twice is safe.

        Only the bounded proxy cache sets blobs aside, and only blobs no record names
        (``ProxyCacheStore.blobs_in_use``); it checks the records again afterwards and
        puts back what a record now names (``put_back``), and drops the rest after a
        grace period (``drop_aside``): docs/proxy.md, "Eviction and uploads". Times are
        timezone-aware; the store allows for the skew between its clock and the caller's.
        A set-aside blob is outside ``list_blobs`` but ``open_blob`` still finds it.
        """

    async def put_back(self, sha256: str) -> bool:
        """Make the blob's key hold it: if it holds none, copy the set-aside one back.
        True if the key holds the blob afterwards (it did already, or it was put back);
        False if neither exists. A set-aside copy may stay behind (``drop_aside``).

        Whoever commits a record naming a blob it put calls this afterwards: a record
        committed while an eviction was setting the blob aside then never names a
        missing blob.
        """

    async def drop_aside(self, sha256: str) -> None:
        """Delete the set-aside copy of a blob, if there is one."""

    def list_aside(self) -> AsyncIterator[StoredBlob]:
        """Every set-aside blob, ``modified`` being when it was set aside."""

    async def quarantine(self, sha256: str) -> str | None:
        """Move a blob out of the served namespace (``open_blob`` then finds it missing).

        Nothing is deleted: the bytes go to a ``quarantine/`` directory or key prefix
        beside the blobs, where an administrator can look at them or move them back.
        Returns where they went, None if there was no such blob. A later put of the
        same key stores the blob anew.
        """


class Scratch(Protocol):
    """A directory for temporary files and directories, each named for the process that made it.

    Several processes may share a data directory (a server and an admin command, or
    ``--processes N``), so a process sweeps away at start only what a dead process
    left, never another live process's upload in flight.
    """

    def new_file(self, kind: str) -> tuple[int, Path]:
        """A new temporary file of ``kind`` owned by this process: (descriptor, path)."""

    def new_directory(self, kind: str) -> Path:
        """A new temporary directory of ``kind``, for files that need their own names."""

    def sweep(self, kind: str) -> int:
        """Remove what dead processes left of ``kind``; returns how many there were."""
