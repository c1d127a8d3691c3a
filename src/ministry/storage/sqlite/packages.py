"""Projects, releases and files: publishing, yanking and deleting, each in one transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any

from packaging.utils import NormalizedName

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
from ministry.core.releases import clash_outcome, clashing_file, release_key, release_yank
from ministry.core.search import newest_summaries
from ministry.storage.protocols import SUMMARY_BATCH
from ministry.storage.sqlite.database import Database
from ministry.storage.sqlite.roles import judge_publisher, record_owner
from ministry.storage.sqlite.rows import FILE_COLUMNS, file_of, file_values, project_of, release_of

__all__ = ["PackagesMixin"]

_SELECT_FILE = f"SELECT {FILE_COLUMNS} FROM files WHERE index_name = ?"  # noqa: S608
_INSERT_FILE = f"INSERT INTO files ({FILE_COLUMNS}) VALUES ({', '.join('?' * 17)})"  # noqa: S608


class PackagesMixin(Database):
    """The ``PackageStore`` role of ``MetadataStore``, less the project roles (``RolesMixin``)."""

    async def list_projects(self, index: str) -> list[Project]:
        """Every project of an index, by name."""
        # Rows become objects in the worker thread: with 100,000 projects that is
        # most of the work, and the event loop has better things to do.
        return await self._run(
            lambda c: [
                project_of(row)
                for row in c.execute(
                    "SELECT * FROM projects WHERE index_name = ? ORDER BY name", (index,)
                )
            ]
        )

    async def project_list(self, index: str) -> ProjectList:
        """Every project of an index, compact; each row is let go once it is in the list."""
        return await self._run(
            lambda c: ProjectList(
                project_of(row)
                for row in c.execute(
                    "SELECT * FROM projects WHERE index_name = ? ORDER BY name", (index,)
                )
            )
        )

    async def count_projects(self, index: str) -> int:
        """How many projects an index has: one count over the primary key."""
        row = await self._run(
            lambda c: c.execute(
                "SELECT COUNT(*) FROM projects WHERE index_name = ?", (index,)
            ).fetchone()
        )
        return int(row[0])

    async def get_project(self, index: str, name: NormalizedName) -> Project | None:
        """One project."""
        row = await self._lookup(
            lambda c: c.execute(
                "SELECT * FROM projects WHERE index_name = ? AND name = ?", (index, name)
            ).fetchone()
        )
        return project_of(row) if row else None

    async def projects_named(self, name: NormalizedName) -> list[Project]:
        """The project of this name in every index that has one."""
        rows = await self._run(
            lambda c: c.execute("SELECT * FROM projects WHERE name = ?", (name,)).fetchall()
        )
        return [project_of(row) for row in rows]

    async def list_files(self, index: str, project: NormalizedName) -> list[DistFile]:
        """Every file of a project, by filename (the values files repeat read once)."""
        shared: dict[str, str] = {}
        return await self._run(
            lambda c: [
                file_of(row, shared)
                for row in c.execute(
                    f"{_SELECT_FILE} AND project = ? ORDER BY filename", (index, project)
                )
            ]
        )

    async def get_file(self, index: str, filename: str) -> DistFile | None:
        """One file."""
        row = await self._lookup(
            lambda c: c.execute(f"{_SELECT_FILE} AND filename = ?", (index, filename)).fetchone()
        )
        return file_of(row) if row else None

    async def list_releases(self, index: str, project: NormalizedName) -> list[Release]:
        """Every release of a project."""
        rows = await self._run(
            lambda c: c.execute(
                "SELECT * FROM releases WHERE index_name = ? AND project = ?", (index, project)
            ).fetchall()
        )
        return [release_of(row) for row in rows]

    async def newest_summaries(
        self, index: str, *, batch: int = SUMMARY_BATCH
    ) -> AsyncIterator[list[tuple[str, str, str]]]:
        """(project, version, summary) of each project's newest release, ``batch`` projects
        at a time: each list is one short read in the store's thread, resumed after the
        last project of the one before, so no statement or transaction stays open
        between lists."""
        after = ""
        while True:
            found, last = await self._run(
                partial(_newest_after, index=index, after=after, batch=batch)
            )
            if found:
                yield found
            if last is None:
                return
            after = last

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
        return await self._run(
            lambda c: self._add_file(
                c, file, display_name, metadata, actor, replace_existing, publisher
            )
        )

    def _add_file(
        self,
        connection: sqlite3.Connection,
        file: DistFile,
        display_name: str,
        metadata: dict[str, Any],
        actor: Actor,
        replace_existing: bool,
        publisher: Publisher | None,
    ) -> AddFileResult:
        with self._write(connection) as c:
            judged = judge_publisher(c, file, publisher) if publisher is not None else None
            if isinstance(judged, AddFileResult):
                return judged
            outcome = AddFileOutcome.ADDED
            existing = c.execute(
                f"{_SELECT_FILE} AND filename = ?", (file.index, file.filename)
            ).fetchone()
            if existing is not None and (not replace_existing or existing["sha256"] == file.sha256):
                return AddFileResult(AddFileOutcome.FILENAME_TAKEN, file_of(existing))
            # Every check comes before the first write: a refusal leaves the store as it was.
            obstacle = self._obstacle(c, file)
            if obstacle is not None:
                return obstacle
            siblings = self._release_files(c, file.index, file.project, file.version)
            clash = clashing_file(file, siblings)
            if clash is not None:
                return AddFileResult(clash_outcome(file.packagetype), clash)
            if existing is not None:
                self._remove_file(c, file_of(existing))
                outcome = AddFileOutcome.REPLACED
            release = self._release_version(c, file)
            version = release or file.version
            if judged is not None:
                record_owner(c, judged, actor)
            serial, when = self._log(
                c, actor, "add-file", file.index,
                project=file.project, version=version, filename=file.filename,
            )  # fmt: skip
            self._upsert_project(c, file, display_name, serial, when)
            if release is None:
                c.execute(
                    "INSERT INTO releases VALUES (?, ?, ?, ?, ?, ?)",
                    (file.index, file.project, release_key(file.version), version,
                     when.isoformat(), json.dumps(metadata)),
                )  # fmt: skip
            # A file joining a yanked release is yanked with it (docs/indexes.md).
            yanked = release_yank(siblings)
            stored = replace(file, version=version, serial=serial, yanked=yanked)
            c.execute(_INSERT_FILE, file_values(stored))
            c.execute(
                "DELETE FROM retired_files WHERE index_name = ? AND filename = ?",
                (file.index, file.filename),
            )
        return AddFileResult(outcome, stored)

    @staticmethod
    def _release_files(
        c: sqlite3.Connection, index: str, project: str, version: str
    ) -> list[DistFile]:
        """The files of a release, whichever spelling of its version each carries."""
        key = release_key(version)
        spellings = [
            row[0]
            for row in c.execute(
                "SELECT DISTINCT version FROM files WHERE index_name = ? AND project = ?",
                (index, project),
            )
            if release_key(row[0]) == key
        ]
        if not spellings:
            return []
        marks = ", ".join("?" * len(spellings))
        rows = c.execute(
            f"{_SELECT_FILE} AND project = ? AND version IN ({marks}) ORDER BY filename",
            (index, project, *spellings),
        )
        return [file_of(row) for row in rows]

    @staticmethod
    def _obstacle(c: sqlite3.Connection, file: DistFile) -> AddFileResult | None:
        retired = c.execute(
            "SELECT sha256 FROM retired_files WHERE index_name = ? AND filename = ?",
            (file.index, file.filename),
        ).fetchone()
        if retired is not None and retired["sha256"] != file.sha256:
            return AddFileResult(AddFileOutcome.FILENAME_RETIRED, file)
        row = c.execute(f"{_SELECT_FILE} AND sha256 = ? LIMIT 1", (file.index, file.sha256))
        found = row.fetchone()
        if found is not None:
            return AddFileResult(AddFileOutcome.CONTENT_TAKEN, file_of(found))
        return None

    @staticmethod
    def _release_version(c: sqlite3.Connection, file: DistFile) -> str | None:
        row = c.execute(
            "SELECT version FROM releases WHERE index_name = ? AND project = ?"
            " AND canonical_version = ?",
            (file.index, file.project, release_key(file.version)),
        ).fetchone()
        return row["version"] if row else None

    @staticmethod
    def _upsert_project(
        c: sqlite3.Connection, file: DistFile, display_name: str, serial: int, when: datetime
    ) -> None:
        # The display name follows the newest upload's spelling, as on the public index.
        c.execute(
            "INSERT INTO projects VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (index_name, name) DO UPDATE"
            " SET display_name = excluded.display_name, last_serial = excluded.last_serial",
            (file.index, file.project, display_name, when.isoformat(), serial),
        )

    # -- yanking and deleting -----------------------------------------------------------

    async def set_yanked(
        self, index: str, filenames: Sequence[str], reason: str | None, actor: Actor
    ) -> list[DistFile]:
        """Yank (``reason`` a string, maybe empty) or unyank (None) files; returns them changed."""
        action = "unyank" if reason is None else "yank"

        def change(connection: sqlite3.Connection) -> list[DistFile]:
            changed = []
            with self._write(connection) as c:
                for file in self._files(c, index, filenames):
                    serial, _ = self._log(
                        c, actor, action, index, project=file.project, version=file.version,
                        filename=file.filename, detail=reason or None,
                    )  # fmt: skip
                    c.execute(
                        "UPDATE files SET yanked = ? WHERE index_name = ? AND filename = ?",
                        (reason, index, file.filename),
                    )
                    self._touch_project(c, index, file.project, serial)
                    changed.append(replace(file, yanked=reason))
            return changed

        return await self._run(change)

    async def delete_files(
        self, index: str, filenames: Sequence[str], actor: Actor
    ) -> list[DistFile]:
        """Delete files, keeping their names retired; returns the files deleted."""

        def delete(connection: sqlite3.Connection) -> list[DistFile]:
            with self._write(connection) as c:
                files = self._files(c, index, filenames)
                for file in files:
                    serial, _ = self._log(
                        c, actor, "delete-file", index, project=file.project,
                        version=file.version, filename=file.filename,
                    )  # fmt: skip
                    self._remove_file(c, file)
                    c.execute(
                        "INSERT OR REPLACE INTO retired_files VALUES (?, ?, ?, ?)",
                        (index, file.filename, file.sha256, serial),
                    )
                    self._touch_project(c, index, file.project, serial)
            return files

        return await self._run(delete)

    async def retire_filename(self, index: str, filename: str, sha256: str) -> bool:
        """Insert the retired name unless it is there; its serial is the current one."""

        def retire(connection: sqlite3.Connection) -> bool:
            with self._write(connection) as c:
                inserted = c.execute(
                    "INSERT OR IGNORE INTO retired_files SELECT ?, ?, ?, "
                    "coalesce(max(serial), 0) FROM changelog",
                    (index, filename, sha256),
                )
                return inserted.rowcount > 0

        return await self._run(retire)

    @staticmethod
    def _files(c: sqlite3.Connection, index: str, filenames: Sequence[str]) -> list[DistFile]:
        found = []
        for filename in filenames:
            row = c.execute(f"{_SELECT_FILE} AND filename = ?", (index, filename)).fetchone()
            if row is not None:
                found.append(file_of(row))
        return found

    @staticmethod
    def _remove_file(c: sqlite3.Connection, file: DistFile) -> None:
        """Remove a file row, and its release and project once they have no files left."""
        key = (file.index, file.project)
        c.execute(
            "DELETE FROM files WHERE index_name = ? AND filename = ?", (file.index, file.filename)
        )
        if not PackagesMixin._release_files(c, *key, file.version):
            c.execute(
                "DELETE FROM releases WHERE index_name = ? AND project = ?"
                " AND canonical_version = ?",
                (*key, release_key(file.version)),
            )
        if not c.execute(
            "SELECT 1 FROM files WHERE index_name = ? AND project = ?", key
        ).fetchone():
            c.execute("DELETE FROM projects WHERE index_name = ? AND name = ?", key)

    @staticmethod
    def _touch_project(c: sqlite3.Connection, index: str, project: str, serial: int) -> None:
        c.execute(
            "UPDATE projects SET last_serial = ? WHERE index_name = ? AND name = ?",
            (serial, index, project),
        )


def _newest_after(
    connection: sqlite3.Connection, *, index: str, after: str, batch: int
) -> tuple[list[tuple[str, str, str]], str | None]:
    """The newest release of each of the next ``batch`` projects with releases after
    ``after``, and the last of those projects (None once there are no more after them)."""
    names = [
        row[0]
        for row in connection.execute(
            "SELECT DISTINCT project FROM releases WHERE index_name = ? AND project > ?"
            " ORDER BY project LIMIT ?",
            (index, after, batch),
        )
    ]
    if not names:
        return [], None
    found = list(
        newest_summaries(
            (row[0], row[1], row[2] if isinstance(row[2], str) else "")
            for row in connection.execute(
                "SELECT project, version, json_extract(metadata, '$.summary') FROM releases"
                " WHERE index_name = ? AND project BETWEEN ? AND ? ORDER BY project",
                (index, names[0], names[-1]),
            )
        )
    )
    return found, names[-1] if len(names) == batch else None
