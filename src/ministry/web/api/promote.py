"""``POST /-/api/indexes/<index>/projects/<project>/releases/<version>/promote``:
a release published in another hosted index, bytes untouched (docs/api.md)."""

from __future__ import annotations

from ministry.errors import InvalidRequest
from ministry.web.api.indexes import TargetHandler

__all__ = ["PromoteHandler"]

#: No index name is longer (two parts of a hundred characters); a longer one is not echoed.
_LONGEST = 201


class PromoteHandler(TargetHandler):
    """``POST`` ``{"to": INDEX}`` promotes the release the URL names into that index."""

    async def post(self, index: str, project: str, version: str) -> None:
        """Promote; each file as the target holds it, ``created`` false if it was there."""
        identity = await self.require_identity()
        target = self.body().get("to")
        if not isinstance(target, str) or not target or len(target) > _LONGEST:
            raise InvalidRequest('Name the index to promote to: {"to": "INDEX"}.')
        name = self.project_name(project)
        results = await self.services.promote.promote(identity, index, name, version, target)
        files = [
            {
                "filename": r.file.filename,
                "sha256": r.file.sha256,
                "created": r.created,
                "yanked": r.file.yanked,
            }
            for r in results
        ]
        self.send(
            {"project": name, "version": version, "from": index, "to": target, "files": files}
        )
