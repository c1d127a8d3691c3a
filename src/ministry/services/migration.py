"""Moving a whole server from one pair of stores to another (``ministry migrate``).

Blobs go first, each read back through a hash check, so that the metadata,
imported last, never names a blob the target lacks; the target must be empty,
and every serial is kept, so change logs and ETags carry over unchanged. The
manifests come last, made from the records (``services.manifests``).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from ministry.core.hashing import StreamingHasher
from ministry.core.manifests import manifests_of_records
from ministry.errors import Conflict, StorageError
from ministry.services.manifests import write_manifests
from ministry.storage.protocols import BlobStore, MetadataStore, Scratch

__all__ = ["MigrationReport", "blobs_named", "migrate"]

Record = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class MigrationReport:
    """What was moved."""

    records: Counter[str]
    blobs: int
    bytes: int


def blobs_named(records: list[Record]) -> set[str]:
    """Every blob the records name: files, their metadata files and provenance documents,
    and cached upstream files."""
    named: set[str] = set()
    for kind, record in records:
        if kind in ("file", "cached"):
            named.add(record["sha256"])
        if kind == "file":
            for key in ("metadata_sha256", "provenance_sha256"):
                if record.get(key):
                    named.add(record[key])
    return named


async def _copy_blob(sha256: str, source: BlobStore, target: BlobStore, scratch: Scratch) -> int:
    descriptor, path = scratch.new_file("migrate")
    hasher = StreamingHasher()
    try:
        with os.fdopen(descriptor, "wb") as out:
            blob = await source.open_blob(sha256)
            try:
                async for chunk in blob.chunks(0, blob.size - 1):
                    out.write(chunk)
                    hasher.update(chunk)
            finally:
                await blob.close()
        if hasher.digests().sha256 != sha256:
            raise StorageError(f"The source blob {sha256} does not match its hash; nothing moved.")
        await target.put_file(path, sha256)
        return hasher.size
    finally:
        path.unlink(missing_ok=True)


async def _replay(records: list[Record]) -> AsyncIterator[Record]:
    for record in records:
        yield record


async def migrate(
    source: tuple[MetadataStore, BlobStore],
    target: tuple[MetadataStore, BlobStore],
    scratch: Scratch,
    on_blob: Callable[[int], None] = lambda _: None,
) -> MigrationReport:
    """Copy every record and every blob they name from ``source`` to an empty ``target``."""
    (source_metadata, source_blobs), (target_metadata, target_blobs) = source, target
    if await target_metadata.last_serial() or await target_metadata.list_indexes():
        raise Conflict(
            "The target store is not empty; migrate only into new, empty stores (a migration "
            "that was interrupted starts over: empty the target first)."
        )
    records = [record async for record in source_metadata.export_records()]
    blobs = sorted(blobs_named(records))
    moved = 0
    for sha256 in blobs:
        size = await _copy_blob(sha256, source_blobs, target_blobs, scratch)
        moved += size
        on_blob(size)
    await target_metadata.import_records(_replay(records))
    # The target's blob store must be able to rebuild its metadata like the source's.
    await write_manifests(target_blobs, manifests_of_records(records))
    copied: Counter[str] = Counter()
    async for kind, _ in target_metadata.export_records():
        copied[kind] += 1
    expected = Counter(kind for kind, _ in records)
    if copied != expected:
        raise StorageError(f"The target holds {dict(copied)} after import, not {dict(expected)}.")
    return MigrationReport(expected, len(blobs), moved)
