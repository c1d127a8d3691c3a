"""Values that cross the boundary between services and stores.

Frozen dataclasses only: a value read from a store can be cached and shared
between requests without anyone changing it under another's feet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # in annotations only: the parser of every command imports this module
    from packaging.utils import NormalizedName

__all__ = [
    "DEFAULT_INDEX",
    "SERVER",
    "SESSION_PREFIX",
    "Actor",
    "AddFileOutcome",
    "AddFileResult",
    "CacheUsage",
    "CachedFile",
    "CachedPage",
    "Change",
    "DistFile",
    "FileEntry",
    "Group",
    "IndexConfig",
    "IndexKind",
    "MirrorRun",
    "PackageType",
    "PinnedFile",
    "Project",
    "ProjectRole",
    "Publisher",
    "Release",
    "RoleName",
    "Route",
    "Token",
    "Upstream",
    "User",
    "index_prefix",
]

#: The index that exists from the first start and answers at the root URLs.
DEFAULT_INDEX = "main"


def index_prefix(index: str) -> str:
    """The path prefix of an index: none for the default index, ``/<name>`` for the others
    (the web pages and the JSON API's links to them both follow it)."""
    return "" if index == DEFAULT_INDEX else f"/{index}"


PackageType = Literal["sdist", "bdist_wheel"]
IndexKind = Literal["hosted", "proxy"]
RoleName = Literal["owner", "maintainer"]


@dataclass(frozen=True)
class Actor:
    """Who makes a change and from which address, for the audit log."""

    name: str
    address: str = "local"


#: The server itself, making at start what its settings ask for (the default index,
#: the upstream of ``--upstream``): changes it makes again at every start.
SERVER = Actor("ministry", "local")


@dataclass(frozen=True)
class Route:
    """A routing rule: projects whose normalized name matches ``pattern`` come only from ``base``.

    ``base`` is ``"-"`` for "from no base at all": such names are only ever local.
    """

    pattern: str
    base: str


@dataclass(frozen=True)
class Upstream:
    """One upstream of a proxy index: a simple index URL (credentials may be in it).

    ``only`` routes: when set, this upstream is asked only for project names matching
    one of these patterns, and those names are asked of no upstream without ``only``
    (docs/proxy.md, "Several upstreams"). ``page_ttl`` overrides the index's for the
    pages of this upstream.
    """

    url: str
    only: tuple[str, ...] = ()
    page_ttl: int | None = None


@dataclass(frozen=True)
class IndexConfig:
    """An index and its settings.

    Principals in ``readers``, ``uploaders`` and ``admins`` are user names, or group
    names written ``@group``; ``@all`` is every user.
    """

    name: str
    kind: IndexKind = "hosted"
    bases: tuple[str, ...] = ()
    private: bool = False
    readers: tuple[str, ...] = ()
    uploaders: tuple[str, ...] = ()
    admins: tuple[str, ...] = ()
    allow_delete: bool = False
    allow_overwrite: bool = False
    #: Patterns of project names that this index shows from its bases too, although it
    #: has them itself (without it, a local project hides its bases' files).
    allow_inherit: tuple[str, ...] = ()
    routes: tuple[Route, ...] = ()
    description: str = ""
    #: Proxy indexes: the upstream simple indexes, in order of preference.
    upstreams: tuple[Upstream, ...] = ()
    #: Proxy indexes: seconds a fetched project page stays fresh before revalidation.
    page_ttl: int = 300
    #: Proxy indexes: upstream files younger than this many seconds are not offered.
    min_age: int = 0
    #: Proxy indexes: project patterns the minimum age does not apply to.
    min_age_exempt: tuple[str, ...] = ()
    #: Proxy indexes: bytes of upstream files kept before the least recently used are
    #: evicted (None: no bound of its own; the server's ``max_cache_size`` still holds).
    max_cache_size: int | None = None

    @property
    def upstream(self) -> str | None:
        """The URL of the first upstream (the only one of most proxy indexes)."""
        return self.upstreams[0].url if self.upstreams else None


@dataclass(frozen=True)
class Group:
    """A named set of users, for granting rights once."""

    name: str
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class Project:
    """A project in one index: its normalized name and the name as its metadata spells it."""

    index: str
    name: NormalizedName
    display_name: str
    created: datetime
    last_serial: int

    @classmethod
    def proxied(cls, index: str, name: NormalizedName) -> Project:
        """A project known from an upstream page: named as normalized, with no serial here."""
        return cls(index, name, name, datetime.fromtimestamp(0, UTC), 0)


@dataclass(frozen=True)
class ProjectRole:
    """A user's or ``@group``'s role in one project of one hosted index.

    Owners publish and manage the roles; maintainers publish, yank and unyank.
    A project with no roles at all belongs to its index's admins.
    """

    index: str
    project: NormalizedName
    principal: str
    role: RoleName


@dataclass(frozen=True)
class Publisher:
    """Who publishes a file, for the store to judge inside the transaction that adds it.

    ``principals`` must share a name with the roles of a project that exists (or had
    roles); None lets the file in regardless (index and server admins). ``owner``
    becomes the owner of a project the file creates (None: nobody, so its index's
    admins decide, as for files put in by the command line).
    """

    owner: str | None
    principals: frozenset[str] | None


@dataclass(frozen=True)
class Release:
    """One version of a project, with the core metadata of its first uploaded file.

    The public index keeps the metadata of the first file of a release; later
    files of the same version do not change it.
    """

    index: str
    project: NormalizedName
    version: str
    created: datetime
    metadata: dict[str, Any] = field(hash=False, compare=False)


@dataclass(frozen=True)
class DistFile:
    """A published distribution file and everything the simple and JSON APIs say about it."""

    index: str
    project: NormalizedName
    filename: str
    version: str
    packagetype: PackageType
    python_version: str
    requires_python: str | None
    size: int
    sha256: str
    md5: str
    blake2b_256: str
    upload_time: datetime
    uploader: str
    #: sha256 of the PEP 658 metadata file, or None when the file has none (sdists).
    metadata_sha256: str | None = None
    #: None: not yanked; a string (possibly empty): yanked, with that reason.
    yanked: str | None = None
    serial: int = 0
    #: sha256 of the file's PEP 740 provenance document in the blob store (the Integrity
    #: API serves it), or None when it was uploaded without attestations.
    provenance_sha256: str | None = None

    @property
    def is_yanked(self) -> bool:
        """True when the file is yanked, with or without a reason."""
        return self.yanked is not None


@dataclass(frozen=True)
class FileEntry:
    """A file as an index shows it: published here, or proxied from an upstream index.

    What an upstream does not say (its md5, its size on an HTML page) is None.
    """

    index: str
    project: NormalizedName
    filename: str
    version: str
    packagetype: str
    python_version: str
    sha256: str
    requires_python: str | None = None
    size: int | None = None
    md5: str | None = None
    blake2b_256: str | None = None
    upload_time: datetime | None = None
    metadata_sha256: str | None = None
    yanked: str | None = None
    #: PEP 740 provenance URL an upstream page gave for a proxied file.
    provenance: str | None = None
    #: Where a proxied file comes from; None for files published here.
    upstream_url: str | None = None
    #: sha256 of a hosted file's provenance document in the blob store.
    provenance_sha256: str | None = None

    @property
    def is_yanked(self) -> bool:
        """True when the file is yanked, with or without a reason."""
        return self.yanked is not None

    @classmethod
    def of(cls, file: DistFile) -> FileEntry:
        """The entry of a file published here."""
        return cls(
            index=file.index,
            project=file.project,
            filename=file.filename,
            version=file.version,
            packagetype=file.packagetype,
            python_version=file.python_version,
            sha256=file.sha256,
            requires_python=file.requires_python,
            size=file.size,
            md5=file.md5,
            blake2b_256=file.blake2b_256,
            upload_time=file.upload_time,
            metadata_sha256=file.metadata_sha256,
            yanked=file.yanked,
            provenance_sha256=file.provenance_sha256,
        )


@dataclass(frozen=True)
class CachedFile:
    """A proxied file (or its ``.metadata``) kept in the blob store."""

    index: str
    filename: str
    sha256: str
    size: int
    cached: datetime
    last_access: datetime
    #: Fetched or claimed by a mirror run: what a mirror holds is never evicted to
    #: keep the cache within its bound (services.proxy_cache).
    mirrored: bool = False


@dataclass
class CacheUsage:
    """What one proxy index keeps of its upstream (``ministry cache stats``)."""

    index: str
    files: int = 0
    bytes: int = 0
    #: Of those, what mirror runs hold (never evicted).
    mirrored_bytes: int = 0
    #: The index's own bound, if it has one.
    bound: int | None = None


@dataclass(frozen=True)
class PinnedFile:
    """The first sha256 a proxy index saw for a filename: the bytes that name keeps."""

    index: str
    project: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class MirrorRun:
    """The last run of a scheduled mirror job, as every worker and node of a server sees it."""

    job: str
    index: str
    started: datetime
    finished: datetime
    ok: bool
    #: Files fetched from the upstream by this run, and their bytes.
    files: int = 0
    bytes: int = 0
    #: Files that could not be fetched or did not match their hash.
    failed: int = 0
    #: One line for people: what was done, or why the run failed.
    message: str = ""


@dataclass(frozen=True)
class CachedPage:
    """An upstream project page as last fetched, with what revalidating it needs.

    ``status`` is 200 or 404; ``document`` is the parsed page in the form of
    ``core.upstream_cache``, and ``token`` changes whenever the document does.
    """

    index: str
    project: str
    status: int
    fetched: datetime
    document: str
    token: str
    etag: str | None = None
    last_modified: str | None = None


class AddFileOutcome(Enum):
    """What a store found when asked to publish a file atomically."""

    ADDED = "added"
    #: The filename is taken; ``existing`` holds the stored file (same or other bytes).
    FILENAME_TAKEN = "filename-taken"
    #: The same bytes are published under another filename; ``existing`` holds it.
    CONTENT_TAKEN = "content-taken"
    #: The release already has an sdist; ``existing`` holds it.
    SDIST_TAKEN = "sdist-taken"
    #: The release has a wheel of the same build and tags under another filename (another
    #: spelling of the version); ``existing`` holds it.
    WHEEL_TAKEN = "wheel-taken"
    #: The filename belonged to a deleted file with other bytes; ``existing`` is the new file.
    FILENAME_RETIRED = "filename-retired"
    #: The filename was taken and its file replaced (indexes that allow overwriting).
    REPLACED = "replaced"
    #: The project is someone else's: the publisher holds no role in it; ``file`` is theirs.
    NOT_PERMITTED = "not-permitted"


@dataclass(frozen=True)
class AddFileResult:
    """The outcome of ``MetadataStore.add_file`` and the file it concerns."""

    outcome: AddFileOutcome
    file: DistFile


@dataclass(frozen=True)
class User:
    """An account that can log in and upload."""

    name: str
    password_hash: str
    created: datetime
    is_admin: bool = False
    disabled: bool = False


#: Browser sessions are tokens whose id starts so; API token ids are hexadecimal, so no
#: API token passes for a session.
SESSION_PREFIX = "s"


@dataclass(frozen=True)
class Token:
    """An API token, or a browser session. Only a hash of its secret is ever stored.

    A session is kept with the tokens so that every node sharing the store knows it,
    but it is no token to its user: the token lists and the change log leave it out.
    """

    token_id: str
    user: str
    secret_hash: str
    created: datetime
    description: str = ""
    expires: datetime | None = None
    last_used: datetime | None = None
    revoked: bool = False
    #: The one index the token may be used for, or None for all the user's indexes.
    index: str | None = None
    #: The projects it may upload, or empty for all.
    projects: tuple[str, ...] = ()

    @property
    def is_session(self) -> bool:
        """Whether this is a browser session rather than an API token."""
        return self.token_id.startswith(SESSION_PREFIX)


@dataclass(frozen=True)
class Change:
    """One entry of the change log; its serial is strictly increasing."""

    serial: int
    time: datetime
    actor: str
    action: str
    index: str
    project: str | None = None
    version: str | None = None
    filename: str | None = None
    #: What else identifies the change (a user name, a token id), when project/file do not.
    detail: str | None = None
    address: str = "local"
