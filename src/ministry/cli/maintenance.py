"""``ministry yank``, ``ministry unyank`` and ``ministry delete``, and ``ministry log``."""

from __future__ import annotations

import argparse

from packaging.utils import canonicalize_name
from rich.console import Console
from rich.table import Table

from ministry.cli.output import print_json
from ministry.cli.runtime import local_admin, with_services
from ministry.core.documents import change_document
from ministry.core.models import Change, DistFile
from ministry.errors import InvalidRequest
from ministry.settings import Settings
from ministry.wiring import Services

__all__ = ["change_files", "show_log"]


def change_files(settings: Settings, arguments: argparse.Namespace) -> int:
    """Yank, unyank or delete."""
    if arguments.action != "delete" and not (arguments.version or arguments.filename):
        raise InvalidRequest(
            f"{arguments.action} needs a version or a --file: "
            f"ministry {arguments.action} PROJECT VERSION, or --file FILENAME."
        )

    async def work(services: Services) -> list[DistFile]:
        maintenance, project = services.maintenance, canonicalize_name(arguments.project)
        target = {"version": arguments.version, "filename": arguments.filename}
        if arguments.action == "yank":
            return await maintenance.yank(
                local_admin(), arguments.index, project, reason=arguments.reason, **target
            )
        if arguments.action == "unyank":
            return await maintenance.unyank(local_admin(), arguments.index, project, **target)
        return await maintenance.delete(local_admin(), arguments.index, project, **target)

    for file in with_services(settings, work):
        print(f"{arguments.action}: {file.filename}")
    return 0


def show_log(settings: Settings, arguments: argparse.Namespace) -> int:
    """Print the audit log, newest first."""

    async def work(services: Services) -> list[Change]:
        changes = await services.audit.latest(
            local_admin(), since=arguments.since, limit=arguments.limit, index=arguments.index
        )
        if not changes and arguments.index is not None:
            # A deleted index keeps its changes; a name that never was one is a mistake.
            await services.indexes.get(arguments.index)
        return changes

    changes = with_services(settings, work)
    if arguments.json:
        print_json([change_document(change) for change in changes])
        return 0
    table = Table("serial", "time (UTC)", "who", "from", "what", "index", "subject")
    for change in changes:
        subject = change.filename or change.project or change.detail or ""
        if change.project and not change.filename and change.detail:
            subject = f"{change.project}: {change.detail}"  # a role given or taken
        table.add_row(
            str(change.serial),
            f"{change.time:%Y-%m-%d %H:%M:%S}",
            change.actor,
            change.address,
            change.action,
            change.index,
            subject,
        )
    Console(width=200).print(table)
    return 0
