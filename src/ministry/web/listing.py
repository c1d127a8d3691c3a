"""``[/<index>]/packages/``: a plain listing of the files, for people and scripts; and
``/packages/<filename>``, the flat file links of pypiserver."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from itertools import islice

from tornado.escape import url_escape, xhtml_escape

from ministry.core.models import DEFAULT_INDEX
from ministry.core.simple_pages import format_upload_time
from ministry.errors import NotFound
from ministry.web.base import BaseHandler
from ministry.web.simple import normalized_or_redirect
from ministry.web.urls import file_path

_Row = tuple[str, str, int]

__all__ = [
    "PackagesFileHandler",
    "PackagesIndexHandler",
    "PackagesProjectHandler",
]

#: Where the template puts the table's rows, which are written apart.
_ROWS = "<!-- ministry: rows -->"
#: Rows written between two flushes.
_ROWS_PER_CHUNK = 2000


class PackagesIndexHandler(BaseHandler):
    """Every project the index shows, one link each.

    With 100,000 projects the page is megabytes, so nothing of it is kept: the
    template renders the frame around a marker, and the rows are written from the
    catalog's compact project list a chunk at a time, with the event loop free
    between chunks. The ETag names the frame and the list, so a client's current
    copy costs neither rendering nor sending.
    """

    async def get(self, index: str = DEFAULT_INDEX) -> None:
        """The project list."""
        access = await self.read_access(index)
        projects = await self.services.catalog.projects(access)
        frame = self.render_string("packages_index.html", rows=_ROWS, index=index)
        head, tail = frame.split(_ROWS.encode(), 1)
        tag = hashlib.sha256(head + tail + projects.fingerprint.encode()).hexdigest()[:32]
        self.set_header("ETag", f'"{tag}"')
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        if self.check_etag_header():
            self.set_status(304)
            self.finish()
            return
        self.write(head)
        for chunk in _chunks(projects.rows(), _ROWS_PER_CHUNK):
            self.write("".join(_row(*row) for row in chunk))
            await self.flush()
        self.finish(tail)

    head = get


def _row(name: str, display_name: str, last_serial: int) -> str:
    """A row as the template's loop wrote it, whitespace included: the same bytes."""
    return (
        f'\n<tr><td><a href="{url_escape(name, plus=False)}/">{xhtml_escape(display_name)}'
        f'</a></td><td class="num">{last_serial}</td></tr>\n'
    )


def _chunks(rows: Iterator[_Row], size: int) -> Iterator[list[_Row]]:
    while chunk := list(islice(rows, size)):
        yield chunk


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
