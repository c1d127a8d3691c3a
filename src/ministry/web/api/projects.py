"""``/-/api/indexes/<index>/projects/<project>/roles`` and ``…/publishers``: who maintains a
project, and which CI workflows publish it."""

from __future__ import annotations

from ministry.core.documents import publisher_document, roles_document
from ministry.core.models import RoleName
from ministry.core.trusted_publishing import PROVIDERS, Provider
from ministry.errors import InvalidRequest, NotFound
from ministry.web.api.indexes import TargetHandler

__all__ = [
    "IndexPublishersHandler",
    "PublisherByIdHandler",
    "PublisherHandler",
    "PublishersHandler",
    "RoleHandler",
    "RolesHandler",
]


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


class PublishersHandler(TargetHandler):
    """``GET`` a project's trusted publishers, ``POST`` one more (owners and index admins)."""

    async def get(self, index: str, project: str) -> None:
        """The publishers."""
        identity = await self.require_identity()
        found = await self.services.publishers.list(identity, index, self.project_name(project))
        self.send([publisher_document(p) for p in found])

    async def post(self, index: str, project: str) -> None:
        """Add a publisher: ``{"github": "OWNER/REPO"}`` or ``{"gitlab": "NAMESPACE/PROJECT"}``
        with ``workflow`` and, optionally, ``environment`` and ``issuer``."""
        identity = await self.require_identity()
        body = self.body()
        providers: list[Provider] = [p for p in PROVIDERS if p in body]
        if len(providers) != 1:
            raise InvalidRequest('Name one repository: "github": "OWNER/REPO" or "gitlab": ….')
        provider = providers[0]
        values = {key: body.get(key) for key in (provider, "workflow", "environment", "issuer")}
        if not all(isinstance(v, str) or v is None for v in values.values()):
            raise InvalidRequest("Every field of a publisher is text.")
        if not values[provider] or not values["workflow"]:
            raise InvalidRequest('A publisher needs its repository and its "workflow".')
        publisher = await self.services.publishers.add(
            identity,
            index,
            self.project_name(project),
            provider,
            str(values[provider]),
            str(values["workflow"]),
            environment=values["environment"],
            issuer=values["issuer"],
        )
        self.send(publisher_document(publisher), 201)


class PublisherHandler(TargetHandler):
    """``DELETE`` stops one publisher of the project."""

    async def delete(self, index: str, project: str, publisher_id: str) -> None:
        """Remove it; its minted tokens stop uploading at once."""
        identity = await self.require_identity()
        found = await self.services.publishers.list(identity, index, self.project_name(project))
        if publisher_id not in {p.publisher_id for p in found}:
            raise NotFound(f"No trusted publisher {publisher_id!r} of this project.")
        await self.services.publishers.remove(identity, publisher_id)
        self.done()


class IndexPublishersHandler(TargetHandler):
    """``GET /-/api/publishers?index=INDEX``: the publishers of every project of an index
    that the caller manages (what ``ministry publisher list`` shows)."""

    async def get(self) -> None:
        """The publishers, oldest first."""
        identity = await self.require_identity()
        index = self.get_query_argument("index", None)
        if not index:
            raise InvalidRequest("Name the index: /-/api/publishers?index=INDEX.")
        found = await self.services.publishers.list(identity, index)
        self.send([publisher_document(p) for p in found])


class PublisherByIdHandler(TargetHandler):
    """``DELETE /-/api/publishers/ID`` stops a publisher known by its id alone."""

    async def delete(self, publisher_id: str) -> None:
        """Remove it; the publisher as it was (its tokens stop uploading at once)."""
        identity = await self.require_identity()
        removed = await self.services.publishers.remove(identity, publisher_id)
        self.send(publisher_document(removed))
