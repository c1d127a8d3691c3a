"""``[/<index>]/packages/``: a plain listing of the files, for people and scripts."""

from __future__ import annotations

from collections.abc import Hashable

from cachetools import FIFOCache

from ministry.core.models import DEFAULT_INDEX, Project
from ministry.core.simple_pages import format_upload_time
from ministry.web.base import BaseHandler
from ministry.web.simple import normalized_or_redirect

__all__ = ["PackagesIndexHandler", "PackagesProjectHandler", "rendered_listings"]

#: Rendered lists kept per application (one per index and visibility), first in first out.
_LISTINGS_KEPT = 16
_Rendered = FIFOCache[Hashable, tuple[tuple[Project, ...], bytes]]


def rendered_listings() -> _Rendered:
    """An application's rendered lists, keyed by index and visibility (``app.make_app``)."""
    return FIFOCache(_LISTINGS_KEPT)


class PackagesIndexHandler(BaseHandler):
    """Every project the index shows, one link each.

    With 100,000 projects rendering the page takes a second of the event loop, so
    it is rendered once per project list (which the catalog keeps per serial).
    """

    async def get(self, index: str = DEFAULT_INDEX) -> None:
        """The project list."""
        access = await self.read_access(index)
        projects = await self.services.catalog.projects(access)
        # Per application (app.py makes it), like everything a handler keeps.
        rendered: _Rendered = self.application.settings["rendered_listings"]
        key = (index, access.visible)
        kept = rendered.get(key)
        if kept is None or kept[0] is not projects:
            kept = (
                projects,
                self.render_string("packages_index.html", projects=projects, index=index),
            )
            rendered[key] = kept
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(kept[1])

    head = get


class PackagesProjectHandler(BaseHandler):
    """The files of one project with size, upload time and sha256."""

    async def get(self, project: str, index: str = DEFAULT_INDEX) -> None:
        """The file table."""
        access = await self.read_access(index)
        normalized = normalized_or_redirect(self, project, "{prefix}/packages/{project}/")
        if normalized is None:
            return
        view = await self.services.catalog.project_view(access, normalized)
        self.render(
            "packages_project.html",
            project=view,
            files=sorted(view.files, key=lambda f: f.filename),
            upload_time=lambda f: format_upload_time(f.upload_time),
        )

    head = get
