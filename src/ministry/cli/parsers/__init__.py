"""The parsers of the ``ministry`` sub-commands: every flag and help text, nothing heavy.

Each module here registers one group of sub-commands and names, with ``Run``, the
function in ``ministry.cli`` that does the work; ``ministry.cli.main`` says why.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from ministry.settings import Settings

__all__ = ["Common", "Run", "add_json_flag", "add_remote_options", "with_remote"]

#: Adds the flags every command takes (``ministry.cli.options.add_common_options``).
Common = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Run:
    """A sub-command's implementation, named here and imported only when it runs."""

    module: str
    function: str

    def __call__(self, settings: Settings, arguments: argparse.Namespace) -> int:
        """Import the implementation and run it; its exit status."""
        implementation = getattr(importlib.import_module(self.module), self.function)
        status: int = implementation(settings, arguments)
        return status


def add_json_flag(
    parser: argparse.ArgumentParser, shape: str = "one JSON array of objects"
) -> None:
    """``--json`` for a command that lists things: scripts get stable keys instead of a
    table whose columns and widths may change (docs/operations.md names the keys)."""
    text = f"print {shape}, for scripts, instead of text for people"
    parser.add_argument("--json", action="store_true", help=text)


def add_remote_options(parser: argparse.ArgumentParser) -> None:
    """``--url`` and ``--insecure`` for a command that can also run against a server
    through its API (``ministry.cli.remote``)."""
    parser.add_argument(
        "--url",
        help="do it on the server at this URL, through its API, instead of on the local "
        "stores (env MINISTRY_URL; credentials from MINISTRY_USER and MINISTRY_PASSWORD, "
        "MINISTRY_TOKEN or ~/.netrc)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow --url with plain http:// to another machine (the password crosses the "
        "network unencrypted)",
    )


def with_remote(common: Common) -> Common:
    """``common`` and ``--url``/``--insecure``: for the admin commands' parsers."""

    def add(parser: argparse.ArgumentParser) -> None:
        common(parser)
        add_remote_options(parser)

    return add
