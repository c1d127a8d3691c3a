"""``ministry export|import --bundle``: an index in one file, carried to an air-gapped server.

The file's layout is ``core.bundle_format``'s business; this module decides
what goes in and what an import does with it.

The export reads what the index shows, as the static export does: only the
files stored here go in (``services.stored_files``: proxied files not cached
are left out, or fetched first when asked), and every file is checked against
its sha256 on the way out. It is written under a temporary name beside the
target and renamed into place at the end; an interrupted export (Ctrl-C,
SIGTERM) removes that file, and the next run starts over.

The import verifies the whole bundle before it imports anything: every member
is a plain file named ``files/<safe name>`` that the manifest lists, with the
size and sha256 the manifest gives. Then each file goes through the same checks
as an upload, and the manifest's yanks are applied.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ministry.core.bundle_format import (
    FILES_PREFIX,
    MANIFEST_NAME,
    METADATA_SUFFIX,
    BundleFile,
    Manifest,
    TarWriter,
    check_importable,
    check_member,
    damaged,
    extract_member,
    manifest_bytes,
    member_name,
    mismatch,
    next_member,
    open_tar,
    read_manifest,
)
from ministry.core.index_settings import new_index
from ministry.core.models import DEFAULT_INDEX
from ministry.core.permissions import Identity
from ministry.errors import InvalidRequest, MinistryError, StorageError
from ministry.services import scratch_kinds
from ministry.services.catalog import Catalog, Download
from ministry.services.indexes import IndexService, ReadAccess
from ministry.services.maintenance import MaintenanceService
from ministry.services.proxy_files import ProxyStream
from ministry.services.stored_files import (
    Announce,
    Holdings,
    Progress,
    Step,
    StoredFiles,
    chunks_of,
    close_reader,
)
from ministry.services.uploads import PublishResult, UploadService
from ministry.storage.protocols import Scratch

__all__ = ["Bundles", "ExportedBundle", "ImportedBundle"]

_KIND = scratch_kinds.BUNDLE


@dataclass(frozen=True)
class ExportedBundle:
    """What went into a bundle, and how many proxied files were left out as not cached."""

    files: int
    bytes: int
    not_cached: int


@dataclass(frozen=True)
class ImportedBundle:
    """What an import did."""

    index: str
    created_index: bool
    added_to_main: bool
    published: int
    present: int
    yanked: int
    refused: tuple[tuple[str, str], ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class _Planned:
    record: BundleFile
    download: Download
    metadata: Download | None


class Bundles:
    """Writes an index as a bundle, and imports a bundle into an index."""

    def __init__(
        self,
        indexes: IndexService,
        catalog: Catalog,
        stored: StoredFiles,
        uploads: UploadService,
        maintenance: MaintenanceService,
        scratch: Scratch,
    ) -> None:
        self._indexes = indexes
        self._catalog = catalog
        self._stored = stored
        self._uploads = uploads
        self._maintenance = maintenance
        self._scratch = scratch

    # -- export -------------------------------------------------------------------------

    async def export(
        self,
        index: str,
        identity: Identity,
        target: Path,
        progress: Progress,
        *,
        fetch_missing: Announce | None = None,
    ) -> ExportedBundle:
        """Write ``index`` as a bundle at ``target`` (replacing a file there).

        Only stored files go in (``services.stored_files``); with ``fetch_missing``, the
        proxied files not cached are fetched first, after it is called with their size.
        """
        if target.is_dir():
            raise InvalidRequest(f"{target} is a directory; name the bundle file to write.")
        if not target.parent.is_dir():
            raise InvalidRequest(f"There is no directory {target.parent} to write the bundle in.")
        access = await self._indexes.read_access(index, identity)
        holdings = await self._stored.for_export(access, progress, fetch_missing)
        planned = _plan(holdings)
        manifest = manifest_bytes(access.index, [p.record for p in planned])
        total = sum(p.record.size for p in planned)
        partial = target.parent / f".{target.name}.partial-{os.getpid()}"
        written = 0
        try:
            with partial.open("wb") as out:
                writer = TarWriter(out)
                writer.add_bytes(MANIFEST_NAME, manifest)
                for done, item in enumerate(planned, start=1):
                    name = FILES_PREFIX + item.record.filename
                    written += await self._copy(access, item.download, writer, name)
                    if item.metadata is not None:
                        await self._copy(access, item.metadata, writer, name + METADATA_SUFFIX)
                    progress(Step("exporting", done, len(planned), written, total))
                writer.close()
                out.flush()
                os.fsync(out.fileno())
            partial.replace(target)
        except OSError as exc:
            raise StorageError(f"Writing {target} failed: {exc.strerror or exc}.") from exc
        finally:
            partial.unlink(missing_ok=True)
        return ExportedBundle(len(planned), written, len(holdings.missing))

    async def _copy(
        self, access: ReadAccess, download: Download, writer: TarWriter, name: str
    ) -> int:
        """Add one stored file to the tar, checking its sha256 as it goes; returns its size."""
        reader = await self._catalog.open_download(access, download)
        try:
            if isinstance(reader, ProxyStream):  # only cached files are planned; never fetch
                raise StorageError(f"{name} is no longer cached; export again.")
            size = reader.size
            expected = download.entry.size if not download.is_metadata else None
            if expected is not None and size != expected:
                raise mismatch(name)
            digest = hashlib.sha256()
            writer.begin(name, size)
            async for chunk in chunks_of(reader):
                digest.update(chunk)
                writer.write(chunk)
            writer.end()
        finally:
            await close_reader(reader)
        if digest.hexdigest() != download.sha256:
            raise mismatch(name)
        return size

    # -- import -------------------------------------------------------------------------

    async def import_bundle(
        self, path: Path, index: str | None, identity: Identity, progress: Progress
    ) -> ImportedBundle:
        """Verify the whole bundle, then import its files into ``index`` (default: its own)."""
        manifest = await asyncio.to_thread(self._verify, path, progress)
        target = index or manifest.index
        created, added = await self._prepare_index(identity, target, manifest)
        by_name = {f.filename: f for f in manifest.files}
        total = sum(f.size for f in manifest.files)
        counts = {"published": 0, "present": 0, "yanked": 0}
        refused: list[tuple[str, str]] = []
        warnings: list[str] = []
        workspace = self._scratch.new_directory(_KIND)
        done = size = 0
        try:
            with open_tar(path) as tar:
                while (member := await asyncio.to_thread(next_member, tar)) is not None:
                    record = by_name.get(member.name.removeprefix(FILES_PREFIX))
                    if record is None:
                        continue  # the manifest, or a metadata file (checked already)
                    local = workspace / record.filename
                    await asyncio.to_thread(extract_member, tar, member, local, record)
                    try:
                        result = await self._uploads.import_file(target, identity, local)
                    except MinistryError as exc:
                        refused.append((record.filename, exc.message))
                    else:
                        await self._settle(identity, target, record, result, counts, warnings)
                    finally:
                        local.unlink(missing_ok=True)
                    done, size = done + 1, size + record.size
                    progress(Step("importing", done, len(by_name), size, total))
        finally:
            shutil.rmtree(workspace, ignore_errors=True)
        return ImportedBundle(
            target, created, added, counts["published"], counts["present"], counts["yanked"],
            tuple(refused), tuple(warnings),
        )  # fmt: skip

    async def _settle(
        self,
        identity: Identity,
        index: str,
        record: BundleFile,
        result: PublishResult,
        counts: dict[str, int],
        warnings: list[str],
    ) -> None:
        """Count an imported file, apply its yank, compare its metadata file."""
        file = result.file
        counts["published" if result.created else "present"] += 1
        if record.yanked is not None and file.yanked is None:
            await self._maintenance.yank(
                identity, index, file.project, filename=file.filename, reason=record.yanked
            )
            counts["yanked"] += 1
        wheel = file.packagetype == "bdist_wheel"
        if wheel and record.metadata_sha256 not in (None, file.metadata_sha256):
            warnings.append(
                f"{file.filename}: the metadata file served here (sha256 {file.metadata_sha256}) "
                f"is not the one the bundle's index served (sha256 {record.metadata_sha256})."
            )

    async def _prepare_index(
        self, identity: Identity, name: str, manifest: Manifest
    ) -> tuple[bool, bool]:
        """Make sure the target is a hosted index: (created it, added it as a base of main)."""
        existing = (await self._indexes.configs()).get(name)
        if existing is not None:
            if existing.kind != "hosted":
                raise InvalidRequest(
                    f"Index {name!r} is a proxy index and cannot hold imported files; "
                    "import into a hosted index with --index NAME."
                )
            return False, False
        await self._indexes.create(identity, new_index(name, {"description": manifest.description}))
        if manifest.kind != "proxy":
            return True, False
        # The bundle stands in for a mirror: serve it from /simple/ as the mirror was.
        main = await self._indexes.get(DEFAULT_INDEX)
        await self._indexes.update(identity, DEFAULT_INDEX, {"bases": (*main.bases, name)})
        return True, True

    def _verify(self, path: Path, progress: Progress) -> Manifest:
        """Read the manifest and check every member against it; nothing is written."""
        with open_tar(path) as tar:
            manifest = read_manifest(tar, path)
            expected = {f.filename: f for f in manifest.files}
            for item in manifest.files:
                check_importable(item, self._uploads.max_file_size)
            total = sum(f.size for f in manifest.files)
            seen: set[str] = set()
            done = size = 0
            while (member := next_member(tar)) is not None:
                name = member_name(member, seen)
                record = expected.get(name)
                if record is not None:
                    check_member(tar, member, name, record.sha256, record.size)
                    done, size = done + 1, size + record.size
                    progress(Step("verifying", done, len(expected), size, total))
                    continue
                listed = expected.get(name.removesuffix(METADATA_SUFFIX))
                if (
                    not name.endswith(METADATA_SUFFIX)
                    or listed is None
                    or not listed.metadata_sha256
                ):
                    raise damaged(f"{member.name!r} is not listed in the bundle's manifest")
                check_member(tar, member, name, listed.metadata_sha256, None)
        missing = sorted(expected.keys() - seen)
        if missing:
            more = f" and {len(missing) - 1} more files are" if len(missing) > 1 else " is"
            raise damaged(f"{missing[0]}{more} in the manifest but not in the bundle")
        return manifest


def _plan(holdings: Holdings) -> list[_Planned]:
    """Every stored file the index shows, each filename once, as the manifest lists it."""
    planned: list[_Planned] = []
    seen: set[str] = set()
    for project in holdings.projects:
        for file in project.files:
            entry = file.entry
            if entry.filename in seen:
                continue
            seen.add(entry.filename)
            if file.size is None:
                raise StorageError(f"{entry.filename}: its size is not recorded.")
            record = BundleFile(
                project=entry.project,
                filename=entry.filename,
                version=entry.version,
                sha256=entry.sha256,
                size=file.size,
                yanked=entry.yanked,
                upload_time=entry.upload_time.isoformat() if entry.upload_time else None,
                requires_python=entry.requires_python,
                metadata_sha256=entry.metadata_sha256,
            )
            planned.append(_Planned(record, file.download, file.metadata))
    return planned
