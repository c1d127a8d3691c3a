"""``ministry yank``, ``ministry unyank`` and ``ministry delete``, and ``ministry log``."""

from __future__ import annotations

import argparse
from datetime import datetime

from rich.console import Console
from rich.table import Table

from ministry.cli.admin import admin_for
from ministry.cli.output import print_json
from ministry.errors import InvalidRequest
from ministry.settings import Settings

__all__ = ["change_files", "show_log"]


def change_files(settings: Settings, arguments: argparse.Namespace) -> int:
    """Yank, unyank or delete."""
    if arguments.action != "delete" and not (arguments.version or arguments.filename):
        raise InvalidRequest(
            f"{arguments.action} needs a version or a --file: "
            f"ministry {arguments.action} PROJECT VERSION, or --file FILENAME."
        )

    changed = admin_for(settings, arguments).change_files(
        arguments.action,
        arguments.index,
        arguments.project,
        version=arguments.version,
        filename=arguments.filename,
        reason=getattr(arguments, "reason", ""),
    )
    for filename in changed:
        print(f"{arguments.action}: {filename}")
    return 0


def show_log(settings: Settings, arguments: argparse.Namespace) -> int:
    """Print the audit log, newest first."""

    changes = admin_for(settings, arguments).log(
        since=arguments.since, limit=arguments.limit, index=arguments.index
    )
    if arguments.json:
        print_json(changes)
        return 0
    table = Table("serial", "time (UTC)", "who", "from", "what", "index", "subject")
    for change in changes:
        project, filename, detail = change["project"], change["filename"], change["detail"]
        subject = filename or project or detail or ""
        if project and not filename and detail:
            subject = f"{project}: {detail}"  # a role given or taken
        table.add_row(
            str(change["serial"]),
            f"{datetime.fromisoformat(change['time']):%Y-%m-%d %H:%M:%S}",
            change["actor"],
            change["address"],
            change["action"],
            change["index"] or "",
            subject,
        )
    Console(width=200).print(table)
    return 0
