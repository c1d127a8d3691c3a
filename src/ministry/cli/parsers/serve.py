"""The parser of ``ministry serve``; ``ministry.cli.serve`` runs it."""

from __future__ import annotations

from typing import Any

from ministry.cli.options import add_server_options
from ministry.cli.parsers import Common, Run

__all__ = ["register"]


def register(commands: Any, common: Common) -> None:
    """Add the ``serve`` sub-command."""
    parser = commands.add_parser("serve", help="run the index server")
    common(parser)
    add_server_options(parser)
    parser.set_defaults(run=Run("ministry.cli.serve", "run"))
