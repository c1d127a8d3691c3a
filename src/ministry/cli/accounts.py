"""``ministry user …``, ``ministry token …`` and ``ministry group …``."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ministry.cli.output import print_json
from ministry.cli.runtime import local_admin, with_services
from ministry.core.documents import group_document, token_document, user_document
from ministry.core.durations import parse_expiry
from ministry.core.models import Group, Token, User
from ministry.errors import InvalidRequest
from ministry.settings import Settings
from ministry.wiring import Services

__all__ = [
    "add_user",
    "change_group",
    "create_token",
    "list_groups",
    "list_tokens",
    "list_users",
    "revoke_token",
    "update_user",
]


_NO_TERMINAL = (
    "No terminal to ask for the password on: give it on standard input with --password-stdin."
)


def _has_terminal() -> bool:
    """Whether getpass can ask on a terminal: standard input, or the process's own."""
    if sys.stdin.isatty():
        return True
    try:
        with Path("/dev/tty").open("rb"):
            return True
    except OSError:
        return False


def _when(moment: Any) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else ""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    # Without a terminal getpass falls back to reading standard input, with a warning
    # that it may echo, and a script that forgot the flag fails on an empty line.
    if not _has_terminal():
        raise InvalidRequest(_NO_TERMINAL)
    try:
        first = getpass.getpass("Password: ")
        again = getpass.getpass("Repeat the password: ")
    except EOFError as exc:
        raise InvalidRequest(_NO_TERMINAL) from exc
    if again != first:
        raise InvalidRequest("The passwords differ; nothing was changed.")
    return first


def add_user(settings: Settings, arguments: argparse.Namespace) -> int:
    """Create a user."""
    password = _read_password(arguments.password_stdin)

    async def work(services: Services) -> User:
        return await services.accounts.create_user(
            local_admin(), arguments.name, password, admin=arguments.admin
        )

    with_services(settings, work, create=True)  # the first admin may come before serving
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


def list_users(settings: Settings, arguments: argparse.Namespace) -> int:
    """Print every user."""

    async def work(services: Services) -> list[User]:
        return await services.accounts.list_users(local_admin())

    users = with_services(settings, work)
    if arguments.json:
        print_json([user_document(user) for user in users])
        return 0
    table = Table("user", "admin", "disabled", "created (UTC)")
    for user in users:
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

    tokens = with_services(settings, work)
    if arguments.json:
        print_json([token_document(token) for token in tokens])
        return 0
    table = Table("id", "description", "scope", "created", "last used", "expires", "state")
    for token in tokens:
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


def list_groups(settings: Settings, arguments: argparse.Namespace) -> int:
    """Print every group and its members."""

    async def work(services: Services) -> list[Group]:
        return await services.accounts.list_groups(local_admin())

    groups = with_services(settings, work)
    if arguments.json:
        print_json([group_document(group) for group in groups])
        return 0
    table = Table("group", "members")
    for group in groups:
        table.add_row(f"@{group.name}", ", ".join(group.members))
    Console().print(table)
    return 0
