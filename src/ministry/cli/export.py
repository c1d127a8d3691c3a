"""``ministry export --static DIR | --bundle FILE``: write an index for another place to serve."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from ministry.cli.runtime import local_admin, with_services
from ministry.services.bundle import ExportedBundle, Step
from ministry.services.export import ExportResult
from ministry.settings import Settings
from ministry.storage.private_files import PUBLISHED_UMASK
from ministry.wiring import Services

__all__ = ["bundle_columns", "run", "step_progress"]


def run(settings: Settings, arguments: argparse.Namespace) -> int:
    """Export, with a progress bar."""
    if arguments.bundle is not None:
        return _bundle(settings, arguments)
    console = Console(stderr=True)
    target: Path = arguments.static.resolve()

    async def work(services: Services) -> ExportResult:
        with Progress(
            TextColumn("exporting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("export", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            # The stores are open: what is written now is a tree for a web server to publish.
            os.umask(PUBLISHED_UMASK)
            return await services.export.export(arguments.index, local_admin(), target, advance)

    result = with_services(settings, work)
    print(
        f"{result.projects} projects, {result.files} files ({result.bytes:,} bytes) "
        f"written to {target}"
    )
    return 0


def step_progress(progress: Progress) -> Callable[[Step], None]:
    """A callback that shows each phase of a bundle's work as a bar of bytes and files."""
    tasks: dict[str, Any] = {}

    def advance(step: Step) -> None:
        task = tasks.get(step.phase)
        if task is None:
            task = tasks[step.phase] = progress.add_task(step.phase, files="")
        progress.update(
            task,
            completed=step.bytes,
            total=step.total_bytes,
            files=f"{step.files}/{step.total_files} files",
        )

    return advance


def bundle_columns() -> tuple[Any, ...]:
    """The columns of a bundle's progress bars."""
    return (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[files]}"),
        TimeRemainingColumn(),
    )


def _bundle(settings: Settings, arguments: argparse.Namespace) -> int:
    console = Console(stderr=True)
    target: Path = arguments.bundle.resolve()

    async def work(services: Services) -> ExportedBundle:
        with Progress(*bundle_columns(), console=console) as progress:
            return await services.bundles.export(
                arguments.index, local_admin(), target, step_progress(progress)
            )

    result = with_services(settings, work)
    left_out = f"; {result.not_cached} not cached, left out" if result.not_cached else ""
    print(f"{result.files} files ({result.bytes:,} bytes) written to {target}{left_out}")
    return 0
