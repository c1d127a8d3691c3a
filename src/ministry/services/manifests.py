"""Every change that must survive the metadata store, written again beside the blobs.

``journalled_store`` wraps the metadata store the wiring builds: each change it
forwards, once committed, has its manifest (``core.manifests``) written to the blob
store before the call returns, so nothing is answered before its manifest is durable.
If the manifest cannot be written the call fails (a 503 for a request), though the
change itself stands: ``ministry verify --repair`` writes what is missing.

One wrapper rather than a call in each service: uploads, mirrors, imports, the web
forms, the JSON API and the commands all change the store through it, and none can
forget. A rebuild (``services.rebuild``) writes to the store underneath, since what it
puts back came from the manifests.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

from packaging.utils import NormalizedName

from ministry.core.manifests import (
    KINDS,
    Manifest,
    Recovered,
    file_manifest,
    group_manifest,
    index_manifest,
    key_of,
    publisher_manifest,
    recover,
    removed_user_manifest,
    roles_manifest,
    state_manifest,
    token_manifest,
    user_manifest,
)
from ministry.core.models import (
    SERVER,
    Actor,
    AddFileOutcome,
    AddFileResult,
    DistFile,
    IndexConfig,
    ProjectRole,
    Publisher,
    Token,
    User,
)
from ministry.core.trusted_publishing import TrustedPublisher
from ministry.storage.protocols import BlobStore, MetadataStore

__all__ = ["JournalledStore", "journalled_store", "read_manifests", "write_manifests"]

log = logging.getLogger(__name__)

#: Outcomes after which the file named in the result is published with these bytes.
_PUBLISHED = (AddFileOutcome.ADDED, AddFileOutcome.REPLACED)
#: Manifests written at the same time by one change (a deleted index has many).
_AT_ONCE = 16


async def write_manifests(blobs: BlobStore, manifests: Iterable[Manifest]) -> int:
    """Write each manifest, up to ``_AT_ONCE`` at a time so that their disk flushes
    overlap (each is durable on its own: their order does not matter); returns how many."""
    limit = asyncio.Semaphore(_AT_ONCE)

    async def write(manifest: Manifest) -> None:
        async with limit:
            await blobs.put_manifest(manifest.kind, manifest.key, manifest.encoded())

    written = await asyncio.gather(*(write(m) for m in manifests))
    return len(written)


async def read_manifests(blobs: BlobStore, on_read: Callable[[str], None]) -> Recovered:
    """Every manifest of every kind, folded into what the metadata store should hold
    (``on_read`` hears the kind of each one read)."""
    documents: list[tuple[str, str, bytes]] = []
    for kind in KINDS:
        async for key, raw in blobs.list_manifests(kind):
            documents.append((kind, key, raw))
            on_read(kind)
    return recover(documents)


class JournalledStore:
    """Forwards every attribute to the store; its changes also write their manifests."""

    def __init__(self, store: MetadataStore, blobs: BlobStore) -> None:
        self._store = store
        self._blobs = blobs

    @property
    def underlying(self) -> MetadataStore:
        """The store itself, for a rebuild, which must not journal what it reads back."""
        return self._store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def _write(self, *manifests: Manifest) -> None:
        try:
            await write_manifests(self._blobs, manifests)
        except Exception:
            names = ", ".join(f"{m.kind} {m.key[:12]}" for m in manifests)
            log.error(
                "A change committed but its manifest (%s) could not be written; "
                "`ministry verify --repair` writes it.",
                names,
            )
            raise

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
        """Publish, then write the file's manifest (also for the same bytes sent again,
        which is answered as a success and so must be journalled too), and the roles of
        a project it created with an owner, both at once."""
        creates = publisher is not None and publisher.owner is not None
        if creates:
            creates = await self._store.get_project(file.index, file.project) is None
        result = await self._store.add_file(
            file,
            display_name,
            metadata,
            actor,
            replace_existing=replace_existing,
            publisher=publisher,
        )
        stored = result.file
        same_again = (
            result.outcome is AddFileOutcome.FILENAME_TAKEN and stored.sha256 == file.sha256
        )
        manifests = []
        if result.outcome in _PUBLISHED or same_again:
            manifests.append(file_manifest(stored, display_name, metadata))
        if creates and result.outcome is AddFileOutcome.ADDED:
            roles = await self._store.list_roles(stored.index, stored.project)
            manifests.append(roles_manifest(stored.index, stored.project, roles))
        await self._write(*manifests)
        return result

    async def set_yanked(
        self, index: str, filenames: Sequence[str], reason: str | None, actor: Actor
    ) -> list[DistFile]:
        """Yank or unyank, then write each file's state."""
        files = await self._store.set_yanked(index, filenames, reason, actor)
        await self._write(*(state_manifest(f, deleted=False) for f in files))
        return files

    async def delete_files(
        self, index: str, filenames: Sequence[str], actor: Actor
    ) -> list[DistFile]:
        """Delete, then write each file's tombstone."""
        files = await self._store.delete_files(index, filenames, actor)
        await self._write(*(state_manifest(f, deleted=True) for f in files))
        return files

    async def _write_roles(self, index: str, project: NormalizedName) -> None:
        roles = await self._store.list_roles(index, project)
        await self._write(roles_manifest(index, project, roles))

    async def add_role(self, role: ProjectRole, actor: Actor) -> bool:
        """Give a role, then write the project's roles as they now are."""
        changed = await self._store.add_role(role, actor)
        await self._write_roles(role.index, role.project)
        return changed

    async def remove_role(self, role: ProjectRole, actor: Actor) -> None:
        """Take a role away, then write the project's roles as they now are."""
        await self._store.remove_role(role, actor)
        await self._write_roles(role.index, role.project)

    async def create_index(self, config: IndexConfig, actor: Actor) -> None:
        """Create, then write the index's settings with the time it was made."""
        await self._store.create_index(config, actor)
        await self._write_index(config, actor)

    async def update_index(self, config: IndexConfig, actor: Actor) -> None:
        """Update, then write the settings (keeping the creation time the manifest has)."""
        await self._store.update_index(config, actor)
        await self._write_index(config, actor)

    async def _write_index(self, config: IndexConfig, actor: Actor) -> None:
        """Write an index's manifest, except over one the server did not write itself
        when the change is the server's own set-up at start: a server started on a
        store that came back empty makes the default index anew, and that must not
        replace the settings the rebuild is about to put back."""
        before = await self._blobs.get_manifest("index", key_of("index", config.name))
        recorded = _read(before)
        if actor == SERVER and recorded.get("config") is not None:
            return
        created = recorded.get("created")
        when = datetime.fromisoformat(created) if isinstance(created, str) else datetime.now(UTC)
        await self._write(index_manifest(config.name, config, when))

    async def delete_index(self, name: str, actor: Actor) -> None:
        """Delete, then tombstone every file it had and the index itself (files first: a
        rebuild cut short then still finds the index deleted or its files gone)."""
        files = [
            file
            for project in await self._store.list_projects(name)
            for file in await self._store.list_files(name, project.name)
        ]
        await self._store.delete_index(name, actor)
        await self._write(*(state_manifest(f, deleted=True) for f in files))
        await self._write(index_manifest(name, None, datetime.now(UTC)))

    async def add_user(self, user: User, actor: Actor) -> None:
        """Create the user, then write it."""
        await self._store.add_user(user, actor)
        await self._write(user_manifest(user))

    async def update_user(self, user: User, actor: Actor) -> None:
        """Update the user, then write it."""
        await self._store.update_user(user, actor)
        await self._write(user_manifest(user))

    async def remove_user(self, name: str, actor: Actor) -> None:
        """Remove the user, then write their tombstone, their tokens as revoked and the
        groups they left."""
        tokens = await self._store.list_tokens(name)
        groups = [group.name for group in await self._store.list_groups() if name in group.members]
        await self._store.remove_user(name, actor)
        await self._write(removed_user_manifest(name))
        await self._write(*(token_manifest(replace(t, revoked=True)) for t in tokens))
        for group in groups:
            await self._write_group(group)

    async def _write_group(self, name: str) -> None:
        groups = {group.name: group for group in await self._store.list_groups()}
        await self._write(group_manifest(name, groups.get(name)))

    async def create_group(self, name: str, actor: Actor) -> None:
        """Create the group, then write it."""
        await self._store.create_group(name, actor)
        await self._write_group(name)

    async def delete_group(self, name: str, actor: Actor) -> None:
        """Delete the group, then write its tombstone."""
        await self._store.delete_group(name, actor)
        await self._write(group_manifest(name, None))

    async def set_group_members(
        self, name: str, add: Sequence[str], remove: Sequence[str], actor: Actor
    ) -> None:
        """Change the members, then write the group as it now is."""
        await self._store.set_group_members(name, add, remove, actor)
        await self._write_group(name)

    async def add_token(self, token: Token, actor: Actor) -> None:
        """Store the token, then write it (its secret only as the hash)."""
        await self._store.add_token(token, actor)
        await self._write(token_manifest(token))

    async def revoke_token(self, token_id: str, actor: Actor) -> None:
        """Revoke the token, then write it as revoked."""
        await self._store.revoke_token(token_id, actor)
        token = await self._store.get_token(token_id)
        if token is not None:
            await self._write(token_manifest(token))

    async def _write_publisher(self, publisher_id: str) -> None:
        publisher = await self._store.get_publisher(publisher_id)
        await self._write(publisher_manifest(publisher_id, publisher))

    async def add_publisher(self, publisher: TrustedPublisher, actor: Actor) -> None:
        """Store the publisher, then write it."""
        await self._store.add_publisher(publisher, actor)
        await self._write(publisher_manifest(publisher.publisher_id, publisher))

    async def remove_publisher(self, publisher_id: str, actor: Actor) -> None:
        """Remove the publisher, then write its tombstone."""
        await self._store.remove_publisher(publisher_id, actor)
        await self._write(publisher_manifest(publisher_id, None))

    async def pin_publisher(self, publisher_id: str, pinned: tuple[tuple[str, str], ...]) -> None:
        """Record the pinned ids, then write the publisher with them."""
        await self._store.pin_publisher(publisher_id, pinned)
        await self._write_publisher(publisher_id)


def _read(raw: bytes | None) -> dict[str, Any]:
    """A manifest's document; empty if there is none or it cannot be read."""
    try:
        document = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def journalled_store(store: MetadataStore, blobs: BlobStore) -> MetadataStore:
    """``store``, with every lasting change also written as a manifest into ``blobs``."""
    return cast(MetadataStore, JournalledStore(store, blobs))
