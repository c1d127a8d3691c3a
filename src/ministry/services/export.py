"""``ministry export --static``: an index as a tree of files any web server can serve.

The tree holds ``simple/`` (PEP 503 HTML and PEP 691 JSON pages, ``index.html``
and ``index.json`` in each directory) and ``packages/<project>/<file>`` with the
PEP 658 metadata files beside the wheels; file links are relative, so the tree
works under any address. Every file is checked against its sha256 on the way
out. The tree is built under a temporary name beside the target and renamed
into place at the end: a reader sees the old tree or the new one (for an
instant between two renames, none), never half of one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote

from ministry.core.models import FileEntry
from ministry.core.permissions import Identity
from ministry.core.simple_pages import (
    IndexEntry,
    ProjectPage,
    render_index_html,
    render_index_json,
    render_project_html,
    render_project_json,
)
from ministry.errors import InvalidRequest, NotFound, StorageError
from ministry.services.catalog import Catalog, Download
from ministry.services.indexes import IndexService, ReadAccess
from ministry.services.proxy_files import ProxyStream
from ministry.storage.protocols import BlobReader

__all__ = ["ExportResult", "StaticExport", "chunks_of", "close_reader"]

#: Called after each project with (projects done, projects in all).
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ExportResult:
    """What went into the tree."""

    projects: int
    files: int
    bytes: int


class StaticExport:
    """Writes an index's projects and files as a static simple repository."""

    def __init__(self, indexes: IndexService, catalog: Catalog) -> None:
        self._indexes = indexes
        self._catalog = catalog

    async def export(
        self, index: str, identity: Identity, target: Path, progress: Progress
    ) -> ExportResult:
        """Build the tree of ``index`` at ``target`` (replacing what was there)."""
        if target.exists() and not (target / "simple").is_dir() and any(target.iterdir()):
            raise InvalidRequest(
                f"{target} is not empty and holds no earlier export: choose another directory."
            )
        access = await self._indexes.read_access(index, identity)
        projects = await self._catalog.projects(access)
        building = target.parent / f".{target.name}.partial-{os.getpid()}"
        shutil.rmtree(building, ignore_errors=True)
        (building / "simple").mkdir(parents=True)
        files = size = 0
        listed: list[IndexEntry] = []
        try:
            for done, project in enumerate(projects, start=1):
                try:
                    view = await self._catalog.project_view(access, project.name)
                except NotFound:
                    continue  # a proxied name the upstream no longer has
                written = await self._project(access, view.files, building, project.name)
                page = ProjectPage(
                    name=view.name,
                    display_name=view.display_name,
                    files=tuple(
                        replace(
                            self._catalog.simple_file(access, f),
                            url=f"../../packages/{quote(f.project)}/{quote(f.filename)}",
                        )
                        for f in view.files
                    ),
                    last_serial=view.last_serial,
                )
                pages = building / "simple" / view.name
                pages.mkdir()
                (pages / "index.html").write_bytes(render_project_html(page))
                (pages / "index.json").write_bytes(render_project_json(page))
                listed.append(IndexEntry(view.name, view.display_name, view.last_serial))
                files += len(view.files)
                size += written
                progress(done, len(projects))
            (building / "simple" / "index.html").write_bytes(render_index_html(listed))
            (building / "simple" / "index.json").write_bytes(
                render_index_json(listed, access.serial)
            )
            _replace(building, target)
        finally:
            shutil.rmtree(building, ignore_errors=True)
        return ExportResult(len(listed), files, size)

    async def _project(
        self, access: ReadAccess, entries: tuple[FileEntry, ...], building: Path, name: str
    ) -> int:
        directory = building / "packages" / name
        directory.mkdir(parents=True)
        written = 0
        for entry in entries:
            wanted = [(Download(entry, entry.sha256, is_metadata=False), entry.filename)]
            if entry.metadata_sha256 is not None:
                metadata = Download(entry, entry.metadata_sha256, is_metadata=True)
                wanted.append((metadata, entry.filename + ".metadata"))
            for download, filename in wanted:
                written += await self._copy(access, download, directory / filename)
        return written

    async def _copy(self, access: ReadAccess, download: Download, path: Path) -> int:
        reader = await self._catalog.open_download(access, download)
        digest = hashlib.sha256()
        length = 0
        try:
            with path.open("wb") as out:
                async for chunk in chunks_of(reader):
                    digest.update(chunk)
                    out.write(chunk)
                    length += len(chunk)
        finally:
            await close_reader(reader)
        if digest.hexdigest() != download.sha256:
            raise StorageError(
                f"{path.name}: the stored bytes do not match their sha256; "
                "run 'ministry verify' before exporting."
            )
        return length


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


def _replace(building: Path, target: Path) -> None:
    """Put the new tree in place of the old one with renames only."""
    if not target.exists():
        building.rename(target)
        return
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    target.rename(old)
    building.rename(target)
    shutil.rmtree(old, ignore_errors=True)
