"""Bringing a backup back (``ministry restore``) into new, empty stores.

Everything is checked before anything is written: the manifest, the snapshot's
hash, and every blob's hash. Only then are the blobs and records copied, by the
same path as ``ministry migrate`` (which checks each blob again on the way).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ministry.errors import Conflict, InvalidRequest
from ministry.services.backup import (
    BLOBS,
    MANIFEST,
    METADATA,
    LocalStores,
    blob_path,
    file_sha256,
    snapshot_records,
)
from ministry.services.migration import MigrationReport, blobs_named, migrate
from ministry.storage.protocols import BlobStore, MetadataStore

__all__ = ["read_manifest", "restore"]


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a complete backup, or a clear refusal."""
    path = directory / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InvalidRequest(
            f"{directory} holds no complete backup (no {MANIFEST}): a backup that was "
            "interrupted has none; run `ministry backup` again."
        ) from exc
    except (OSError, ValueError) as exc:
        raise InvalidRequest(f"{path} cannot be read as a backup manifest: {exc}.") from exc
    if manifest.get("format") != 1 or not isinstance(manifest.get("metadata"), dict):
        raise InvalidRequest(f"{path} is not a manifest this version can restore.")
    return manifest


# A restore cut short has copied blobs (and perhaps records) and is not resumed.
_AFTER_INTERRUPTION = "A restore that was interrupted starts over: empty the target first."


async def _refuse_non_empty(metadata: MetadataStore, blobs: BlobStore) -> None:
    if await metadata.last_serial() or await metadata.list_indexes():
        raise Conflict(
            "The target metadata store is not empty; restore only into new, empty stores "
            f"(e.g. a new --data directory). {_AFTER_INTERRUPTION}"
        )
    async for _ in blobs.list_blobs():
        raise Conflict(
            "The target blob store already holds files; restore only into new, empty stores "
            f"(e.g. a new --data directory). {_AFTER_INTERRUPTION}"
        )


def _check_blobs(
    directory: Path, named: list[str], manifest: dict[str, Any], on_blob: Callable[[int], None]
) -> None:
    """Every blob the snapshot names is in the backup with its hash, as the manifest says."""
    if len(named) != manifest.get("blobs"):
        raise InvalidRequest(
            f"The snapshot names {len(named)} files but the manifest says {manifest.get('blobs')}:"
            " the backup is damaged; nothing was restored."
        )
    for sha256 in named:
        path = blob_path(directory, sha256)
        if path.is_symlink():
            # The copy opens blobs without following links: refuse now, before writing.
            raise InvalidRequest(f"The backup's {sha256} is a symbolic link; nothing was restored.")
        try:
            actual = file_sha256(path)
        except FileNotFoundError as exc:
            raise InvalidRequest(
                f"The backup lacks the file {sha256}: it is damaged; nothing was restored."
            ) from exc
        if actual != sha256:
            raise InvalidRequest(
                f"The backup's copy of {sha256} does not match its hash (it is {actual}): "
                "the backup is damaged; nothing was restored."
            )
        on_blob(path.stat().st_size)


async def _checked_snapshot(directory: Path, manifest: dict[str, Any], spool: Path) -> Path:
    """A hash-checked private copy of the snapshot: opening it changes nothing in the backup."""
    copy = spool / METADATA
    await asyncio.to_thread(shutil.copyfile, directory / METADATA, copy)
    if await asyncio.to_thread(file_sha256, copy) != manifest["metadata"].get("sha256"):
        raise InvalidRequest(
            f"{directory / METADATA} does not match the hash in {MANIFEST}: the backup is "
            "damaged; nothing was restored."
        )
    return copy


async def restore(
    directory: Path,
    target: tuple[MetadataStore, BlobStore],
    spool: Path,
    local: LocalStores,
    on_start: Callable[[int], None] = lambda _: None,
    on_blob: tuple[Callable[[int], None], Callable[[int], None]] = (lambda _: None,) * 2,
) -> MigrationReport:
    """Check the backup in ``directory`` completely, then copy it into the empty ``target``.

    ``on_start`` learns the number of blobs; ``on_blob`` holds what learns each blob's
    size once checked and once copied.
    """
    manifest = read_manifest(directory)
    await _refuse_non_empty(*target)
    await asyncio.to_thread(spool.mkdir, parents=True, exist_ok=True)
    work = await asyncio.to_thread(local.scratch(spool).new_directory, "restore")
    try:
        return await _check_and_copy(
            directory, manifest, (work, local), target, (on_start, on_blob)
        )
    finally:
        await asyncio.to_thread(shutil.rmtree, work, ignore_errors=True)


async def _check_and_copy(
    directory: Path,
    manifest: dict[str, Any],
    workspace: tuple[Path, LocalStores],
    target: tuple[MetadataStore, BlobStore],
    callbacks: tuple[Callable[[int], None], tuple[Callable[[int], None], Callable[[int], None]]],
) -> MigrationReport:
    on_start, (on_checked, on_copied) = callbacks
    work, local = workspace
    snapshot = await _checked_snapshot(directory, manifest, work)
    records, _ = await snapshot_records(local, snapshot)
    if dict(Counter(kind for kind, _ in records)) != manifest.get("records"):
        raise InvalidRequest(
            f"The snapshot's records differ from the counts in {MANIFEST}: the backup is "
            "damaged; nothing was restored."
        )
    named = sorted(blobs_named(records))
    on_start(len(named))
    await asyncio.to_thread(_check_blobs, directory, named, manifest, on_checked)
    store = local.snapshot(snapshot)
    await store.open()
    try:
        # Blobs are read by path, never opened as a store: the backup stays untouched.
        source = local.blobs(directory / BLOBS)
        return await migrate((store, source), target, local.scratch(work), on_copied)
    finally:
        await store.close()
