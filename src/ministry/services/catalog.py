"""The read side of an index: project lists, project pages, files and the JSON API.

Simple pages are rendered once per change and kept, with their gzip form and
ETag, until the serial says the project changed. A request costs one look at
the serial, not a query of every file; and because the serial is shared by
every process using the store, no process keeps serving a page another one
has made stale.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from packaging.utils import NormalizedName

from ministry.core import json_api
from ministry.core.models import DistFile, Project
from ministry.core.negotiation import SIMPLE_JSON
from ministry.core.simple_pages import (
    IndexEntry,
    ProjectPage,
    SimpleFile,
    render_index_html,
    render_index_json,
    render_project_html,
    render_project_json,
)
from ministry.errors import NotFound
from ministry.storage.protocols import BlobReader, BlobStore, MetadataStore

__all__ = ["Catalog", "Download", "FilePath", "RenderedPage"]

_METADATA_SUFFIX = ".metadata"

#: Builds the URL path of a file: (index, project, filename) -> "/…/filename".
FilePath = Callable[[str, str, str], str]


@dataclass(frozen=True)
class RenderedPage:
    """A rendered simple page, ready to send in either encoding."""

    body: bytes
    gzipped: bytes
    etag: str
    content_type: str
    last_serial: int


@dataclass(frozen=True)
class Download:
    """What a download URL names: a file, or (``is_metadata``) its PEP 658 metadata file."""

    file: DistFile
    sha256: str
    is_metadata: bool


@dataclass
class _CacheEntry:
    page: RenderedPage
    checked_serial: int


def _rendered(body: bytes, content_type: str, last_serial: int) -> RenderedPage:
    digest = hashlib.sha256(body).hexdigest()[:32]
    return RenderedPage(
        body=body,
        gzipped=gzip.compress(body, compresslevel=6, mtime=0),
        etag=f'"{digest}"',
        content_type=content_type,
        last_serial=last_serial,
    )


class Catalog:
    """Answers every read of an index's projects and files."""

    def __init__(
        self, metadata: MetadataStore, blobs: BlobStore, file_path: FilePath, cache_size: int = 4096
    ) -> None:
        self._metadata = metadata
        self._blobs = blobs
        self._file_path = file_path
        self._cache: OrderedDict[tuple[str, str | None, str], _CacheEntry] = OrderedDict()
        self._cache_size = cache_size

    def _cached(self, key: tuple[str, str | None, str]) -> _CacheEntry | None:
        entry = self._cache.get(key)
        if entry is not None:
            self._cache.move_to_end(key)
        return entry

    def _keep(self, key: tuple[str, str | None, str], page: RenderedPage, serial: int) -> None:
        self._cache[key] = _CacheEntry(page, serial)
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def index_page(self, index: str, content_type: str) -> RenderedPage:
        """The project list of an index."""
        key = (index, None, content_type)
        serial = await self._metadata.last_serial()
        entry = self._cached(key)
        if entry is not None and entry.checked_serial == serial:
            return entry.page
        projects = await self._metadata.list_projects(index)
        entries = [IndexEntry(p.name, p.display_name, p.last_serial) for p in projects]

        def render() -> bytes:
            if content_type == SIMPLE_JSON:
                return render_index_json(entries, serial)
            return render_index_html(entries)

        page = await asyncio.to_thread(lambda: _rendered(render(), content_type, serial))
        self._keep(key, page, serial)
        return page

    async def project_page(
        self, index: str, name: NormalizedName, content_type: str
    ) -> RenderedPage:
        """A project's detail page; ``NotFound`` for a project without files."""
        key = (index, str(name), content_type)
        serial = await self._metadata.last_serial()
        entry = self._cached(key)
        if entry is not None and entry.checked_serial == serial:
            return entry.page
        project = await self._metadata.get_project(index, name)
        if project is None:
            raise NotFound(f"No project named {name!r} in this index.")
        if entry is not None and entry.page.last_serial == project.last_serial:
            entry.checked_serial = serial
            return entry.page
        files = await self._metadata.list_files(index, name)
        page_model = ProjectPage(
            name=project.name,
            display_name=project.display_name,
            files=tuple(self._simple_file(f) for f in files),
            last_serial=project.last_serial,
        )
        render = render_project_json if content_type == SIMPLE_JSON else render_project_html
        page = await asyncio.to_thread(
            lambda: _rendered(render(page_model), content_type, project.last_serial)
        )
        self._keep(key, page, serial)
        return page

    def _simple_file(self, f: DistFile) -> SimpleFile:
        return SimpleFile(
            filename=f.filename,
            url=self.file_url(f),
            version=f.version,
            sha256=f.sha256,
            size=f.size,
            upload_time=f.upload_time,
            requires_python=f.requires_python,
            yanked=f.yanked,
            metadata_sha256=f.metadata_sha256,
        )

    def file_url(self, f: DistFile) -> str:
        """The URL path a file is downloaded from."""
        return self._file_path(f.index, f.project, f.filename)

    async def projects(self, index: str) -> list[Project]:
        """Every project of an index."""
        return await self._metadata.list_projects(index)

    async def project_files(
        self, index: str, name: NormalizedName
    ) -> tuple[Project, list[DistFile]]:
        """A project and its files; ``NotFound`` if it does not exist."""
        project = await self._metadata.get_project(index, name)
        if project is None:
            raise NotFound(f"No project named {name!r} in this index.")
        return project, await self._metadata.list_files(index, name)

    async def find_file(self, index: str, project: NormalizedName, filename: str) -> DistFile:
        """A file of a project; a file of another project is not found here."""
        found = await self._metadata.get_file(index, filename)
        if found is None or found.project != project:
            raise NotFound(f"No file {filename!r} in project {project!r}.")
        return found

    async def locate_download(self, index: str, project: NormalizedName, filename: str) -> Download:
        """The blob behind a download URL: ``<filename>`` or ``<filename>.metadata``."""
        if filename.endswith(_METADATA_SUFFIX):
            file = await self.find_file(index, project, filename.removesuffix(_METADATA_SUFFIX))
            if file.metadata_sha256 is None:
                raise NotFound(f"{file.filename!r} has no metadata file (only wheels have one).")
            return Download(file, file.metadata_sha256, is_metadata=True)
        file = await self.find_file(index, project, filename)
        return Download(file, file.sha256, is_metadata=False)

    async def open_blob(self, sha256: str) -> BlobReader:
        """Open stored bytes for reading."""
        return await self._blobs.open_blob(sha256)

    async def project_json(
        self, index: str, name: NormalizedName, version: str | None, base_url: str
    ) -> dict[str, Any]:
        """The JSON API document of a project or of one of its releases."""
        project, files = await self.project_files(index, name)
        releases = await self._metadata.list_releases(index, name)
        if version is None:
            release = json_api.latest_release(releases, files)
        else:
            release = json_api.match_release(releases, version)
        if release is None:
            raise NotFound(f"No release {version!r} of project {name!r}.")
        return json_api.project_document(
            project,
            release,
            releases if version is None else None,
            files,
            base_url=base_url,
            file_url=lambda f: base_url + self.file_url(f),
            last_serial=project.last_serial,
        )
