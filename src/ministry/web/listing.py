"""``[/<index>]/packages/``: a plain listing of the files, for people and scripts; and
``/packages/<filename>``, the flat file links of pypiserver."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Hashable, Iterator
from itertools import islice

from cachetools import FIFOCache
from tornado.escape import url_escape, xhtml_escape

from ministry.core.models import DEFAULT_INDEX
from ministry.core.project_list import ProjectList
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
    "compressed_rows",
]

#: Where the template puts the table's rows, which are written apart.
_ROWS = "<!-- ministry: rows -->"
#: Rows written between two flushes.
_ROWS_PER_CHUNK = 2000
#: Compressed bytes inflated per write when the kept rows are sent again.
_COMPRESSED_CHUNK = 32 * 1024
#: Row tables kept per application (one per index and visibility), first in first out.
_ROWS_KEPT = 16
#: The project list a table was made from, and the table, deflated.
_Kept = FIFOCache[Hashable, tuple[ProjectList, bytes]]


def compressed_rows() -> _Kept:
    """An application's row tables, keyed by index and visibility (``app.make_app``)."""
    return FIFOCache(_ROWS_KEPT)


class PackagesIndexHandler(BaseHandler):
    """Every project the index shows, one link each.

    With 100,000 projects the page is megabytes, so it is never whole in memory: the
    template renders the frame around a marker, and the rows are written a chunk at
    a time, with the event loop free between chunks. The first request makes them
    from the catalog's compact project list and keeps them deflated (a tenth of
    their size) while that list stands; later ones inflate them as they are sent,
    which costs far less than making them again. The ETag names the frame and the
    list, so a client's current copy costs neither.
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
        # Per application (app.py makes it), like everything a handler keeps.
        kept: _Kept = self.application.settings["compressed_rows"]
        key = (index, access.visible)
        self.write(head)
        table = kept.get(key)
        if table is not None and table[0] is projects:
            await self._inflate(table[1])
        else:
            kept[key] = (projects, await self._make_rows(projects))
        self.finish(tail)

    head = get

    async def _make_rows(self, projects: ProjectList) -> bytes:
        """Write the rows a chunk at a time; their deflated form, to keep."""
        compressor = zlib.compressobj(6)
        deflated = []
        for chunk in _chunks(projects.rows(), _ROWS_PER_CHUNK):
            rows = "".join(_row(*row) for row in chunk).encode()
            deflated.append(compressor.compress(rows))
            self.write(rows)
            await self.flush()
        deflated.append(compressor.flush())
        return b"".join(deflated)

    async def _inflate(self, deflated: bytes) -> None:
        """Write kept rows, inflated a chunk at a time."""
        decompressor = zlib.decompressobj()
        for start in range(0, len(deflated), _COMPRESSED_CHUNK):
            self.write(decompressor.decompress(deflated[start : start + _COMPRESSED_CHUNK]))
            await self.flush()
        self.write(decompressor.flush())


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
