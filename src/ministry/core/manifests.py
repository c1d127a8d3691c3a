"""Manifests: what the blob store keeps about the index, so that the metadata can be
rebuilt from it.

The metadata store (SQLite or Redis) is the truth the server reads; a manifest is a
second, durable copy of one piece of it, written beside the blobs after each change
commits and before the change is answered. When the metadata store comes back empty
or older than what was acknowledged (a Redis restarted from an old snapshot),
``ministry rebuild --from-storage`` reads the manifests and puts back what is missing.

Each manifest describes the *current state* of one thing, not an event: the file as
it was published, a file's yank or deletion, an index's settings, a project's roles,
a user, a group, a token, a trusted publisher. Its key is the sha256 of what names
the thing (index and filename, user name…), so a later change replaces it and the
rebuild needs no ordering of events. Removals leave a tombstone (``"deleted"``),
because a rebuild into a stale store must remove what the store still has.

What the manifests do not hold (docs/operations.md, "What a rebuild restores, and
what it cannot"): the change log, proxy caches and pins, mirror runs, upload tokens
minted for CI runs, the identity tokens already exchanged, and when a token was
last used.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name

from ministry.core.hashing import sha256_hex
from ministry.core.models import DistFile, Group, IndexConfig, ProjectRole, Token, User
from ministry.core.records import from_record, to_record
from ministry.core.trusted_publishing import TrustedPublisher

__all__ = [
    "FORMAT",
    "KINDS",
    "Manifest",
    "Recovered",
    "RecoveredFile",
    "file_manifest",
    "group_manifest",
    "index_manifest",
    "key_of",
    "manifests_of_records",
    "publisher_manifest",
    "recover",
    "removed_user_manifest",
    "roles_manifest",
    "state_manifest",
    "token_manifest",
    "user_manifest",
]

FORMAT = 1
KINDS = ("index", "user", "group", "token", "file", "state", "roles", "publisher")


@dataclass(frozen=True)
class Manifest:
    """One document and where it goes."""

    kind: str
    key: str
    document: dict[str, Any]
    #: What it is about, for a person: ``team/demo-1.0.tar.gz``, ``alice``.
    subject: str = ""

    def encoded(self) -> bytes:
        """The document as compact JSON."""
        return json.dumps(self.document, separators=(",", ":"), sort_keys=True).encode()


def key_of(kind: str, *identity: str) -> str:
    """The key of the manifest of one thing: a hash of its kind and what names it."""
    return sha256_hex("\0".join((kind, *identity)).encode())


def _manifest(kind: str, identity: tuple[str, ...], body: dict[str, Any]) -> Manifest:
    return Manifest(kind, key_of(kind, *identity), {"format": FORMAT, **body}, "/".join(identity))


def file_manifest(file: DistFile, display_name: str, metadata: dict[str, Any]) -> Manifest:
    """A published file, with what its release and project pages need."""
    body = {"file": to_record(file), "display_name": display_name, "metadata": metadata}
    return _manifest("file", (file.index, file.filename), body)


def state_manifest(file: DistFile, *, deleted: bool) -> Manifest:
    """A file's yank (or unyank) or its deletion, which outlives the file manifest's
    own ``yanked``: the file manifest is written once, at upload."""
    body = {
        "index": file.index,
        "filename": file.filename,
        "sha256": file.sha256,
        "yanked": file.yanked,
        "deleted": deleted,
        "serial": file.serial,
    }
    return _manifest("state", (file.index, file.filename), body)


def index_manifest(name: str, config: IndexConfig | None, created: datetime) -> Manifest:
    """An index's settings, or (``config`` None) its deletion at ``created``."""
    if config is None:
        return _manifest("index", (name,), {"name": name, "deleted": created.isoformat()})
    body = {"name": name, "created": created.isoformat(), "config": to_record(config)}
    return _manifest("index", (name,), body)


def roles_manifest(index: str, project: str, roles: Iterable[ProjectRole]) -> Manifest:
    """Every role in one project (an empty list once the last is taken away)."""
    held = sorted([role.principal, role.role] for role in roles)
    return _manifest("roles", (index, project), {"index": index, "project": project, "roles": held})


def user_manifest(user: User) -> Manifest:
    """A user, with its password hash (a bucket's readers see what Redis's readers see)."""
    return _manifest("user", (user.name,), {"user": to_record(user)})


def removed_user_manifest(name: str) -> Manifest:
    """A user's removal: a rebuild removes them from a store that still has them."""
    return _manifest("user", (name,), {"name": name, "deleted": True})


def group_manifest(name: str, group: Group | None) -> Manifest:
    """A group and its members, or (``group`` None) its deletion."""
    if group is None:
        return _manifest("group", (name,), {"name": name, "deleted": True})
    return _manifest("group", (name,), {"name": name, "members": sorted(group.members)})


def token_manifest(token: Token) -> Manifest:
    """A token (its secret only as a hash), revoked or not."""
    return _manifest("token", (token.token_id,), {"token": to_record(token)})


def publisher_manifest(publisher_id: str, publisher: TrustedPublisher | None) -> Manifest:
    """A trusted publisher, or (``publisher`` None) its removal."""
    if publisher is None:
        return _manifest("publisher", (publisher_id,), {"id": publisher_id, "deleted": True})
    return _manifest("publisher", (publisher_id,), {"publisher": to_record(publisher)})


def manifests_of_records(records: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[Manifest]:
    """The manifests of a whole store's exported records (``TransferStore``): what
    ``ministry migrate`` and ``restore`` write into a new blob store, and what ``verify
    --repair`` compares with the manifests there."""
    releases: dict[tuple[str, str, str], dict[str, Any]] = {}
    display: dict[tuple[str, str], str] = {}
    files: list[DistFile] = []
    roles: dict[tuple[str, str], list[ProjectRole]] = {}
    for kind, record in records:
        if kind == "index":
            config = from_record(IndexConfig, record["config"])
            yield index_manifest(config.name, config, datetime.fromisoformat(record["created"]))
        elif kind == "user":
            yield user_manifest(from_record(User, record))
        elif kind == "group":
            yield group_manifest(record["name"], Group(record["name"], tuple(record["members"])))
        elif kind == "token":
            yield token_manifest(from_record(Token, record))
        elif kind == "publisher":
            publisher = from_record(TrustedPublisher, record)
            yield publisher_manifest(publisher.publisher_id, publisher)
        elif kind == "project":
            display[(record["index"], record["name"])] = record["display_name"]
        elif kind == "release":
            version = record["version"]
            releases[(record["index"], record["project"], version)] = record["metadata"]
        elif kind == "file":
            files.append(from_record(DistFile, record))
        elif kind == "role":
            role = from_record(ProjectRole, record)
            roles.setdefault((role.index, role.project), []).append(role)
    for file in files:
        metadata = releases.get((file.index, file.project, file.version), {})
        yield file_manifest(file, display.get((file.index, file.project), file.project), metadata)
        if file.is_yanked:
            yield state_manifest(file, deleted=False)
    for (index, project), held in roles.items():
        yield roles_manifest(index, project, held)


@dataclass(frozen=True)
class RecoveredFile:
    """A file to publish again, in the state its last manifest gave it."""

    file: DistFile
    display_name: str
    metadata: dict[str, Any]
    deleted: bool = False


@dataclass
class Recovered:
    """Everything the manifests say the metadata store should hold."""

    indexes: dict[str, tuple[IndexConfig, datetime]] = field(default_factory=dict)
    deleted_indexes: set[str] = field(default_factory=set)
    users: dict[str, User] = field(default_factory=dict)
    removed_users: set[str] = field(default_factory=set)
    groups: dict[str, Group] = field(default_factory=dict)
    deleted_groups: set[str] = field(default_factory=set)
    tokens: dict[str, Token] = field(default_factory=dict)
    publishers: dict[str, TrustedPublisher] = field(default_factory=dict)
    removed_publishers: set[str] = field(default_factory=set)
    #: Oldest first (by serial, then upload time), the order they were published in.
    files: list[RecoveredFile] = field(default_factory=list)
    roles: dict[tuple[str, NormalizedName], list[ProjectRole]] = field(default_factory=dict)
    #: The highest serial any manifest names: no serial at or below it is handed out again.
    highest_serial: int = 0
    #: Documents that could not be read (damaged, or of a later format), by kind.
    unreadable: dict[str, int] = field(default_factory=dict)
    #: The key of every manifest read, by kind.
    keys: dict[str, set[str]] = field(default_factory=dict)

    def blobs_named(self) -> dict[str, str]:
        """Every blob a file that is not deleted names (the file, its metadata file, its
        provenance), with the file's ``index/filename``."""
        named: dict[str, str] = {}
        for entry in self.files:
            if not entry.deleted:
                file = entry.file
                where = f"{file.index}/{file.filename}"
                for sha256 in (file.sha256, file.metadata_sha256, file.provenance_sha256):
                    if sha256:
                        named[sha256] = where
        return named


class _Folding:
    """Reads documents of every kind into a ``Recovered``."""

    def __init__(self) -> None:
        self.recovered = Recovered()
        self.files: dict[tuple[str, str], RecoveredFile] = {}
        self.states: dict[tuple[str, str], dict[str, Any]] = {}

    def add(self, kind: str, document: dict[str, Any]) -> None:
        r = self.recovered
        if kind == "index":
            if document.get("deleted"):
                r.deleted_indexes.add(document["name"])
            else:
                config = from_record(IndexConfig, document["config"])
                r.indexes[config.name] = (config, datetime.fromisoformat(document["created"]))
        elif kind == "user":
            if document.get("deleted"):
                r.removed_users.add(document["name"])
            else:
                user = from_record(User, document["user"])
                r.users[user.name] = user
        elif kind == "group":
            if document.get("deleted"):
                r.deleted_groups.add(document["name"])
            else:
                r.groups[document["name"]] = Group(document["name"], tuple(document["members"]))
        elif kind == "token":
            token = from_record(Token, document["token"])
            r.tokens[token.token_id] = token
        elif kind == "publisher":
            if document.get("deleted"):
                r.removed_publishers.add(document["id"])
            else:
                publisher = from_record(TrustedPublisher, document["publisher"])
                r.publishers[publisher.publisher_id] = publisher
        elif kind == "file":
            file = from_record(DistFile, document["file"])
            entry = RecoveredFile(file, document["display_name"], document["metadata"])
            self.files[(file.index, file.filename)] = entry
        elif kind == "state":
            self.states[(document["index"], document["filename"])] = document
        elif kind == "roles":
            index, project = document["index"], canonicalize_name(document["project"])
            held = [ProjectRole(index, project, p, role) for p, role in document["roles"]]
            r.roles[(index, project)] = held
        else:
            raise ValueError(f"unknown manifest kind {kind!r}")
        r.highest_serial = max(r.highest_serial, _serial_of(kind, document))

    def finish(self) -> Recovered:
        r = self.recovered
        for where, entry in self.files.items():
            state = self.states.get(where)
            if state is not None and state["sha256"] == entry.file.sha256:
                file = entry.file
                if state["serial"] >= file.serial:
                    file = replace(file, yanked=state["yanked"])
                entry = replace(entry, file=file, deleted=bool(state["deleted"]))
            r.files.append(entry)
        r.files.sort(key=lambda e: (e.file.serial, e.file.upload_time))
        return r


def _serial_of(kind: str, document: dict[str, Any]) -> int:
    if kind == "file":
        return int(document["file"].get("serial", 0))
    if kind == "state":
        return int(document.get("serial", 0))
    return 0


def recover(documents: Iterable[tuple[str, str, bytes]]) -> Recovered:
    """Fold every manifest ``(kind, key, document)`` into what the store should hold.

    A document that cannot be read is counted, not fatal: one damaged object must not
    stop the rebuild of everything else, and the report names how many there were.
    """
    folding = _Folding()
    for kind, key, raw in documents:
        folding.recovered.keys.setdefault(kind, set()).add(key)
        try:
            document = json.loads(raw)
            if not isinstance(document, dict) or document.get("format") != FORMAT:
                raise ValueError("not a manifest of this format")
            folding.add(kind, document)
        except (ValueError, KeyError, TypeError):
            unreadable = folding.recovered.unreadable
            unreadable[kind] = unreadable.get(kind, 0) + 1
    return folding.finish()
