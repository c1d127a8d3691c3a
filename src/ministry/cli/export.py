"""``ministry export --static DIR | --bundle FILE``: write an index for another place to serve."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from ministry.cli.progress import progress_bars
from ministry.cli.runtime import local_admin, with_services
from ministry.services.bundle import ExportedBundle
from ministry.services.export import ExportResult
from ministry.services.stored_files import Announce, Estimate, Step
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
        with progress_bars(console, *bundle_columns()) as progress:
            # The stores are open: what is written now is a tree for a web server to publish.
            os.umask(PUBLISHED_UMASK)
            return await services.export.export(
                arguments.index, local_admin(), target, step_progress(progress),
                fetch_missing=_announce(console) if arguments.fetch_missing else None,
            )  # fmt: skip

    result = with_services(settings, work)
    print(
        f"{result.projects} projects, {result.files} files ({result.bytes:,} bytes) "
        f"written to {target}{_left_out(result.not_cached)}"
    )
    return 0


def _announce(console: Console) -> Announce:
    """What ``--fetch-missing`` says before it starts fetching."""

    def say(estimate: Estimate) -> None:
        console.print(f"fetching from the upstream: {estimate.describe()}", highlight=False)

    return say


def _left_out(not_cached: int) -> str:
    if not not_cached:
        return ""
    return (
        f"; {not_cached} proxied files left out as not cached "
        "(--fetch-missing fetches them from the upstream first)"
    )


def step_progress(progress: Progress) -> Callable[[Step], None]:
    """A callback that shows each phase of an export's or a bundle's work as a bar of bytes
    and files (of bytes not known beforehand, such as an upstream's that gave no sizes,
    a bar without an end)."""
    tasks: dict[str, Any] = {}

    def advance(step: Step) -> None:
        task = tasks.get(step.phase)
        if task is None:
            task = tasks[step.phase] = progress.add_task(step.phase, total=None, files="")
        progress.update(
            task,
            completed=step.bytes,
            total=step.total_bytes or None,
            files=f"{step.files}/{step.total_files} files",
        )

    return advance


def bundle_columns() -> tuple[Any, ...]:
    """The columns of an export's or a bundle's progress bars."""
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
        with progress_bars(console, *bundle_columns()) as progress:
            return await services.bundles.export(
                arguments.index, local_admin(), target, step_progress(progress),
                fetch_missing=_announce(console) if arguments.fetch_missing else None,
            )  # fmt: skip

    result = with_services(settings, work)
    print(
        f"{result.files} files ({result.bytes:,} bytes) written to {target}"
        f"{_left_out(result.not_cached)}"
    )
    return 0
