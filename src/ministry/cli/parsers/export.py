"""The parser of ``ministry export``; ``ministry.cli.export`` runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ministry.cli.parsers import Common, Run
from ministry.core.models import DEFAULT_INDEX

__all__ = ["register"]


def register(commands: Any, common: Common) -> None:
    """Add the ``export`` sub-command."""
    parser = commands.add_parser(
        "export",
        help="write an index as a static PEP 503/691 tree, or as a bundle for another server",
    )
    common(parser)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--static", type=Path, metavar="DIR",
        help="the directory to write (an earlier export there is replaced)",
    )  # fmt: skip
    target.add_argument(
        "--bundle", type=Path, metavar="FILE",
        help="one tar file of the files, their metadata and yanks, for 'ministry import --bundle'",
    )  # fmt: skip
    parser.add_argument("--index", default=DEFAULT_INDEX, help="the index to export")
    parser.add_argument(
        "--fetch-missing", action="store_true",
        help="also fetch from the upstream the proxied files not cached here (their size is "
        "printed first); without it only stored files are exported, and the rest counted",
    )  # fmt: skip
    parser.set_defaults(run=Run("ministry.cli.export", "run"))
