"""The progress display of long commands: bars on a terminal, log lines elsewhere.

A command run by cron, systemd or a CI job has no terminal: rich then draws nothing
until the end, and a run of an hour looks hung. So when stderr is not a terminal the
bars are not drawn; every few seconds a log line says, for each bar that moved, what
its columns would show ("exporting 9% 35.2/377.0 MB 120/4000 files"), and a last
line says where each bar stopped. Every long command makes its bars here.
"""

from __future__ import annotations

import io
import logging
import threading
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

__all__ = ["detailed_progress", "progress_bars"]

log = logging.getLogger("ministry.progress")

#: Seconds between two log lines of the same bar when there is no terminal.
LOG_INTERVAL = 5.0


def progress_bars(
    console: Console, *columns: str | ProgressColumn, interval: float = LOG_INTERVAL
) -> Progress:
    """Bars of ``columns`` on ``console``, or log lines every ``interval`` seconds when
    ``console`` is not a terminal."""
    if console.is_terminal:
        return Progress(*columns, console=console)
    return _LoggedProgress(*columns, interval=interval)


def detailed_progress(console: Console) -> Progress:
    """Bars whose ``detail`` field says what is counted (files, bytes, requirements)."""
    return progress_bars(
        console,
        TextColumn("{task.description:<9}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
    )


class _LoggedProgress(Progress):
    """Progress that draws nothing and logs each bar's state now and then, and at the end."""

    def __init__(self, *columns: str | ProgressColumn, interval: float) -> None:
        # Drawn, if ever, into a buffer nobody reads: the log lines say it all.
        super().__init__(*columns, console=Console(file=io.StringIO()))
        self._interval = interval
        self._said: dict[TaskID, str] = {}
        self._stopping = threading.Event()
        self._reporter: threading.Thread | None = None

    def start(self) -> None:
        """Start, with a thread that logs every ``interval`` seconds."""
        super().start()
        if self._reporter is None:
            self._stopping.clear()
            self._reporter = threading.Thread(
                target=self._report_every, name="progress-log", daemon=True
            )
            self._reporter.start()

    def stop(self) -> None:
        """Stop, and log where each bar that moved since its last line has come."""
        if self._reporter is not None:
            self._stopping.set()
            self._reporter.join()
            self._reporter = None
        super().stop()
        self._report()

    def _report_every(self) -> None:
        while not self._stopping.wait(self._interval):
            self._report()

    def _report(self) -> None:
        with self._lock:
            for task in self.tasks:
                state = self._line(task, timing=False)
                if not task.visible or not task.started or self._said.get(task.id) == state:
                    continue  # not shown, or nothing moved since the last line
                self._said[task.id] = state
                log.info("%s", self._line(task, timing=True))

    def _line(self, task: Task, *, timing: bool) -> str:
        """What the bar's columns show, as text: the bar as a percentage, the time left
        only with ``timing``."""
        parts = []
        for column in self.columns:
            if isinstance(column, TimeRemainingColumn) and not timing:
                continue
            text = _text(column, task)
            if text:
                parts.append(text)
        return " ".join(parts)


def _text(column: Any, task: Task) -> str:
    if isinstance(column, str):
        return Text.from_markup(column.format(task=task)).plain.strip()
    if isinstance(column, BarColumn):
        return f"{task.percentage:.0f}%" if task.total else ""
    if isinstance(column, TimeRemainingColumn):
        if task.finished or task.time_remaining is None:
            return ""
        return f"(about {column.render(task).plain} left)"
    rendered = column(task)
    return " ".join(rendered.plain.split()) if isinstance(rendered, Text) else ""
