"""``/-/api/indexes/…``: indexes, and yanking and deleting what is in them."""

from __future__ import annotations

from typing import Any

from packaging.utils import InvalidName, NormalizedName, canonicalize_name

from ministry.core.index_settings import index_settings, new_index, settings_document
from ministry.core.models import DistFile
from ministry.core.permissions import may_read, seen_by
from ministry.core.upstream_entries import keeping_secrets
from ministry.errors import InvalidRequest, NotFound
from ministry.web.api.base import ApiHandler

__all__ = ["DeleteHandler", "IndexHandler", "IndexesHandler", "TargetHandler", "YankHandler"]


def _files(files: list[DistFile]) -> dict[str, Any]:
    return {"files": [{"filename": f.filename, "yanked": f.yanked} for f in files]}


class IndexesHandler(ApiHandler):
    """List the indexes the caller may see; create one (server administrators)."""

    async def get(self) -> None:
        """Every index the caller may read."""
        identity = await self.identity()
        configs = await self.services.indexes.configs()
        visible = [seen_by(identity, c, configs) for c in configs.values() if may_read(identity, c)]
        self.send({"indexes": [settings_document(c) for c in visible]})

    async def post(self) -> None:
        """Create an index from ``{"name": …, settings…}``."""
        identity = await self.require_identity()
        body = self.body()
        name = body.pop("name", None)
        if not isinstance(name, str):
            raise InvalidRequest("Give the new index a 'name'.")
        created = await self.services.indexes.create(identity, new_index(name, body))
        self.send(settings_document(created), status=201)


class IndexHandler(ApiHandler):
    """One index: show, change, delete."""

    async def get(self, index: str) -> None:
        """An index's settings (to anyone who may read it)."""
        access = await self.read_access(index)
        self.send(settings_document(access.index))

    async def patch(self, index: str) -> None:
        """Change the settings named in the body."""
        identity = await self.require_identity()
        body = self.body()
        # A document fetched with GET may be sent back whole: its fixed fields must match.
        current = await self.services.indexes.readable(index, identity)
        for fixed in ("name", "kind"):
            if fixed in body and body.pop(fixed) != getattr(current, fixed):
                raise InvalidRequest(f"An index's {fixed} cannot change.")
        shown = settings_document(current)
        for name in ("upstream", "upstreams"):
            if name in body and body[name] == shown[name]:
                del body[name]  # sent back as shown (a GET document has both): unchanged
        changes = index_settings(body)
        if "upstreams" in changes:
            # Sent back as shown: the passwords stay as they were.
            changes["upstreams"] = keeping_secrets(changes["upstreams"], current.upstreams)
        updated = await self.services.indexes.update(identity, index, changes)
        configs = await self.services.indexes.configs()
        self.send(settings_document(seen_by(identity, updated, configs)))

    async def delete(self, index: str) -> None:
        """Delete the index (``?force=true`` if it still holds projects)."""
        identity = await self.require_identity()
        force = self.get_query_argument("force", "false").lower() in ("1", "true", "yes")
        await self.services.indexes.delete(identity, index, force=force)
        self.done()


class TargetHandler(ApiHandler):
    """Shared by the handlers that act on a project, a release or a file of an index."""

    def project_name(self, project: str) -> NormalizedName:
        """The normalized project name; any spelling of it is accepted."""
        try:
            return canonicalize_name(project, validate=True)
        except InvalidName as exc:
            raise NotFound(f"No project named {project[:100]!r}.") from exc

    def reason(self) -> str:
        """The yank reason of the body (empty when not given)."""
        reason = self.body().get("reason", "")
        if not isinstance(reason, str):
            raise InvalidRequest("A yank 'reason' must be text.")
        return reason


class DeleteHandler(TargetHandler):
    """``DELETE`` a project, a release (``…/releases/V``) or a file (``…/files/F``)."""

    async def delete(
        self, index: str, project: str, version: str | None = None, filename: str | None = None
    ) -> None:
        """Delete what the URL names; deleted filenames stay retired."""
        identity = await self.require_identity()
        deleted = await self.services.maintenance.delete(
            identity, index, self.project_name(project), version=version, filename=filename
        )
        self.send(_files(deleted))


class YankHandler(TargetHandler):
    """``POST`` yanks a release or file (``{"reason": …}``), ``DELETE`` unyanks it."""

    async def post(
        self, index: str, project: str, version: str | None = None, filename: str | None = None
    ) -> None:
        """Yank what the URL names."""
        identity = await self.require_identity()
        changed = await self.services.maintenance.yank(
            identity,
            index,
            self.project_name(project),
            version=version,
            filename=filename,
            reason=self.reason(),
        )
        self.send(_files(changed))

    async def delete(
        self, index: str, project: str, version: str | None = None, filename: str | None = None
    ) -> None:
        """Unyank what the URL names."""
        identity = await self.require_identity()
        changed = await self.services.maintenance.unyank(
            identity, index, self.project_name(project), version=version, filename=filename
        )
        self.send(_files(changed))
