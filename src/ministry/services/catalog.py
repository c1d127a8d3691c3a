"""The read side of an index: project lists, project pages, files and the JSON API.

An index shows its own projects and those it inherits, hosted or proxied
(``services.projects`` gathers them). Every file is served under the URL of the
index it was read through, so a reader or token that may read ``team/dev`` never
needs rights on the URL of ``team/prod``.

A project's view (its files, gathered from every contributing index) is kept
until the serial says a contributing project changed, a proxied part is due for
revalidation, or a held-back file comes of age; its rendered pages, with their
gzip form and ETag, are kept as long as the view. A page request or a download
costs one look at the serial, not a query of every file; and because the serial
is shared by every process using the store, no process keeps serving a page
another one has made stale.

What is kept is weighed, not counted: views by their files, pages and documents by
their bytes, so that a few projects of tens of thousands of files cannot hold the
memory that thousands of small ones would. Forgetting an entry early only costs a
new read: every kept entry is checked against the serial before it is used.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import zlib
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from cachetools import LRUCache
from packaging.utils import NormalizedName

from ministry.core import json_api
from ministry.core.attestations import describe_provenance
from ministry.core.models import DistFile, FileEntry, Project
from ministry.core.negotiation import SIMPLE_JSON
from ministry.core.project_list import ProjectList
from ministry.core.proxied_files import HeldBack
from ministry.core.releases import release_key
from ministry.core.simple_pages import (
    ProjectPage,
    SimpleFile,
    index_html_chunks,
    index_json_chunks,
    project_html_chunks,
    render_project_json,
)
from ministry.errors import NotFound
from ministry.services.indexes import ReadAccess
from ministry.services.projects import Contribution, ProjectResolver, ProjectView
from ministry.services.proxy_files import ProxyFiles, ProxyStream, missing_bytes
from ministry.storage.protocols import BlobReader, BlobStore, PackageStore, ProxyCacheStore

__all__ = [
    "Catalog",
    "CatalogStore",
    "Download",
    "FilePath",
    "JsonDocument",
    "ProvenancePath",
    "RenderedPage",
]

#: Builds the URL path of a file: (index, project, filename) -> "/…/filename".
FilePath = Callable[[str, str, str], str]
#: Builds the Integrity API path of a file's provenance: (index, project, version, filename).
ProvenancePath = Callable[[str, str, str, str], str]
_METADATA_SUFFIX = ".metadata"
_PROVENANCE_SUFFIX = ".provenance"
_PROXIED_LIST_TTL = 60.0
#: Provenance documents whose publisher is kept (by the document's sha256).
_PUBLISHERS_KEPT = 4096
#: Views kept, weighed in files (each view counts ``_VIEW_WEIGHT`` besides its files):
#: a view costs about a kilobyte a file, so this bounds them to about 100 MiB whatever
#: mix of projects is asked for, with room for a project of 100,000 files. The least
#: recently used go first; a larger project is gathered again when asked for.
_VIEW_FILES_KEPT = 120_000
_VIEW_WEIGHT = 16
#: Rendered pages and JSON documents kept, weighed in bytes (each counts
#: ``_ENTRY_BYTES`` besides its bodies), each kind apart.
_PAGE_BYTES_KEPT = 32 * 1024 * 1024
_ENTRY_BYTES = 1024
#: A project page's plain form is kept beside its gzip form up to this size; a larger
#: one (thousands of files) only compressed, inflated as it is sent to the rare client
#: that does not take gzip.
_PLAIN_KEPT = 256 * 1024
#: Project lists and list pages kept: one per index and visibility.
_LISTS_KEPT = 64
#: zlib's window bits for a gzip header and trailer.
_GZIP_WBITS = 16 + zlib.MAX_WBITS


class CatalogStore(PackageStore, ProxyCacheStore, Protocol):
    """The roles the catalog uses: the stored packages, and the projects proxies have seen."""


@dataclass(frozen=True)
class RenderedPage:
    """A rendered simple page, ready to send in either encoding.

    A project list keeps only its gzip form (``body`` is None): at 100,000 projects
    the plain form is megabytes per index and format, and almost every client asks
    for gzip; the rare one that does not gets it decompressed as it is sent.
    """

    body: bytes | None
    gzipped: bytes
    etag: str
    content_type: str
    last_serial: int
    #: A proxied part was served past its freshness because its upstream failed.
    stale: bool = False
    #: Versions the minimum-age rule holds back, with the time each is offered.
    held_back: str | None = None


@dataclass(frozen=True)
class Download:
    """What a download URL names: a file, or (``is_metadata``) its PEP 658 metadata file."""

    entry: FileEntry
    sha256: str
    is_metadata: bool


@dataclass(frozen=True)
class JsonDocument:
    """A JSON API document, encoded, and the serial it shows."""

    body: bytes
    last_serial: int


@dataclass(frozen=True)
class _DocumentEntry:
    document: JsonDocument
    view: ProjectView


@dataclass(frozen=True)
class _ListEntry:
    projects: ProjectList
    checked_serial: int
    fresh_until: float


@dataclass(frozen=True)
class _IndexEntry:
    page: RenderedPage
    #: The list the page was rendered from: the page is current while the list is.
    projects: ProjectList


@dataclass
class _ViewEntry:
    view: ProjectView
    checked_serial: int
    signature: Hashable
    fresh_until: float


@dataclass(frozen=True)
class _PageEntry:
    page: RenderedPage
    #: The view the page was rendered from: the page is current while the view is.
    view: ProjectView


def _current(entry: _ViewEntry | _ListEntry, serial: int) -> bool:
    """Whether a kept entry still stands: no serial since it was checked, nothing due."""
    return entry.checked_serial == serial and time.monotonic() < entry.fresh_until


def _fresh_until(contributions: list[Contribution], view_held: tuple[HeldBack, ...]) -> float:
    """When a view must be looked at again although no serial changed (monotonic time)."""
    fresh_until = min((c.page.fresh_until for c in contributions if c.page), default=float("inf"))
    if view_held:
        # A held-back file becomes due with time alone.
        due = min(h.until for h in view_held) - datetime.now(UTC)
        fresh_until = min(fresh_until, time.monotonic() + max(due.total_seconds(), 0.0))
    return fresh_until


def _rendered(
    chunks: Iterable[bytes], content_type: str, view: ProjectView | None, serial: int
) -> RenderedPage:
    """A project page from its pieces, hashed and compressed as they come; the plain form
    is kept too while it is at most ``_PLAIN_KEPT`` bytes."""
    digest = hashlib.sha256()
    compressor = zlib.compressobj(6, zlib.DEFLATED, _GZIP_WBITS)
    compressed: list[bytes] = []
    plain: list[bytes] | None = []
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        compressed.append(compressor.compress(chunk))
        size += len(chunk)
        if plain is not None and size <= _PLAIN_KEPT:
            plain.append(chunk)
        else:
            plain = None
    compressed.append(compressor.flush())
    held = None
    if view is not None and view.held_back:
        held = ", ".join(
            sorted({f"{h.entry.version} until {h.until:%Y-%m-%dT%H:%MZ}" for h in view.held_back})
        )
    return RenderedPage(
        body=None if plain is None else b"".join(plain),
        gzipped=b"".join(compressed),
        etag=f'"{digest.hexdigest()[:32]}"',
        content_type=content_type,
        last_serial=serial,
        stale=view.stale if view else False,
        held_back=held,
    )


def _weighed_view(entry: _ViewEntry) -> int:
    return _VIEW_WEIGHT + len(entry.view.files) + len(entry.view.held_back)


def _weighed_page(entry: _PageEntry) -> int:
    return _ENTRY_BYTES + len(entry.page.gzipped) + len(entry.page.body or b"")


def _weighed_document(entry: _DocumentEntry) -> int:
    return _ENTRY_BYTES + len(entry.document.body)


def _keep(cache: LRUCache[Hashable, Any], key: Hashable, value: object) -> None:
    """Keep ``value`` unless it alone outweighs the whole cache (then it is made again
    when next asked for, and drops whatever was kept under ``key``)."""
    try:
        cache[key] = value
    except ValueError:
        cache.pop(key, None)


def _only_own_hosted(access: ReadAccess) -> bool:
    """Whether the index shows exactly its own hosted projects (inherits nothing)."""
    name = access.index.name
    return (
        access.order == (name,) and name in access.visible and access.configs[name].kind == "hosted"
    )


def _compressed_only(chunks: Iterable[bytes], content_type: str, serial: int) -> RenderedPage:
    """A page kept only in its gzip form, compressed as it is rendered: the plain form is
    never whole in memory. Its ETag is the one the plain form would have."""
    digest = hashlib.sha256()
    compressor = zlib.compressobj(6, zlib.DEFLATED, _GZIP_WBITS)
    parts = []
    for chunk in chunks:
        digest.update(chunk)
        parts.append(compressor.compress(chunk))
    parts.append(compressor.flush())
    return RenderedPage(
        body=None,
        gzipped=b"".join(parts),
        etag=f'"{digest.hexdigest()[:32]}"',
        content_type=content_type,
        last_serial=serial,
    )


class Catalog:
    """Answers every read of an index's projects and files."""

    def __init__(
        self,
        metadata: CatalogStore,
        blobs: BlobStore,
        resolver: ProjectResolver,
        proxy_files: ProxyFiles,
        file_path: FilePath,
        view_files_kept: int = _VIEW_FILES_KEPT,
        page_bytes_kept: int = _PAGE_BYTES_KEPT,
        provenance_path: ProvenancePath | None = None,
    ) -> None:
        self._metadata = metadata
        self._blobs = blobs
        self._resolver = resolver
        self._proxy_files = proxy_files
        self._file_path = file_path
        self._provenance_path = provenance_path
        self._views: LRUCache[Hashable, _ViewEntry] = LRUCache(
            view_files_kept, getsizeof=_weighed_view
        )
        self._pages: LRUCache[Hashable, _PageEntry] = LRUCache(
            page_bytes_kept, getsizeof=_weighed_page
        )
        self._documents: LRUCache[Hashable, _DocumentEntry] = LRUCache(
            page_bytes_kept, getsizeof=_weighed_document
        )
        self._lists: LRUCache[Hashable, _ListEntry] = LRUCache(_LISTS_KEPT)
        self._indexes: LRUCache[Hashable, _IndexEntry] = LRUCache(_LISTS_KEPT)
        # Who published a provenance document, by its sha256: it never changes.
        self._publishers: LRUCache[str, str | None] = LRUCache(_PUBLISHERS_KEPT)

    def clear(self) -> None:
        """Forget every view, page, document and list kept by serial (after the store went
        back, when a serial no longer names one state). Publishers by sha256 stay true."""
        for cache in (self._views, self._pages, self._documents, self._lists, self._indexes):
            cache.clear()

    # -- simple pages -------------------------------------------------------------------

    async def project_view(self, access: ReadAccess, name: NormalizedName) -> ProjectView:
        """A project as the index shows it; ``NotFound`` when it shows no such project.

        The view is kept while it is current: while no serial changed, the proxied
        parts are fresh and no held-back file came of age; then, if the
        contributions are still the same ones, it is kept another round.
        """
        key = (access.index.name, name, access.visible)
        entry = self._views.get(key)
        if entry is not None and _current(entry, access.serial):
            return entry.view
        contributions = await self._resolver.contributions(access, name)
        if not contributions:
            raise NotFound(f"No project named {name!r} in index {access.index.name!r}.")
        # A page served past its freshness must say so, and stop saying so once fresh; a
        # changed index setting (min_age, its exemptions) changes what the view holds back.
        signature = tuple(
            (c.index, access.configs[c.index], c.signature, bool(c.page and c.page.stale))
            for c in contributions
        )
        if entry is not None and entry.signature == signature and not entry.view.held_back:
            entry.checked_serial = access.serial
            entry.fresh_until = _fresh_until(contributions, ())
            return entry.view
        view = await self._resolver.gather(access, name, contributions)
        fresh_until = _fresh_until(contributions, view.held_back)
        _keep(self._views, key, _ViewEntry(view, access.serial, signature, fresh_until))
        return view

    async def project_page(
        self, access: ReadAccess, name: NormalizedName, content_type: str, base_url: str = ""
    ) -> RenderedPage:
        """A project's detail page; ``NotFound`` for a project this index does not show.

        ``base_url`` (scheme, host, port) makes the provenance URLs absolute, as PEP 740
        asks; the page is kept per base URL.
        """
        view = await self.project_view(access, name)
        key = (access.index.name, name, content_type, access.visible, base_url)
        entry = self._pages.get(key)
        if entry is not None and entry.view is view:
            return entry.page
        model = ProjectPage(
            name=view.name,
            display_name=view.display_name,
            files=tuple(self.simple_file(access, f, base_url) for f in view.files),
            last_serial=view.last_serial,
        )

        def render() -> RenderedPage:
            if content_type == SIMPLE_JSON:
                chunks: Iterable[bytes] = (render_project_json(model),)
            else:
                chunks = project_html_chunks(model)
            return _rendered(chunks, content_type, view, view.last_serial)

        page = await asyncio.to_thread(render)
        _keep(self._pages, key, _PageEntry(page, view))
        return page

    async def index_page(self, access: ReadAccess, content_type: str) -> RenderedPage:
        """The project list of an index: its own projects and those it inherits."""
        projects = await self.projects(access)
        key = (access.index.name, content_type, access.visible)
        entry = self._indexes.get(key)
        if entry is not None and entry.projects is projects:
            return entry.page
        serial = access.serial

        def render() -> RenderedPage:
            if content_type == SIMPLE_JSON:
                chunks = index_json_chunks(projects.rows(), serial)
            else:
                chunks = index_html_chunks(projects.rows())
            return _compressed_only(chunks, content_type, serial)

        page = await asyncio.to_thread(render)
        self._indexes[key] = _IndexEntry(page, projects)
        return page

    async def project_count(self, access: ReadAccess) -> int:
        """How many projects the index shows, without gathering the list when the store
        can count them: an index that inherits nothing and proxies nothing."""
        entry = self._lists.get((access.index.name, access.visible))
        if entry is not None and _current(entry, access.serial):
            return len(entry.projects)
        if _only_own_hosted(access):
            return await self._metadata.count_projects(access.index.name)
        return len(await self.projects(access))

    async def shown_project(self, access: ReadAccess, index: str, name: str) -> Project | None:
        """The project ``name`` of ``index`` if this index shows that one, else None.

        Answered by the store for an index that shows only its own hosted projects;
        otherwise by the (kept) project list, where inheritance is already resolved.
        """
        if _only_own_hosted(access):
            if index != access.index.name:
                return None
            return await self._metadata.get_project(index, NormalizedName(name))
        return (await self.projects(access)).find(index, name)

    async def projects(self, access: ReadAccess) -> ProjectList:
        """Every project the index shows, each once, as its nearest index spells it.

        Kept while the serial stands; proxied projects join the list as they are
        fetched, which changes no serial, so a list with a proxy in it is made again
        after a minute. Of a proxied upstream only the projects fetched before are
        listed: an upstream's full list can have hundreds of thousands of names.
        """
        key = (access.index.name, access.visible)
        entry = self._lists.get(key)
        if entry is not None and _current(entry, access.serial):
            return entry.projects
        if _only_own_hosted(access):
            projects = await self._metadata.project_list(access.index.name)
        else:
            projects = await asyncio.to_thread(ProjectList, await self._gather_projects(access))
        proxied = any(access.configs[n].kind == "proxy" for n in access.order)
        fresh_until = time.monotonic() + _PROXIED_LIST_TTL if proxied else float("inf")
        self._lists[key] = _ListEntry(projects, access.serial, fresh_until)
        return projects

    async def _gather_projects(self, access: ReadAccess) -> list[Project]:
        if access.order == (access.index.name,) and access.index.name in access.visible:
            # An index that inherits nothing shows exactly its own list.
            return await self._known_projects(access, access.index.name)
        holders: dict[NormalizedName, dict[str, Project]] = {}
        for index in access.order:
            if index not in access.visible:
                continue
            for project in await self._known_projects(access, index):
                holders.setdefault(project.name, {})[index] = project
        shown = []
        for name, by_index in sorted(holders.items()):
            names = self._resolver.owners(access, name, by_index.keys())
            if names:
                shown.append(by_index[names[0]])
        return shown

    async def _known_projects(self, access: ReadAccess, index: str) -> list[Project]:
        if access.configs[index].kind == "hosted":
            return await self._metadata.list_projects(index)
        # Each of several upstreams keeps its pages as ``<project>@<tag>`` (services.proxy_pages).
        kept = await self._metadata.list_cached_projects(index)
        names = {name.partition("@")[0] for name in kept}
        return [Project.proxied(index, NormalizedName(name)) for name in sorted(names)]

    def simple_file(self, access: ReadAccess, f: FileEntry, base_url: str = "") -> SimpleFile:
        """A file as the simple pages list it, under the index it is read through."""
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
            provenance=self.provenance_url(access, f, base_url),
        )

    def file_url(self, access: ReadAccess, f: FileEntry) -> str:
        """The URL path a file is downloaded from, under the index it is read through."""
        return self._file_path(access.index.name, f.project, f.filename)

    def provenance_url(self, access: ReadAccess, f: FileEntry, base_url: str) -> str | None:
        """The PEP 740 provenance URL of a file, if it has one: this server's Integrity API,
        for a file published with attestations and for a proxied file whose upstream names
        a provenance (fetched, checked and kept by ``ProxyFiles.provenance``)."""
        if f.provenance_sha256 is None and f.provenance is None:
            return None
        if self._provenance_path is None:
            return f.provenance
        return base_url + self._provenance_path(access.index.name, f.project, f.version, f.filename)

    async def provenance(
        self, access: ReadAccess, project: NormalizedName, version: str, filename: str
    ) -> bytes:
        """The provenance document of a file published here (the Integrity API);
        ``NotFound`` when the index shows no such file or the file has none."""
        view = await self.project_view(access, project)
        file = view.by_filename.get(filename)
        if file is None or release_key(file.version) != release_key(version):
            raise NotFound(f"No file {filename!r} of {project} {version} in this index.")
        sha256 = await self._provenance_sha256(access, file)
        if sha256 is None:
            raise NotFound(f"{filename!r} was published without attestations: no provenance.")
        return await self._provenance_bytes(file, sha256)

    async def _provenance_sha256(
        self, access: ReadAccess, file: FileEntry, *, fetch: bool = True
    ) -> str | None:
        """Where a file's provenance is kept; a proxied file's is fetched if ``fetch``."""
        if file.upstream_url is None or file.provenance is None:
            return file.provenance_sha256
        if fetch:
            return await self._proxy_files.provenance(access.configs[file.index], file)
        kept = await self._proxy_files.cached(file.index, file.filename + _PROVENANCE_SUFFIX)
        return kept.sha256 if kept is not None else None

    async def publishers_of(
        self, access: ReadAccess, project: NormalizedName, filenames: list[str]
    ) -> dict[str, str]:
        """Who published each of these files that has a provenance, for the project page."""
        view = await self.project_view(access, project)
        found: dict[str, str] = {}
        for filename in filenames:
            file = view.by_filename.get(filename)
            if file is None:
                continue
            sha256 = await self._provenance_sha256(access, file, fetch=False)
            if sha256 is None:
                continue
            if sha256 not in self._publishers:
                document = await self._provenance_bytes(file, sha256)
                self._publishers[sha256] = describe_provenance(document)
            described = self._publishers[sha256]
            if described is not None:
                found[filename] = described
        return found

    async def _provenance_bytes(self, file: FileEntry, sha256: str) -> bytes:
        """A provenance document from the blob store (small: at most a few hundred KiB)."""
        blob = await self._recorded_blob(Download(file, sha256, is_metadata=False), sha256)
        try:
            return b"".join([chunk async for chunk in blob.chunks(0, blob.size - 1)])
        finally:
            await blob.close()

    # -- files ------------------------------------------------------------------------

    async def locate_download(
        self, access: ReadAccess, project: NormalizedName, filename: str
    ) -> Download:
        """The file behind a download URL: ``<filename>`` or ``<filename>.metadata``."""
        wanted = filename.removesuffix(_METADATA_SUFFIX)
        view = await self.project_view(access, project)
        file = view.by_filename.get(wanted)
        if file is None:
            held = next((h for h in view.held_back if h.entry.filename == wanted), None)
            if held is not None:
                raise NotFound(_held_back_message(held.entry.filename, held.until))
            if self._proxy_files.offline and any(c.page for c in view.contributions):
                raise NotFound(
                    f"No file {wanted!r} in project {project!r} is cached, and this server "
                    "is offline: it serves only what it holds."
                )
            raise NotFound(f"No file {wanted!r} in project {project!r}.")
        if wanted == filename:
            return Download(file, file.sha256, is_metadata=False)
        if file.metadata_sha256 is None:
            raise NotFound(f"{file.filename!r} has no metadata file.")
        return Download(file, file.metadata_sha256, is_metadata=True)

    async def hosted_files(self, indexes: Iterable[str], filename: str) -> list[DistFile]:
        """The files named ``filename`` that ``indexes`` hold themselves, in that order.

        Only the store is read: no upstream is asked, so a guessed name costs one
        lookup per index and makes no request elsewhere.
        """
        found = []
        for index in indexes:
            file = await self._metadata.get_file(index, filename)
            if file is not None:
                found.append(file)
        return found

    async def cached_size(self, download: Download) -> int | None:
        """The size of a proxied file or metadata file if it is cached, else None."""
        suffix = _METADATA_SUFFIX if download.is_metadata else ""
        kept = await self._proxy_files.cached(
            download.entry.index, download.entry.filename + suffix
        )
        return kept.size if kept is not None else None

    async def download_url(self, download: Download, filename: str) -> str | None:
        """Where clients may fetch the bytes directly (a pre-signed S3 URL), if anywhere.

        The store is asked first: one that sends no URLs (a directory) answers at once,
        and a proxied file's cache record is then not looked up for nothing.
        """
        url = await self._blobs.download_url(download.sha256, filename)
        if url is None or not await self._stored(download):
            return None
        return url

    async def internal_path(self, download: Download) -> str | None:
        """The blob's path below the blob directory, for ``X-Accel-Redirect``, if stored."""
        if not await self._stored(download):
            return None
        return self._blobs.internal_path(download.sha256)

    async def _stored(self, download: Download) -> bool:
        """Whether the bytes are in the blob store (a proxied file may not be yet)."""
        return download.entry.upstream_url is None or await self.cached_size(download) is not None

    async def open_download(
        self, access: ReadAccess, download: Download
    ) -> BlobReader | ProxyStream:
        """The bytes of a download: stored, cached, or on their way from upstream."""
        entry = download.entry
        if entry.upstream_url is None:
            return await self._recorded_blob(download, download.sha256)
        config = access.configs[entry.index]
        if download.is_metadata:
            sha256 = await self._proxy_files.metadata(config, entry)
            return await self._recorded_blob(download, sha256)
        return await self._proxy_files.open(config, entry)

    async def _recorded_blob(self, download: Download, sha256: str) -> BlobReader:
        """The blob a record names; its absence is the server's fault, never a 404."""
        try:
            return await self._blobs.open_blob(sha256)
        except NotFound as exc:
            entry = download.entry
            proxied = entry.upstream_url is not None
            raise missing_bytes(entry.filename, download.is_metadata, proxied=proxied) from exc

    # -- the JSON API -------------------------------------------------------------------

    async def project_json(
        self, access: ReadAccess, name: NormalizedName, version: str | None, base_url: str
    ) -> JsonDocument:
        """The JSON API document of a project or of one of its releases, encoded.

        Kept as long as the project's view, like the simple pages: the document
        costs a query of the releases and an encoding of every file.
        """
        view = await self.project_view(access, name)
        key = (access.index.name, name, version, base_url, access.visible)
        entry = self._documents.get(key)
        if entry is not None and entry.view is view:
            return entry.document
        document = await self._document(access, view, name, version, base_url)
        encoded = JsonDocument(json.dumps(document).encode(), view.last_serial)
        _keep(self._documents, key, _DocumentEntry(encoded, view))
        return encoded

    async def project_document(
        self, access: ReadAccess, name: NormalizedName, version: str | None, base_url: str
    ) -> dict[str, Any]:
        """The JSON API document as data, for the pages people read."""
        view = await self.project_view(access, name)
        return await self._document(access, view, name, version, base_url)

    async def _document(
        self,
        access: ReadAccess,
        view: ProjectView,
        name: NormalizedName,
        version: str | None,
        base_url: str,
    ) -> dict[str, Any]:
        releases = await self._resolver.releases(view)
        if version is None:
            release = json_api.latest_release(releases, view.files)
        else:
            release = json_api.match_release(releases, version)
        if release is None:
            wanted = None if version is None else release_key(version)
            held = next((h for h in view.held_back if release_key(h.entry.version) == wanted), None)
            if held is not None:
                raise NotFound(_held_back_message(f"{name} {version}", held.until))
            raise NotFound(f"No release {version!r} of project {name!r}.")
        first = view.contributions[0]
        project = first.project or Project.proxied(first.index, view.name)
        return json_api.project_document(
            project,
            release,
            releases if version is None else None,
            view.files,
            base_url=base_url,
            index=access.index.name,
            file_url=lambda f: base_url + self.file_url(access, f),
            last_serial=view.last_serial,
        )


def _held_back_message(what: str, until: object) -> str:
    return (
        f"{what} is held back by the minimum-age rule for upstream releases until {until}; "
        "pin an older version, or ask an index admin to exempt the project."
    )
