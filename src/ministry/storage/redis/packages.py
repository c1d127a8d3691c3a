"""Projects, releases and files in Redis: publishing, yanking and deleting, each one transaction.

Per index: a hash of projects, a hash of files by filename, a set of filenames
per project, a hash from sha256 to filename, a hash of releases per project and
a hash of retired filenames.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any, cast

from packaging.utils import NormalizedName
from redis.asyncio.client import Pipeline

from ministry.core.models import (
    Actor,
    AddFileOutcome,
    AddFileResult,
    DistFile,
    Project,
    Publisher,
    Release,
)
from ministry.core.project_list import ProjectList
from ministry.core.records import dumps, loads
from ministry.core.releases import (
    clash_outcome,
    clashing_file,
    filename_release_key,
    release_key,
    release_yank,
)
from ministry.core.search import newest_summaries
from ministry.storage.protocols import SUMMARY_BATCH
from ministry.storage.redis.base import Transaction, text
from ministry.storage.redis.roles import RolesMixin
from ministry.storage.redis.side_blobs import SIDE_BLOB, side_blobs

__all__ = ["PackagesMixin"]


#: Projects read per round trip when reading a whole index.
_BATCH = 500
#: Projects per HSCAN round when reading every project of an index.
_SCAN = 10_000


class PackagesMixin(RolesMixin):
    """The ``PackageStore`` role of ``MetadataStore`` (with the project roles)."""

    def _projects(self, index: str) -> str:
        return self.key("projects", index)

    def _files(self, index: str) -> str:
        return self.key("files", index)

    def _project_files(self, index: str, project: str) -> str:
        return self.key("project-files", index, project)

    def _hashes(self, index: str) -> str:
        return self.key("sha256", index)

    def _releases(self, index: str, project: str) -> str:
        return self.key("releases", index, project)

    def _retired(self, index: str) -> str:
        return self.key("retired", index)

    # -- reads ------------------------------------------------------------------------

    async def list_projects(self, index: str) -> list[Project]:
        """Every project of an index, by name."""
        values = await self.read(self.redis.hvals(self._projects(index)))
        return sorted((loads(Project, v) for v in values), key=lambda p: p.name)

    async def project_list(self, index: str) -> ProjectList:
        """Every project of an index, compact: sorted by name as read, then packed."""
        values = await self._every_project(index)
        names = sorted(values, key=text)
        return ProjectList(loads(Project, values[name]) for name in names)

    async def _every_project(self, index: str) -> dict[str, str]:
        """The projects hash, read in HSCAN rounds of about ``_SCAN`` each within the
        deadline of one call: one HGETALL of 350,000 projects already takes longer than
        the default ``redis_timeout``. HSCAN gives every project there throughout the read
        (one it gives twice is kept once); the caller holds the serial read before it, so
        a change made meanwhile is read again with the next serial, as after HGETALL."""
        found: dict[str, str] = {}
        cursor = 0
        while True:
            cursor, values = await self.read(
                self.redis.hscan(self._projects(index), cursor, count=_SCAN)
            )
            found.update(cast(dict[str, str], values))  # decoded: the client decodes
            if not cursor:
                return found

    async def count_projects(self, index: str) -> int:
        """How many projects an index has: the length of its projects hash."""
        return int(await self.read(self.redis.hlen(self._projects(index))))

    async def get_project(self, index: str, name: NormalizedName) -> Project | None:
        """One project."""
        value = await self.read(self.redis.hget(self._projects(index), name))
        return loads(Project, value) if value else None

    async def projects_named(self, name: NormalizedName) -> list[Project]:
        """The project of this name in every index that has one."""
        indexes = await self.read(self.redis.hkeys(self.key("indexes")))
        async with self.redis.pipeline(transaction=False) as pipe:
            for index in indexes:
                pipe.hget(self._projects(text(index)), name)
            values = await self.read(pipe.execute())
        return [loads(Project, v) for v in values if v]

    async def list_files(self, index: str, project: NormalizedName) -> list[DistFile]:
        """Every file of a project, by filename."""
        names = sorted(await self.read(self.redis.smembers(self._project_files(index, project))))
        if not names:
            return []
        values = await self.read(self.redis.hmget(self._files(index), names))
        return [loads(DistFile, v) for v in values if v]

    async def get_file(self, index: str, filename: str) -> DistFile | None:
        """One file."""
        value = await self.read(self.redis.hget(self._files(index), filename))
        return loads(DistFile, value) if value else None

    async def list_releases(self, index: str, project: NormalizedName) -> list[Release]:
        """Every release of a project."""
        values = await self.read(self.redis.hvals(self._releases(index, project)))
        return [loads(Release, v) for v in values]

    async def newest_summaries(
        self, index: str, *, batch: int = SUMMARY_BATCH
    ) -> AsyncIterator[list[tuple[str, str, str]]]:
        """(project, version, summary) of each project's newest release, ``batch`` projects
        at a time in name order: the names are read and sorted once (hash order is no
        order), then each list's releases in round trips of ``_BATCH`` projects."""
        names = sorted(text(n) for n in await self._every_project(index))
        for start in range(0, len(names), batch):
            found: list[tuple[str, str, str]] = []
            for at in range(start, min(start + batch, len(names)), _BATCH):
                chunk = names[at : min(at + _BATCH, start + batch)]
                async with self.redis.pipeline(transaction=False) as pipe:
                    for name in chunk:
                        pipe.hvals(self._releases(index, name))
                    results = await self.read(pipe.execute())
                found += newest_summaries(_summary(loads(Release, v)) for vs in results for v in vs)
            if found:
                yield found

    # -- publishing -------------------------------------------------------------------

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
        """Publish a file atomically (see the protocol)."""

        index, project = file.index, file.project
        canonical = release_key(file.version)

        def reads(pipe: Pipeline) -> None:
            # Every read whose key is known before any answer: one round trip with the
            # serial (``change``). The project before its roles, as ``judge_publisher`` says.
            pipe.hget(self._projects(index), project)
            pipe.hget(self._roles_key(index), project)
            pipe.hget(self._files(index), file.filename)
            pipe.hget(self._retired(index), file.filename)
            pipe.hget(self._hashes(index), file.sha256)
            pipe.smembers(self._project_files(index, project))
            pipe.hget(self._releases(index, project), canonical)

        async def work(tx: Transaction) -> AddFileResult:
            current, roles, existing, retired, other, names, release = tx.read
            outcome = AddFileOutcome.ADDED
            judged = (
                None
                if publisher is None
                else self.judge_publisher(file, publisher, exists=current is not None, roles=roles)
            )
            if isinstance(judged, AddFileResult):
                return judged
            replaced = loads(DistFile, existing) if existing is not None else None
            if replaced is not None and (not replace_existing or replaced.sha256 == file.sha256):
                return AddFileResult(AddFileOutcome.FILENAME_TAKEN, replaced)
            # Every check comes before the first write: a refusal leaves the store as it was.
            if retired is not None and retired != file.sha256:
                return AddFileResult(AddFileOutcome.FILENAME_RETIRED, file)
            # The reads that need the answers above: one more round trip, when there are any.
            taken = other is not None and other != file.filename
            siblings = _release_names(names, canonical)
            found: list[Any] = []
            if taken or siblings:
                found = await tx.snapshot(
                    lambda p: (
                        p.hget(self._files(index), other) if taken else None,
                        p.hmget(self._files(index), siblings) if siblings else None,
                    )
                )
            if taken and found[0] is not None:
                return AddFileResult(AddFileOutcome.CONTENT_TAKEN, loads(DistFile, found[0]))
            stored_siblings = found[-1] if siblings else []
            release_files = [
                f
                for f in (loads(DistFile, v) for v in stored_siblings if v)
                if release_key(f.version) == canonical
            ]
            clash = clashing_file(file, release_files)
            if clash is not None:
                return AddFileResult(clash_outcome(file.packagetype), clash)
            if replaced is not None:
                tx.write(partial(_hdel, self._hashes(index), replaced.sha256))
                outcome = AddFileOutcome.REPLACED
            version = loads(Release, release).version if release else file.version
            if judged is not None:
                self.record_owner(tx, judged, actor)
            serial, when = tx.log(
                actor, "add-file", index, project=project, version=version,
                filename=file.filename,
            )  # fmt: skip
            # A file joining a yanked release is yanked with it (docs/indexes.md).
            yanked = release_yank(release_files)
            stored = replace(file, version=version, serial=serial, yanked=yanked)
            self._publish(tx, stored, display_name, when, current)
            if release is None:
                new = Release(index, project, version, when, metadata)
                releases = self._releases(index, project)
                tx.write(lambda p: p.hset(releases, canonical, dumps(new)))
            return AddFileResult(outcome, stored)

        return await self.change(work, reads)

    def _publish(
        self,
        tx: Transaction,
        stored: DistFile,
        display_name: str,
        when: datetime,
        current: str | None,
    ) -> None:
        index, project = stored.index, stored.project
        created = loads(Project, current).created if current else when
        # The display name follows the newest upload's spelling, as on the public index.
        record = Project(index, project, display_name, created, stored.serial)
        tx.write(lambda p: p.hset(self._projects(index), project, dumps(record)))
        tx.write(lambda p: p.hset(self._files(index), stored.filename, dumps(stored)))
        tx.write(lambda p: p.sadd(self._project_files(index, project), stored.filename))
        tx.write(lambda p: p.hset(self._hashes(index), stored.sha256, stored.filename))
        for side in side_blobs(stored):
            tx.write(partial(_sadd, self.key(SIDE_BLOB, index, side), stored.filename))
        tx.write(lambda p: p.hdel(self._retired(index), stored.filename))

    # -- yanking and deleting -----------------------------------------------------------

    async def _existing(
        self, tx: Transaction, index: str, filenames: Sequence[str]
    ) -> list[DistFile]:
        values = [await tx.pipe.hget(self._files(index), name) for name in filenames]
        return [loads(DistFile, v) for v in values if v]

    async def _touch(self, tx: Transaction, index: str, project: str, serial: int) -> None:
        current = await tx.pipe.hget(self._projects(index), project)
        if current is not None:
            record = replace(loads(Project, current), last_serial=serial)
            tx.write(lambda p: p.hset(self._projects(index), project, dumps(record)))

    async def set_yanked(
        self, index: str, filenames: Sequence[str], reason: str | None, actor: Actor
    ) -> list[DistFile]:
        """Yank (``reason`` a string, maybe empty) or unyank (None) files; returns them changed."""
        action = "unyank" if reason is None else "yank"

        async def work(tx: Transaction) -> list[DistFile]:
            changed = []
            for file in await self._existing(tx, index, filenames):
                tx.log(
                    actor, action, index, project=file.project, version=file.version,
                    filename=file.filename, detail=reason or None,
                )  # fmt: skip
                updated = replace(file, yanked=reason)
                tx.write(partial(_hset, self._files(index), updated.filename, dumps(updated)))
                changed.append(updated)
            for project in {f.project for f in changed}:
                await self._touch(tx, index, project, tx.serial)
            return changed

        return await self.change(work)

    async def delete_files(
        self, index: str, filenames: Sequence[str], actor: Actor
    ) -> list[DistFile]:
        """Delete files, keeping their names retired; returns the files deleted."""

        async def work(tx: Transaction) -> list[DistFile]:
            files = await self._existing(tx, index, filenames)
            for file in files:
                tx.log(
                    actor, "delete-file", index, project=file.project, version=file.version,
                    filename=file.filename,
                )  # fmt: skip
                self._unpublish(tx, file)
            for project in {f.project for f in files}:
                await self._forget_if_empty(tx, index, project, files)
            return files

        return await self.change(work)

    async def retire_filename(self, index: str, filename: str, sha256: str) -> bool:
        """Set the retired name unless it is set (one HSETNX)."""
        return bool(await self.read(self.redis.hsetnx(self._retired(index), filename, sha256)))

    def _unpublish(self, tx: Transaction, file: DistFile) -> None:
        index = file.index
        tx.write(lambda p: p.hdel(self._files(index), file.filename))
        tx.write(lambda p: p.srem(self._project_files(index, file.project), file.filename))
        tx.write(lambda p: p.hdel(self._hashes(index), file.sha256))
        for side in side_blobs(file):
            tx.write(partial(_srem, self.key(SIDE_BLOB, index, side), file.filename))
        tx.write(lambda p: p.hset(self._retired(index), file.filename, file.sha256))

    async def _forget_if_empty(
        self, tx: Transaction, index: str, project: str, deleted: list[DistFile]
    ) -> None:
        gone = {f.filename for f in deleted}
        remaining = [
            loads(DistFile, v)
            for name in await tx.pipe.smembers(self._project_files(index, project))
            if name not in gone and (v := await tx.pipe.hget(self._files(index), name))
        ]
        if not remaining:
            tx.write(lambda p: p.hdel(self._projects(index), project))
            tx.write(lambda p: p.delete(self._releases(index, project)))
            return
        kept = {release_key(f.version) for f in remaining}
        for key in {release_key(f.version) for f in deleted if f.project == project} - kept:
            tx.write(partial(_hdel, self._releases(index, project), key))
        await self._touch(tx, index, project, tx.serial)


def _release_names(names: Any, key: str) -> list[str]:
    """The filenames that may be of the release ``key``: theirs, or ones whose version
    cannot be read from the name, sorted (the files say which release they are in)."""
    return sorted(text(n) for n in names if filename_release_key(text(n)) in (key, None))


def _hset(key: str, name: str, value: str, pipe: Pipeline) -> Any:
    return pipe.hset(key, name, value)


def _hdel(key: str, name: str, pipe: Pipeline) -> Any:
    return pipe.hdel(key, name)


def _sadd(key: str, member: str, pipe: Pipeline) -> Any:
    return pipe.sadd(key, member)


def _srem(key: str, member: str, pipe: Pipeline) -> Any:
    return pipe.srem(key, member)


def _summary(release: Release) -> tuple[str, str, str]:
    summary = release.metadata.get("summary")
    return (release.project, release.version, summary if isinstance(summary, str) else "")
