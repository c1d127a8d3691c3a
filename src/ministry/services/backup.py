"""Online backups (``ministry backup``): a metadata snapshot plus every blob it names.

The metadata is snapshotted first, then the blobs it names are copied: blobs are
immutable and uploads only add them, so every blob the snapshot names is still
there to copy, whatever the server does meanwhile. The snapshot is always a SQLite
file (a Redis store's records are loaded into one), so a backup restores into any
pair of stores. Blobs are kept by sha256 like a blob directory, and a later backup
into the same directory copies only the new ones. ``backup.json`` is written last:
a directory without it is not a complete backup.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ministry.core.hashing import StreamingHasher
from ministry.errors import InvalidRequest, NotFound, StorageError
from ministry.services.migration import Record, blobs_named
from ministry.storage.protocols import BlobStore, MetadataStore, Scratch, Snapshots, TransferStore

__all__ = [
    "BLOBS",
    "MANIFEST",
    "METADATA",
    "BackupReport",
    "LocalStores",
    "back_up",
    "blob_path",
    "check_target",
    "file_sha256",
    "snapshot_records",
]

MANIFEST = "backup.json"
METADATA = "metadata.sqlite3"
BLOBS = "blobs"
FORMAT = 1
_CHUNK = 1 << 20
# What a backup directory holds, finished or interrupted (``_commit`` says how).
_BACKUP_NAME = re.compile(
    rf"({re.escape(MANIFEST)}|{re.escape(METADATA)}|{BLOBS})(\.partial)?(-wal|-shm|-journal)?\Z"
)


@dataclass(frozen=True)
class LocalStores:
    """How a backup's own files are opened as stores; the wiring names the backends.

    ``snapshot`` opens the metadata file (a SQLite file, so that a backup restores
    into any pair of stores), ``blobs`` a directory laid out as a blob directory, and
    ``scratch`` a directory for this process's temporary files.
    """

    snapshot: Callable[[Path], MetadataStore]
    blobs: Callable[[Path], BlobStore]
    scratch: Callable[[Path], Scratch]


@dataclass(frozen=True)
class BackupReport:
    """What a backup holds and what this run copied."""

    serial: int
    records: Counter[str]
    blobs: int
    bytes: int
    copied: int
    copied_bytes: int


def blob_path(directory: Path, sha256: str) -> Path:
    """Where a backup keeps a blob: the layout of a blob directory, ``sha256/ab/cd/<sha256>``."""
    return directory / BLOBS / "sha256" / sha256[:2] / sha256[2:4] / sha256


def file_sha256(path: Path) -> str:
    """The sha256 of a local file, read in chunks."""
    hasher = StreamingHasher()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    return hasher.digests().sha256


async def snapshot_records(local: LocalStores, path: Path) -> tuple[list[Record], int]:
    """Every record of a snapshot file and its last serial."""
    store = local.snapshot(path)
    await store.open()
    try:
        records = [record async for record in store.export_records()]
        return records, await store.last_serial()
    finally:
        await store.close()


def check_target(directory: Path, generation: str, force: bool) -> None:
    """Refuse to write into a directory that holds anything but a backup of this store.

    A backup replaces the snapshot it finds, so writing into the wrong directory (a
    typo, another server's backups, a home directory) would lose what is there or mix
    unrelated files into the backup. An interrupted backup (no manifest yet) is taken
    up again; a backup of another store (another generation: another server, or this
    one rolled back since) is replaced only with ``force``.
    """
    try:
        names = {entry.name for entry in directory.iterdir()}
    except FileNotFoundError:
        return
    except NotADirectoryError as exc:
        raise InvalidRequest(f"{directory} is a file, not a directory to back up into.") from exc
    strangers = sorted(name for name in names if not _BACKUP_NAME.match(name))
    if strangers:
        raise InvalidRequest(
            f"{directory} holds files that are not part of a backup ({', '.join(strangers[:3])}"
            f"{', …' if len(strangers) > 3 else ''}): back up into an empty directory, or into "
            "an earlier backup of this store."
        )
    if MANIFEST not in names or force:
        return
    try:
        earlier = json.loads((directory / MANIFEST).read_text()).get("generation")
    except (OSError, ValueError, AttributeError) as exc:
        raise InvalidRequest(
            f"{directory / MANIFEST} cannot be read; back up into an empty directory."
        ) from exc
    if earlier is not None and earlier != generation:
        raise InvalidRequest(
            f"{directory} holds a backup of another store (or of this one before a restore "
            "rolled it back); back up into an empty directory, or add --force to replace it."
        )


async def _snapshot(source: TransferStore, target: Path, local: LocalStores) -> None:
    for leftover in target.parent.glob(f"{target.name}*"):
        leftover.unlink()
    if isinstance(source, Snapshots):
        await source.snapshot(target)
        return
    # Other stores have no point-in-time copy: their records, read in one pass, go
    # into a SQLite file, which restores into any store.
    store = local.snapshot(target)
    await store.open()
    try:
        await store.import_records(source.export_records())
    finally:
        await store.close()


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


async def _copy_blob(
    sha256: str, source: BlobStore, directory: Path, scratch: Callable[[Path], Scratch]
) -> int:
    """Copy one blob into the backup by way of a temporary name, checking its hash."""
    target = blob_path(directory, sha256)
    spool = directory / BLOBS / ".tmp"
    await asyncio.to_thread(spool.mkdir, parents=True, exist_ok=True)
    descriptor, temporary = scratch(spool).new_file("backup")
    hasher = StreamingHasher()
    try:
        with os.fdopen(descriptor, "wb") as out:
            try:
                blob = await source.open_blob(sha256)
            except NotFound as exc:
                raise StorageError(
                    f"The blob {sha256} named by the snapshot is missing from the blob store; "
                    "run `ministry verify` to see which files it belongs to."
                ) from exc
            try:
                async for chunk in blob.chunks(0, blob.size - 1):
                    await asyncio.to_thread(out.write, chunk)
                    hasher.update(chunk)
            finally:
                await blob.close()
            await asyncio.to_thread(os.fsync, out.fileno())
        if hasher.digests().sha256 != sha256:
            raise StorageError(f"The stored blob {sha256} does not match its hash; not backed up.")
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(temporary.rename, target)
        await asyncio.to_thread(_fsync, target.parent)
        return hasher.size
    finally:
        temporary.unlink(missing_ok=True)


def _manifest(
    report: BackupReport, stores: tuple[str, str], metadata_sha256: str, generation: str
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "time": datetime.now(UTC).isoformat(),
        "serial": report.serial,
        # Which store this is a backup of: the next backup into here must be of the same.
        "generation": generation,
        # Only the kinds: a store URL may hold a password.
        "stores": {"metadata": urlsplit(stores[0]).scheme, "blobs": urlsplit(stores[1]).scheme},
        "records": dict(sorted(report.records.items())),
        "blobs": report.blobs,
        "bytes": report.bytes,
        "metadata": {"file": METADATA, "sha256": metadata_sha256},
    }


def _commit(directory: Path, partial: Path, manifest: dict[str, Any]) -> None:
    """Put the snapshot and then the manifest in place: the manifest's rename completes it."""
    staged = directory / f"{MANIFEST}.partial"
    staged.write_text(json.dumps(manifest, indent=2) + "\n")
    _fsync(staged)
    _fsync(partial)
    # Between these renames the directory has no manifest, so it never pairs the new
    # snapshot with the old manifest.
    (directory / MANIFEST).unlink(missing_ok=True)
    partial.rename(directory / METADATA)
    staged.rename(directory / MANIFEST)
    _fsync(directory)


async def back_up(
    source: tuple[MetadataStore, BlobStore],
    urls: tuple[str, str],
    directory: Path,
    local: LocalStores,
    on_start: Callable[[int], None] = lambda _: None,
    on_blob: Callable[[int], None] = lambda _: None,
    *,
    force: bool = False,
    on_begin: Callable[[], None] = lambda: None,
) -> BackupReport:
    """Back up ``source`` (whose URLs are ``urls``) into ``directory``, adding to what is there.

    ``directory`` must be empty, or a backup of this store (``check_target``); with
    ``force``, a backup of another store is replaced too. ``on_begin`` is called once
    that is checked, before anything is written.
    """
    metadata, blobs = source
    generation = await metadata.generation()
    await asyncio.to_thread(check_target, directory, generation, force)
    on_begin()
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    partial = directory / f"{METADATA}.partial"
    await _snapshot(metadata, partial, local)
    records, serial = await snapshot_records(local, partial)
    named = sorted(blobs_named(records))
    on_start(len(named))
    total = copied = copied_bytes = 0
    for sha256 in named:
        existing = blob_path(directory, sha256)
        if await asyncio.to_thread(existing.is_file):
            size = existing.stat().st_size
        else:
            size = await _copy_blob(sha256, blobs, directory, local.scratch)
            copied, copied_bytes = copied + 1, copied_bytes + size
        total += size
        on_blob(size)
    counts = Counter(kind for kind, _ in records)
    report = BackupReport(serial, counts, len(named), total, copied, copied_bytes)
    metadata_sha256 = await asyncio.to_thread(file_sha256, partial)
    manifest = _manifest(report, urls, metadata_sha256, generation)
    await asyncio.to_thread(_commit, directory, partial, manifest)
    return report
