"""Putting the metadata back from the manifests in the blob store (``ministry rebuild
--from-storage``).

For a metadata store that came back empty, or older than what was acknowledged (a
Redis restarted from an old snapshot, a SQLite file restored from last night): every
manifest is read (``core.manifests``) and whatever the store lacks or has otherwise
is changed through the store's own operations, so that each check a change passes
when it is made (a filename retired by a deletion, a second sdist) holds for the
rebuild too, and every change it makes is in the change log under the actor
``rebuild``. Nothing the manifests do not mention is touched: a store that is newer
than its manifests (files from before manifests existed) loses nothing.

Serials first: the store's next serial is raised above every serial a manifest
names, and so above every serial handed out before the loss; the raise starts a new
generation, so every running node drops its caches (``services.rollback``).

A file whose blob is missing is not registered (its pages would name bytes nobody
can download): it is reported, as are manifests that could not be read.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from ministry.core.manifests import Recovered, RecoveredFile
from ministry.core.models import (
    Actor,
    AddFileOutcome,
    DistFile,
    ProjectRole,
)
from ministry.errors import NotFound
from ministry.services.manifests import read_manifests
from ministry.storage.protocols import BlobStore, MetadataStore

__all__ = ["REBUILD", "RebuildListener", "RebuildReport", "rebuild"]

#: Projects whose files are put back at once.
_PROJECTS_AT_ONCE = 8
#: Who the change log says made the rebuild's changes.
REBUILD = Actor("rebuild", "local")


class RebuildListener(Protocol):
    """Progress, for a progress bar or log lines."""

    def read(self, kind: str) -> None:
        """One manifest of ``kind`` was read."""

    def planned(self, files: int) -> None:
        """How many files the manifests name (what the second phase goes through)."""

    def file_done(self) -> None:
        """One file was compared with the store (and put back where it was missing)."""


@dataclass
class RebuildReport:
    """What a rebuild found and changed."""

    #: What was put back or changed, by what it was: "file", "yank", "index"…
    changed: Counter[str] = field(default_factory=Counter)
    #: Manifests read, by kind.
    read: Counter[str] = field(default_factory=Counter)
    #: What could not be put back, one line each.
    problems: list[str] = field(default_factory=list)
    #: Every new serial is above this.
    serial_floor: int = 0
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        """Whether everything the manifests name is in the store now."""
        return not self.problems


class _Rebuild:
    """One run: compares the store with the manifests and changes what differs."""

    def __init__(
        self,
        store: MetadataStore,
        blobs: BlobStore,
        report: RebuildReport,
        listener: RebuildListener,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.report = report
        self.listener = listener
        self.write = not report.dry_run

    def changed(self, what: str) -> None:
        self.report.changed[what] += 1

    async def indexes(self, recovered: Recovered) -> set[str]:
        """Create, update and delete indexes; returns the names of the live ones."""
        existing = {config.name: config for config in await self.store.list_indexes()}
        for config in sorted((c for c, _ in recovered.indexes.values()), key=lambda c: c.name):
            before = existing.get(config.name)
            if before == config:
                continue
            if self.write:
                if before is None:
                    await self.store.create_index(config, REBUILD)
                else:
                    await self.store.update_index(config, REBUILD)
            self.changed("index")
        for name in sorted(recovered.deleted_indexes & existing.keys()):
            if self.write:
                await self.store.delete_index(name, REBUILD)
            self.changed("index deleted")
        return (existing.keys() | recovered.indexes.keys()) - recovered.deleted_indexes

    async def accounts(self, recovered: Recovered) -> None:
        """Users, groups and tokens."""
        users = {user.name: user for user in await self.store.list_users()}
        for name, user in sorted(recovered.users.items()):
            if users.get(name) == user:
                continue
            if self.write:
                if name in users:
                    await self.store.update_user(user, REBUILD)
                else:
                    await self.store.add_user(user, REBUILD)
            self.changed("user")
        for name in sorted(recovered.removed_users & users.keys()):
            if self.write:
                await self.store.remove_user(name, REBUILD)
            self.changed("user removed")
        groups = {group.name: set(group.members) for group in await self.store.list_groups()}
        for name, group in sorted(recovered.groups.items()):
            members = groups.get(name)
            if members == set(group.members):
                continue
            if self.write:
                if members is None:
                    await self.store.create_group(name, REBUILD)
                held = members or set()
                add, remove = sorted(set(group.members) - held), sorted(held - set(group.members))
                await self.store.set_group_members(name, add, remove, REBUILD)
            self.changed("group")
        for name in sorted(recovered.deleted_groups & groups.keys()):
            if self.write:
                await self.store.delete_group(name, REBUILD)
            self.changed("group deleted")
        for token_id, token in sorted(recovered.tokens.items()):
            if token.user in recovered.removed_users:
                continue  # removed with their user
            stored = await self.store.get_token(token_id)
            if stored is None:
                if self.write:
                    await self.store.add_token(token, REBUILD)
                self.changed("token")
            elif token.revoked and not stored.revoked:
                if self.write:
                    await self.store.revoke_token(token_id, REBUILD)
                self.changed("token revoked")

    async def files(self, recovered: Recovered, live: set[str]) -> None:
        """Publish what is missing, then yank, unyank and delete as the manifests say.

        Projects go a few at a time (on Redis and S3 each file is several round trips);
        the files of one project go in the order they were published, since that order
        decides which sdist or wheel a release already has.
        """
        self.listener.planned(len(recovered.files))
        projects: dict[tuple[str, str], list[RecoveredFile]] = {}
        for entry in recovered.files:
            projects.setdefault((entry.file.index, entry.file.project), []).append(entry)
        pending = iter(projects.values())

        async def work() -> None:
            for entries in pending:  # the workers share one iterator: each project once
                for entry in entries:
                    if entry.file.index in live:
                        await self.file(entry)
                    self.listener.file_done()

        await asyncio.gather(*(work() for _ in range(_PROJECTS_AT_ONCE)))

    async def file(self, entry: RecoveredFile) -> None:
        file = entry.file
        stored = await self.store.get_file(file.index, file.filename)
        if entry.deleted:
            await self._deleted(entry, stored)
            return
        if stored is None or (stored.sha256 != file.sha256 and stored.serial <= file.serial):
            stored = await self._publish(entry, stored)
            if stored is None:
                return
            self.changed("file")
        if stored.sha256 == file.sha256 and stored.yanked != file.yanked:
            if self.write:
                await self.store.set_yanked(file.index, [file.filename], file.yanked, REBUILD)
            self.changed("yank" if file.is_yanked else "unyank")

    async def _deleted(self, entry: RecoveredFile, stored: DistFile | None) -> None:
        """Delete the file if the store has these bytes; else keep its name retired, as
        the deletion did (without publishing the file for a moment)."""
        file = entry.file
        if stored is not None and stored.sha256 == file.sha256:
            if self.write:
                await self.store.delete_files(file.index, [file.filename], REBUILD)
            self.changed("file deleted")
        elif stored is None:
            retired = True
            if self.write:
                retired = await self.store.retire_filename(file.index, file.filename, file.sha256)
            if retired:
                self.changed("file deleted")

    async def _publish(self, entry: RecoveredFile, stored: DistFile | None) -> DistFile | None:
        """Publish the file again (replacing older bytes under its name); the file as
        stored, or None where it could not be (reported)."""
        file = entry.file
        if not await self._blobs_present(entry):
            return None
        if not self.write:
            return file
        result = await self.store.add_file(
            file, entry.display_name, entry.metadata, REBUILD, replace_existing=stored is not None
        )
        if result.outcome not in (AddFileOutcome.ADDED, AddFileOutcome.REPLACED):
            self.report.problems.append(
                f"{file.index}/{file.filename}: not put back ({result.outcome.value})"
            )
            return None
        return result.file

    async def _blobs_present(self, entry: RecoveredFile) -> bool:
        file = entry.file
        for sha256 in filter(None, (file.sha256, file.metadata_sha256, file.provenance_sha256)):
            try:
                reader = await self.blobs.open_blob(sha256)
            except NotFound:
                self.report.problems.append(
                    f"{file.index}/{file.filename}: its blob {sha256} is missing; not put back"
                )
                return False
            await reader.close()
        return True

    async def roles(self, recovered: Recovered, live: set[str]) -> None:
        """Give and take roles until each project's are the manifest's (given first, so
        that a project is never left without an owner on the way)."""
        for (index, project), wanted in sorted(recovered.roles.items()):
            if index not in live:
                continue
            held = set(await self.store.list_roles(index, project))
            for role in sorted(set(wanted) - held, key=_role_order):
                if self.write:
                    await self.store.add_role(role, REBUILD)
                self.changed("role")
            principals = {role.principal for role in wanted}
            for role in sorted(held - set(wanted), key=_role_order):
                if role.principal in principals:
                    continue  # replaced by its new role just now
                if self.write:
                    await self.store.remove_role(role, REBUILD)
                self.changed("role removed")

    async def publishers(self, recovered: Recovered, live: set[str]) -> None:
        """Trusted publishers, with the repository ids they pinned."""
        for publisher_id, publisher in sorted(recovered.publishers.items()):
            if publisher.index not in live:
                continue
            stored = await self.store.get_publisher(publisher_id)
            if stored is None:
                if self.write:
                    await self.store.add_publisher(publisher, REBUILD)
                    if publisher.pinned:
                        await self.store.pin_publisher(publisher_id, publisher.pinned)
                self.changed("publisher")
            elif publisher.pinned and not stored.pinned:
                if self.write:
                    await self.store.pin_publisher(publisher_id, publisher.pinned)
                self.changed("publisher pinned")
        for publisher_id in sorted(recovered.removed_publishers):
            if await self.store.get_publisher(publisher_id) is None:
                continue
            if self.write:
                await self.store.remove_publisher(publisher_id, REBUILD)
            self.changed("publisher removed")


def _role_order(role: ProjectRole) -> tuple[bool, str]:
    """Owners first."""
    return (role.role != "owner", role.principal)


async def rebuild(
    store: MetadataStore,
    blobs: BlobStore,
    listener: RebuildListener,
    *,
    dry_run: bool = False,
) -> RebuildReport:
    """Make ``store`` hold everything the manifests in ``blobs`` name.

    ``store`` must be the bare store (``Services.bare_metadata``): the manifests that
    describe the changes exist already.
    """
    recovered = await read_manifests(blobs, listener.read)
    read = Counter({kind: len(keys) for kind, keys in recovered.keys.items()})
    report = RebuildReport(read=read, dry_run=dry_run)
    for kind, count in recovered.unreadable.items():
        report.problems.append(f"{count} {kind} manifest(s) could not be read")
    floor = max(recovered.highest_serial, await store.last_serial())
    if not dry_run:
        await store.raise_serial(floor)
    report.serial_floor = floor
    run = _Rebuild(store, blobs, report, listener)
    live = await run.indexes(recovered)
    await run.accounts(recovered)
    if run.write and report.changed:
        # A new generation once users and tokens are back: every node notices it and
        # forgets the failed logins it counted while they were missing, so clients get
        # in again while the files are still being put back.
        await store.raise_serial(await store.last_serial() + 1)
    # Roles before files: a project the files create again then has its owners from the
    # start, and its uploaders are not refused meanwhile.
    await run.roles(recovered, live)
    await run.files(recovered, live)
    await run.publishers(recovered, live)
    if run.write and report.changed:
        # And once everything is back: every node drops what it cached meanwhile.
        await store.raise_serial(await store.last_serial() + 1)
    return report
