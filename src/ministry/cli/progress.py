"""The progress display of long commands: one bar per phase, each with a line of detail."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

__all__ = ["detailed_progress"]


def detailed_progress(console: Console) -> Progress:
    """Bars whose ``detail`` field says what is counted (files, bytes, requirements)."""
    return Progress(
        TextColumn("{task.description:<9}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
        console=console,
    )
