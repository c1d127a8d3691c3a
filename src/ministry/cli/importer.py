"""``ministry import DIR | --bundle FILE``: load distribution files (a pypiserver store, say).

Every file goes through the same checks as an upload; files that are already
published are skipped, and refused files are listed with the reason, so the
command can be run again safely. Files that are no wheel or sdist are counted as
skipped. A bundle (``ministry export --bundle``) is
verified whole before anything is imported, and brings its yanks along.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

from ministry.cli.export import bundle_columns, step_progress
from ministry.cli.progress import progress_bars
from ministry.cli.runtime import local_admin, with_services
from ministry.core.models import DEFAULT_INDEX
from ministry.errors import MinistryError
from ministry.services.bundle import ImportedBundle
from ministry.settings import Settings
from ministry.wiring import Services

__all__ = ["run"]

_SUFFIXES = (".whl", ".tar.gz")
_CONCURRENCY = 4
#: Skipped files named in the summary line.
_NAMED = 5


def run(settings: Settings, arguments: argparse.Namespace) -> int:
    """Import every distribution file below the directory, or a bundle."""
    if (arguments.directory is None) == (arguments.bundle is None):
        print("ministry import: give a directory or --bundle FILE (one of them)", file=sys.stderr)
        return 2
    if arguments.bundle is not None:
        return _bundle(settings, arguments)
    directory: Path = arguments.directory
    index: str = arguments.index or DEFAULT_INDEX
    if not directory.is_dir():
        print(f"ministry import: {directory} is not a directory", file=sys.stderr)
        return 2
    paths = sorted(p for p in directory.rglob("*") if p.is_file())
    candidates = [p for p in paths if p.name.endswith(_SUFFIXES)]
    others = [p for p in paths if not p.name.endswith(_SUFFIXES)]
    console = Console(stderr=True)
    outcomes: Counter[str] = Counter()
    refused: list[tuple[Path, str]] = []

    async def work(services: Services) -> None:
        await services.indexes.get(index)  # an unknown index stops before any file
        limit = asyncio.Semaphore(_CONCURRENCY)
        with progress_bars(
            console, TextColumn("importing"), BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn(),
        ) as progress:  # fmt: skip
            task = progress.add_task("import", total=len(candidates))

            async def one(path: Path) -> None:
                async with limit:
                    try:
                        result = await services.uploads.import_file(index, local_admin(), path)
                        outcomes["published" if result.created else "already present"] += 1
                    except MinistryError as exc:
                        refused.append((path, exc.message))
                    progress.advance(task)

            await asyncio.gather(*(one(p) for p in candidates))

    with_services(settings, work, create=True)
    _report(console, outcomes, refused, others)
    return 1 if refused else 0


def _report(
    console: Console, outcomes: Counter[str], refused: list[tuple[Path, str]], others: list[Path]
) -> None:
    """What was refused, then one line of counts. Files that are no distribution at all
    (a README, an index.html a static tree has) are skipped, not refused: they say
    nothing wrong about the store being imported, so they leave the exit status 0."""
    for path, reason in sorted(refused):
        console.print(f"refused {path}: {reason}", soft_wrap=True, markup=False, highlight=False)
    summary = ", ".join(f"{count} {what}" for what, count in sorted(outcomes.items()))
    line = f"{summary or 'nothing imported'}; {len(refused)} refused"
    if others:
        names = ", ".join(p.name for p in others[:_NAMED])
        more = f" and {len(others) - _NAMED} more" if len(others) > _NAMED else ""
        line += f"; {len(others)} other files skipped (not a wheel or .tar.gz sdist: {names}{more})"
    console.print(line, soft_wrap=True, markup=False, highlight=False)


def _bundle(settings: Settings, arguments: argparse.Namespace) -> int:
    """Verify a bundle whole, then import it; yanks follow their files."""
    console = Console(stderr=True)

    async def work(services: Services) -> ImportedBundle:
        with progress_bars(console, *bundle_columns()) as progress:
            return await services.bundles.import_bundle(
                arguments.bundle, arguments.index, local_admin(), step_progress(progress)
            )

    result = with_services(settings, work, create=True)

    def say(text: str) -> None:
        console.print(text, soft_wrap=True, markup=False, highlight=False)

    if result.created_index:
        say(f"created the hosted index {result.index!r}")
    if result.added_to_main:
        say(
            f"added {result.index!r} as the last base of {DEFAULT_INDEX!r}: "
            "/simple/ serves its projects as the mirror did"
        )
    for filename, reason in result.refused:
        say(f"refused {filename}: {reason}")
    for warning in result.warnings:
        say(f"warning: {warning}")
    say(
        f"{result.published} published, {result.present} already present, "
        f"{result.yanked} yanked into {result.index!r}; {len(result.refused)} refused"
    )
    return 1 if result.refused else 0
