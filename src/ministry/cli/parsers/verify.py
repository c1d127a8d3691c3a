"""The parser of ``ministry verify``; ``ministry.cli.verify`` runs it."""

from __future__ import annotations

from typing import Any

from ministry.cli.parsers import Common, Run

__all__ = ["register"]


def register(commands: Any, common: Common) -> None:
    """Add the ``verify`` sub-command."""
    parser = commands.add_parser(
        "verify",
        help="re-hash every stored file; quarantine bad and orphaned blobs",
        description="Read back every blob the records name and check its sha256; move "
        "blobs with other bytes, and blobs no record names, to quarantine. Safe while the "
        "server runs. Exit status 0: all consistent; 1: problems were found (and what was "
        "done is printed).",
    )
    common(parser)
    parser.add_argument(
        "--repair", action="store_true",
        help="fetch proxied files that are missing or bad from their upstream again",
    )  # fmt: skip
    parser.add_argument(
        "--index", metavar="NAME",
        help="check only this index's records (orphans are then not looked for)",
    )  # fmt: skip
    parser.add_argument(
        "--grace", default="1h", metavar="DURATION",
        help="leave blobs no record names alone while younger than this: an upload may be "
        "about to commit its record (default 1h; 0 when no server is running)",
    )  # fmt: skip
    parser.set_defaults(run=Run("ministry.cli.verify", "run"))
