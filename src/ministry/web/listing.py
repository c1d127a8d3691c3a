"""``[/<index>]/packages/``: a plain listing of the files, for people and scripts; and
``/packages/<filename>``, the flat file links of pypiserver."""

from __future__ import annotations

from collections.abc import Hashable

from cachetools import FIFOCache

from ministry.core.models import DEFAULT_INDEX, Project
from ministry.core.simple_pages import format_upload_time
from ministry.errors import NotFound
from ministry.web.base import BaseHandler
from ministry.web.simple import normalized_or_redirect
from ministry.web.urls import file_path

__all__ = [
    "PackagesFileHandler",
    "PackagesIndexHandler",
    "PackagesProjectHandler",
    "rendered_listings",
]

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


class PackagesFileHandler(BaseHandler):
    """``/packages/<filename>``: pypiserver served every file at such a flat URL, and old
    requirements files and links still name them.

    Redirects to the file when the indexes this caller may read host one file of that
    name, or several with the same bytes (the default index's copy first); otherwise
    404, the same whether the name is unknown, ambiguous or only in an index the caller
    may not read (docs/security.md, "URLs of an index").
    """

    async def get(self, filename: str) -> None:
        """302 to the file's own URL, or 404."""
        identity = await self.identity()
        readable = await self.services.indexes.readable_names(identity, hosted=True)
        found = await self.services.catalog.hosted_files(readable, filename)
        if not found or len({file.sha256 for file in found}) > 1:
            raise NotFound(
                "No single file of that name in the indexes you may read: find it under "
                "/packages/<project>/ or /<index>/packages/<project>/."
            )
        file = found[0]
        self.set_header("Cache-Control", "private, no-cache")
        self.redirect(file_path(file.index, file.project, file.filename))

    head = get
