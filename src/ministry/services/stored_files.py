"""What an export can write without asking an upstream: the files whose bytes are here.

``ministry export`` (a static tree or a bundle) writes what is stored: every file
published here, and the proxied files already in the cache. A proxied file that
was never fetched is left out and counted, unless the operator asks for it with
``--fetch-missing``: ``fetch_missing`` then fetches those files into the cache
first (one at a time, as a client's download would), and the export goes on
from the cache. What was fetched stays cached, so an interrupted run loses no
finished file and the next run fetches only the rest.

The project pages are read as the server reads them: a proxied page past its
freshness is asked for again (a page, not a file), and kept when the upstream
does not answer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from ministry.core.models import FileEntry
from ministry.errors import MinistryError, NotFound
from ministry.services.catalog import Catalog, Download
from ministry.services.indexes import ReadAccess
from ministry.services.projects import ProjectView
from ministry.services.proxy_files import ProxyFiles, ProxyStream
from ministry.storage.protocols import BlobReader

__all__ = [
    "Announce", "Estimate", "Holdings", "Progress", "Step", "StoredFile", "StoredFiles",
    "StoredProject", "chunks_of", "close_reader",
]  # fmt: skip

log = logging.getLogger(__name__)

_METADATA_SUFFIX = ".metadata"


@dataclass(frozen=True)
class Step:
    """How far a long run has come, for a progress bar."""

    phase: str
    files: int
    total_files: int
    bytes: int
    total_bytes: int


#: Called as the work advances.
Progress = Callable[[Step], None]


@dataclass(frozen=True)
class StoredFile:
    """A file of the index whose bytes are here, and its metadata file if that is too."""

    entry: FileEntry
    size: int | None
    metadata: Download | None

    @property
    def download(self) -> Download:
        """The file itself, to open."""
        return Download(self.entry, self.entry.sha256, is_metadata=False)


@dataclass(frozen=True)
class StoredProject:
    """A project as the index shows it, with the files of it that are stored."""

    view: ProjectView
    files: tuple[StoredFile, ...]


@dataclass(frozen=True)
class Estimate:
    """The size of what ``--fetch-missing`` would fetch, as far as the upstream pages say."""

    files: int
    known_bytes: int
    unknown: int

    def describe(self) -> str:
        """In words: how many files, how many bytes, how many of unknown size."""
        if self.files == 0:
            return "nothing to fetch: every file is stored here"
        what = f"{self.files} files not cached, {self.known_bytes:,} bytes"
        if self.unknown == self.files:
            return f"{self.files} files not cached, of unknown size (the upstream does not say)"
        if self.unknown:
            what += f" (and {self.unknown} of unknown size: the upstream does not say)"
        return what


#: Told what ``--fetch-missing`` is about to fetch, before it starts.
Announce = Callable[[Estimate], None]


@dataclass(frozen=True)
class Holdings:
    """What an index shows, split into what is stored here and what is not."""

    projects: tuple[StoredProject, ...]
    #: Proxied files whose bytes were never fetched (each filename once).
    missing: tuple[FileEntry, ...]
    #: Stored or missing proxied wheels whose metadata file the upstream offers, not cached.
    missing_metadata: tuple[FileEntry, ...]

    def estimate(self) -> Estimate:
        """The size of the missing files, from the sizes the upstream pages give."""
        sizes = [f.size for f in self.missing]
        known = sum(s for s in sizes if s is not None)
        return Estimate(len(sizes), known, sizes.count(None))


class StoredFiles:
    """Finds the stored files of an index, and fetches the missing ones when asked."""

    def __init__(self, catalog: Catalog, proxy_files: ProxyFiles) -> None:
        self._catalog = catalog
        self._proxy_files = proxy_files

    async def holdings(self, access: ReadAccess) -> Holdings:
        """Every project the index shows, with which of its files are stored."""
        projects: list[StoredProject] = []
        missing: dict[str, FileEntry] = {}
        missing_metadata: dict[str, FileEntry] = {}
        for project in await self._catalog.projects(access):
            try:
                view = await self._catalog.project_view(access, project.name)
            except NotFound:
                continue  # a proxied name whose kept page says the upstream has no such project
            stored = []
            for entry in view.files:
                file = await self._stored(entry)
                if file is None:
                    missing.setdefault(entry.filename, entry)
                else:
                    stored.append(file)
                offered = entry.upstream_url is not None and entry.metadata_sha256 is not None
                if offered and (file is None or file.metadata is None):
                    missing_metadata.setdefault(entry.filename, entry)
            projects.append(StoredProject(view, tuple(stored)))
        return Holdings(tuple(projects), tuple(missing.values()), tuple(missing_metadata.values()))

    async def _stored(self, entry: FileEntry) -> StoredFile | None:
        """The file if its bytes are here (a hosted file always is), else None."""
        metadata = None
        if entry.metadata_sha256 is not None:
            metadata = Download(entry, entry.metadata_sha256, is_metadata=True)
        if entry.upstream_url is None:
            return StoredFile(entry, entry.size, metadata)
        kept = await self._proxy_files.cached(entry.index, entry.filename)
        if kept is None or kept.sha256 != entry.sha256:
            return None
        if metadata is not None:
            name = entry.filename + _METADATA_SUFFIX
            kept_metadata = await self._proxy_files.cached(entry.index, name)
            if kept_metadata is None or kept_metadata.sha256 != metadata.sha256:
                metadata = None
        return StoredFile(entry, kept.size, metadata)

    async def for_export(
        self, access: ReadAccess, progress: Progress, fetch_missing: Announce | None
    ) -> Holdings:
        """What an export writes: the stored files; with ``fetch_missing``, the missing ones
        too, fetched after ``fetch_missing`` is told their size."""
        holdings = await self.holdings(access)
        if fetch_missing is None or not holdings.missing:
            return holdings
        fetch_missing(holdings.estimate())
        return await self.fetch_missing(access, holdings, progress)

    async def fetch_missing(
        self, access: ReadAccess, holdings: Holdings, progress: Progress
    ) -> Holdings:
        """Fetch the missing files (and metadata files) into the cache; what is stored now.

        A failed fetch stops the run with the upstream's error; what was fetched before
        it stays cached.
        """
        estimate = holdings.estimate()
        total = len(holdings.missing)
        received = 0
        for done, entry in enumerate(holdings.missing, start=1):
            download = Download(entry, entry.sha256, is_metadata=False)
            reader = await self._catalog.open_download(access, download)
            try:
                async for chunk in chunks_of(reader):
                    received += len(chunk)
                    progress(Step("fetching", done - 1, total, received, estimate.known_bytes))
            finally:
                await close_reader(reader)
            progress(Step("fetching", done, total, received, estimate.known_bytes))
        for entry in holdings.missing_metadata:
            metadata = Download(entry, entry.metadata_sha256 or "", is_metadata=True)
            try:
                await close_reader(await self._catalog.open_download(access, metadata))
            except MinistryError as exc:
                # The page then names no metadata file, and installers read the wheel.
                log.warning("%s: its metadata file was not fetched: %s", entry.filename, exc)
        return await self.holdings(access)


async def chunks_of(reader: BlobReader | ProxyStream) -> AsyncIterator[bytes]:
    """Every byte of an opened download, stored or on its way from an upstream."""
    if isinstance(reader, ProxyStream):
        async for chunk in reader.chunks():
            yield chunk
    elif reader.size:
        async for chunk in reader.chunks(0, reader.size - 1):
            yield chunk


async def close_reader(reader: BlobReader | ProxyStream) -> None:
    """Release an opened download, whichever kind it is."""
    if isinstance(reader, ProxyStream):
        reader.close()
    else:
        await reader.close()
