"""File downloads: distributions and their PEP 658 metadata files.

Files never change once published, so the ETag is their sha256 and caches may
keep them forever. HEAD and single byte ranges are served because uv, pip's
lazy wheels and poetry read a wheel's tail before (or instead of) the whole.
A range of a proxied file that is not cached yet is sent once the whole file has
arrived and its hash matched (docs/proxy.md, "The first install"): a range
cannot be checked by the client, so it never comes from unchecked bytes.
"""

from __future__ import annotations

from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import quote

from tornado.iostream import StreamClosedError

from ministry.core.models import DEFAULT_INDEX
from ministry.core.ranges import ByteRange, parse_range
from ministry.errors import UpstreamUnavailable
from ministry.services.catalog import Download
from ministry.services.indexes import ReadAccess
from ministry.services.proxy_files import BlobReader, ProxyStream
from ministry.web.base import BaseHandler
from ministry.web.simple import normalized_or_redirect

__all__ = ["FileHandler"]


class FileHandler(BaseHandler):
    """``[/<index>]/packages/<project>/<filename>`` and ``…/<filename>.metadata``."""

    async def get(self, project: str, filename: str, index: str = DEFAULT_INDEX) -> None:
        """Send the file, a range of it, or 304."""
        access = await self.read_access(index)
        template = "{prefix}/packages/{project}/" + quote(filename, safe="+!")
        normalized = normalized_or_redirect(self, project, template)
        if normalized is None:
            return
        catalog = self.services.catalog
        download = await catalog.locate_download(access, normalized, filename)
        self._set_headers(download, filename)
        self.cache_for(access, "max-age=31536000, immutable")
        if self._not_modified(download):
            self.set_status(304)
            self.finish()
            return
        direct = await catalog.download_url(download, filename)
        if direct is not None:
            self.clear_header("Cache-Control")
            self.redirect(direct)  # 302: pre-signed URLs expire, so never permanently
            return
        accel = self.services.settings.accel_redirect
        if accel is not None and (path := await catalog.internal_path(download)) is not None:
            # nginx sends the file (ranges too) with the headers set here, and its own
            # Accept-Ranges.
            self.clear_header("Accept-Ranges")
            self.set_header("X-Accel-Redirect", accel + path)
            self.finish()
            return
        if self.request.method == "HEAD" and download.entry.upstream_url is not None:
            await self._head_of_proxied(access, download)
            return
        source = await catalog.open_download(access, download)
        if isinstance(source, ProxyStream):
            if self.request.headers.get("Range") is None:
                await self._stream(source)
                return
            stream = source
            try:
                source = await stream.kept_copy()
            finally:
                stream.close()
        try:
            await self._send(source, download)
        finally:
            await source.close()

    head = get

    def _set_headers(self, download: Download, filename: str) -> None:
        if download.is_metadata:
            self.set_header("Content-Type", "text/plain; charset=utf-8")
        else:
            # Never a type a browser would run, and never a Content-Encoding: clients
            # check the hash of exactly these bytes (docs/protocol.md, "Downloads").
            self.set_header("Content-Type", "application/octet-stream")
            self.set_header("Content-Disposition", f'attachment; filename="{filename}"')
        etag, modified = _validators(download)
        self.set_header("ETag", etag)
        if modified is not None:
            self.set_header("Last-Modified", modified)
        self.set_header("Accept-Ranges", "bytes")

    def _not_modified(self, download: Download) -> bool:
        if self.request.headers.get("If-None-Match") is not None:
            # Weakly against the ETag _set_headers set, or ``*``; If-Modified-Since is then
            # not looked at.
            return self.check_etag_header()
        since = self.request.headers.get("If-Modified-Since")
        if since is None or download.entry.upload_time is None:
            return False
        try:
            modified = download.entry.upload_time.replace(microsecond=0)
            return modified <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False  # junk dates are ignored (docs/security.md, "HTTP abuse")

    def _range(self, size: int, download: Download) -> ByteRange | None:
        header = self.request.headers.get("Range")
        if header is None:
            return None
        if_range = self.request.headers.get("If-Range")
        if if_range is not None and if_range.strip() not in _validators(download):
            return None  # the client's copy is of other bytes: send all of them
        return parse_range(header, size)

    async def _send(self, blob: BlobReader, download: Download) -> None:
        wanted = self._range(blob.size, download)
        start, end = 0, blob.size - 1
        if wanted is not None:
            self.set_status(206)
            self.set_header("Content-Range", wanted.content_range)
            start, end = wanted.start, wanted.end
        self.set_header("Content-Length", str(end - start + 1))
        if self.request.method == "HEAD":
            self.finish()
            return
        async for chunk in blob.chunks(start, end):
            self.write(chunk)
            await self.flush()  # back-pressure: a slow reader never fills our memory
        self.finish()

    async def _head_of_proxied(self, access: ReadAccess, download: Download) -> None:
        """HEAD of a proxied file: its length, and byte ranges (one of a file not cached
        yet is sent once the whole file is checked).

        The length comes from the cache or the upstream page. A page without sizes (PEP
        503 HTML, JSON before PEP 700) leaves the upstream's answer as the only source:
        the download starts (clients ask HEAD of a wheel they are about to read) and the
        upstream's Content-Length is sent. Without any length, ranges are not offered,
        and a client reads the whole file instead of asking for its tail.
        """
        catalog = self.services.catalog
        cached = await catalog.cached_size(download)
        size = cached if cached is not None else download.entry.size
        if size is None and not download.is_metadata:
            source = await catalog.open_download(access, download)
            if isinstance(source, ProxyStream):
                try:
                    size = await source.size()
                finally:
                    source.close()
            else:
                size = source.size
                await source.close()
        if size is not None:
            self.set_header("Content-Length", str(size))
        else:
            self.set_header("Accept-Ranges", "none")
        self.finish()

    async def _stream(self, stream: ProxyStream) -> None:
        """A file on its way from upstream: whole, and cut off if it proves bad."""
        try:
            size = await stream.size()
            if size is not None:
                self.set_header("Content-Length", str(size))
            async for chunk in stream.chunks():
                self.write(chunk)
                await self.flush()
            self.finish()
        except UpstreamUnavailable:
            if not self.headers_sent:
                raise
            self.abort()  # the client has part of the body: cut it off
        except StreamClosedError:
            # The client went away (uv reads a streamed wheel only up to its metadata): not
            # an error of the server's, and the download goes on for the cache.
            self.abort()
        finally:
            stream.close()


def _validators(download: Download) -> tuple[str, str | None]:
    """The ETag and Last-Modified (if known) of a download: its headers, and If-Range's."""
    upload_time = download.entry.upload_time
    modified = format_datetime(upload_time, usegmt=True) if upload_time is not None else None
    return f'"{download.sha256}"', modified
