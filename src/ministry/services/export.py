"""``ministry export --static``: an index as a tree of files any web server can serve.

The tree holds ``simple/`` (PEP 503 HTML and PEP 691 JSON pages, ``index.html``
and ``index.json`` in each directory) and ``packages/<project>/<file>`` with the
PEP 658 metadata files beside the wheels; file links are relative, so the tree
works under any address. Only the files stored here go in: those published
here and the proxied ones already cached (``services.stored_files``; the
others are fetched first only when asked). Every file is checked against its
sha256 on the way out. The tree is built under a temporary name beside the
target and renamed into place at the end: a reader sees the old tree or the
new one (for an instant between two renames, none), never half of one. An
interrupted export (Ctrl-C, SIGTERM) removes its temporary tree and leaves the
old one; the next run starts over.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote

from ministry.core.permissions import Identity
from ministry.core.simple_pages import (
    IndexEntry,
    ProjectPage,
    SimpleFile,
    render_index_html,
    render_index_json,
    render_project_html,
    render_project_json,
)
from ministry.errors import InvalidRequest, StorageError
from ministry.services.catalog import Catalog, Download
from ministry.services.indexes import IndexService, ReadAccess
from ministry.services.proxy_files import ProxyStream
from ministry.services.stored_files import (
    Announce,
    Progress,
    Step,
    StoredFile,
    StoredFiles,
    chunks_of,
    close_reader,
)

__all__ = ["ExportResult", "StaticExport"]


@dataclass(frozen=True)
class ExportResult:
    """What went into the tree, and how many proxied files were left out as not cached."""

    projects: int
    files: int
    bytes: int
    not_cached: int


class StaticExport:
    """Writes an index's projects and files as a static simple repository."""

    def __init__(self, indexes: IndexService, catalog: Catalog, stored: StoredFiles) -> None:
        self._indexes = indexes
        self._catalog = catalog
        self._stored = stored

    async def export(
        self,
        index: str,
        identity: Identity,
        target: Path,
        progress: Progress,
        *,
        fetch_missing: Announce | None = None,
    ) -> ExportResult:
        """Build the tree of ``index`` at ``target`` (replacing what was there).

        Only stored files go in (``services.stored_files``); with ``fetch_missing``, the
        proxied files not cached are fetched first, after it is called with their size.
        """
        if target.exists() and not (target / "simple").is_dir() and any(target.iterdir()):
            raise InvalidRequest(
                f"{target} is not empty and holds no earlier export: choose another directory."
            )
        access = await self._indexes.read_access(index, identity)
        building = target.parent / f".{target.name}.partial-{os.getpid()}"
        shutil.rmtree(building, ignore_errors=True)
        (building / "simple").mkdir(parents=True)
        files = size = 0
        listed: list[IndexEntry] = []
        try:
            holdings = await self._stored.for_export(access, progress, fetch_missing)
            everything = [f for p in holdings.projects for f in p.files]
            total = sum(f.size or 0 for f in everything)
            for project in holdings.projects:
                view = project.view
                if view.files and not project.files:
                    continue  # a proxied project none of whose files is cached
                for file in project.files:
                    size += await self._write(access, file, building)
                    files += 1
                    progress(Step("exporting", files, len(everything), size, total))
                page = ProjectPage(
                    name=view.name,
                    display_name=view.display_name,
                    files=tuple(self._listed(access, f) for f in project.files),
                    last_serial=view.last_serial,
                )
                pages = building / "simple" / view.name
                pages.mkdir()
                (pages / "index.html").write_bytes(render_project_html(page))
                (pages / "index.json").write_bytes(render_project_json(page))
                listed.append(IndexEntry(view.name, view.display_name, view.last_serial))
            (building / "simple" / "index.html").write_bytes(render_index_html(listed))
            (building / "simple" / "index.json").write_bytes(
                render_index_json(listed, access.serial)
            )
            _replace(building, target)
        finally:
            shutil.rmtree(building, ignore_errors=True)
        return ExportResult(len(listed), files, size, len(holdings.missing))

    def _listed(self, access: ReadAccess, file: StoredFile) -> SimpleFile:
        """The file as its page lists it: a link into the tree, its metadata if written."""
        f = file.entry
        listed = replace(
            self._catalog.simple_file(access, f),
            url=f"../../packages/{quote(f.project)}/{quote(f.filename)}",
        )
        if file.metadata is None:
            listed = replace(listed, metadata_sha256=None)
        return listed

    async def _write(self, access: ReadAccess, file: StoredFile, building: Path) -> int:
        """Copy a file (and its metadata file) into ``packages/<project>/``; its size."""
        directory = building / "packages" / file.entry.project
        directory.mkdir(parents=True, exist_ok=True)
        written = await self._copy(access, file.download, directory / file.entry.filename)
        if file.metadata is not None:
            await self._copy(access, file.metadata, directory / (file.entry.filename + ".metadata"))
        return written

    async def _copy(self, access: ReadAccess, download: Download, path: Path) -> int:
        reader = await self._catalog.open_download(access, download)
        digest = hashlib.sha256()
        length = 0
        try:
            if isinstance(reader, ProxyStream):  # evicted since it was found cached: no fetch
                raise StorageError(f"{path.name} is no longer cached; export again.")
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


def _replace(building: Path, target: Path) -> None:
    """Put the new tree in place of the old one with renames only."""
    if not target.exists():
        building.rename(target)
        return
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    target.rename(old)
    building.rename(target)
    shutil.rmtree(old, ignore_errors=True)
