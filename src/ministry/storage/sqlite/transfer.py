"""Everything in the SQLite store as records, and records back into an empty store.

``ministry migrate`` moves a store to another backend with these: every value,
with its serial, in a form both backends read (``core.records``). Trusted
publishers travel; the upload tokens minted for their runs and the ids of the
identity tokens exchanged do not: they live minutes, and a migration or a restore
(done with the server stopped) outlasts them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterable, AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_version

from ministry.core.models import CachedFile, DistFile, IndexConfig, ProjectRole
from ministry.core.records import from_record, to_record
from ministry.core.trusted_publishing import TrustedPublisher
from ministry.storage.sqlite.caches import (
    PUT_CACHED,
    cached_file_of,
    cached_row,
    page_of,
    pinned_file_of,
)
from ministry.storage.sqlite.database import Database
from ministry.storage.sqlite.mirrors import mirror_run_of
from ministry.storage.sqlite.publishers import (
    INSERT_PUBLISHER,
    PUBLISHER_COLUMNS,
    publisher_of,
    publisher_values,
)
from ministry.storage.sqlite.rows import (
    FILE_COLUMNS,
    change_of,
    file_of,
    file_values,
    index_json,
    index_of,
    project_of,
    release_of,
    token_of,
    user_of,
)

__all__ = ["Record", "TransferMixin"]

#: A kind ("file", "user", …) and the value's JSON record.
Record = tuple[str, dict[str, Any]]
Row = sqlite3.Row
_BATCH = 1000
_INSERT_FILE = f"INSERT INTO files ({FILE_COLUMNS}) VALUES ({', '.join('?' * 17)})"  # noqa: S608


def _index(row: Row) -> dict[str, Any]:
    return {"created": row["created"], "config": to_record(index_of(row))}


def _retired(row: Row) -> dict[str, Any]:
    return {"index": row["index_name"], "filename": row["filename"], "sha256": row["sha256"]}


def _group(row: Row) -> dict[str, Any]:
    members = sorted(filter(None, (row["members"] or "").split("\n")))
    return {"name": row["name"], "members": members}


#: What to export, in an order an importer can follow (users before their tokens).
_EXPORTS: tuple[tuple[str, str, Callable[[Row], dict[str, Any]]], ...] = (
    ("index", "SELECT * FROM indexes", _index),
    ("user", "SELECT * FROM users", lambda r: to_record(user_of(r))),
    (
        "group",
        "SELECT g.name, group_concat(m.user, char(10)) AS members FROM groups g"
        " LEFT JOIN group_members m ON m.group_name = g.name GROUP BY g.name",
        _group,
    ),
    ("token", "SELECT * FROM tokens", lambda r: to_record(token_of(r))),
    ("project", "SELECT * FROM projects", lambda r: to_record(project_of(r))),
    ("release", "SELECT * FROM releases", lambda r: to_record(release_of(r))),
    ("file", f"SELECT {FILE_COLUMNS} FROM files", lambda r: to_record(file_of(r))),  # noqa: S608
    ("retired", "SELECT * FROM retired_files", _retired),
    (
        "role",
        "SELECT index_name, project, principal, role FROM project_roles",
        lambda r: to_record(ProjectRole(*r)),
    ),
    (
        "publisher",
        f"SELECT {PUBLISHER_COLUMNS} FROM publishers",  # noqa: S608
        lambda r: to_record(publisher_of(r)),
    ),
    ("change", "SELECT * FROM changelog ORDER BY serial", lambda r: to_record(change_of(r))),
    ("page", "SELECT * FROM upstream_pages", lambda r: to_record(page_of(r))),
    ("cached", "SELECT * FROM cached_files", lambda r: to_record(cached_file_of(r))),
    ("pinned", "SELECT * FROM pinned_files", lambda r: to_record(pinned_file_of(r))),
    # Mirror jobs' last runs travel; their claims are leases of running processes, which
    # a migration (done with the server stopped) leaves behind.
    ("mirror-run", "SELECT * FROM mirror_runs", lambda r: to_record(mirror_run_of(r))),
)


def _fetch_all(connection: sqlite3.Connection, query: str) -> list[Row]:
    return connection.execute(query).fetchall()


def _values(record: dict[str, Any], *names: str) -> tuple[Any, ...]:
    return tuple(record[n] for n in names)


def _insert(c: sqlite3.Connection, kind: str, r: dict[str, Any]) -> None:
    if kind == "index":
        config = from_record(IndexConfig, r["config"])
        c.execute(
            "INSERT INTO indexes VALUES (?, ?, ?)", (config.name, r["created"], index_json(config))
        )
    elif kind == "user":
        c.execute(
            "INSERT INTO users (name, password_hash, created, is_admin, disabled)"
            " VALUES (?, ?, ?, ?, ?)",
            _values(r, "name", "password_hash", "created", "is_admin", "disabled"),
        )
    elif kind == "group":
        c.execute("INSERT INTO groups VALUES (?, datetime('now'))", (r["name"],))
        c.executemany(
            "INSERT INTO group_members VALUES (?, ?)", [(r["name"], u) for u in r["members"]]
        )
    elif kind == "token":
        c.execute(
            "INSERT INTO tokens (token_id, user, secret_hash, created, description, expires,"
            " last_used, revoked, index_name, projects) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*_values(r, "token_id", "user", "secret_hash", "created", "description", "expires",
                      "last_used", "revoked", "index"), json.dumps(r["projects"])),
        )  # fmt: skip
    else:
        _insert_package_record(c, kind, r)


def _insert_package_record(c: sqlite3.Connection, kind: str, r: dict[str, Any]) -> None:
    if kind == "project":
        row = _values(r, "index", "name", "display_name", "created", "last_serial")
        c.execute("INSERT INTO projects VALUES (?, ?, ?, ?, ?)", row)
    elif kind == "release":
        c.execute(
            "INSERT INTO releases VALUES (?, ?, ?, ?, ?, ?)",
            (r["index"], r["project"], canonicalize_version(r["version"]), r["version"],
             r["created"], json.dumps(r["metadata"])),
        )  # fmt: skip
    elif kind == "file":
        c.execute(_INSERT_FILE, file_values(from_record(DistFile, r)))
    elif kind == "role":
        row = _values(r, "index", "project", "principal", "role")
        c.execute("INSERT INTO project_roles VALUES (?, ?, ?, ?)", row)
    elif kind == "publisher":
        c.execute(INSERT_PUBLISHER, publisher_values(from_record(TrustedPublisher, r)))
    elif kind == "retired":
        row = _values(r, "index", "filename", "sha256")
        c.execute("INSERT INTO retired_files VALUES (?, ?, ?, 0)", row)
    elif kind == "change":
        c.execute(
            "INSERT INTO changelog (serial, time, actor, address, action, index_name, project,"
            " version, filename, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _values(r, "serial", "time", "actor", "address", "action", "index", "project",
                    "version", "filename", "detail"),
        )  # fmt: skip
    elif kind == "page":
        c.execute(
            "INSERT INTO upstream_pages VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            _values(r, "index", "project", "status", "fetched", "document", "token", "etag",
                    "last_modified"),
        )  # fmt: skip
    elif kind == "cached":
        row = cached_row(from_record(CachedFile, r))
        c.execute(PUT_CACHED, row)
    elif kind == "pinned":
        row = _values(r, "index", "project", "filename", "sha256")
        c.execute("INSERT INTO pinned_files VALUES (?, ?, ?, ?)", row)
    elif kind == "mirror-run":
        row = _values(r, "job", "index", "started", "finished", "ok", "files", "bytes", "failed",
                      "message")  # fmt: skip
        c.execute("INSERT INTO mirror_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
    else:
        raise ValueError(f"unknown record kind {kind!r}")


class TransferMixin(Database):
    """The ``TransferStore`` role of ``MetadataStore``: export and import of every record."""

    async def export_records(self) -> AsyncIterator[Record]:
        """Every value the store holds, in an order ``import_records`` can follow."""
        for kind, query, convert in _EXPORTS:
            rows = await self._run(partial(_fetch_all, query=query))
            for row in rows:
                yield kind, convert(row)

    async def import_records(self, records: AsyncIterable[Record]) -> int:
        """Load records into this (empty) store, keeping every serial; returns how many."""

        def load(connection: sqlite3.Connection, items: list[Record]) -> None:
            with self._write(connection) as c:
                for kind, record in items:
                    _insert(c, kind, record)

        batch: list[Record] = []
        count = 0
        async for item in records:
            batch.append(item)
            if len(batch) >= _BATCH:
                await self._run(partial(load, items=batch))
                count, batch = count + len(batch), []
        await self._run(lambda c: load(c, batch))
        return count + len(batch)

    async def snapshot(self, target: Path) -> None:
        """Copy the whole database as of one instant into ``target`` while writers go on.

        SQLite's online backup API, in one step: it reads under one WAL snapshot, so
        the copy is consistent and writers are never blocked.
        """

        def copy(connection: sqlite3.Connection) -> None:
            destination = sqlite3.connect(target)
            try:
                connection.backup(destination)
            finally:
                destination.close()

        await self._run(copy)
