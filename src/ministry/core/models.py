"""Values that cross the boundary between services and stores.

Frozen dataclasses only: a value read from a store can be cached and shared
between requests without anyone changing it under another's feet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Literal

from packaging.utils import NormalizedName

__all__ = [
    "DEFAULT_INDEX",
    "Actor",
    "AddFileOutcome",
    "AddFileResult",
    "Change",
    "DistFile",
    "Group",
    "IndexConfig",
    "IndexKind",
    "PackageType",
    "Project",
    "Release",
    "Route",
    "Token",
    "User",
]

#: The index that exists from the first start and answers at the root URLs.
DEFAULT_INDEX = "main"

PackageType = Literal["sdist", "bdist_wheel"]
IndexKind = Literal["hosted"]


@dataclass(frozen=True)
class Actor:
    """Who makes a change and from which address, for the audit log."""

    name: str
    address: str = "local"


@dataclass(frozen=True)
class Route:
    """A routing rule: projects whose normalized name matches ``pattern`` come only from ``base``.

    ``base`` is ``"-"`` for "from no base at all": such names are only ever local.
    """

    pattern: str
    base: str


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

    @property
    def is_yanked(self) -> bool:
        """True when the file is yanked, with or without a reason."""
        return self.yanked is not None


class AddFileOutcome(Enum):
    """What a store found when asked to publish a file atomically."""

    ADDED = "added"
    #: The filename is taken; ``existing`` holds the stored file (same or other bytes).
    FILENAME_TAKEN = "filename-taken"
    #: The same bytes are published under another filename; ``existing`` holds it.
    CONTENT_TAKEN = "content-taken"
    #: The release already has an sdist; ``existing`` holds it.
    SDIST_TAKEN = "sdist-taken"
    #: The filename belonged to a deleted file with other bytes; ``existing`` is the new file.
    FILENAME_RETIRED = "filename-retired"
    #: The filename was taken and its file replaced (indexes that allow overwriting).
    REPLACED = "replaced"


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


@dataclass(frozen=True)
class Token:
    """An API token. Only a hash of its secret is ever stored."""

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
