"""The parser of ``ministry config show``; ``ministry.cli.config`` runs it."""

from __future__ import annotations

from typing import Any

from ministry.cli.options import add_server_options
from ministry.cli.parsers import Common, Run

__all__ = ["register"]


def register(commands: Any, common: Common) -> None:
    """Add ``config show``."""
    parser = commands.add_parser("config", help="show the effective configuration")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser(
        "show",
        help="print the settings 'ministry serve' would use, with secrets masked",
        description="Print the effective configuration as a TOML config file: each value "
        "with where it came from (a flag, a MINISTRY_* variable, a line of the config file, "
        "or the default). Takes the same flags as 'serve'; exits with 2 on any mistake.",
    )
    common(show)
    add_server_options(show)
    show.set_defaults(run=Run("ministry.cli.config", "run"))
