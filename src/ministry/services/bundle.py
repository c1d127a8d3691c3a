"""``ministry export|import --bundle``: an index in one file, carried to an air-gapped server.

A bundle is an uncompressed tar file (distributions are compressed already).
Its first member, ``ministry-bundle.json``, is the manifest: the index, and for
every file its project, version, sha256, size, yank, upload time, Requires-Python
and metadata sha256. Then come ``files/<filename>`` and, where there is one,
``files/<filename>.metadata`` (PEP 658).

The export reads what the index shows, as the static export does; of proxied
files only those whose bytes are cached go in (no file is fetched for it), and
every file is checked against its sha256 on the way out. It is written under a
temporary name beside the target and renamed into place at the end.

The import verifies the whole bundle before it imports anything: every member
is a plain file named ``files/<safe name>`` that the manifest lists, with the
size and sha256 the manifest gives. Then each file goes through the same checks
as an upload, and the manifest's yanks are applied.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ministry.core.distributions import check_filename_safe
from ministry.core.index_settings import new_index
from ministry.core.models import DEFAULT_INDEX, FileEntry, IndexConfig, IndexKind
from ministry.core.permissions import Identity
from ministry.core.upload_form import form_for_file
from ministry.errors import InvalidRequest, MinistryError, NotFound, StorageError
from ministry.services.catalog import Catalog, Download
from ministry.services.export import chunks_of, close_reader
from ministry.services.indexes import IndexService, ReadAccess
from ministry.services.maintenance import MaintenanceService
from ministry.services.proxy_files import ProxyFiles, ProxyStream
from ministry.services.uploads import PublishResult, UploadService

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_VERSION",
    "MANIFEST_NAME",
    "BundleFile",
    "Bundles",
    "ExportedBundle",
    "ImportedBundle",
    "Step",
]

MANIFEST_NAME = "ministry-bundle.json"
BUNDLE_FORMAT = "ministry-bundle"
BUNDLE_VERSION = 1
_FILES = "files/"
_METADATA = ".metadata"
_MAX_MANIFEST = 512 * 1024**2
_CHUNK = 1024 * 1024
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
_OPTIONAL = frozenset({"yanked", "upload_time", "requires_python", "metadata_sha256"})


@dataclass(frozen=True)
class BundleFile:
    """One distribution file as the manifest describes it."""

    project: str
    filename: str
    version: str
    sha256: str
    size: int
    yanked: str | None
    upload_time: str | None
    requires_python: str | None
    metadata_sha256: str | None


@dataclass(frozen=True)
class _Manifest:
    index: str
    kind: IndexKind
    description: str
    files: tuple[BundleFile, ...]


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
        proxy_files: ProxyFiles,
        uploads: UploadService,
        maintenance: MaintenanceService,
        spool_directory: Path,
    ) -> None:
        self._indexes = indexes
        self._catalog = catalog
        self._proxy_files = proxy_files
        self._uploads = uploads
        self._maintenance = maintenance
        self._spool_directory = spool_directory

    # -- export -------------------------------------------------------------------------

    async def export(
        self, index: str, identity: Identity, target: Path, progress: Progress
    ) -> ExportedBundle:
        """Write ``index`` as a bundle at ``target`` (replacing a file there)."""
        if target.is_dir():
            raise InvalidRequest(f"{target} is a directory; name the bundle file to write.")
        if not target.parent.is_dir():
            raise InvalidRequest(f"There is no directory {target.parent} to write the bundle in.")
        access = await self._indexes.read_access(index, identity)
        planned, not_cached = await self._plan(access)
        manifest = _manifest_bytes(access.index, [p.record for p in planned])
        total = sum(p.record.size for p in planned)
        partial = target.parent / f".{target.name}.partial-{os.getpid()}"
        written = 0
        try:
            with partial.open("wb") as out:
                writer = _TarWriter(out)
                writer.add_bytes(MANIFEST_NAME, manifest)
                for done, item in enumerate(planned, start=1):
                    name = _FILES + item.record.filename
                    written += await self._copy(access, item.download, writer, name)
                    if item.metadata is not None:
                        await self._copy(access, item.metadata, writer, name + _METADATA)
                    progress(Step("exporting", done, len(planned), written, total))
                writer.close()
                out.flush()
                os.fsync(out.fileno())
            partial.replace(target)
        except OSError as exc:
            raise StorageError(f"Writing {target} failed: {exc.strerror or exc}.") from exc
        finally:
            partial.unlink(missing_ok=True)
        return ExportedBundle(len(planned), written, not_cached)

    async def _plan(self, access: ReadAccess) -> tuple[list[_Planned], int]:
        """Every file the index shows that can go in; and how many proxied ones cannot."""
        planned: list[_Planned] = []
        seen: set[str] = set()
        not_cached = 0
        for project in await self._catalog.projects(access):
            try:
                view = await self._catalog.project_view(access, project.name)
            except NotFound:
                continue  # a proxied name whose kept page says the upstream has no such project
            for entry in view.files:
                if entry.filename in seen:
                    continue
                seen.add(entry.filename)
                item = await self._planned(entry)
                if item is None:
                    not_cached += 1
                else:
                    planned.append(item)
        return planned, not_cached

    async def _planned(self, entry: FileEntry) -> _Planned | None:
        size = entry.size
        metadata = None
        if entry.metadata_sha256 is not None:
            metadata = Download(entry, entry.metadata_sha256, is_metadata=True)
        if entry.upstream_url is not None:
            kept = await self._proxy_files.cached(entry.index, entry.filename)
            if kept is None or kept.sha256 != entry.sha256:
                return None
            size = kept.size
            if metadata is not None:
                kept = await self._proxy_files.cached(entry.index, entry.filename + _METADATA)
                if kept is None or kept.sha256 != metadata.sha256:
                    metadata = None
        if size is None:
            raise StorageError(f"{entry.filename}: its size is not recorded.")
        record = BundleFile(
            project=entry.project,
            filename=entry.filename,
            version=entry.version,
            sha256=entry.sha256,
            size=size,
            yanked=entry.yanked,
            upload_time=entry.upload_time.isoformat() if entry.upload_time else None,
            requires_python=entry.requires_python,
            metadata_sha256=entry.metadata_sha256,
        )
        return _Planned(record, Download(entry, entry.sha256, is_metadata=False), metadata)

    async def _copy(
        self, access: ReadAccess, download: Download, writer: _TarWriter, name: str
    ) -> int:
        """Add one stored file to the tar, checking its sha256 as it goes; returns its size."""
        reader = await self._catalog.open_download(access, download)
        try:
            if isinstance(reader, ProxyStream):  # only cached files are planned; never fetch
                raise StorageError(f"{name} is no longer cached; export again.")
            size = reader.size
            expected = download.entry.size if not download.is_metadata else None
            if expected is not None and size != expected:
                raise _mismatch(name)
            digest = hashlib.sha256()
            writer.begin(name, size)
            async for chunk in chunks_of(reader):
                digest.update(chunk)
                writer.write(chunk)
            writer.end()
        finally:
            await close_reader(reader)
        if digest.hexdigest() != download.sha256:
            raise _mismatch(name)
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
        workspace = Path(tempfile.mkdtemp(prefix="bundle-", dir=self._spool_directory))
        done = size = 0
        try:
            with _open_tar(path) as tar:
                while (member := await asyncio.to_thread(_next, tar)) is not None:
                    record = by_name.get(member.name.removeprefix(_FILES))
                    if record is None:
                        continue  # the manifest, or a metadata file (checked already)
                    local = workspace / record.filename
                    await asyncio.to_thread(_extract, tar, member, local, record)
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
        self, identity: Identity, name: str, manifest: _Manifest
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

    def _verify(self, path: Path, progress: Progress) -> _Manifest:
        """Read the manifest and check every member against it; nothing is written."""
        with _open_tar(path) as tar:
            manifest = _read_manifest(tar, path)
            expected = {f.filename: f for f in manifest.files}
            for item in manifest.files:
                _check_importable(item, self._uploads.max_file_size)
            total = sum(f.size for f in manifest.files)
            seen: set[str] = set()
            done = size = 0
            while (member := _next(tar)) is not None:
                name = _member_name(member, seen)
                record = expected.get(name)
                if record is not None:
                    _check_member(tar, member, name, record.sha256, record.size)
                    done, size = done + 1, size + record.size
                    progress(Step("verifying", done, len(expected), size, total))
                    continue
                listed = expected.get(name.removesuffix(_METADATA))
                if not name.endswith(_METADATA) or listed is None or not listed.metadata_sha256:
                    raise _damaged(f"{member.name!r} is not listed in the bundle's manifest")
                _check_member(tar, member, name, listed.metadata_sha256, None)
        missing = sorted(expected.keys() - seen)
        if missing:
            more = f" and {len(missing) - 1} more files are" if len(missing) > 1 else " is"
            raise _damaged(f"{missing[0]}{more} in the manifest but not in the bundle")
        return manifest


# -- the tar file ----------------------------------------------------------------------


class _TarWriter:
    """Writes a tar stream member by member, with sizes known before the bytes arrive."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._offset = 0
        self._expected = self._written = 0
        self._name = ""
        self._mtime = int(datetime.now(UTC).timestamp())

    def _put(self, data: bytes) -> None:
        self._out.write(data)
        self._offset += len(data)

    def begin(self, name: str, size: int) -> None:
        """Start a member of ``size`` bytes."""
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, 0o644, self._mtime
        self._put(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        self._name, self._expected, self._written = name, size, 0

    def write(self, chunk: bytes) -> None:
        """Add bytes to the current member."""
        self._written += len(chunk)
        if self._written > self._expected:
            raise _mismatch(self._name)
        self._put(chunk)

    def end(self) -> None:
        """Finish the current member (pad it to a whole block)."""
        if self._written != self._expected:
            raise _mismatch(self._name)
        self._put(b"\0" * (-self._expected % _BLOCK))

    def add_bytes(self, name: str, data: bytes) -> None:
        """A whole member at once."""
        self.begin(name, len(data))
        self.write(data)
        self.end()

    def close(self) -> None:
        """The end-of-archive blocks, padded to a whole record as tar writes it."""
        self._put(b"\0" * (2 * _BLOCK))
        self._put(b"\0" * (-self._offset % _RECORD))


def _open_tar(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:")
    except FileNotFoundError:
        raise InvalidRequest(f"There is no file {path}.") from None
    except IsADirectoryError:
        raise InvalidRequest(f"{path} is a directory, not a bundle file.") from None
    except OSError as exc:
        raise InvalidRequest(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    except (tarfile.TarError, EOFError) as exc:
        raise InvalidRequest(f"{path} is not a ministry bundle (not a tar file).") from exc


def _next(tar: tarfile.TarFile) -> tarfile.TarInfo | None:
    try:
        return tar.next()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InvalidRequest(f"The bundle cannot be read: {exc}.") from exc


def _read_manifest(tar: tarfile.TarFile, path: Path) -> _Manifest:
    first = _next(tar)
    if first is None or first.name != MANIFEST_NAME or not first.isreg():
        raise InvalidRequest(f"{path} is not a ministry bundle: it does not start with a manifest.")
    if first.size > _MAX_MANIFEST:
        raise InvalidRequest(f"{path}: the bundle's manifest is too large to be one.")
    reader = tar.extractfile(first)
    assert reader is not None  # a regular file
    try:
        document = json.loads(reader.read())
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InvalidRequest(f"The bundle cannot be read: {exc}.") from exc
    except ValueError as exc:
        raise InvalidRequest(f"{path} is not a ministry bundle: its manifest is not JSON.") from exc
    if not isinstance(document, dict) or document.get("format") != BUNDLE_FORMAT:
        raise InvalidRequest(f"{path} is not a ministry bundle: its manifest has another format.")
    version = document.get("version")
    if version != BUNDLE_VERSION or isinstance(version, bool):
        raise InvalidRequest(
            f"{path} is a ministry bundle of version {version!r}; this version of Ministry "
            f"reads version {BUNDLE_VERSION}. Export it again with a matching version."
        )
    try:
        return _manifest(document)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidRequest(f"{path}: the bundle's manifest is malformed ({exc}).") from exc


def _manifest(document: dict[str, Any]) -> _Manifest:
    index = document["index"]
    kind = _text(index, "kind")
    if kind not in ("hosted", "proxy"):
        raise ValueError(f"unknown index kind {kind!r}")
    files = document["files"]
    if not isinstance(files, list):
        raise TypeError("'files' is not a list")
    records = tuple(_record(item) for item in files)
    if len({r.filename for r in records}) != len(records):
        raise ValueError("a filename is listed twice")
    return _Manifest(_text(index, "name"), kind, _text(index, "description"), records)


def _record(item: object) -> BundleFile:
    if not isinstance(item, dict):
        raise TypeError("a file entry is not an object")
    values: dict[str, Any] = {}
    for field in fields(BundleFile):
        if field.name == "size":
            size = item["size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise ValueError(f"the size of {item.get('filename')!r} is not a size")
            values["size"] = size
        else:
            values[field.name] = _text(item, field.name, optional=field.name in _OPTIONAL)
    record = BundleFile(**values)
    for digest in (record.sha256, record.metadata_sha256):
        if digest is not None and not _is_sha256(digest):
            raise ValueError(f"{record.filename!r} has a malformed sha256")
    return record


def _text(mapping: Any, key: str, *, optional: bool = False) -> Any:
    if not isinstance(mapping, dict):
        raise TypeError(f"{key!r} is not in an object")
    value = mapping[key]
    if isinstance(value, str) or (optional and value is None):
        return value
    raise TypeError(f"{key!r} is not text")


def _is_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _check_importable(record: BundleFile, max_size: int) -> None:
    """Refuse names no upload could have, and files over the upload limit, before importing."""
    try:
        form_for_file(record.filename)
    except MinistryError as exc:
        raise _damaged(f"{record.filename!r} is not a distribution filename: {exc}") from None
    if record.size > max_size:
        raise InvalidRequest(
            f"{record.filename} is {record.size:,} bytes, more than the upload limit of "
            f"{max_size:,}; raise MINISTRY_MAX_UPLOAD_SIZE for the import. Nothing was imported."
        )


def _member_name(member: tarfile.TarInfo, seen: set[str]) -> str:
    """The filename a member carries, once it is known to be a plain file with a safe name."""
    if not member.isreg():
        raise _damaged(f"{member.name!r} is not a plain file")
    name = member.name.removeprefix(_FILES)
    if not member.name.startswith(_FILES):
        raise _damaged(f"{member.name!r} is outside files/")
    try:
        check_filename_safe(name)
    except MinistryError:
        raise _damaged(f"{member.name!r} is not a safe file name") from None
    if name in seen:
        raise _damaged(f"{member.name!r} is in it twice")
    seen.add(name)
    return name


def _check_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, name: str, sha256: str, size: int | None
) -> None:
    if size is not None and member.size != size:
        raise _damaged(f"{name} has {member.size:,} bytes where the manifest says {size:,}")
    if _hash(tar, member, None) != sha256:
        raise _damaged(f"{name} does not match the sha256 in the manifest")


def _hash(tar: tarfile.TarFile, member: tarfile.TarInfo, copy: IO[bytes] | None) -> str:
    source = tar.extractfile(member)
    assert source is not None  # a regular file
    digest = hashlib.sha256()
    try:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            if copy is not None:
                copy.write(chunk)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InvalidRequest(f"The bundle cannot be read at {member.name}: {exc}.") from exc
    return digest.hexdigest()


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path, record: BundleFile) -> None:
    """Copy a member to ``path``, checking it again: the bundle may have changed meanwhile."""
    with path.open("wb") as out:
        sha256 = _hash(tar, member, out)
    if sha256 != record.sha256:
        path.unlink(missing_ok=True)
        raise InvalidRequest(
            f"{record.filename} changed in the bundle while it was being imported; the files "
            "before it were imported. Import again from a bundle nothing writes to."
        )


def _damaged(what: str) -> InvalidRequest:
    return InvalidRequest(
        f"The bundle is damaged or was altered: {what}. Nothing was imported; "
        "export the bundle again."
    )


def _mismatch(name: str) -> StorageError:
    return StorageError(
        f"{name}: the stored bytes do not match their sha256 or size; "
        "run 'ministry verify' before exporting."
    )


def _manifest_bytes(index: IndexConfig, records: list[BundleFile]) -> bytes:
    document = {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "created": datetime.now(UTC).isoformat(),
        "index": {"name": index.name, "kind": index.kind, "description": index.description},
        "files": [asdict(r) for r in records],
    }
    return json.dumps(document, indent=1).encode()
