"""Where an admin command does its work: the local stores, or a server through its API.

Each command asks ``admin_for`` once and calls the same small interface either way.
Both answer with the documents of ``ministry.core.documents`` (the API's keys), so
a command prints the same text and the same ``--json`` whichever it talked to.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ministry.core.models import RoleName
from ministry.settings import Settings

__all__ = ["Admin", "Document", "admin_for"]

#: One JSON-ready object: a user, a token, an index's settings, a change…
Document = dict[str, Any]


class Admin(Protocol):
    """What the admin commands do, wherever the stores are."""

    def list_users(self) -> list[Document]:
        """Every user."""
        ...

    def add_user(self, name: str, password: str, *, admin: bool) -> Document:
        """Create a user."""
        ...

    def update_user(
        self, name: str, *, password: str | None, admin: bool | None, disabled: bool | None
    ) -> Document:
        """Change what is not None."""
        ...

    def remove_user(self, name: str) -> None:
        """Delete a user with their tokens and group memberships."""
        ...

    def list_tokens(self, user: str) -> list[Document]:
        """A user's tokens, without secrets."""
        ...

    def create_token(
        self, user: str, *, description: str, expires: str | None, index: str | None,
        projects: Sequence[str],
    ) -> str:  # fmt: skip
        """A new token's secret."""
        ...

    def revoke_token(self, user: str, token_id: str) -> None:
        """Revoke one of a user's tokens."""
        ...

    def list_groups(self) -> list[Document]:
        """Every group and its members."""
        ...

    def change_group(self, action: str, group: str, users: Sequence[str]) -> None:
        """``create``, ``delete``, ``add`` users to or ``remove`` them from a group."""
        ...

    def list_indexes(self) -> list[Document]:
        """Every index's settings, by name."""
        ...

    def show_index(self, name: str) -> Document:
        """One index's settings."""
        ...

    def create_index(self, name: str, given: Mapping[str, Any]) -> Document:
        """Create an index with the settings given."""
        ...

    def update_index(self, name: str, given: Mapping[str, Any]) -> Document:
        """Change the settings given."""
        ...

    def delete_index(self, name: str, *, force: bool) -> None:
        """Delete an index."""
        ...

    def change_files(
        self, action: str, index: str, project: str, *, version: str | None,
        filename: str | None, reason: str,
    ) -> list[str]:  # fmt: skip
        """Yank, unyank or delete; the names of the files changed."""
        ...

    def log(self, *, since: int, limit: int, index: str | None) -> list[Document]:
        """The newest changes, newest first."""
        ...

    def promote(self, source: str, project: str, version: str, target: str) -> list[Document]:
        """Promote a release: each file's ``filename``, ``sha256`` and ``created``."""
        ...

    def roles(self, index: str, project: str) -> Document:
        """A project's ``owners`` and ``maintainers``."""
        ...

    def change_role(
        self, change: str, index: str, project: str, principal: str, role: RoleName
    ) -> Document:
        """``add`` or ``remove`` a role; the roles after the change."""
        ...

    def add_publisher(self, index: str, project: str, given: Mapping[str, Any]) -> Document:
        """Add a trusted publisher: ``provider``, ``repository``, ``workflow``,
        ``environment``, ``issuer`` and (locally only) ``owner``."""
        ...

    def list_publishers(self, index: str, project: str | None) -> list[Document]:
        """The publishers of an index, or of one project."""
        ...

    def remove_publisher(self, publisher_id: str) -> Document:
        """Stop a publisher; it as it was."""
        ...


def admin_for(settings: Settings, arguments: argparse.Namespace, *, create: bool = False) -> Admin:
    """The server named by ``--url`` (or ``MINISTRY_URL``), else the local stores (made
    first with ``create``)."""
    environ: Mapping[str, str] = getattr(arguments, "environ", {})
    url = getattr(arguments, "url", None) or environ.get("MINISTRY_URL")
    if url:
        from ministry.cli.remote import RemoteAdmin

        return RemoteAdmin.connect(url, environ, insecure=getattr(arguments, "insecure", False))
    from ministry.cli.local import LocalAdmin

    return LocalAdmin(settings, create=create)
