"""Owners and maintainers of projects, and the check an upload passes inside its transaction."""

from __future__ import annotations

import sqlite3

from packaging.utils import NormalizedName

from ministry.core.models import (
    Actor,
    AddFileOutcome,
    AddFileResult,
    DistFile,
    ProjectRole,
    Publisher,
)
from ministry.errors import Conflict, NotFound
from ministry.storage.sqlite.database import Database

__all__ = ["RolesMixin", "judge_publisher", "record_owner"]

_SELECT = (
    "SELECT index_name, project, principal, role FROM project_roles"
    " WHERE index_name = ? AND project = ? ORDER BY role DESC, principal"
)


def _roles(c: sqlite3.Connection, index: str, project: str) -> list[ProjectRole]:
    return [ProjectRole(*row) for row in c.execute(_SELECT, (index, project))]


def judge_publisher(
    c: sqlite3.Connection, file: DistFile, publisher: Publisher
) -> AddFileResult | ProjectRole | None:
    """A refusal for a publisher without a role in an existing project; for a new
    project, the owner to record once the file is in (``record_owner``)."""
    roles = _roles(c, file.index, file.project)
    exists = (
        roles
        or c.execute(
            "SELECT 1 FROM projects WHERE index_name = ? AND name = ?", (file.index, file.project)
        ).fetchone()
    )
    if exists:
        allowed = publisher.principals
        if allowed is not None and not allowed & {r.principal for r in roles}:
            return AddFileResult(AddFileOutcome.NOT_PERMITTED, file)
        return None
    if publisher.owner is None:
        return None
    return ProjectRole(file.index, file.project, publisher.owner, "owner")


def record_owner(c: sqlite3.Connection, owner: ProjectRole, actor: Actor) -> None:
    """The first owner of a project, in the transaction that adds its first file."""
    Database._log(c, actor, "add-owner", owner.index, project=owner.project, detail=owner.principal)
    c.execute(
        "INSERT INTO project_roles VALUES (?, ?, ?, 'owner')",
        (owner.index, owner.project, owner.principal),
    )


def _check_owners_left(roles: list[ProjectRole], principal: str) -> None:
    owners = {r.principal for r in roles if r.role == "owner"}
    if owners == {principal}:
        raise Conflict(
            f"{principal!r} is the last owner of project {roles[0].project!r}: "
            "add another owner first."
        )


class RolesMixin(Database):
    """The project roles of ``PackageStore``: owners and maintainers."""

    async def list_roles(self, index: str, project: NormalizedName) -> list[ProjectRole]:
        """The owners, then the maintainers, of a project."""
        return await self._lookup(lambda c: _roles(c, index, project))

    async def add_role(self, role: ProjectRole, actor: Actor) -> bool:
        """Give a principal a role, replacing the one it had; False if it had this one."""

        def add(connection: sqlite3.Connection) -> bool:
            with self._write(connection) as c:
                roles = _roles(c, role.index, role.project)
                held = {r.principal: r.role for r in roles}
                if held.get(role.principal) == role.role:
                    return False
                if held.get(role.principal) == "owner":
                    _check_owners_left(roles, role.principal)
                self._log(
                    c, actor, f"add-{role.role}", role.index, project=role.project,
                    detail=role.principal,
                )  # fmt: skip
                c.execute(
                    "INSERT OR REPLACE INTO project_roles VALUES (?, ?, ?, ?)",
                    (role.index, role.project, role.principal, role.role),
                )
            return True

        return await self._run(add)

    async def remove_role(self, role: ProjectRole, actor: Actor) -> None:
        """Take a role away, unless it is the last owner's."""

        def remove(connection: sqlite3.Connection) -> None:
            with self._write(connection) as c:
                roles = _roles(c, role.index, role.project)
                if role not in roles:
                    raise NotFound(
                        f"{role.principal!r} is no {role.role} of project {role.project!r}."
                    )
                if role.role == "owner":
                    _check_owners_left(roles, role.principal)
                self._log(
                    c, actor, f"remove-{role.role}", role.index, project=role.project,
                    detail=role.principal,
                )  # fmt: skip
                c.execute(
                    "DELETE FROM project_roles WHERE index_name = ? AND project = ?"
                    " AND principal = ?",
                    (role.index, role.project, role.principal),
                )

        await self._run(remove)
