"""``ministry mirror``: fill a proxy index ahead of time with what a set of requirements needs."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.filesize import decimal
from rich.progress import TaskID

from ministry.cli.progress import detailed_progress
from ministry.cli.runtime import with_services
from ministry.core.mirror_targets import targets
from ministry.core.models import MirrorRun
from ministry.errors import InvalidRequest
from ministry.services.mirror import MirrorOutcome, MirrorRequest
from ministry.services.mirror_jobs import MirrorScheduler, gather_requirements, mirror_jobs
from ministry.settings import Settings
from ministry.wiring import Services

__all__ = ["run"]

_ALL_WARNING = (
    "--all takes every project the upstreams list. A large public index holds millions "
    "of files and many terabytes: narrow it with --python-version, --platform, "
    "--only-binary and --newest, and look with --dry-run first."
)


def run(settings: Settings, arguments: argparse.Namespace) -> int:
    """Resolve, fetch with progress bars, report."""
    if arguments.job is not None:
        return _run_job(settings, arguments)
    if arguments.connections < 1:
        raise InvalidRequest("--connections must be 1 or more.")
    chosen = targets(
        arguments.python_versions,
        arguments.platforms,
        only_binary=arguments.only_binary,
        only_source=arguments.only_source,
        pre=arguments.pre,
        newest=arguments.newest,
    )
    gathered = gather_requirements(arguments.projects, arguments.requirement_files, chosen)
    for warning in gathered.warnings:
        print(f"ministry mirror: {warning}", file=sys.stderr)
    requirements = gathered.requirements
    if arguments.everything and requirements:
        raise InvalidRequest("--all takes every project: name no projects or requirement files.")
    if not arguments.everything and not requirements:
        raise InvalidRequest("Name projects, give -r FILE, or --all: there is nothing to mirror.")
    console = Console(stderr=True)
    if arguments.everything:
        console.print(f"[bold yellow]Warning:[/] {_ALL_WARNING}")
    request = MirrorRequest(
        index=arguments.index,
        requirements=requirements,
        targets=chosen,
        with_deps=arguments.with_deps,
        everything=arguments.everything,
        connections=arguments.connections,
    )

    async def work(services: Services) -> MirrorOutcome:
        with _Bars(console) as bars:
            return await services.mirror.run(request, bars, dry_run=arguments.dry_run)

    outcome = with_services(settings, work, create=True)
    _report(outcome, arguments.dry_run, arguments.index)
    return 0 if outcome.ok else 1


def _run_job(settings: Settings, arguments: argparse.Namespace) -> int:
    """A job of the config file, now, with progress bars; its result is kept like a run's."""
    if settings.file is None:
        raise InvalidRequest("--job needs the config file that defines it: --config FILE.")
    jobs = {job.name: job for job in mirror_jobs(settings.file)}
    job = jobs.get(arguments.job)
    if job is None:
        known = ", ".join(sorted(jobs)) or "none"
        raise InvalidRequest(f"No [[mirror]] job {arguments.job!r} in {settings.config} "
                             f"(jobs: {known}).")  # fmt: skip
    console = Console(stderr=True)

    async def work(services: Services) -> MirrorRun:
        with _Bars(console) as bars:
            return await MirrorScheduler((job,), services.mirror, services.metadata).run(job, bars)

    result = with_services(settings, work, create=True)
    print(f"job {job.name!r}: {'ok' if result.ok else 'failed'}: {result.message}")
    return 0 if result.ok else 1


class _Bars:
    """One bar for the requirements resolved, one for the files and bytes fetched."""

    def __init__(self, console: Console) -> None:
        self._progress = detailed_progress(console)
        self._projects = self._progress.add_task("resolving", total=None, detail="")
        self._files: TaskID | None = None
        self._done = self._total = 0

    def __enter__(self) -> _Bars:
        self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._progress.stop()

    def resolving(self, done: int, known: int) -> None:
        """Requirements looked at, of those known."""
        self._progress.update(
            self._projects, completed=done, total=known, detail=f"{done}/{known} requirements"
        )

    def planned(self, files: int, size: int) -> None:
        """More to fetch: the files bar appears with the first file."""
        if self._files is None:
            self._files = self._progress.add_task("fetching", total=0, detail="")
        self._total += files
        task = self._progress.tasks[self._files]
        self._progress.update(self._files, total=(task.total or 0) + size)
        self._show()

    def received(self, size: int) -> None:
        """Bytes arrived."""
        if self._files is not None:
            self._progress.advance(self._files, size)
            self._show()

    def finished(self, filename: str) -> None:
        """A file is done."""
        self._done += 1
        self._show()

    def _show(self) -> None:
        if self._files is None:
            return
        task = self._progress.tasks[self._files]
        self._progress.update(
            self._files,
            detail=f"{self._done}/{self._total} files, {decimal(int(task.completed))} "
            f"of {decimal(int(task.total or 0))}",
        )


def _report(outcome: MirrorOutcome, dry_run: bool, index: str) -> None:
    size = f"{outcome.missing_bytes:,} bytes"
    if outcome.unknown_sizes:
        size += f", and {outcome.unknown_sizes} files of unknown size"
    if dry_run:
        for filename in sorted(outcome.planned):
            print(f"would fetch {filename}")
        print(
            f"would fetch {len(outcome.planned)} files ({size}); "
            f"{outcome.present} of {outcome.selected} selected files are cached already"
        )
    else:
        print(
            f"fetched {outcome.fetched} files ({outcome.fetched_bytes:,} bytes) into index "
            f"{index!r}; {outcome.present} of {outcome.selected} selected files were cached "
            f"already; {len(outcome.failed)} failed"
        )
    for filename, reason in sorted(outcome.failed):
        print(f"failed {filename}: {reason}", file=sys.stderr)
    for project in sorted(outcome.stale):
        print(f"upstream failed for {project}: its kept page was used", file=sys.stderr)
    for line in outcome.unmatched:
        print(f"not found {line}", file=sys.stderr)
    for release in sorted(outcome.unknown_dependencies):
        print(f"dependencies unknown for {release} (no metadata file)", file=sys.stderr)
