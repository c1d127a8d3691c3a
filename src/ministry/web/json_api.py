"""``[/<index>]/pypi/<project>/json`` and ``…/pypi/<project>/<version>/json``."""

from __future__ import annotations

from ministry.core.models import DEFAULT_INDEX
from ministry.web.base import BaseHandler
from ministry.web.simple import normalized_or_redirect

__all__ = ["ProjectJsonHandler"]


class ProjectJsonHandler(BaseHandler):
    """The JSON API document of a project or a release."""

    async def get(
        self, project: str, version: str | None = None, index: str = DEFAULT_INDEX
    ) -> None:
        """The document; 301 for a non-normalized name, 404 for unknown names or versions."""
        access = await self.read_access(index)
        template = "{prefix}/pypi/{project}/" + (f"{version}/json" if version else "json")
        normalized = normalized_or_redirect(self, project, template)
        if normalized is None:
            return
        document = await self.services.catalog.project_json(
            access, normalized, version, self.base_url
        )
        self.set_header("Content-Type", "application/json")
        self.set_header("X-PyPI-Last-Serial", str(document.last_serial))
        self.set_header("Access-Control-Allow-Origin", "*")
        self.cache_for(access, "max-age=0, must-revalidate")
        self.set_header("Vary", "Authorization")
        self.finish(document.body)

    head = get
