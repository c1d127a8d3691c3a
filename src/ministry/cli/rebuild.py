"""``ministry rebuild --from-storage``: the metadata put back from the manifests."""

from __future__ import annotations

import argparse

from rich.console import Console

from ministry.cli.progress import detailed_progress
from ministry.cli.runtime import with_services
from ministry.services.rebuild import RebuildReport, rebuild
from ministry.settings import Settings
from ministry.wiring import Services

__all__ = ["run"]


def run(settings: Settings, arguments: argparse.Namespace) -> int:
    """Rebuild with a progress bar; print what was put back and what could not be."""
    console = Console(stderr=True)

    async def work(services: Services) -> RebuildReport:
        with _Bars(console) as bars:
            return await rebuild(
                services.bare_metadata, services.blobs, bars, dry_run=arguments.dry_run
            )

    report = with_services(settings, work, create=True)  # its store may have come back empty
    _print(report)
    return 0 if report.ok else 1


class _Bars:
    """A counter of manifests read, then a bar of files compared."""

    def __init__(self, console: Console) -> None:
        self._progress = detailed_progress(console)
        self._reading = self._progress.add_task("reading", total=None, detail="")
        self._read = 0
        self._files = self._progress.add_task("files", total=None, detail="", visible=False)

    def __enter__(self) -> _Bars:
        self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._progress.stop()

    def read(self, kind: str) -> None:
        """One more manifest read."""
        self._read += 1
        self._progress.update(self._reading, detail=f"{self._read} manifests ({kind})")

    def planned(self, files: int) -> None:
        """The manifests are read: the files to compare."""
        self._progress.update(self._reading, total=self._read, completed=self._read)
        self._progress.update(self._files, total=files, visible=True, detail=f"of {files}")

    def file_done(self) -> None:
        """One file compared."""
        self._progress.advance(self._files)


def _print(report: RebuildReport) -> None:
    read = ", ".join(f"{count} {kind}" for kind, count in sorted(report.read.items()))
    print(f"read {sum(report.read.values())} manifests ({read or 'none'})")
    verb = "would put back" if report.dry_run else "put back"
    if report.changed:
        changed = ", ".join(f"{count} {what}" for what, count in sorted(report.changed.items()))
        print(f"{verb}: {changed}")
    else:
        print("the store already holds everything the manifests name")
    if not report.dry_run:
        print(f"new serials start above {report.serial_floor}")
    for problem in report.problems:
        print(f"problem: {problem}")
