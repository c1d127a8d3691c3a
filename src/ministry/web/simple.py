"""The simple repository API: ``[/<index>]/simple/``, ``…/<project>/`` and ``/<project>/``."""

from __future__ import annotations

import zlib
from urllib.parse import quote

from packaging.utils import InvalidName, NormalizedName, canonicalize_name

from ministry.core.models import DEFAULT_INDEX
from ministry.core.negotiation import SIMPLE_JSON, accepts_encoding, choose_simple_format
from ministry.errors import NotAcceptable, NotFound
from ministry.services.catalog import RenderedPage
from ministry.services.indexes import ReadAccess
from ministry.web.base import BaseHandler

__all__ = ["ProjectPageHandler", "SimpleIndexHandler", "normalized_or_redirect"]

_NOT_ACCEPTABLE = (
    "None of the types in the Accept header is served here; ask for "
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html or text/html."
)

#: zlib's window bits for a gzip header and trailer.
_GZIP_WBITS = 16 + zlib.MAX_WBITS
#: Compressed bytes decompressed per write when a client does not take gzip.
_COMPRESSED_CHUNK = 64 * 1024


class SimplePageHandler(BaseHandler):
    """Sends a rendered page with negotiation, caching and compression headers."""

    def content_type(self) -> str:
        """PEP 691 negotiation; ``?format=`` overrides Accept for people (PEP 691 allows it)."""
        requested = self.get_query_argument("format", None)
        if requested:
            # A "+" typed into a query string arrives as a space; media types have none.
            requested = requested.replace(" ", "+")
        chosen = choose_simple_format(requested or self.request.headers.get("Accept"))
        if chosen is None:
            raise NotAcceptable(_NOT_ACCEPTABLE)
        return chosen

    async def send_page(self, page: RenderedPage, access: ReadAccess) -> None:
        """Write the page, or 304 when the client's copy is current."""
        header = page.content_type
        if page.content_type != SIMPLE_JSON:
            header += "; charset=utf-8"
        self.set_header("Content-Type", header)
        self.set_header("Vary", "Accept, Accept-Encoding, Authorization")
        self.set_header("X-PyPI-Last-Serial", str(page.last_serial))
        self.set_header("Access-Control-Allow-Origin", "*")
        # Clients must see a new upload at once, so they revalidate every time (cheap: 304).
        self.cache_for(access, "max-age=0, must-revalidate")
        if page.stale:
            # The upstream failed; this is the last good copy
            # (docs/security.md, "Upstreams that fail").
            self.set_header("X-Ministry-Upstream", "stale")
            self.set_header("Warning", '110 ministry "Response is Stale"')
        if page.held_back:
            self.set_header("X-Ministry-Held-Back", page.held_back)
        gzipped = accepts_encoding(self.request.headers.get("Accept-Encoding"), "gzip")
        gzip_etag = page.etag[:-1] + '-gzip"'
        # The two encodings' tags name one page: a client's copy in either is current.
        not_modified = any(self._client_has(etag) for etag in (page.etag, gzip_etag))
        self.set_header("ETag", gzip_etag if gzipped else page.etag)
        if not_modified:
            self.set_status(304)
            self.finish()
            return
        if gzipped:
            self.set_header("Content-Encoding", "gzip")
            self.finish(page.gzipped)
        elif page.body is not None:
            self.finish(page.body)
        else:
            await self._send_decompressed(page.gzipped)

    async def _send_decompressed(self, gzipped: bytes) -> None:
        """The plain form of a page kept only compressed, decompressed a chunk at a time
        as it is sent, so that it is never whole in memory."""
        decompressor = zlib.decompressobj(_GZIP_WBITS)
        for start in range(0, len(gzipped), _COMPRESSED_CHUNK):
            self.write(decompressor.decompress(gzipped[start : start + _COMPRESSED_CHUNK]))
            await self.flush()
        self.finish(decompressor.flush())

    def _client_has(self, etag: str) -> bool:
        """Whether If-None-Match names ``etag`` (weakly, or by ``*``).

        Tornado's ``check_etag_header`` compares the response's ETag header, so
        ``etag`` is set as that header first; ``send_page`` sets the one it sends.
        """
        self.set_header("ETag", etag)
        return self.check_etag_header()


def normalized_or_redirect(handler: BaseHandler, name: str, template: str) -> NormalizedName | None:
    """The normalized project name, or None after redirecting (301) to its URL.

    ``template`` is the route's path with ``{prefix}`` (``/<index>`` when the URL
    named the index, else nothing) and ``{project}``. An invalid name is simply
    not found: it is never echoed into a Location header.
    """
    try:
        normalized = canonicalize_name(name, validate=True)
    except InvalidName as exc:
        raise NotFound(f"No project named {name[:100]!r}.") from exc
    if normalized == name:
        return normalized
    index = handler.path_kwargs.get("index")
    prefix = f"/{index}" if index else ""
    target = template.format(prefix=prefix, project=quote(normalized))
    if handler.request.query:
        target += "?" + handler.request.query
    handler.redirect(target, permanent=True)
    return None


class SimpleIndexHandler(SimplePageHandler):
    """``[/<index>]/simple/``: every project the index shows."""

    async def get(self, index: str = DEFAULT_INDEX) -> None:
        """The project list."""
        content_type = self.content_type()
        access = await self.read_access(index)
        await self.send_page(await self.services.catalog.index_page(access, content_type), access)

    head = get


class ProjectPageHandler(SimplePageHandler):
    """``[/<index>]/simple/<project>/`` and ``/<project>/``: the files of one project."""

    def initialize(self, template: str) -> None:
        """``template``: this route's path, with ``{prefix}`` and ``{project}``."""
        self.template = template

    async def get(self, project: str, index: str = DEFAULT_INDEX) -> None:
        """The project page; 404 for unknown projects, never an empty 200 (uv relies on it)."""
        content_type = self.content_type()
        access = await self.read_access(index)
        normalized = normalized_or_redirect(self, project, self.template)
        if normalized is None:
            return
        catalog = self.services.catalog
        page = await catalog.project_page(access, normalized, content_type, self.base_url)
        await self.send_page(page, access)

    head = get
