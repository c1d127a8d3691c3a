"""``/-/api/indexes/<index>/projects/<project>/roles``: a project's owners and maintainers."""

from __future__ import annotations

from typing import Any

from ministry.core.models import ProjectRole, RoleName
from ministry.web.api.indexes import TargetHandler

__all__ = ["RoleHandler", "RolesHandler"]


def roles_document(index: str, project: str, roles: list[ProjectRole]) -> dict[str, Any]:
    """Who owns and who maintains a project (no owners: the index's admins decide)."""
    return {
        "index": index,
        "project": project,
        "owners": [r.principal for r in roles if r.role == "owner"],
        "maintainers": [r.principal for r in roles if r.role == "maintainer"],
    }


class RolesHandler(TargetHandler):
    """``GET`` the roles of a project, for anyone who may read its index."""

    async def get(self, index: str, project: str) -> None:
        """The owners and maintainers."""
        await self.read_access(index)
        name = self.project_name(project)
        roles = await self.services.ownership.roles(index, name)
        self.send(roles_document(index, name, roles))


class RoleHandler(TargetHandler):
    """``PUT`` makes a user or ``@group`` an owner or maintainer, ``DELETE`` takes it away."""

    async def put(self, index: str, project: str, kind: str, principal: str) -> None:
        """Add the role; the roles after the change."""
        identity = await self.require_identity()
        name = self.project_name(project)
        role: RoleName = "owner" if kind == "owners" else "maintainer"
        roles = await self.services.ownership.add(identity, index, name, principal, role)
        self.send(roles_document(index, name, roles))

    async def delete(self, index: str, project: str, kind: str, principal: str) -> None:
        """Remove the role (never the last owner's: 409); the roles after the change."""
        identity = await self.require_identity()
        name = self.project_name(project)
        role: RoleName = "owner" if kind == "owners" else "maintainer"
        roles = await self.services.ownership.remove(identity, index, name, principal, role)
        self.send(roles_document(index, name, roles))
