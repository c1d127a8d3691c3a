"""``ministry project owners|add-maintainer|remove-maintainer|add-owner|remove-owner``."""

from __future__ import annotations

import argparse

from ministry.cli.admin import Document, admin_for
from ministry.cli.output import print_json
from ministry.settings import Settings

__all__ = ["change_role", "show_roles"]


def _print(roles: Document) -> None:
    print("owners:", ", ".join(roles["owners"]) or "none (the index's admins decide)")
    print("maintainers:", ", ".join(roles["maintainers"]) or "none")


def show_roles(settings: Settings, arguments: argparse.Namespace) -> int:
    """Print who owns and who maintains a project."""
    roles = admin_for(settings, arguments).roles(arguments.index, arguments.project)
    if arguments.json:
        print_json(roles)
    else:
        _print(roles)
    return 0


def change_role(settings: Settings, arguments: argparse.Namespace) -> int:
    """Add or remove an owner or maintainer, as the local administrator or the
    credentials of ``--url``."""
    _print(
        admin_for(settings, arguments).change_role(
            arguments.change, arguments.index, arguments.project, arguments.principal,
            arguments.role,
        )
    )  # fmt: skip
    return 0
