"""The SQLite plumbing every part of the store shares: connections, transactions, the change log.

WAL lets readers run while one writer commits, and works across processes on
one host. Every call runs in a small thread pool (one connection per thread) so
the event loop never waits on the disk; writes take the lock up front
(``BEGIN IMMEDIATE``) so that two writers never deadlock on an upgrade.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from ministry.core.models import Actor, Change
from ministry.errors import StorageError, StorageFull, StorageUnavailable
from ministry.storage.sqlite.rows import change_of
from ministry.storage.sqlite.schema import migrate

__all__ = ["Database", "now"]

T = TypeVar("T")

log = logging.getLogger(__name__)

_LAST_SERIAL = "SELECT seq FROM sqlite_sequence WHERE name = 'changelog'"
_GENERATION = "SELECT id FROM generation"


def now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


class Database:
    """Connections, transactions and the change log of one SQLite file (the ``StoreLifecycle``
    and ``ChangeLog`` roles of ``MetadataStore``)."""

    def __init__(self, path: Path, *, threads: int = 4) -> None:
        self._path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sqlite")
        self._reader: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self._path, isolation_level=None, timeout=30.0, check_same_thread=False
            )
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable in WAL mode except against power loss between checkpoints;
            # FULL makes a 200 on upload survive that too
            # (docs/security.md, "Stores that fail").
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
            connection.execute("COMMIT")  # a full disk may fail the commit itself
        except BaseException:
            _roll_back(connection)
            raise

    @staticmethod
    def _log(
        connection: sqlite3.Connection,
        actor: Actor,
        action: str,
        index: str,
        *,
        project: str | None = None,
        version: str | None = None,
        filename: str | None = None,
        detail: str | None = None,
    ) -> tuple[int, datetime]:
        """Append to the change log; the new row's id is the change's serial."""
        when = now()
        cursor = connection.execute(
            "INSERT INTO changelog (time, actor, address, action, index_name, project,"
            " version, filename, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                when.isoformat(),
                actor.name,
                actor.address,
                action,
                index,
                project,
                version,
                filename,
                detail,
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid, when

    async def open(self) -> None:
        """Create the database file if needed and bring its schema up to date."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        await self._run(migrate)

    async def exists(self) -> bool:
        """The database file is there."""
        return await asyncio.to_thread(self._path.is_file)

    async def close(self) -> None:
        """Close every connection and stop the threads."""
        self._executor.shutdown(wait=True)
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
            self._reader = None

    def risks(self) -> tuple[str, ...]:
        """None: a commit is on disk (WAL, fsynced) before it is acknowledged."""
        return ()

    async def check(self) -> None:
        """Read the serial, and make sure the file and its directory (the WAL's) take writes."""

        def probe(connection: sqlite3.Connection) -> bool:
            connection.execute(_LAST_SERIAL).fetchone()
            return all(os.access(path, os.W_OK) for path in (self._path, self._path.parent))

        if not await self._run(probe):
            raise StorageUnavailable(
                "The metadata database is read-only; uploads and changes fail. "
                "Ask the server's administrator to check the data volume."
            )

    async def _lookup(self, function: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read of a few indexed rows on the event loop's own thread.

        One such read from a WAL database costs microseconds, far less than a hop to a
        pool thread and back (an upload used to make eight of them before its file was
        stored: the user, their groups, the indexes, the project, its roles, the file).
        Only point lookups and the small tables (indexes, groups) come here, never a
        scan that grows with the store. A WAL reader never waits for a writer; should
        the database be busy all the same (a checkpoint restarting the log, a
        recovery), the read goes to a pool thread, which may wait.
        """
        try:
            return function(self._loop_reader())
        except sqlite3.OperationalError:
            return await self._run(function)
        except sqlite3.Error as exc:
            raise _storage_error(exc) from exc

    async def last_serial(self) -> int:
        """The newest serial.

        Every page request asks this (it is how caches learn of changes made by
        other processes), so it is read on the event loop's own thread (``_lookup``).
        """
        row = await self._lookup(lambda c: c.execute(_LAST_SERIAL).fetchone())
        return int(row[0]) if row else 0

    async def position(self) -> tuple[int, str]:
        """The serial and the generation: two reads on the event loop's thread."""
        return await self.last_serial(), await self.generation()

    async def generation(self) -> str:
        """The id made when the database was created (or upgraded to schema 7).

        Read on the event loop's thread like ``last_serial``, since every request asks. A
        file restored from a copy keeps the copy's generation: that rollback shows in the
        serial going back instead.
        """
        row = await self._lookup(lambda c: c.execute(_GENERATION).fetchone())
        if row is None:
            raise StorageError("The metadata database has no generation; it is damaged.")
        return str(row[0])

    async def raise_serial(self, floor: int) -> None:
        """Make the next serial greater than ``floor``, and start a new generation if that
        changed anything (AUTOINCREMENT takes the next id above ``sqlite_sequence``)."""

        def work(connection: sqlite3.Connection) -> None:
            with self._write(connection):
                row = connection.execute(_LAST_SERIAL).fetchone()
                if (int(row[0]) if row else 0) >= floor:
                    return
                if row is None:
                    connection.execute(
                        "INSERT INTO sqlite_sequence (name, seq) VALUES ('changelog', ?)", (floor,)
                    )
                else:
                    connection.execute(
                        "UPDATE sqlite_sequence SET seq = ? WHERE name = 'changelog'", (floor,)
                    )
                connection.execute("UPDATE generation SET id = lower(hex(randomblob(16)))")

        await self._run(work)

    def _loop_reader(self) -> sqlite3.Connection:
        if self._reader is None:
            # timeout=0: never wait for a lock on the event loop's thread.
            self._reader = sqlite3.connect(
                self._path, isolation_level=None, timeout=0, check_same_thread=False
            )
            self._reader.row_factory = sqlite3.Row
            with self._lock:
                self._connections.append(self._reader)
        return self._reader

    async def changes_since(self, serial: int, limit: int = 1000) -> list[Change]:
        """The change log after ``serial``, oldest first."""
        rows = await self._run(
            lambda c: c.execute(
                "SELECT * FROM changelog WHERE serial > ? ORDER BY serial LIMIT ?", (serial, limit)
            ).fetchall()
        )
        return [change_of(row) for row in rows]


def _roll_back(connection: sqlite3.Connection) -> None:
    """Undo a failed transaction, unless SQLite already did.

    After a full disk or an I/O error SQLite may roll back on its own; a second
    ROLLBACK would then fail and hide the error that matters.
    """
    if not connection.in_transaction:
        return
    try:
        connection.execute("ROLLBACK")
    except sqlite3.Error as exc:
        log.warning("rolling back a failed transaction failed too: %s", exc)


# Primary result codes (the low byte of an extended code) that mean the database
# cannot be used right now, rather than that it is broken.
_UNAVAILABLE = {
    sqlite3.SQLITE_PERM: "may not be written (permission denied)",
    sqlite3.SQLITE_BUSY: "is busy",  # another process held the lock past the timeout
    sqlite3.SQLITE_LOCKED: "is locked",
    sqlite3.SQLITE_READONLY: "is read-only",
    sqlite3.SQLITE_IOERR: "failed (an I/O error)",
    sqlite3.SQLITE_CANTOPEN: "cannot be opened",
}


def _storage_error(exc: sqlite3.Error) -> StorageError:
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code == sqlite3.SQLITE_FULL:
        return StorageFull(
            "No space left on the server's storage for the metadata database; nothing was "
            "changed. Ask the server's administrator to free space."
        )
    if code in _UNAVAILABLE:
        return StorageUnavailable(
            f"The metadata database {_UNAVAILABLE[code]}; nothing was changed. "
            "Try again later, or ask the server's administrator to check the data volume."
        )
    return StorageError(
        f"The metadata database failed ({exc.__class__.__name__}); nothing was changed."
    )
