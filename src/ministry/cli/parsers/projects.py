"""The parsers of ``ministry project …``; ``ministry.cli.projects`` runs them."""

from __future__ import annotations

from typing import Any

from ministry.cli.parsers import Common, Run, add_json_flag, with_remote
from ministry.core.models import DEFAULT_INDEX, RoleName

__all__ = ["register"]

_IMPLEMENTATION = "ministry.cli.projects"
_CHANGES: dict[str, tuple[str, RoleName, str]] = {
    "add-maintainer": ("add", "maintainer", "let a user or @group publish, yank and unyank"),
    "remove-maintainer": ("remove", "maintainer", "take a maintainer's rights away"),
    "add-owner": ("add", "owner", "make a user or @group an owner (also manages the roles)"),
    "remove-owner": ("remove", "owner", "take an owner's rights away (never the last owner's)"),
}


def register(commands: Any, common: Common) -> None:
    """Add the ``project`` sub-commands."""
    common = with_remote(common)
    projects = commands.add_parser(
        "project", help="a project's owners and maintainers"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    owners = projects.add_parser("owners", help="list a project's owners and maintainers")
    common(owners)
    owners.add_argument("project", help="the project's name")
    owners.add_argument("--index", default=DEFAULT_INDEX, help="default: main")
    add_json_flag(owners, "one JSON object with the lists 'owners' and 'maintainers'")
    owners.set_defaults(run=Run(_IMPLEMENTATION, "show_roles"))
    for action, (change, role, text) in _CHANGES.items():
        parser = projects.add_parser(action, help=text)
        common(parser)
        parser.add_argument("project", help="the project's name")
        parser.add_argument("principal", metavar="PRINCIPAL", help="a user name or @group")
        parser.add_argument("--index", default=DEFAULT_INDEX, help="default: main")
        parser.set_defaults(run=Run(_IMPLEMENTATION, "change_role"), change=change, role=role)
