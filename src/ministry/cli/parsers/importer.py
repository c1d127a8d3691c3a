"""The parser of ``ministry import``; ``ministry.cli.importer`` runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ministry.cli.parsers import Common, Run
from ministry.core.models import DEFAULT_INDEX

__all__ = ["register"]


def register(commands: Any, common: Common) -> None:
    """Add the ``import`` sub-command."""
    parser = commands.add_parser(
        "import", help="import a directory of distribution files, or a bundle"
    )
    common(parser)
    parser.add_argument(
        "directory",
        type=Path,
        nargs="?",
        help="a directory searched recursively for .whl and .tar.gz files (left out with --bundle)",
    )
    parser.add_argument(
        "--bundle", type=Path, metavar="FILE", help="a file written by 'ministry export --bundle'"
    )
    parser.add_argument(
        "--index",
        help=f"the index to import into (default: {DEFAULT_INDEX}; for a bundle, the index it "
        "was exported from, created if missing)",
    )
    parser.set_defaults(run=Run("ministry.cli.importer", "run"))
