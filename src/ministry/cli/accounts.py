"""``ministry user add|list`` and ``ministry token create``."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from ministry.cli.runtime import with_services
from ministry.core.models import Token, User
from ministry.errors import InvalidRequest
from ministry.settings import Settings
from ministry.wiring import Services

__all__ = ["register"]


def register(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the ``user`` and ``token`` sub-commands."""
    user = commands.add_parser("user", help="manage users").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = user.add_parser("add", help="create a user (asks for the password)")
    common(add)
    add.add_argument("name")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    add.add_argument("--admin", action="store_true", help="make the user a server administrator")
    add.set_defaults(run=add_user)
    listing = user.add_parser("list", help="list users")
    common(listing)
    listing.set_defaults(run=list_users)

    token = commands.add_parser("token", help="manage API tokens").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = token.add_parser("create", help="create an API token for a user (shown once)")
    common(create)
    create.add_argument("name", help="the user the token acts as")
    create.add_argument("--description", default="", help="what the token is for")
    create.set_defaults(run=create_token)
    tokens = token.add_parser("list", help="list a user's tokens (never their secrets)")
    common(tokens)
    tokens.add_argument("name", help="the user whose tokens to list")
    tokens.set_defaults(run=list_tokens)


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

    async def work(services: Services) -> None:
        await services.auth.create_user(arguments.name, password, admin=arguments.admin)

    with_services(settings, work)
    print(f"User {arguments.name!r} created.")
    return 0


def list_users(settings: Settings, _arguments: argparse.Namespace) -> int:
    """Print every user."""

    async def work(services: Services) -> list[User]:
        return await services.metadata.list_users()

    table = Table("user", "admin", "created (UTC)")
    for user in with_services(settings, work):
        table.add_row(user.name, "yes" if user.is_admin else "", f"{user.created:%Y-%m-%d %H:%M}")
    Console().print(table)
    return 0


def create_token(settings: Settings, arguments: argparse.Namespace) -> int:
    """Create a token and print its secret, once."""

    async def work(services: Services) -> str:
        _token, secret = await services.auth.create_token(
            arguments.name, description=arguments.description
        )
        return secret

    secret = with_services(settings, work)
    print(secret)
    print(
        "This token is shown only once. Upload with user name __token__ and this token "
        "as the password.",
        file=sys.stderr,
    )
    return 0


def list_tokens(settings: Settings, arguments: argparse.Namespace) -> int:
    """Print a user's tokens: id, description, and when they were created and last used."""

    async def work(services: Services) -> list[Token]:
        return await services.metadata.list_tokens(arguments.name)

    table = Table("id", "description", "created (UTC)", "last used (UTC)")
    for token in with_services(settings, work):
        last_used = f"{token.last_used:%Y-%m-%d %H:%M}" if token.last_used else "never"
        table.add_row(
            token.token_id, token.description, f"{token.created:%Y-%m-%d %H:%M}", last_used
        )
    Console().print(table)
    return 0
