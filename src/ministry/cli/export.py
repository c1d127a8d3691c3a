"""``ministry export --static DIR``: write an index as a static simple repository."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ministry.cli.runtime import local_admin, with_services
from ministry.core.models import DEFAULT_INDEX
from ministry.services.export import ExportResult
from ministry.settings import Settings
from ministry.wiring import Services

__all__ = ["register"]


def register(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the ``export`` sub-command."""
    parser = commands.add_parser(
        "export", help="write an index as a static PEP 503/691 tree any web server can serve"
    )
    common(parser)
    parser.add_argument(
        "--static", type=Path, required=True, metavar="DIR",
        help="the directory to write (an earlier export there is replaced)",
    )  # fmt: skip
    parser.add_argument("--index", default=DEFAULT_INDEX, help="the index to export")
    parser.set_defaults(run=run)


def run(settings: Settings, arguments: argparse.Namespace) -> int:
    """Export, with a progress bar over the projects."""
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

            return await services.export.export(arguments.index, local_admin(), target, advance)

    result = with_services(settings, work)
    print(
        f"{result.projects} projects, {result.files} files ({result.bytes:,} bytes) "
        f"written to {target}"
    )
    return 0
