"""The read side of an index: project lists, project pages, files and the JSON API.

An index shows its own projects and those it inherits (``core.inheritance``
decides which indexes contribute to each name). Every file is served under the
URL of the index it was read through, so a reader or token that may read
``team/dev`` never needs rights on the URL of ``team/prod``.

Simple pages are rendered once per change and kept, with their gzip form and
ETag, until the serial says a contributing project changed. A request costs one
look at the serial, not a query of every file; and because the serial is shared
by every process using the store, no process keeps serving a page another one
has made stale.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from packaging.utils import NormalizedName, canonicalize_version

from ministry.core import json_api
from ministry.core.inheritance import contributors
from ministry.core.models import DistFile, Project, Release
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
from ministry.services.indexes import ReadAccess
from ministry.storage.protocols import BlobReader, BlobStore, MetadataStore

__all__ = ["Catalog", "Download", "FilePath", "ProjectView", "RenderedPage"]

#: Builds the URL path of a file: (index, project, filename) -> "/…/filename".
FilePath = Callable[[str, str, str], str]
_METADATA_SUFFIX = ".metadata"


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


@dataclass(frozen=True)
class ProjectView:
    """A project as one index shows it: merged from the indexes that contribute to it."""

    name: NormalizedName
    display_name: str
    projects: tuple[Project, ...]
    files: tuple[DistFile, ...]

    @property
    def last_serial(self) -> int:
        """The newest change of any contributing project."""
        return max(p.last_serial for p in self.projects)


@dataclass
class _CacheEntry:
    page: RenderedPage
    checked_serial: int
    signature: Hashable


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
        self._cache: OrderedDict[Hashable, _CacheEntry] = OrderedDict()
        self._cache_size = cache_size

    # -- the page cache -------------------------------------------------------------------

    def _cached(self, key: Hashable) -> _CacheEntry | None:
        entry = self._cache.get(key)
        if entry is not None:
            self._cache.move_to_end(key)
        return entry

    def _keep(self, key: Hashable, page: RenderedPage, serial: int, signature: Hashable) -> None:
        self._cache[key] = _CacheEntry(page, serial, signature)
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    # -- resolving projects across indexes --------------------------------------------------

    async def _holders(self, name: NormalizedName) -> dict[str, Project]:
        return {p.index: p for p in await self._metadata.projects_named(name)}

    def _contributing(
        self, access: ReadAccess, name: NormalizedName, holders: dict[str, Project]
    ) -> list[Project]:
        names = contributors(
            access.index.name, name, access.configs, holders.keys(), access.visible.__contains__
        )
        return [holders[n] for n in names]

    async def project_view(self, access: ReadAccess, name: NormalizedName) -> ProjectView:
        """A project as the index shows it; ``NotFound`` when no contributing index has it."""
        projects = self._contributing(access, name, await self._holders(name))
        if not projects:
            raise NotFound(f"No project named {name!r} in index {access.index.name!r}.")
        return await self._view(name, projects)

    async def _view(self, name: NormalizedName, projects: list[Project]) -> ProjectView:
        files: dict[str, DistFile] = {}
        for project in projects:
            for file in await self._metadata.list_files(project.index, name):
                files.setdefault(file.filename, file)  # the nearest index wins
        return ProjectView(name, projects[0].display_name, tuple(projects), tuple(files.values()))

    # -- simple pages -------------------------------------------------------------------

    async def project_page(
        self, access: ReadAccess, name: NormalizedName, content_type: str
    ) -> RenderedPage:
        """A project's detail page; ``NotFound`` for a project this index does not show."""
        key = ("project", access.index.name, name, content_type, access.visible)
        serial = await self._metadata.last_serial()
        entry = self._cached(key)
        if entry is not None and entry.checked_serial == serial:
            return entry.page
        projects = self._contributing(access, name, await self._holders(name))
        if not projects:
            raise NotFound(f"No project named {name!r} in index {access.index.name!r}.")
        signature = tuple((p.index, p.last_serial) for p in projects)
        if entry is not None and entry.signature == signature:
            entry.checked_serial = serial
            return entry.page
        view = await self._view(name, projects)
        model = ProjectPage(
            name=view.name,
            display_name=view.display_name,
            files=tuple(self._simple_file(access, f) for f in view.files),
            last_serial=view.last_serial,
        )
        render = render_project_json if content_type == SIMPLE_JSON else render_project_html
        page = await asyncio.to_thread(
            lambda: _rendered(render(model), content_type, view.last_serial)
        )
        self._keep(key, page, serial, signature)
        return page

    async def index_page(self, access: ReadAccess, content_type: str) -> RenderedPage:
        """The project list of an index: its own projects and those it inherits."""
        key = ("index", access.index.name, content_type, access.visible)
        serial = await self._metadata.last_serial()
        entry = self._cached(key)
        if entry is not None and entry.checked_serial == serial:
            return entry.page
        entries = [
            IndexEntry(p.name, p.display_name, p.last_serial) for p in await self.projects(access)
        ]

        def render() -> bytes:
            if content_type == SIMPLE_JSON:
                return render_index_json(entries, serial)
            return render_index_html(entries)

        page = await asyncio.to_thread(lambda: _rendered(render(), content_type, serial))
        self._keep(key, page, serial, serial)
        return page

    async def projects(self, access: ReadAccess) -> list[Project]:
        """Every project the index shows, each once, as its nearest contributor spells it."""
        holders: dict[NormalizedName, dict[str, Project]] = {}
        for index in access.order:
            if index in access.visible:
                for project in await self._metadata.list_projects(index):
                    holders.setdefault(project.name, {})[index] = project
        shown = []
        for name, by_index in sorted(holders.items()):
            projects = self._contributing(access, name, by_index)
            if projects:
                shown.append(projects[0])
        return shown

    def _simple_file(self, access: ReadAccess, f: DistFile) -> SimpleFile:
        return SimpleFile(
            filename=f.filename,
            url=self.file_url(access, f),
            version=f.version,
            sha256=f.sha256,
            size=f.size,
            upload_time=f.upload_time,
            requires_python=f.requires_python,
            yanked=f.yanked,
            metadata_sha256=f.metadata_sha256,
        )

    def file_url(self, access: ReadAccess, f: DistFile) -> str:
        """The URL path a file is downloaded from, under the index it is read through."""
        return self._file_path(access.index.name, f.project, f.filename)

    # -- files ------------------------------------------------------------------------

    async def locate_download(
        self, access: ReadAccess, project: NormalizedName, filename: str
    ) -> Download:
        """The blob behind a download URL: ``<filename>`` or ``<filename>.metadata``."""
        wanted = filename.removesuffix(_METADATA_SUFFIX)
        view = await self.project_view(access, project)
        file = next((f for f in view.files if f.filename == wanted), None)
        if file is None:
            raise NotFound(f"No file {wanted!r} in project {project!r}.")
        if wanted == filename:
            return Download(file, file.sha256, is_metadata=False)
        if file.metadata_sha256 is None:
            raise NotFound(f"{file.filename!r} has no metadata file (only wheels have one).")
        return Download(file, file.metadata_sha256, is_metadata=True)

    async def open_blob(self, sha256: str) -> BlobReader:
        """Open stored bytes for reading."""
        return await self._blobs.open_blob(sha256)

    # -- the JSON API -------------------------------------------------------------------

    async def project_json(
        self, access: ReadAccess, name: NormalizedName, version: str | None, base_url: str
    ) -> dict[str, Any]:
        """The JSON API document of a project or of one of its releases."""
        view = await self.project_view(access, name)
        releases = await self._releases(view)
        if version is None:
            release = json_api.latest_release(releases, view.files)
        else:
            release = json_api.match_release(releases, version)
        if release is None:
            raise NotFound(f"No release {version!r} of project {name!r}.")
        return json_api.project_document(
            view.projects[0],
            release,
            releases if version is None else None,
            view.files,
            base_url=base_url,
            file_url=lambda f: base_url + self.file_url(access, f),
            last_serial=view.last_serial,
        )

    async def _releases(self, view: ProjectView) -> list[Release]:
        releases: dict[str, Release] = {}
        for project in view.projects:
            for release in await self._metadata.list_releases(project.index, view.name):
                releases.setdefault(canonicalize_version(release.version), release)
        return list(releases.values())
