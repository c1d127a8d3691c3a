"""The embedded metadata store: SQLite in WAL mode.

WAL lets readers run while one writer commits, and works across processes on
one host. Every call runs in a small thread pool (one connection per thread) so
the event loop never waits on the disk; writes take the lock up front
(``BEGIN IMMEDIATE``) so that two writers never deadlock on an upgrade.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from packaging.utils import NormalizedName, canonicalize_version

from ministry.core.models import (
    AddFileOutcome,
    AddFileResult,
    Change,
    DistFile,
    Project,
    Release,
    Token,
    User,
)
from ministry.errors import Conflict, StorageError, StorageFull

__all__ = ["SqliteMetadataStore"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS changelog (
    serial INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    index_name TEXT NOT NULL,
    project TEXT,
    version TEXT,
    filename TEXT,
    detail TEXT
);
CREATE TABLE IF NOT EXISTS projects (
    index_name TEXT NOT NULL,
    name TEXT NOT NULL,
    display_name TEXT NOT NULL,
    created TEXT NOT NULL,
    last_serial INTEGER NOT NULL,
    PRIMARY KEY (index_name, name)
);
CREATE TABLE IF NOT EXISTS releases (
    index_name TEXT NOT NULL,
    project TEXT NOT NULL,
    canonical_version TEXT NOT NULL,
    version TEXT NOT NULL,
    created TEXT NOT NULL,
    metadata TEXT NOT NULL,
    PRIMARY KEY (index_name, project, canonical_version)
);
CREATE TABLE IF NOT EXISTS files (
    index_name TEXT NOT NULL,
    filename TEXT NOT NULL,
    project TEXT NOT NULL,
    version TEXT NOT NULL,
    packagetype TEXT NOT NULL,
    python_version TEXT NOT NULL,
    requires_python TEXT,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    md5 TEXT NOT NULL,
    blake2b_256 TEXT NOT NULL,
    upload_time TEXT NOT NULL,
    uploader TEXT NOT NULL,
    metadata_sha256 TEXT,
    yanked TEXT,
    serial INTEGER NOT NULL,
    PRIMARY KEY (index_name, filename)
);
CREATE INDEX IF NOT EXISTS files_by_project ON files (index_name, project);
CREATE INDEX IF NOT EXISTS files_by_sha256 ON files (index_name, sha256);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created TEXT NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tokens (
    token_id TEXT PRIMARY KEY,
    user TEXT NOT NULL REFERENCES users (name),
    secret_hash TEXT NOT NULL,
    created TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    expires TEXT,
    last_used TEXT,
    revoked INTEGER NOT NULL DEFAULT 0
);
"""

_FILE_COLUMNS = (
    "index_name, filename, project, version, packagetype, python_version, requires_python, "
    "size, sha256, md5, blake2b_256, upload_time, uploader, metadata_sha256, yanked, serial"
)


def _now() -> datetime:
    return datetime.now(UTC)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _file(row: sqlite3.Row) -> DistFile:
    return DistFile(
        index=row["index_name"],
        project=NormalizedName(row["project"]),
        filename=row["filename"],
        version=row["version"],
        packagetype=row["packagetype"],
        python_version=row["python_version"],
        requires_python=row["requires_python"],
        size=row["size"],
        sha256=row["sha256"],
        md5=row["md5"],
        blake2b_256=row["blake2b_256"],
        upload_time=datetime.fromisoformat(row["upload_time"]),
        uploader=row["uploader"],
        metadata_sha256=row["metadata_sha256"],
        yanked=row["yanked"],
        serial=row["serial"],
    )


def _project(row: sqlite3.Row) -> Project:
    return Project(
        index=row["index_name"],
        name=NormalizedName(row["name"]),
        display_name=row["display_name"],
        created=datetime.fromisoformat(row["created"]),
        last_serial=row["last_serial"],
    )


def _token(row: sqlite3.Row) -> Token:
    return Token(
        token_id=row["token_id"],
        user=row["user"],
        secret_hash=row["secret_hash"],
        created=datetime.fromisoformat(row["created"]),
        description=row["description"],
        expires=_time(row["expires"]),
        last_used=_time(row["last_used"]),
        revoked=bool(row["revoked"]),
    )


def _user(row: sqlite3.Row) -> User:
    return User(
        name=row["name"],
        password_hash=row["password_hash"],
        created=datetime.fromisoformat(row["created"]),
        is_admin=bool(row["is_admin"]),
    )


class SqliteMetadataStore:
    """``MetadataStore`` on one SQLite file."""

    def __init__(self, path: Path, *, threads: int = 4) -> None:
        self._path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sqlite")

    # -- plumbing -----------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self._path, isolation_level=None, timeout=30.0, check_same_thread=False
            )
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable in WAL mode except against power loss between checkpoints;
            # FULL makes a 200 on upload survive that too (HOSTILE.md promise 2).
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA foreign_keys=ON")
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    async def _run(self, function: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, lambda: function(self._connection()))
        except sqlite3.Error as exc:
            raise _storage_error(exc) from exc

    @contextmanager
    def _write(self, connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    @staticmethod
    def _log(
        connection: sqlite3.Connection,
        actor: str,
        action: str,
        index: str,
        project: str | None = None,
        version: str | None = None,
        filename: str | None = None,
        detail: str | None = None,
    ) -> tuple[int, datetime]:
        when = _now()
        cursor = connection.execute(
            "INSERT INTO changelog"
            " (time, actor, action, index_name, project, version, filename, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (when.isoformat(), actor, action, index, project, version, filename, detail),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid, when

    async def open(self) -> None:
        """Create the database file and schema if needed."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        await self._run(lambda c: c.executescript(_SCHEMA))

    async def close(self) -> None:
        """Close every connection and stop the threads."""
        self._executor.shutdown(wait=True)
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()

    # -- reads --------------------------------------------------------------------

    async def last_serial(self) -> int:
        """The newest serial."""
        row = await self._run(
            lambda c: c.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'changelog'"
            ).fetchone()
        )
        return int(row[0]) if row else 0

    async def list_projects(self, index: str) -> list[Project]:
        """Every project of an index, by name."""
        rows = await self._run(
            lambda c: c.execute(
                "SELECT * FROM projects WHERE index_name = ? ORDER BY name", (index,)
            ).fetchall()
        )
        return [_project(row) for row in rows]

    async def get_project(self, index: str, name: NormalizedName) -> Project | None:
        """One project."""
        row = await self._run(
            lambda c: c.execute(
                "SELECT * FROM projects WHERE index_name = ? AND name = ?", (index, name)
            ).fetchone()
        )
        return _project(row) if row else None

    async def list_files(self, index: str, project: NormalizedName) -> list[DistFile]:
        """Every file of a project, by filename."""
        rows = await self._run(
            lambda c: c.execute(
                f"SELECT {_FILE_COLUMNS} FROM files WHERE index_name = ? AND project = ?"  # noqa: S608
                " ORDER BY filename",
                (index, project),
            ).fetchall()
        )
        return [_file(row) for row in rows]

    async def get_file(self, index: str, filename: str) -> DistFile | None:
        """One file."""
        row = await self._run(
            lambda c: c.execute(
                f"SELECT {_FILE_COLUMNS} FROM files WHERE index_name = ? AND filename = ?",  # noqa: S608
                (index, filename),
            ).fetchone()
        )
        return _file(row) if row else None

    async def list_releases(self, index: str, project: NormalizedName) -> list[Release]:
        """Every release of a project."""
        rows = await self._run(
            lambda c: c.execute(
                "SELECT * FROM releases WHERE index_name = ? AND project = ?", (index, project)
            ).fetchall()
        )
        return [
            Release(
                index=row["index_name"],
                project=NormalizedName(row["project"]),
                version=row["version"],
                created=datetime.fromisoformat(row["created"]),
                metadata=json.loads(row["metadata"]),
            )
            for row in rows
        ]

    # -- publishing ---------------------------------------------------------------

    async def add_file(
        self, file: DistFile, display_name: str, metadata: dict[str, Any], actor: str
    ) -> AddFileResult:
        """Publish a file atomically (see the protocol)."""
        return await self._run(lambda c: self._add_file(c, file, display_name, metadata, actor))

    def _add_file(
        self,
        connection: sqlite3.Connection,
        file: DistFile,
        display_name: str,
        metadata: dict[str, Any],
        actor: str,
    ) -> AddFileResult:
        with self._write(connection) as c:
            obstacle = self._obstacle(c, file)
            if obstacle is not None:
                return obstacle
            canonical = canonicalize_version(file.version)
            release = c.execute(
                "SELECT version FROM releases WHERE index_name = ? AND project = ?"
                " AND canonical_version = ?",
                (file.index, file.project, canonical),
            ).fetchone()
            version = release["version"] if release else file.version
            if file.packagetype == "sdist":
                other = c.execute(
                    f"SELECT {_FILE_COLUMNS} FROM files WHERE index_name = ? AND project = ?"  # noqa: S608
                    " AND version = ? AND packagetype = 'sdist'",
                    (file.index, file.project, version),
                ).fetchone()
                if other is not None:
                    return AddFileResult(AddFileOutcome.SDIST_TAKEN, _file(other))
            serial, when = self._log(
                c, actor, "add-file", file.index, file.project, version, file.filename
            )
            self._upsert_project(c, file, display_name, serial, when)
            if release is None:
                c.execute(
                    "INSERT INTO releases VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        file.index,
                        file.project,
                        canonical,
                        version,
                        when.isoformat(),
                        json.dumps(metadata),
                    ),
                )
            stored = replace(file, version=version, serial=serial)
            c.execute(
                f"INSERT INTO files ({_FILE_COLUMNS}) VALUES ({', '.join('?' * 16)})",  # noqa: S608
                _file_values(stored),
            )
        return AddFileResult(AddFileOutcome.ADDED, stored)

    @staticmethod
    def _obstacle(c: sqlite3.Connection, file: DistFile) -> AddFileResult | None:
        row = c.execute(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE index_name = ? AND filename = ?",  # noqa: S608
            (file.index, file.filename),
        ).fetchone()
        if row is not None:
            return AddFileResult(AddFileOutcome.FILENAME_TAKEN, _file(row))
        row = c.execute(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE index_name = ? AND sha256 = ? LIMIT 1",  # noqa: S608
            (file.index, file.sha256),
        ).fetchone()
        if row is not None:
            return AddFileResult(AddFileOutcome.CONTENT_TAKEN, _file(row))
        return None

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

    # -- users and tokens ---------------------------------------------------------

    async def add_user(self, user: User, actor: str) -> None:
        """Create a user."""

        def add(connection: sqlite3.Connection) -> None:
            with self._write(connection) as c:
                if c.execute("SELECT 1 FROM users WHERE name = ?", (user.name,)).fetchone():
                    raise Conflict(f"User {user.name!r} exists already.")
                self._log(c, actor, "add-user", "", detail=user.name)
                c.execute(
                    "INSERT INTO users VALUES (?, ?, ?, ?)",
                    (user.name, user.password_hash, user.created.isoformat(), int(user.is_admin)),
                )

        await self._run(add)

    async def get_user(self, name: str) -> User | None:
        """One user."""
        row = await self._run(
            lambda c: c.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        )
        return _user(row) if row else None

    async def list_users(self) -> list[User]:
        """Every user."""
        rows = await self._run(lambda c: c.execute("SELECT * FROM users ORDER BY name").fetchall())
        return [_user(row) for row in rows]

    async def add_token(self, token: Token, actor: str) -> None:
        """Store a token."""

        def add(connection: sqlite3.Connection) -> None:
            with self._write(connection) as c:
                self._log(c, actor, "add-token", "", detail=f"{token.user} {token.token_id}")
                c.execute(
                    "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        token.token_id,
                        token.user,
                        token.secret_hash,
                        token.created.isoformat(),
                        token.description,
                        token.expires.isoformat() if token.expires else None,
                        None,
                        int(token.revoked),
                    ),
                )

        await self._run(add)

    async def get_token(self, token_id: str) -> Token | None:
        """One token."""
        row = await self._run(
            lambda c: c.execute("SELECT * FROM tokens WHERE token_id = ?", (token_id,)).fetchone()
        )
        return _token(row) if row else None

    async def list_tokens(self, user: str) -> list[Token]:
        """A user's tokens, oldest first."""
        rows = await self._run(
            lambda c: c.execute(
                "SELECT * FROM tokens WHERE user = ? ORDER BY created", (user,)
            ).fetchall()
        )
        return [_token(row) for row in rows]

    async def touch_token(self, token_id: str, when: datetime) -> None:
        """Record a token's last use."""
        await self._run(
            lambda c: c.execute(
                "UPDATE tokens SET last_used = ? WHERE token_id = ?", (when.isoformat(), token_id)
            )
        )

    async def changes_since(self, serial: int, limit: int = 1000) -> list[Change]:
        """The change log after ``serial``."""
        rows = await self._run(
            lambda c: c.execute(
                "SELECT * FROM changelog WHERE serial > ? ORDER BY serial LIMIT ?", (serial, limit)
            ).fetchall()
        )
        return [
            Change(
                serial=row["serial"],
                time=datetime.fromisoformat(row["time"]),
                actor=row["actor"],
                action=row["action"],
                index=row["index_name"],
                project=row["project"],
                version=row["version"],
                filename=row["filename"],
                detail=row["detail"],
            )
            for row in rows
        ]


def _file_values(f: DistFile) -> tuple[Any, ...]:
    return (
        f.index,
        f.filename,
        f.project,
        f.version,
        f.packagetype,
        f.python_version,
        f.requires_python,
        f.size,
        f.sha256,
        f.md5,
        f.blake2b_256,
        f.upload_time.isoformat(),
        f.uploader,
        f.metadata_sha256,
        f.yanked,
        f.serial,
    )


def _storage_error(exc: sqlite3.Error) -> StorageError:
    text = str(exc).lower()
    if "disk is full" in text:
        return StorageFull("The metadata database has no space left; nothing was changed.")
    return StorageError(
        f"The metadata database failed ({exc.__class__.__name__}); nothing was changed."
    )
