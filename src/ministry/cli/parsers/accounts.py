"""The parsers of ``ministry user``, ``token``, ``group``; ``ministry.cli.accounts`` runs them."""

from __future__ import annotations

import argparse
from typing import Any

from ministry.cli.parsers import Common, Run, add_json_flag, with_remote

__all__ = ["register"]

_IMPLEMENTATION = "ministry.cli.accounts"


def register(commands: Any, common: Common) -> None:
    """Add the ``user``, ``token`` and ``group`` sub-commands."""
    common = with_remote(common)
    _register_users(commands, common)
    _register_tokens(commands, common)
    _register_groups(commands, common)


def _register_users(commands: Any, common: Common) -> None:
    users = commands.add_parser("user", help="manage users").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = users.add_parser("add", help="create a user (asks for the password)")
    common(add)
    add.add_argument("name", help="the new user's name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument("--admin", action="store_true", help="make the user a server administrator")
    add.set_defaults(run=Run(_IMPLEMENTATION, "add_user"))
    update = users.add_parser("update", help="change a user's password, role or state")
    common(update)
    update.add_argument("name", help="the user to change")
    update.add_argument("--password", action="store_true", help="ask for a new password")
    update.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    update.add_argument("--admin", action=argparse.BooleanOptionalAction, help="server admin role")
    update.add_argument(
        "--disabled", action=argparse.BooleanOptionalAction, help="refuse all their logins"
    )
    update.set_defaults(run=Run(_IMPLEMENTATION, "update_user"))
    for action, text in (("disable", "refuse all logins of a user"),
                         ("enable", "let a disabled user log in again")):  # fmt: skip
        switch = users.add_parser(action, help=text)
        common(switch)
        switch.add_argument("name", help="the user")
        switch.set_defaults(run=Run(_IMPLEMENTATION, "switch_user"), switch=action)
    remove = users.add_parser(
        "remove",
        help="delete a user with their tokens and group memberships",
        description="Delete a user with their tokens, sessions and group memberships. "
        "Refused while an index's permissions, a project's roles or a trusted publisher "
        "still name them (a new user of the same name would get those rights): take "
        "those away first, or use 'user disable'.",
    )
    common(remove)
    remove.add_argument("name", help="the user to remove")
    remove.set_defaults(run=Run(_IMPLEMENTATION, "remove_user"))
    listing = users.add_parser("list", help="list users")
    common(listing)
    add_json_flag(listing)
    listing.set_defaults(run=Run(_IMPLEMENTATION, "list_users"))


def _register_tokens(commands: Any, common: Common) -> None:
    tokens = commands.add_parser("token", help="manage API tokens").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = tokens.add_parser("create", help="create an API token for a user (shown once)")
    common(create)
    create.add_argument("name", help="the user the token acts as")
    create.add_argument("--description", default="", help="what the token is for")
    create.add_argument("--index", help="the only index the token may be used on")
    create.add_argument(
        "--project", action="append", default=[], help="a project it may upload (repeatable)"
    )
    create.add_argument("--expires", help="when it stops working: 30d, 12h, 2w or a date")
    create.set_defaults(run=Run(_IMPLEMENTATION, "create_token"))
    listing = tokens.add_parser("list", help="list a user's tokens (never their secrets)")
    common(listing)
    listing.add_argument("name", help="the user whose tokens to list")
    add_json_flag(listing)
    listing.set_defaults(run=Run(_IMPLEMENTATION, "list_tokens"))
    revoke = tokens.add_parser("revoke", help="revoke a token for good")
    common(revoke)
    revoke.add_argument("name", help="the token's user")
    revoke.add_argument("token_id", help="the token's id (see 'token list')")
    revoke.set_defaults(run=Run(_IMPLEMENTATION, "revoke_token"))


def _register_groups(commands: Any, common: Common) -> None:
    groups = commands.add_parser("group", help="manage groups (granted as @name)").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    for action, text in (("create", "create a group"), ("delete", "delete a group")):
        parser = groups.add_parser(action, help=text)
        common(parser)
        parser.add_argument("group", help="the group's name, without the @")
        parser.set_defaults(run=Run(_IMPLEMENTATION, "change_group"))
    for action, text in (("add", "add users to a group"), ("remove", "remove users from it")):
        parser = groups.add_parser(action, help=text)
        common(parser)
        parser.add_argument("group", help="the group's name, without the @")
        parser.add_argument("users", nargs="+", metavar="USER", help="one or more user names")
        parser.set_defaults(run=Run(_IMPLEMENTATION, "change_group"))
    listing = groups.add_parser("list", help="list groups and their members")
    common(listing)
    add_json_flag(listing)
    listing.set_defaults(run=Run(_IMPLEMENTATION, "list_groups"))
