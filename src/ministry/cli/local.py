"""The admin commands on the local stores, as the local administrator
(``ministry.cli.admin`` says why both ways share one interface)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from packaging.utils import canonicalize_name

from ministry.cli.admin import Document
from ministry.cli.runtime import local_admin, with_services
from ministry.core.documents import (
    change_document,
    group_document,
    publisher_document,
    roles_document,
    token_document,
    user_document,
)
from ministry.core.durations import parse_expiry
from ministry.core.index_settings import index_settings, new_index, settings_document
from ministry.core.models import RoleName
from ministry.core.trusted_publishing import project_named
from ministry.settings import Settings
from ministry.wiring import Services

__all__ = ["LocalAdmin"]

T = TypeVar("T")


class LocalAdmin:
    """The admin commands on the local stores, as the local administrator."""

    def __init__(self, settings: Settings, *, create: bool = False) -> None:
        self._settings = settings
        self._create = create

    def _run(self, work: Callable[[Services], Awaitable[T]]) -> T:
        return with_services(self._settings, work, create=self._create)

    def list_users(self) -> list[Document]:
        """Every user."""

        async def work(services: Services) -> list[Document]:
            return [user_document(u) for u in await services.accounts.list_users(local_admin())]

        return self._run(work)

    def add_user(self, name: str, password: str, *, admin: bool) -> Document:
        """Create a user."""

        async def work(services: Services) -> Document:
            accounts = services.accounts
            return user_document(
                await accounts.create_user(local_admin(), name, password, admin=admin)
            )

        return self._run(work)

    def update_user(
        self, name: str, *, password: str | None, admin: bool | None, disabled: bool | None
    ) -> Document:
        """Change what is not None."""

        async def work(services: Services) -> Document:
            user = await services.accounts.update_user(
                local_admin(), name, password=password, admin=admin, disabled=disabled
            )
            return user_document(user)

        return self._run(work)

    def remove_user(self, name: str) -> None:
        """Delete a user with their tokens and group memberships."""

        async def work(services: Services) -> None:
            await services.accounts.remove_user(local_admin(), name)

        self._run(work)

    def list_tokens(self, user: str) -> list[Document]:
        """A user's tokens, without secrets."""

        async def work(services: Services) -> list[Document]:
            tokens = await services.accounts.list_tokens(local_admin(), user)
            return [token_document(t) for t in tokens]

        return self._run(work)

    def create_token(
        self, user: str, *, description: str, expires: str | None, index: str | None,
        projects: Sequence[str],
    ) -> str:  # fmt: skip
        """A new token's secret."""

        async def work(services: Services) -> str:
            _token, secret = await services.accounts.create_token(
                local_admin(),
                user,
                description=description,
                expires=parse_expiry(expires) if expires else None,
                index=index,
                projects=list(projects),
            )
            return str(secret)

        return self._run(work)

    def revoke_token(self, user: str, token_id: str) -> None:
        """Revoke one of a user's tokens."""

        async def work(services: Services) -> None:
            await services.accounts.revoke_token(local_admin(), user, token_id)

        self._run(work)

    def list_groups(self) -> list[Document]:
        """Every group and its members."""

        async def work(services: Services) -> list[Document]:
            groups = await services.accounts.list_groups(local_admin())
            return [group_document(g) for g in groups]

        return self._run(work)

    def change_group(self, action: str, group: str, users: Sequence[str]) -> None:
        """``create``, ``delete``, ``add`` or ``remove``."""

        async def work(services: Services) -> None:
            accounts, admin = services.accounts, local_admin()
            if action == "create":
                await accounts.create_group(admin, group)
            elif action == "delete":
                await accounts.delete_group(admin, group)
            elif action == "add":
                await accounts.change_members(admin, group, add=list(users))
            else:
                await accounts.change_members(admin, group, remove=list(users))

        self._run(work)

    def list_indexes(self) -> list[Document]:
        """Every index's settings, by name."""

        async def work(services: Services) -> list[Document]:
            configs = (await services.indexes.configs()).values()
            return [settings_document(c) for c in sorted(configs, key=lambda c: c.name)]

        return self._run(work)

    def show_index(self, name: str) -> Document:
        """One index's settings."""

        async def work(services: Services) -> Document:
            return settings_document(await services.indexes.get(name))

        return self._run(work)

    def create_index(self, name: str, given: Mapping[str, Any]) -> Document:
        """Create an index with the settings given."""

        async def work(services: Services) -> Document:
            config = await services.indexes.create(local_admin(), new_index(name, dict(given)))
            return settings_document(config)

        return self._run(work)

    def update_index(self, name: str, given: Mapping[str, Any]) -> Document:
        """Change the settings given."""
        changes = index_settings(dict(given))

        async def work(services: Services) -> Document:
            config = await services.indexes.update(local_admin(), name, changes)
            return settings_document(config)

        return self._run(work)

    def delete_index(self, name: str, *, force: bool) -> None:
        """Delete an index."""

        async def work(services: Services) -> None:
            await services.indexes.delete(local_admin(), name, force=force)

        self._run(work)

    def change_files(
        self, action: str, index: str, project: str, *, version: str | None,
        filename: str | None, reason: str,
    ) -> list[str]:  # fmt: skip
        """Yank, unyank or delete; the names of the files changed."""

        async def work(services: Services) -> list[str]:
            maintenance, name = services.maintenance, canonicalize_name(project)
            target = {"version": version, "filename": filename}
            if action == "yank":
                files = await maintenance.yank(local_admin(), index, name, reason=reason, **target)
            elif action == "unyank":
                files = await maintenance.unyank(local_admin(), index, name, **target)
            else:
                files = await maintenance.delete(local_admin(), index, name, **target)
            return [f.filename for f in files]

        return self._run(work)

    def log(self, *, since: int, limit: int, index: str | None) -> list[Document]:
        """The newest changes, newest first; an index that never was one is a mistake."""

        async def work(services: Services) -> list[Document]:
            changes = await services.audit.latest(
                local_admin(), since=since, limit=limit, index=index
            )
            if not changes and index is not None:
                # A deleted index keeps its changes; a name that never was one is a mistake.
                await services.indexes.get(index)
            return [change_document(c) for c in changes]

        return self._run(work)

    def promote(self, source: str, project: str, version: str, target: str) -> list[Document]:
        """Promote a release: each file's ``filename``, ``sha256`` and ``created``."""

        async def work(services: Services) -> list[Document]:
            results = await services.promote.promote(
                local_admin(), source, canonicalize_name(project), version, target
            )
            return [
                {"filename": r.file.filename, "sha256": r.file.sha256, "created": r.created}
                for r in results
            ]

        return self._run(work)

    def add_publisher(self, index: str, project: str, given: Mapping[str, Any]) -> Document:
        """Add a trusted publisher, as the local administrator."""

        async def work(services: Services) -> Document:
            publisher = await services.publishers.add(
                local_admin(),
                index,
                project_named(project),
                given["provider"],
                given["repository"],
                given["workflow"],
                environment=given["environment"],
                issuer=given["issuer"],
                owner=given["owner"],
            )
            return publisher_document(publisher)

        return self._run(work)

    def list_publishers(self, index: str, project: str | None) -> list[Document]:
        """The publishers of an index, or of one project."""

        async def work(services: Services) -> list[Document]:
            name = project_named(project) if project else None
            found = await services.publishers.list(local_admin(), index, name)
            return [publisher_document(p) for p in found]

        return self._run(work)

    def remove_publisher(self, publisher_id: str) -> Document:
        """Stop a publisher; it as it was."""

        async def work(services: Services) -> Document:
            return publisher_document(await services.publishers.remove(local_admin(), publisher_id))

        return self._run(work)

    def roles(self, index: str, project: str) -> Document:
        """A project's ``owners`` and ``maintainers``."""
        name = canonicalize_name(project)

        async def work(services: Services) -> Document:
            return roles_document(index, name, await services.ownership.roles(index, name))

        return self._run(work)

    def change_role(
        self, change: str, index: str, project: str, principal: str, role: RoleName
    ) -> Document:
        """``add`` or ``remove`` a role, as the local administrator; the roles after."""
        name = canonicalize_name(project)

        async def work(services: Services) -> Document:
            ownership = services.ownership
            act = ownership.add if change == "add" else ownership.remove
            return roles_document(
                index, name, await act(local_admin(), index, name, principal, role)
            )

        return self._run(work)
