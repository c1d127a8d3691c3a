"""The progress of long commands without a terminal: log lines now and then, and at the end."""

from __future__ import annotations

import io
import logging
import threading

import pytest
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn

from ministry.cli.progress import progress_bars


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ministry.progress"]


def test_without_a_terminal_each_bar_is_logged_while_it_moves_and_where_it_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ministry.progress")
    console = Console(file=io.StringIO())  # not a terminal
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
    )  # fmt: skip
    logged = threading.Event()
    handler = logging.Handler()
    handler.emit = lambda record: logged.set()  # type: ignore[method-assign]
    logging.getLogger("ministry.progress").addHandler(handler)
    try:
        with progress_bars(console, *columns, interval=0.01) as progress:
            task = progress.add_task("copying", total=10, completed=3, detail="")
            assert logged.wait(30), "no line while the bar moved"
            logged.clear()
            progress.update(task, detail="3 MB")  # words that change count as moving
            assert logged.wait(30), "no line after the words changed"
            progress.update(task, completed=10, detail="10 MB")
    finally:
        logging.getLogger("ministry.progress").removeHandler(handler)
    assert lines(caplog) == [
        "copying 30% 3/10",
        "copying 30% 3/10 3 MB",
        "copying 100% 10/10 10 MB",
    ]
    assert console.file.getvalue() == ""  # type: ignore[attr-defined]  # no bar drawn


def test_on_a_terminal_bars_are_drawn_and_nothing_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ministry.progress")
    console = Console(file=io.StringIO(), force_terminal=True)
    with progress_bars(console, TextColumn("{task.description}"), interval=0.01) as progress:
        progress.add_task("copying", total=2, completed=2)
    assert lines(caplog) == []
    assert "copying" in console.file.getvalue()  # type: ignore[attr-defined]
