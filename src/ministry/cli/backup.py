"""``ministry backup`` and ``ministry restore``: an online snapshot, and bringing it back."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from rich.console import Console
from rich.filesize import decimal
from rich.progress import Progress

from ministry.cli.progress import detailed_progress
from ministry.cli.runtime import require_store
from ministry.services.backup import BackupReport, back_up
from ministry.services.migration import MigrationReport
from ministry.services.restore import restore
from ministry.settings import Settings
from ministry.storage.protocols import BlobStore, MetadataStore
from ministry.wiring import blob_store, local_stores, metadata_store

__all__ = ["run_backup", "run_restore"]

T = TypeVar("T")
Stores = tuple[MetadataStore, BlobStore]


def _with_stores(settings: Settings, work: Callable[[Stores], Awaitable[T]]) -> T:
    """Open only the stores: no default index is created, so an empty target stays empty."""

    async def run() -> T:
        metadata = metadata_store(settings.db_url, settings)
        blobs = blob_store(settings.storage_url)
        await metadata.open()
        try:
            await blobs.open()
            try:
                return await work((metadata, blobs))
            finally:
                await blobs.close()
        finally:
            await metadata.close()

    return asyncio.run(run())


class _Bars:
    """A bar of blobs, with the files and bytes done in words, for one phase."""

    def __init__(self, progress: Progress, description: str) -> None:
        self._progress = progress
        self._task = progress.add_task(description, total=None, detail="")
        self._bytes = self._done = 0
        self._total: int | None = None

    def start(self, blobs: int) -> None:
        """The number of blobs is known."""
        self._total = blobs
        self._progress.update(self._task, total=blobs)

    def advance(self, size: int) -> None:
        """One more blob of ``size`` bytes."""
        self._bytes += size
        self._done += 1
        detail = f"{self._done}/{self._total} files, {decimal(self._bytes)}"
        self._progress.update(self._task, advance=1, detail=detail)


def run_backup(settings: Settings, arguments: argparse.Namespace) -> int:
    """Back up the configured stores into DIR."""
    console = Console(stderr=True)

    async def work(stores: Stores) -> BackupReport:
        progress = detailed_progress(console)
        bars = _Bars(progress, "backup")
        urls = (settings.db_url, settings.storage_url)
        try:
            # The bar appears once the directory is found fit: a refusal is one line alone.
            return await back_up(
                stores, urls, arguments.directory, local_stores(), bars.start, bars.advance,
                force=arguments.force, on_begin=progress.start,
            )  # fmt: skip
        finally:
            if progress.live.is_started:
                progress.stop()

    require_store(settings)  # a mistyped --data is not an empty store to back up
    report = _with_stores(settings, work)
    console.print(
        f"backed up serial {report.serial}: {report.blobs} files ({decimal(report.bytes)}), "
        f"{report.copied} new ({decimal(report.copied_bytes)}), into {arguments.directory}"
    )
    return 0


def run_restore(settings: Settings, arguments: argparse.Namespace) -> int:
    """Restore DIR into the configured (empty) stores."""
    console = Console(stderr=True)

    async def work(stores: Stores) -> MigrationReport:
        with detailed_progress(console) as progress:
            checking, copying = _Bars(progress, "checking"), _Bars(progress, "copying")

            def start(blobs: int) -> None:
                checking.start(blobs)
                copying.start(blobs)

            return await restore(
                arguments.directory,
                stores,
                settings.spool_directory,
                local_stores(),
                start,
                (checking.advance, copying.advance),
            )

    report = _with_stores(settings, work)
    records = ", ".join(f"{count} {kind}" for kind, count in sorted(report.records.items()))
    console.print(
        f"restored {records}; {report.blobs} files ({decimal(report.bytes)}), hashes checked"
    )
    return 0
