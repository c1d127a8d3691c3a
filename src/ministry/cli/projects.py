"""``ministry project owners|add-maintainer|remove-maintainer|add-owner|remove-owner``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from packaging.utils import canonicalize_name

from ministry.cli.runtime import local_admin, with_services
from ministry.core.models import DEFAULT_INDEX, ProjectRole, RoleName
from ministry.settings import Settings
from ministry.wiring import Services

__all__ = ["register"]

Common = Callable[[argparse.ArgumentParser], None]
_CHANGES: dict[str, tuple[str, RoleName, str]] = {
    "add-maintainer": ("add", "maintainer", "let a user or @group publish, yank and unyank"),
    "remove-maintainer": ("remove", "maintainer", "take a maintainer's rights away"),
    "add-owner": ("add", "owner", "make a user or @group an owner (also manages the roles)"),
    "remove-owner": ("remove", "owner", "take an owner's rights away (never the last owner's)"),
}


def register(commands: Any, common: Common) -> None:
    """Add the ``project`` sub-commands."""
    projects = commands.add_parser(
        "project", help="a project's owners and maintainers"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    owners = projects.add_parser("owners", help="list a project's owners and maintainers")
    common(owners)
    owners.add_argument("project")
    owners.add_argument("--index", default=DEFAULT_INDEX, help="default: main")
    owners.set_defaults(run=show_roles)
    for action, (change, role, text) in _CHANGES.items():
        parser = projects.add_parser(action, help=text)
        common(parser)
        parser.add_argument("project")
        parser.add_argument("principal", metavar="PRINCIPAL", help="a user name or @group")
        parser.add_argument("--index", default=DEFAULT_INDEX, help="default: main")
        parser.set_defaults(run=change_role, change=change, role=role)


def _print(roles: list[ProjectRole]) -> None:
    owners = [r.principal for r in roles if r.role == "owner"]
    maintainers = [r.principal for r in roles if r.role == "maintainer"]
    print("owners:", ", ".join(owners) or "none (the index's admins decide)")
    print("maintainers:", ", ".join(maintainers) or "none")


def show_roles(settings: Settings, arguments: argparse.Namespace) -> int:
    """Print who owns and who maintains a project."""

    async def work(services: Services) -> list[ProjectRole]:
        project = canonicalize_name(arguments.project)
        return await services.ownership.roles(arguments.index, project)

    _print(with_services(settings, work))
    return 0


def change_role(settings: Settings, arguments: argparse.Namespace) -> int:
    """Add or remove an owner or maintainer, as the local administrator."""

    async def work(services: Services) -> list[ProjectRole]:
        ownership, project = services.ownership, canonicalize_name(arguments.project)
        change = ownership.add if arguments.change == "add" else ownership.remove
        return await change(
            local_admin(), arguments.index, project, arguments.principal, arguments.role
        )

    _print(with_services(settings, work))
    return 0
