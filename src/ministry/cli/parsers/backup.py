"""The parsers of ``ministry backup`` and ``restore``; ``ministry.cli.backup`` runs them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ministry.cli.parsers import Common, Run

__all__ = ["register"]


def register(commands: Any, common: Common) -> None:
    """Add the ``backup`` and ``restore`` sub-commands."""
    backup = commands.add_parser(
        "backup",
        help="snapshot the metadata and copy the files it names into DIR, while serving",
        description="Take a consistent snapshot of the metadata store, then copy every file "
        "it names into DIR, checking each hash. Safe while the server runs; a second backup "
        "into the same DIR copies only new files. DIR/backup.json is written last. DIR must "
        "be empty or new, or hold an earlier backup of the same store.",
    )
    common(backup)
    backup.add_argument("directory", metavar="DIR", type=Path, help="where the backup goes")
    backup.add_argument(
        "--force",
        action="store_true",
        help="replace a backup of another store in DIR (never files that are not a backup)",
    )
    backup.set_defaults(run=Run("ministry.cli.backup", "run_backup"))
    restore = commands.add_parser(
        "restore",
        help="check a backup completely, then copy it into new, empty stores",
        description="Check DIR's manifest, snapshot and every file's hash, then copy it into "
        "the stores named by --data (or --db and --storage), which must be empty.",
    )
    common(restore)
    restore.add_argument("directory", metavar="DIR", type=Path, help="a backup")
    restore.set_defaults(run=Run("ministry.cli.backup", "run_restore"))
