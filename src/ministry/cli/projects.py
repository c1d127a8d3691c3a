"""``ministry project owners|add-maintainer|remove-maintainer|add-owner|remove-owner``."""

from __future__ import annotations

import argparse

from packaging.utils import canonicalize_name

from ministry.cli.output import print_json
from ministry.cli.runtime import local_admin, with_services
from ministry.core.documents import roles_document
from ministry.core.models import ProjectRole
from ministry.settings import Settings
from ministry.wiring import Services

__all__ = ["change_role", "show_roles"]


def _print(roles: list[ProjectRole]) -> None:
    owners = [r.principal for r in roles if r.role == "owner"]
    maintainers = [r.principal for r in roles if r.role == "maintainer"]
    print("owners:", ", ".join(owners) or "none (the index's admins decide)")
    print("maintainers:", ", ".join(maintainers) or "none")


def show_roles(settings: Settings, arguments: argparse.Namespace) -> int:
    """Print who owns and who maintains a project."""

    project = canonicalize_name(arguments.project)

    async def work(services: Services) -> list[ProjectRole]:
        return await services.ownership.roles(arguments.index, project)

    roles = with_services(settings, work)
    if arguments.json:
        print_json(roles_document(arguments.index, project, roles))
    else:
        _print(roles)
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
