"""``/packages/``: a plain directory listing of the stored files, for people and scripts."""

from __future__ import annotations

from ministry.core.models import DEFAULT_INDEX
from ministry.core.simple_pages import format_upload_time
from ministry.web.base import BaseHandler
from ministry.web.simple import normalized_or_redirect

__all__ = ["PackagesIndexHandler", "PackagesProjectHandler"]


class PackagesIndexHandler(BaseHandler):
    """Every project, one link each."""

    async def get(self) -> None:
        """The project list."""
        projects = await self.services.catalog.projects(DEFAULT_INDEX)
        self.render("packages_index.html", projects=projects)

    head = get


class PackagesProjectHandler(BaseHandler):
    """The files of one project with size, upload time and sha256."""

    async def get(self, name: str) -> None:
        """The file table."""
        normalized = normalized_or_redirect(self, name, "/packages/{}/")
        if normalized is None:
            return
        project, files = await self.services.catalog.project_files(DEFAULT_INDEX, normalized)
        self.render(
            "packages_project.html",
            project=project,
            files=files,
            upload_time=lambda f: format_upload_time(f.upload_time),
        )

    head = get
