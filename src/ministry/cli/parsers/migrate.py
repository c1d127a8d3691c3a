"""The parser of ``ministry migrate``; ``ministry.cli.migrate`` runs it."""

from __future__ import annotations

from typing import Any

from ministry.cli.parsers import Common, Run

__all__ = ["register"]


def register(commands: Any, common: Common) -> None:
    """Add the ``migrate`` sub-command."""
    parser = commands.add_parser(
        "migrate",
        help="copy everything to other (empty) stores, e.g. SQLite+files to Redis+S3",
    )
    common(parser)
    parser.add_argument("--to-db", required=True, metavar="URL", help="the target metadata store")
    parser.add_argument("--to-storage", required=True, metavar="URL", help="the target blob store")
    parser.set_defaults(run=Run("ministry.cli.migrate", "run"))
