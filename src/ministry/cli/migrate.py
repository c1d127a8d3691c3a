"""``ministry migrate``: copy every record and blob to other stores, checking every hash."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.progress import BarColumn, TextColumn

from ministry.cli.progress import progress_bars
from ministry.cli.runtime import with_services
from ministry.services.migration import MigrationReport, migrate
from ministry.settings import Settings
from ministry.wiring import Services, blob_store, metadata_store

__all__ = ["run"]


def run(settings: Settings, arguments: argparse.Namespace) -> int:
    """Migrate from the configured stores to the ones named."""
    console = Console(stderr=True)

    async def work(services: Services) -> MigrationReport:
        target_metadata = metadata_store(arguments.to_db, settings)
        target_blobs = blob_store(arguments.to_storage)
        await target_metadata.open()
        await target_blobs.open()
        try:
            with progress_bars(
                console, TextColumn("copying blobs"), BarColumn(),
                TextColumn("{task.completed} copied"),
            ) as progress:  # fmt: skip
                task = progress.add_task("blobs", total=None)

                def advance(_size: int) -> None:
                    progress.advance(task)

                return await migrate(
                    (services.metadata, services.blobs),
                    (target_metadata, target_blobs),
                    services.scratch,
                    advance,
                )
        finally:
            await target_blobs.close()
            await target_metadata.close()

    report = with_services(settings, work)
    records = ", ".join(f"{count} {kind}" for kind, count in sorted(report.records.items()))
    console.print(
        f"migrated {records}; {report.blobs} blobs ({report.bytes} bytes), hashes checked"
    )
    return 0
