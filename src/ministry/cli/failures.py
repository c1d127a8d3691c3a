"""What ``ministry`` says when a command fails: one line that says what to do.

A traceback helps whoever debugs Ministry, not whoever runs it with a wrong port or
path, so it is printed only with ``--debug``. Exit statuses: 2 when the command could
not do what it was asked (bad input, a store or port it cannot use), 3 when it failed
in a way Ministry did not expect (a bug: ``--debug`` shows where). 1 stays for a
command that ran and found problems (``verify``, ``import``).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Any, NoReturn

from ministry.errors import MinistryError
from ministry.settings import SettingsError

__all__ = ["DEBUG_FLAG", "EXPECTED", "UNEXPECTED", "OneLineParser", "report"]

#: The flag that adds the traceback to the line.
DEBUG_FLAG = "--debug"
#: The exit status of a failure the command has words for.
EXPECTED = 2
#: The exit status of any other failure.
UNEXPECTED = 3


def report(exc: Exception, *, debug: bool) -> int:
    """Print the failure as one line on stderr (after the traceback with ``debug``);
    the exit status."""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    line, status = _describe(exc)
    print(f"ministry: {line}", file=sys.stderr)
    return status


def _describe(exc: Exception) -> tuple[str, int]:
    if isinstance(exc, SettingsError | MinistryError):
        return str(exc), EXPECTED
    if isinstance(exc, OSError):
        # The file system or the network said no: its words, and the path they are about.
        reason = exc.strerror or str(exc)
        where = f": {exc.filename}" if exc.filename else ""
        return f"{reason}{where}.", EXPECTED
    if isinstance(exc, EOFError):
        return "standard input ended before the command had read what it needs.", EXPECTED
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return (
        f"unexpected failure ({text}); run the command again with {DEBUG_FLAG} "
        "for the traceback, and report it.",
        UNEXPECTED,
    )


class _Commands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Sub-commands whose own ``--help`` begins with the line their parent lists them
    with, unless they are given a longer description: argparse shows that line only in
    the parent's list, so ``ministry user list --help`` said nothing of what it does."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        line = kwargs.get("help")
        if line and not kwargs.get("description"):
            kwargs["description"] = line[0].upper() + line[1:] + "."
        parser: argparse.ArgumentParser = super().add_parser(name, **kwargs)
        return parser


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a usage mistake reported like every other failure: one line, and
    where to read the usage (the sub-commands' parsers are made of this class too), and
    sub-commands described in their own ``--help``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _Commands)

    def error(self, message: str) -> NoReturn:
        """Print the mistake and the command to read the usage with; exit with status 2."""
        self.exit(EXPECTED, f"{self.prog}: {message} (see {self.prog} --help)\n")
