"""``ministry user …``, ``ministry token …`` and ``ministry group …``."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from ministry.cli.runtime import local_admin, with_services
from ministry.core.durations import parse_expiry
from ministry.core.models import Group, Token, User
from ministry.errors import InvalidRequest
from ministry.settings import Settings
from ministry.wiring import Services

__all__ = ["register"]

Common = Callable[[argparse.ArgumentParser], None]


def _when(moment: Any) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else ""


def register(commands: Any, common: Common) -> None:
    """Add the ``user``, ``token`` and ``group`` sub-commands."""
    _register_users(commands, common)
    _register_tokens(commands, common)
    _register_groups(commands, common)


def _register_users(commands: Any, common: Common) -> None:
    users = commands.add_parser("user", help="manage users").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = users.add_parser("add", help="create a user (asks for the password)")
    common(add)
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument("--admin", action="store_true", help="make the user a server administrator")
    add.set_defaults(run=add_user)
    update = users.add_parser("update", help="change a user's password, role or state")
    common(update)
    update.add_argument("name")
    update.add_argument("--password", action="store_true", help="ask for a new password")
    update.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    update.add_argument("--admin", action=argparse.BooleanOptionalAction, help="server admin role")
    update.add_argument(
        "--disabled", action=argparse.BooleanOptionalAction, help="refuse all their logins"
    )
    update.set_defaults(run=update_user)
    listing = users.add_parser("list", help="list users")
    common(listing)
    listing.set_defaults(run=list_users)


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
    create.set_defaults(run=create_token)
    listing = tokens.add_parser("list", help="list a user's tokens (never their secrets)")
    common(listing)
    listing.add_argument("name", help="the user whose tokens to list")
    listing.set_defaults(run=list_tokens)
    revoke = tokens.add_parser("revoke", help="revoke a token for good")
    common(revoke)
    revoke.add_argument("name", help="the token's user")
    revoke.add_argument("token_id", help="the token's id (see 'token list')")
    revoke.set_defaults(run=revoke_token)


def _register_groups(commands: Any, common: Common) -> None:
    groups = commands.add_parser("group", help="manage groups (granted as @name)").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    for action, text in (("create", "create a group"), ("delete", "delete a group")):
        parser = groups.add_parser(action, help=text)
        common(parser)
        parser.add_argument("group")
        parser.set_defaults(run=change_group)
    for action, text in (("add", "add users to a group"), ("remove", "remove users from it")):
        parser = groups.add_parser(action, help=text)
        common(parser)
        parser.add_argument("group")
        parser.add_argument("users", nargs="+")
        parser.set_defaults(run=change_group)
    listing = groups.add_parser("list", help="list groups and their members")
    common(listing)
    listing.set_defaults(run=list_groups)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat the password: ") != first:
        raise InvalidRequest("The passwords differ; nothing was changed.")
    return first


def add_user(settings: Settings, arguments: argparse.Namespace) -> int:
    """Create a user."""
    password = _read_password(arguments.password_stdin)

    async def work(services: Services) -> User:
        return await services.accounts.create_user(
            local_admin(), arguments.name, password, admin=arguments.admin
        )

    with_services(settings, work)
    print(f"User {arguments.name!r} created.")
    return 0


def update_user(settings: Settings, arguments: argparse.Namespace) -> int:
    """Change a user's password, admin role or disabled flag."""
    wants_password = arguments.password or arguments.password_stdin
    password = _read_password(arguments.password_stdin) if wants_password else None

    async def work(services: Services) -> User:
        return await services.accounts.update_user(
            local_admin(),
            arguments.name,
            password=password,
            admin=arguments.admin,
            disabled=arguments.disabled,
        )

    user = with_services(settings, work)
    state = ", ".join(["admin"] * user.is_admin + ["disabled"] * user.disabled) or "user"
    print(f"User {user.name!r} updated ({state}).")
    return 0


def list_users(settings: Settings, _arguments: argparse.Namespace) -> int:
    """Print every user."""

    async def work(services: Services) -> list[User]:
        return await services.accounts.list_users(local_admin())

    table = Table("user", "admin", "disabled", "created (UTC)")
    for user in with_services(settings, work):
        table.add_row(
            user.name,
            "yes" if user.is_admin else "",
            "yes" if user.disabled else "",
            _when(user.created),
        )
    Console().print(table)
    return 0


def create_token(settings: Settings, arguments: argparse.Namespace) -> int:
    """Create a token and print its secret, once."""
    projects = [p.strip() for value in arguments.project for p in value.split(",") if p.strip()]

    async def work(services: Services) -> tuple[Token, str]:
        return await services.accounts.create_token(
            local_admin(),
            arguments.name,
            description=arguments.description,
            expires=parse_expiry(arguments.expires) if arguments.expires else None,
            index=arguments.index,
            projects=projects,
        )

    _token, secret = with_services(settings, work)
    print(secret)
    print(
        "This token is shown only once. Upload with user name __token__ and this token "
        "as the password.",
        file=sys.stderr,
    )
    return 0


def list_tokens(settings: Settings, arguments: argparse.Namespace) -> int:
    """Print a user's tokens: what each may do, and when it was created, used, expires."""

    async def work(services: Services) -> list[Token]:
        return await services.accounts.list_tokens(local_admin(), arguments.name)

    table = Table("id", "description", "scope", "created", "last used", "expires", "state")
    for token in with_services(settings, work):
        scope = token.index or "all indexes"
        if token.projects:
            scope += ": " + ", ".join(token.projects)
        table.add_row(
            token.token_id,
            token.description,
            scope,
            _when(token.created),
            _when(token.last_used) or "never",
            _when(token.expires) or "never",
            "revoked" if token.revoked else "live",
        )
    Console(width=160).print(table)
    return 0


def revoke_token(settings: Settings, arguments: argparse.Namespace) -> int:
    """Revoke a token."""

    async def work(services: Services) -> None:
        await services.accounts.revoke_token(local_admin(), arguments.name, arguments.token_id)

    with_services(settings, work)
    print(f"Token {arguments.token_id} of {arguments.name!r} revoked.")
    return 0


def change_group(settings: Settings, arguments: argparse.Namespace) -> int:
    """Create, delete, add to or remove from a group."""

    async def work(services: Services) -> None:
        accounts, admin, group = services.accounts, local_admin(), arguments.group
        if arguments.action == "create":
            await accounts.create_group(admin, group)
        elif arguments.action == "delete":
            await accounts.delete_group(admin, group)
        elif arguments.action == "add":
            await accounts.change_members(admin, group, add=arguments.users)
        else:
            await accounts.change_members(admin, group, remove=arguments.users)

    with_services(settings, work)
    print(f"Group {arguments.group!r}: {arguments.action} done.")
    return 0


def list_groups(settings: Settings, _arguments: argparse.Namespace) -> int:
    """Print every group and its members."""

    async def work(services: Services) -> list[Group]:
        return await services.accounts.list_groups(local_admin())

    table = Table("group", "members")
    for group in with_services(settings, work):
        table.add_row(f"@{group.name}", ", ".join(group.members))
    Console().print(table)
    return 0
