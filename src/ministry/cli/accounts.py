"""``ministry user …``, ``ministry token …`` and ``ministry group …``."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ministry.cli.admin import Document, admin_for
from ministry.cli.output import print_json
from ministry.errors import InvalidRequest
from ministry.settings import Settings

__all__ = [
    "add_user",
    "change_group",
    "create_token",
    "list_groups",
    "list_tokens",
    "list_users",
    "remove_user",
    "revoke_token",
    "switch_user",
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


def _when(moment: str | None) -> str:
    """An ISO 8601 time of a document as the tables show it, in UTC to the minute."""
    return f"{datetime.fromisoformat(moment).astimezone(UTC):%Y-%m-%d %H:%M}" if moment else ""


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
    # The first admin may come before serving: a local store is made when there is none.
    admin_for(settings, arguments, create=True).add_user(
        arguments.name, password, admin=arguments.admin
    )
    print(f"User {arguments.name!r} created.")
    return 0


def _print_updated(user: Document) -> None:
    state = ", ".join(["admin"] * user["admin"] + ["disabled"] * user["disabled"]) or "user"
    print(f"User {user['name']!r} updated ({state}).")


def update_user(settings: Settings, arguments: argparse.Namespace) -> int:
    """Change a user's password, admin role or disabled flag."""
    wants_password = arguments.password or arguments.password_stdin
    password = _read_password(arguments.password_stdin) if wants_password else None
    user = admin_for(settings, arguments).update_user(
        arguments.name, password=password, admin=arguments.admin, disabled=arguments.disabled
    )
    _print_updated(user)
    return 0


def switch_user(settings: Settings, arguments: argparse.Namespace) -> int:
    """``user disable`` and ``user enable``: the disabled flag alone."""
    disabled = arguments.switch == "disable"
    user = admin_for(settings, arguments).update_user(
        arguments.name, password=None, admin=None, disabled=disabled
    )
    _print_updated(user)
    return 0


def remove_user(settings: Settings, arguments: argparse.Namespace) -> int:
    """Delete a user with their tokens and group memberships."""
    admin_for(settings, arguments).remove_user(arguments.name)
    print(f"User {arguments.name!r} removed, with their tokens and group memberships.")
    return 0


def list_users(settings: Settings, arguments: argparse.Namespace) -> int:
    """Print every user."""
    users = admin_for(settings, arguments).list_users()
    if arguments.json:
        print_json(users)
        return 0
    table = Table("user", "admin", "disabled", "created (UTC)")
    for user in users:
        table.add_row(
            user["name"],
            "yes" if user["admin"] else "",
            "yes" if user["disabled"] else "",
            _when(user["created"]),
        )
    Console().print(table)
    return 0


def create_token(settings: Settings, arguments: argparse.Namespace) -> int:
    """Create a token and print its secret, once."""
    projects = [p.strip() for value in arguments.project for p in value.split(",") if p.strip()]
    secret = admin_for(settings, arguments).create_token(
        arguments.name,
        description=arguments.description,
        expires=arguments.expires,
        index=arguments.index,
        projects=projects,
    )
    print(secret)
    print(
        "This token is shown only once. Upload with user name __token__ and this token "
        "as the password.",
        file=sys.stderr,
    )
    return 0


def list_tokens(settings: Settings, arguments: argparse.Namespace) -> int:
    """Print a user's tokens: what each may do, and when it was created, used, expires."""
    tokens = admin_for(settings, arguments).list_tokens(arguments.name)
    if arguments.json:
        print_json(tokens)
        return 0
    table = Table("id", "description", "scope", "created", "last used", "expires", "state")
    for token in tokens:
        scope = token["index"] or "all indexes"
        if token["projects"]:
            scope += ": " + ", ".join(token["projects"])
        table.add_row(
            token["id"],
            token["description"],
            scope,
            _when(token["created"]),
            _when(token["last_used"]) or "never",
            _when(token["expires"]) or "never",
            "revoked" if token["revoked"] else "live",
        )
    Console(width=160).print(table)
    return 0


def revoke_token(settings: Settings, arguments: argparse.Namespace) -> int:
    """Revoke a token."""
    admin_for(settings, arguments).revoke_token(arguments.name, arguments.token_id)
    print(f"Token {arguments.token_id} of {arguments.name!r} revoked.")
    return 0


def change_group(settings: Settings, arguments: argparse.Namespace) -> int:
    """Create, delete, add to or remove from a group."""
    users = getattr(arguments, "users", [])
    admin_for(settings, arguments).change_group(arguments.action, arguments.group, users)
    print(f"Group {arguments.group!r}: {arguments.action} done.")
    return 0


def list_groups(settings: Settings, arguments: argparse.Namespace) -> int:
    """Print every group and its members."""
    groups = admin_for(settings, arguments).list_groups()
    if arguments.json:
        print_json(groups)
        return 0
    table = Table("group", "members")
    for group in groups:
        table.add_row(f"@{group['name']}", ", ".join(group["members"]))
    Console().print(table)
    return 0
