"""Running a command against the stores: open them, do the work as the local administrator.

A mistyped ``--data`` must not leave a new, empty store behind that a command then
reports on as if it were the real one (an empty user list, "all consistent"). So a
command opens only a store that is there, unless its job is to fill a new one
(``serve``, ``init``, ``user add``, ``import``, ``mirror``): those create it, and say so.
"""

from __future__ import annotations

import asyncio
import errno
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from ministry.core.masking import mask_url
from ministry.core.permissions import Identity
from ministry.errors import InvalidRequest
from ministry.settings import Settings
from ministry.web.urls import file_path, provenance_path
from ministry.wiring import Services, build_services, metadata_file, metadata_store

__all__ = [
    "local_admin",
    "prepare_store",
    "require_store",
    "store_exists",
    "store_name",
    "with_services",
]

T = TypeVar("T")

# Why a directory could not be made, in words that point at the fix.
_CANNOT_CREATE = {
    errno.EEXIST: "a file of that name is in the way",
    errno.ENOTDIR: "a file is in the way on its path",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "the disk is full",
}


def local_admin() -> Identity:
    """Whoever runs a command on the server's machine administers it; the log names them."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return Identity(user=f"cli:{login}", address="local", is_admin=True)


def prepare_store(settings: Settings, *, create: bool) -> bool:
    """Check that a SQLite store's file is there (or, with ``create``, make room for a
    new one); True when a new one is about to be created.

    Raises InvalidRequest naming the path when there is no store and ``create`` is
    false, or when the data directory cannot be made. A store that is not a file
    (Redis) is checked when it is opened (``with_services``); the data directory then
    holds only temporary files.
    """
    database = metadata_file(settings)
    missing = database is not None and not _exists(database)
    if missing and not create:
        raise InvalidRequest(_no_store(settings))
    _make_directory(settings.data)
    return missing


def require_store(settings: Settings) -> None:
    """Refuse, with a line naming it, a metadata store that was never made (for commands
    that open the stores without ``with_services``)."""
    prepare_store(settings, create=False)
    if not store_exists(settings):
        raise InvalidRequest(_no_store(settings))


def store_exists(settings: Settings) -> bool:
    """Whether the metadata store the settings name was ever made (nothing is created)."""

    async def check() -> bool:
        metadata = metadata_store(settings.db_url, settings)
        try:
            return await metadata.exists()
        finally:
            await metadata.close()

    return asyncio.run(check())


def _exists(database: Path) -> bool:
    try:
        database.stat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    except PermissionError as exc:
        # Not "no store": a store closed to this user, such as the server's.
        raise InvalidRequest(
            f"Cannot open {database}: permission denied. Run the command as the user the "
            "server runs as (sudo -u …), or check --data."
        ) from exc
    return True


def store_name(settings: Settings) -> str:
    """The store, as a person would name it: the data directory, the file, or the URL."""
    database = metadata_file(settings)
    if database is None:
        return mask_url(settings.db_url)
    return str(settings.data.resolve() if settings.db is None else database)


def _no_store(settings: Settings) -> str:
    if settings.db is None:  # the default: SQLite in the data directory
        data = settings.data
        where = "does not exist" if not data.exists() else "holds no ministry.sqlite3"
        return (
            f"No Ministry store in {data.resolve()}: the directory {where}. Check --data (or "
            f"MINISTRY_DATA, or the config file); `ministry init --data {data}` makes a new one."
        )
    what = (
        "the file does not exist"
        if metadata_file(settings)
        else "nothing is stored under that URL and prefix (or the server lost it)"
    )
    return (
        f"No Ministry store at {store_name(settings)}: {what}. Check --db (or MINISTRY_DB, or "
        "the config file); `ministry init` with the same settings makes a new one."
    )


def _make_directory(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = _CANNOT_CREATE.get(exc.errno or 0, exc.strerror or str(exc))
        raise InvalidRequest(
            f"Cannot create the data directory {directory}: {reason}. "
            "Choose another with --data, or fix its parent directory."
        ) from exc


def with_services(
    settings: Settings, work: Callable[[Services], Awaitable[T]], *, create: bool = False
) -> T:
    """Run ``work`` with open services and close them afterwards, whatever happens.

    Without ``create`` the store must be there already; with it, a new store is made
    when there is none, and a line on stderr says where.
    """
    prepare_store(settings, create=create)

    async def run() -> T:
        services = build_services(settings, file_path, provenance_path=provenance_path)
        new = not await services.metadata.exists()
        if new and not create:
            await services.metadata.close()
            raise InvalidRequest(_no_store(settings))
        await services.start()
        if new:
            print(f"ministry: created a new store in {store_name(settings)}", file=sys.stderr)
        try:
            return await work(services)
        finally:
            await services.stop()

    return asyncio.run(run())
