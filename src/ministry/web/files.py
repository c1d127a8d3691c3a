"""File downloads: distributions and their PEP 658 metadata files.

Files never change once published, so the ETag is their sha256 and caches may
keep them forever. HEAD and single byte ranges are served because uv, pip's
lazy wheels and poetry read a wheel's tail before (or instead of) the whole.
"""

from __future__ import annotations

from email.utils import format_datetime, parsedate_to_datetime

from packaging.utils import NormalizedName

from ministry.core.models import DEFAULT_INDEX, DistFile
from ministry.core.ranges import ByteRange, parse_range
from ministry.errors import NotFound
from ministry.storage.protocols import BlobReader
from ministry.web.base import BaseHandler
from ministry.web.simple import normalized_or_redirect

__all__ = ["FileHandler"]

_METADATA_SUFFIX = ".metadata"


class FileHandler(BaseHandler):
    """``/packages/<project>/<filename>`` and ``…/<filename>.metadata``."""

    async def get(self, name: str, filename: str) -> None:
        """Send the file, a range of it, or 304."""
        project = normalized_or_redirect(self, name, "/packages/{}/" + filename)
        if project is None:
            return
        file, sha256 = await self._locate(project, filename)
        is_metadata = sha256 != file.sha256
        self._set_headers(file, sha256, filename, is_metadata)
        if self._not_modified(sha256, file):
            self.set_status(304)
            self.finish()
            return
        blob = await self.services.catalog.open_blob(sha256)
        try:
            await self._send(blob)
        finally:
            await blob.close()

    head = get

    async def _locate(self, project: NormalizedName, filename: str) -> tuple[DistFile, str]:
        catalog = self.services.catalog
        if filename.endswith(_METADATA_SUFFIX):
            file = await catalog.find_file(
                DEFAULT_INDEX, project, filename.removesuffix(_METADATA_SUFFIX)
            )
            if file.metadata_sha256 is None:
                raise NotFound(f"{file.filename!r} has no metadata file (only wheels have one).")
            return file, file.metadata_sha256
        file = await catalog.find_file(DEFAULT_INDEX, project, filename)
        return file, file.sha256

    def _set_headers(self, file: DistFile, sha256: str, filename: str, is_metadata: bool) -> None:
        if is_metadata:
            self.set_header("Content-Type", "text/plain; charset=utf-8")
        else:
            # Never a type a browser would run, and never a Content-Encoding: clients
            # check the hash of exactly these bytes (STANDARDS.md F1, HOSTILE.md 91).
            self.set_header("Content-Type", "application/octet-stream")
            self.set_header("Content-Disposition", f'attachment; filename="{filename}"')
        self.set_header("ETag", f'"{sha256}"')
        self.set_header("Last-Modified", format_datetime(file.upload_time, usegmt=True))
        self.set_header("Cache-Control", "public, max-age=31536000, immutable")
        self.set_header("Accept-Ranges", "bytes")

    def _not_modified(self, sha256: str, file: DistFile) -> bool:
        if_none_match = self.request.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
            return "*" in tags or f'"{sha256}"' in tags
        since = self.request.headers.get("If-Modified-Since")
        if since is None:
            return False
        try:
            return file.upload_time.replace(microsecond=0) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False  # junk dates are ignored (HOSTILE.md 81)

    def _range(self, size: int) -> ByteRange | None:
        header = self.request.headers.get("Range")
        if header is None:
            return None
        if_range = self.request.headers.get("If-Range")
        if if_range is not None and if_range.strip() not in (
            self._headers.get("ETag"),
            self._headers.get("Last-Modified"),
        ):
            return None  # the client's copy is of other bytes: send all of them
        return parse_range(header, size)

    async def _send(self, blob: BlobReader) -> None:
        wanted = self._range(blob.size)
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
