"""``ministry verify``: re-hash every blob against the records, quarantine what is wrong."""

from __future__ import annotations

import argparse
from collections import Counter

from rich.console import Console
from rich.filesize import decimal
from rich.progress import TaskID

from ministry.cli.progress import detailed_progress
from ministry.cli.runtime import local_admin, with_services
from ministry.core.durations import parse_duration
from ministry.services.verify import VerifyOutcome
from ministry.settings import Settings
from ministry.wiring import Services

__all__ = ["run"]


def run(settings: Settings, arguments: argparse.Namespace) -> int:
    """Verify with progress bars, print what was found and done."""
    grace = parse_duration(arguments.grace)
    console = Console(stderr=True)

    async def work(services: Services) -> VerifyOutcome:
        with _Bars(console) as bars:
            return await services.verifier.run(
                local_admin(), bars, index=arguments.index, repair=arguments.repair, grace=grace
            )

    outcome = with_services(settings, work)
    _report(outcome, arguments.grace)
    return 0 if outcome.ok else 1


class _Bars:
    """One bar for the blobs and bytes hashed, one counter for the blobs listed."""

    def __init__(self, console: Console) -> None:
        self._progress = detailed_progress(console)
        self._hashing = self._progress.add_task("hashing", total=0, detail="")
        self._listing: TaskID | None = None
        self._blobs = self._done = 0

    def __enter__(self) -> _Bars:
        self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._progress.stop()

    def planned(self, blobs: int, size: int) -> None:
        """More blobs and bytes to hash."""
        self._blobs += blobs
        task = self._progress.tasks[self._hashing]
        self._progress.update(self._hashing, total=(task.total or 0) + size)
        self._show()

    def hashed(self, size: int) -> None:
        """Bytes hashed."""
        self._progress.advance(self._hashing, size)
        self._show()

    def checked(self) -> None:
        """A blob is done."""
        self._done += 1
        self._show()

    def listed(self, blobs: int) -> None:
        """Blobs looked at in the search for orphans (their number is not known ahead)."""
        if self._listing is None:
            self._listing = self._progress.add_task("orphans", total=None, detail="")
        self._progress.update(self._listing, detail=f"{blobs} blobs listed")

    def _show(self) -> None:
        task = self._progress.tasks[self._hashing]
        self._progress.update(
            self._hashing,
            detail=f"{self._done}/{self._blobs} blobs, {decimal(int(task.completed))} "
            f"of {decimal(int(task.total or 0))}",
        )


def _report(outcome: VerifyOutcome, grace: str) -> None:
    for finding in outcome.findings:
        blob = f" (sha256 {finding.sha256})" if finding.sha256 else ""
        print(f"{finding.problem}: {finding.subject}{blob}: {finding.action}")
    checked = f"checked {outcome.blobs} blobs ({decimal(outcome.bytes)})"
    if outcome.ok:
        print(f"{checked}: all consistent")
    else:
        counts = Counter(finding.problem for finding in outcome.findings)
        problems = ", ".join(f"{count} {problem}" for problem, count in sorted(counts.items()))
        print(f"{checked}: {len(outcome.findings)} problems ({problems})")
    if not outcome.orphans_judged:
        print("orphans were not looked for: --index checks one index's records only")
    if outcome.young:
        print(
            f"{outcome.young} blobs no record names are younger than the grace period "
            f"({grace}) and were left alone: an upload may be about to commit them"
        )
