"""Blobs in a local directory, content-addressed by sha256.

A blob is written under a temporary name, fsynced, renamed into place and its
directory fsynced: a crash leaves either no blob or a complete one, never a
partial file under a real key. Keys are validated hex digests, so no input can
name a path outside the store.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

from ministry.core.hashing import sha256_hex
from ministry.errors import NotFound, StorageError, StorageFull
from ministry.storage.temporary import create_temporary, sweep_orphans

__all__ = ["FileBlob", "FileBlobStore"]

T = TypeVar("T")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_CHUNK = 1024 * 1024
_KIND = "blob"


def _check_key(sha256: str) -> str:
    if not _SHA256.match(sha256):
        raise NotFound(f"No blob {sha256[:80]!r}.")
    return sha256


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _os_error(exc: OSError) -> StorageError:
    if exc.errno == errno.ENOSPC:
        return StorageFull("The blob store has no space left; nothing was stored.")
    return StorageError(f"The blob store failed ({errno.errorcode.get(exc.errno or 0, 'error')}).")


class FileBlob:
    """An open blob file."""

    def __init__(self, handle: int, size: int) -> None:
        self._handle = handle
        self._size = size

    @property
    def size(self) -> int:
        """Length in bytes."""
        return self._size

    async def chunks(self, start: int, end: int) -> AsyncIterator[bytes]:
        """Read ``start``..``end`` (inclusive) in the loop's default thread pool."""
        loop = asyncio.get_running_loop()
        position = start
        while position <= end:
            length = min(_CHUNK, end - position + 1)
            chunk = await loop.run_in_executor(None, os.pread, self._handle, length, position)
            if not chunk:
                raise StorageError("A stored file is shorter than recorded.")
            position += len(chunk)
            yield chunk

    async def close(self) -> None:
        """Close the file."""
        os.close(self._handle)


class FileBlobStore:
    """``BlobStore`` on a local directory."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._temporary = root / ".tmp"

    def path_of(self, sha256: str) -> Path:
        """Where a blob lives: two levels of fan-out keep directories small."""
        return self._root / self.internal_path(sha256)

    async def _run(self, function: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(None, function)
        except OSError as exc:
            raise _os_error(exc) from exc

    async def open(self) -> None:
        """Create the directories and sweep temporary files a crash left behind."""

        def prepare() -> None:
            (self._root / "sha256").mkdir(parents=True, exist_ok=True)
            sweep_orphans(self._temporary, _KIND)

        await self._run(prepare)

    async def close(self) -> None:
        """Nothing to release."""

    async def put_file(self, path: Path, sha256: str) -> None:
        """Move a verified local file into place durably."""
        await self._run(lambda: self._adopt(path, self.path_of(sha256)))

    def _adopt(self, source: Path, target: Path) -> None:
        if target.exists():
            source.unlink(missing_ok=True)
            return
        self._make_directories(target.parent)
        with source.open("rb") as handle:
            os.fsync(handle.fileno())
        try:
            source.rename(target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            self._copy_in(source, target)
        _fsync_directory(target.parent)

    def _make_directories(self, directory: Path) -> None:
        """Create the fan-out directories durably: a new one is fsynced into its parent."""
        if directory.is_dir():
            return
        self._make_directories(directory.parent)
        try:
            directory.mkdir()
        except FileExistsError:
            return  # another writer made it (and fsyncs it)
        _fsync_directory(directory.parent)

    def _copy_in(self, source: Path, target: Path) -> None:
        # The spool lives on another file system: copy to a temporary name beside the
        # target first, so the rename that publishes it is still atomic.
        descriptor, name = create_temporary(self._temporary, _KIND)
        try:
            with os.fdopen(descriptor, "wb") as out, source.open("rb") as handle:
                shutil.copyfileobj(handle, out, _CHUNK)
                out.flush()
                os.fsync(out.fileno())
            name.rename(target)
        finally:
            name.unlink(missing_ok=True)
        source.unlink(missing_ok=True)

    async def put_bytes(self, data: bytes) -> str:
        """Store a small value durably."""
        sha256 = sha256_hex(data)

        def write() -> None:
            descriptor, name = create_temporary(self._temporary, _KIND)
            with os.fdopen(descriptor, "wb") as out:
                out.write(data)
            self._adopt(name, self.path_of(sha256))

        await self._run(write)
        return sha256

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

        def open_file() -> FileBlob:
            try:
                handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except FileNotFoundError as exc:
                raise NotFound(f"The stored file {sha256} is missing.") from exc
            return FileBlob(handle, os.fstat(handle).st_size)

        return await self._run(open_file)
