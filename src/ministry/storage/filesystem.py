"""Blobs in a local directory, content-addressed by sha256.

A blob is written under a temporary name, its data flushed (``fdatasync``),
renamed into place and its directory fsynced: a crash leaves either no blob or a
complete one, never a partial file under a real key. The call returns only once
all of that is on disk. Directory fsyncs are shared between writers
(``storage.flushes``), and a new fan-out directory is fsynced into its parent
after the rename, with the directory renamed into, rather than before the data
(on ext4 the first of those fsyncs usually commits the journal for all of them).
Keys are validated hex digests, so no input can name a path outside the store.
Quarantined blobs go to ``quarantine/`` beside ``sha256/``, out of reach of every
key; blobs an eviction sets aside go to ``evicting/`` (``set_aside``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import shutil
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

from ministry.core.disk_errors import disk_error
from ministry.core.hashing import sha256_hex
from ministry.errors import NotFound, StorageUnavailable
from ministry.storage.file_blob import FileBlob
from ministry.storage.flushes import DirectoryFlushes
from ministry.storage.manifest_keys import NAME, manifest_directory, manifest_path
from ministry.storage.protocols import StoredBlob
from ministry.storage.temporary import create_temporary, sweep_orphans

__all__ = ["FileBlob", "FileBlobStore"]

T = TypeVar("T")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_CHUNK = 1024 * 1024
_KIND = "blob"
_FAN_OUT = re.compile(r"[0-9a-f]{2}\Z")


def _check_key(sha256: str) -> str:
    if not _SHA256.match(sha256):
        raise NotFound(f"No blob {sha256[:80]!r}.")
    return sha256


def _fan_out_directories(directory: Path) -> list[Path]:
    """The two-hex-digit subdirectories of a directory, in order (none if it vanished)."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    names = (e.name for e in entries if e.is_dir(follow_symlinks=False) and _FAN_OUT.match(e.name))
    return [directory / name for name in sorted(names)]


def _blobs_in(directory: Path) -> list[StoredBlob]:
    """The blobs of one leaf directory; anything not named as its place demands is skipped."""
    prefix = directory.parent.name + directory.name
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    found = []
    for entry in entries:
        if not (_SHA256.match(entry.name) and entry.name.startswith(prefix)):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            status = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # quarantined or moved while listed
        modified = datetime.fromtimestamp(status.st_mtime, UTC)
        found.append(StoredBlob(entry.name, status.st_size, modified))
    return found


def _documents_in(directory: Path) -> list[tuple[str, bytes]]:
    """The manifests of one fan-out directory; anything not named like one is skipped."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    documents = []
    for entry in entries:
        if not (NAME.match(entry.name) and entry.name.startswith(directory.name)):
            continue
        try:
            descriptor = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
        except (FileNotFoundError, OSError):
            continue  # replaced while listed, or not a plain file
        with os.fdopen(descriptor, "rb") as handle:
            documents.append((entry.name.removesuffix(".json"), handle.read()))
    return documents


#: Flushes a file's data and what reading it back needs (its size), not its times.
_flush_data = getattr(os, "fdatasync", os.fsync)


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _refresh(target: Path) -> bool:
    """Make a stored blob young again (see ``BlobStore.put_file``); False if it just went."""
    try:
        os.utime(target)
    except FileNotFoundError:
        return False  # quarantined a moment ago: the caller stores it anew
    except PermissionError:
        pass  # a blob the server does not own (restored by another user) keeps its age
    return True


class FileBlobStore:
    """``BlobStore`` on a local directory."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._temporary = root / ".tmp"
        self._flushes = DirectoryFlushes(_fsync_directory)
        #: Directories made by this process whose entry is not yet flushed into their
        #: parent: a writer finding one on its path flushes that parent too, rather
        #: than trusting the maker's flush that may not have begun.
        self._unflushed: set[Path] = set()
        self._unflushed_lock = threading.Lock()

    def path_of(self, sha256: str) -> Path:
        """Where a blob lives: two levels of fan-out keep directories small."""
        return self._root / self.internal_path(sha256)

    async def _run(self, function: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(None, function)
        except OSError as exc:
            raise disk_error(exc) from exc

    async def open(self) -> None:
        """Create the directories and sweep temporary files a crash left behind."""

        def prepare() -> None:
            (self._root / "sha256").mkdir(parents=True, exist_ok=True)
            sweep_orphans(self._temporary, _KIND)

        await self._run(prepare)

    async def check(self) -> None:
        """The blob and temporary directories exist and take writes."""

        def writable() -> bool:
            directories = (self._root / "sha256", self._temporary)
            return all(os.access(path, os.W_OK) for path in directories)

        if not await self._run(writable):
            raise StorageUnavailable(
                "The blob directory is read-only or missing; uploads fail. "
                "Ask the server's administrator to check the data volume."
            )

    async def close(self) -> None:
        """Nothing to release."""

    async def put_file(self, path: Path, sha256: str) -> None:
        """Move a verified local file into place durably."""
        await self._run(lambda: self._adopt(path, self.path_of(sha256)))

    def _adopt(self, source: Path, target: Path) -> None:
        if self._stored_already(target):
            source.unlink(missing_ok=True)
            return
        created = self._make_directories(target.parent)
        with source.open("rb") as handle:
            _flush_data(handle.fileno())
        self._publish(source, target, created)

    def _stored_already(self, target: Path) -> bool:
        """The blob is there (made young again): only its directory is flushed, since it
        was perhaps renamed a moment ago by another writer whose flush has not ended, and
        the caller may commit a record naming it as soon as this returns."""
        if not (target.exists() and _refresh(target)):
            return False
        self._flush(target.parent, self._make_directories(target.parent))
        return True

    def _publish(self, source: Path, target: Path, created: list[Path]) -> None:
        """Rename a file whose data is flushed into place, then flush the names."""
        try:
            source.rename(target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            self._copy_in(source, target)
        self._flush(target.parent, created)

    def _flush(self, directory: Path, created: list[Path]) -> None:
        """Flush the directory renamed into, then the parents of those made on the way
        (shared with other writers: ``storage.flushes``)."""
        self._flushes.flush_all([directory, *(d.parent for d in created)])
        if created:
            with self._unflushed_lock:
                self._unflushed.difference_update(created)

    def _make_directories(self, directory: Path) -> list[Path]:
        """Create the missing directories down to ``directory``; returns those on its
        path whose entry in their parent still needs a flush: made now, or made by
        another writer of this process whose flush has not ended (a directory made
        by another process is flushed by that process)."""
        if not directory.is_dir():
            self._make_directories(directory.parent)
            with self._unflushed_lock:  # a writer finding it made also finds it unflushed
                try:
                    directory.mkdir()
                    self._unflushed.add(directory)
                except FileExistsError:
                    pass
        with self._unflushed_lock:
            if not self._unflushed:
                return []  # the usual case: no need to walk up to the root
            return [d for d in (directory, *directory.parents) if d in self._unflushed]

    def _copy_in(self, source: Path, target: Path) -> None:
        # The spool lives on another file system: copy to a temporary name beside the
        # target first, so the rename that publishes it is still atomic.
        descriptor, name = create_temporary(self._temporary, _KIND)
        try:
            with os.fdopen(descriptor, "wb") as out, source.open("rb") as handle:
                shutil.copyfileobj(handle, out, _CHUNK)
                out.flush()
                _flush_data(out.fileno())
            name.rename(target)
        finally:
            name.unlink(missing_ok=True)
        source.unlink(missing_ok=True)

    async def put_bytes(self, data: bytes) -> str:
        """Store a small value durably."""
        sha256 = sha256_hex(data)
        target = self.path_of(sha256)

        def write() -> None:
            if self._stored_already(target):
                return  # no temporary file at all (a platform's wheels share a METADATA)
            descriptor, name = create_temporary(self._temporary, _KIND)
            try:
                with os.fdopen(descriptor, "wb") as out:
                    out.write(data)
                    out.flush()
                    _flush_data(out.fileno())  # before closing: no second open to flush it
                self._publish(name, target, self._make_directories(target.parent))
            finally:
                name.unlink(missing_ok=True)  # gone already unless the write failed

        await self._run(write)
        return sha256

    async def put_manifest(self, kind: str, key: str, document: bytes) -> None:
        """Write the document under a temporary name, flush it, rename it over the old
        one, flush the directory."""
        target = self._root / manifest_path(kind, key)

        def write() -> None:
            descriptor, name = create_temporary(self._temporary, _KIND)
            try:
                with os.fdopen(descriptor, "wb") as out:
                    out.write(document)
                    out.flush()
                    _flush_data(out.fileno())
                created = self._make_directories(target.parent)
                name.replace(target)
                self._flush(target.parent, created)
            finally:
                name.unlink(missing_ok=True)  # gone already unless the write failed

        await self._run(write)

    async def get_manifest(self, kind: str, key: str) -> bytes | None:
        """The document, or None."""
        path = self._root / manifest_path(kind, key)

        def read() -> bytes | None:
            try:
                descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except FileNotFoundError:
                return None
            with os.fdopen(descriptor, "rb") as handle:
                return handle.read()

        return await self._run(read)

    async def list_manifests(self, kind: str) -> AsyncIterator[tuple[str, bytes]]:
        """Every manifest of a kind, one fan-out directory at a time."""
        directory = self._root / manifest_directory(kind)
        for fan_out in await self._run(partial(_fan_out_directories, directory)):
            for listed in await self._run(partial(_documents_in, fan_out)):
                yield listed

    async def list_blobs(self) -> AsyncIterator[StoredBlob]:
        """Every blob, one fan-out directory at a time (each read in the thread pool)."""
        for first in await self._run(partial(_fan_out_directories, self._root / "sha256")):
            for second in await self._run(partial(_fan_out_directories, first)):
                for blob in await self._run(partial(_blobs_in, second)):
                    yield blob

    async def quarantine(self, sha256: str) -> str | None:
        """Rename the blob to ``quarantine/<sha256>.<UTC time>``; returns that path."""
        source = self.path_of(sha256)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = self._root / "quarantine" / f"{sha256}.{stamp}"

        def move() -> bool:
            created = self._make_directories(target.parent)
            try:
                source.rename(target)
            except FileNotFoundError:
                return False
            self._flush(target.parent, created)
            _fsync_directory(source.parent)
            return True

        return str(target) if await self._run(move) else None

    def aside_path(self, sha256: str) -> Path:
        """Where an eviction sets a blob aside: ``evicting/<sha256>``, outside every key."""
        return self._root / "evicting" / _check_key(sha256)

    async def set_aside(self, sha256: str, unless_put_after: datetime) -> bool:
        """Rename the blob aside, judge its age there, then keep it aside or put it back.

        ``put_file`` of a blob that exists only refreshes its time, so the rename makes
        the judgement safe against a put at the same moment: a put before the rename
        left a time after ``unless_put_after`` (the blob goes back), a put after it
        finds no blob and stores it anew. Once kept aside its time becomes now, the
        start of its grace period. A reader with the blob open keeps reading (POSIX
        keeps the bytes of an open file until it is closed).
        """
        source = self.path_of(sha256)
        aside = self.aside_path(sha256)

        def move() -> bool:
            created = self._make_directories(aside.parent)
            try:
                source.rename(aside)
                modified = datetime.fromtimestamp(aside.stat().st_mtime, UTC)
                if modified > unless_put_after:
                    aside.rename(source)  # the same bytes, whether or not stored anew meanwhile
                    return False
                os.utime(aside)
            except FileNotFoundError:
                return False  # none, or put back by an upload's commit a moment ago
            self._flush(aside.parent, created)
            _fsync_directory(source.parent)
            return True

        return await self._run(move)

    async def put_back(self, sha256: str) -> bool:
        """Rename the set-aside blob back under its key unless the key holds one (a
        rename, not a link: a later ``set_aside`` must find two distinct files)."""
        target = self.path_of(sha256)
        aside = self.aside_path(sha256)
        # Mostly asked right after the blob was put and flushed (``UploadService``): its
        # entry is in memory, and a look here costs less than a trip to a worker thread.
        with contextlib.suppress(OSError):  # the worker's look reports a failing disk
            if target.exists():
                return True

        def back() -> bool:
            if target.exists():
                return True
            created = self._make_directories(target.parent)
            try:
                aside.rename(target)  # over a blob put meanwhile: the same bytes
            except FileNotFoundError:
                return target.exists()  # put back by someone else meanwhile, or never aside
            self._flush(target.parent, created)
            return True

        return await self._run(back)

    async def drop_aside(self, sha256: str) -> None:
        """Delete the set-aside copy (a reader with it open keeps reading)."""
        aside = self.aside_path(sha256)
        await self._run(lambda: aside.unlink(missing_ok=True))

    async def list_aside(self) -> AsyncIterator[StoredBlob]:
        """The blobs in ``evicting/``, each with the time it was set aside."""

        def scan() -> list[StoredBlob]:
            try:
                entries = list(os.scandir(self._root / "evicting"))
            except FileNotFoundError:
                return []
            found = []
            for entry in entries:
                if not _SHA256.match(entry.name):
                    continue
                try:
                    status = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # put back or dropped while listed
                modified = datetime.fromtimestamp(status.st_mtime, UTC)
                found.append(StoredBlob(entry.name, status.st_size, modified))
            return found

        for blob in await self._run(scan):
            yield blob

    def internal_path(self, sha256: str) -> str:
        """``sha256/ab/cd/<sha256>``: where nginx finds the blob below the root."""
        key = _check_key(sha256)
        return f"sha256/{key[:2]}/{key[2:4]}/{key}"

    async def download_url(self, sha256: str, filename: str) -> str | None:
        """A local directory has no URL of its own: the server sends the bytes."""
        return None

    async def open_blob(self, sha256: str) -> FileBlob:
        """Open a blob; never follows a symbolic link planted in the store."""
        path = self.path_of(sha256)

        aside = self.aside_path(sha256)

        def open_file() -> FileBlob:
            try:
                handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except FileNotFoundError as exc:
                try:  # set aside by an eviction, and a record names it: still readable
                    handle = os.open(aside, os.O_RDONLY | os.O_NOFOLLOW)
                except FileNotFoundError:
                    raise NotFound(f"The stored file {sha256} is missing.") from exc
            return FileBlob(handle, os.fstat(handle).st_size)

        return await self._run(open_file)
