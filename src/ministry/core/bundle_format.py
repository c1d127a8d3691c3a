"""The bundle file: a manifest and the files, in one uncompressed tar.

Its first member, ``ministry-bundle.json``, is the manifest: the index, and for
every file its project, version, sha256, size, yank, upload time, Requires-Python
and metadata sha256. Then come ``files/<filename>`` and, where there is one,
``files/<filename>.metadata`` (PEP 658). Reading never extracts anything but
what it is asked for: members are streamed through a hash, and a member that is
not a plain file with a safe name under ``files/`` makes the bundle damaged.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ministry.core.distributions import check_filename_safe
from ministry.core.models import IndexConfig, IndexKind
from ministry.core.upload_form import form_for_file
from ministry.errors import InvalidRequest, MinistryError, StorageError

__all__ = [
    "FILES_PREFIX",
    "MANIFEST_NAME",
    "METADATA_SUFFIX",
    "BundleFile",
    "Manifest",
    "TarWriter",
    "check_importable",
    "check_member",
    "damaged",
    "extract_member",
    "manifest_bytes",
    "member_name",
    "mismatch",
    "next_member",
    "open_tar",
    "read_manifest",
]

MANIFEST_NAME = "ministry-bundle.json"
BUNDLE_FORMAT = "ministry-bundle"
BUNDLE_VERSION = 1
FILES_PREFIX = "files/"
METADATA_SUFFIX = ".metadata"
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
class Manifest:
    """What a bundle says it holds: the index it was made from, and its files."""

    index: str
    kind: IndexKind
    description: str
    files: tuple[BundleFile, ...]


class TarWriter:
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
            raise mismatch(self._name)
        self._put(chunk)

    def end(self) -> None:
        """Finish the current member (pad it to a whole block)."""
        if self._written != self._expected:
            raise mismatch(self._name)
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


def open_tar(path: Path) -> tarfile.TarFile:
    """Open a bundle for reading, member by member; a file that is no tar is refused."""
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


def next_member(tar: tarfile.TarFile) -> tarfile.TarInfo | None:
    """The next member, or None at the end; a truncated or broken tar is refused."""
    try:
        return tar.next()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InvalidRequest(f"The bundle cannot be read: {exc}.") from exc


def read_manifest(tar: tarfile.TarFile, path: Path) -> Manifest:
    first = next_member(tar)
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


def _manifest(document: dict[str, Any]) -> Manifest:
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
    return Manifest(_text(index, "name"), kind, _text(index, "description"), records)


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


def check_importable(record: BundleFile, max_size: int) -> None:
    """Refuse names no upload could have, and files over the upload limit, before importing."""
    try:
        form_for_file(record.filename)
    except MinistryError as exc:
        raise damaged(f"{record.filename!r} is not a distribution filename: {exc}") from None
    if record.size > max_size:
        raise InvalidRequest(
            f"{record.filename} is {record.size:,} bytes, more than the upload limit of "
            f"{max_size:,}; raise MINISTRY_MAX_UPLOAD_SIZE for the import. Nothing was imported."
        )


def member_name(member: tarfile.TarInfo, seen: set[str]) -> str:
    """The filename a member carries, once it is known to be a plain file with a safe name."""
    if not member.isreg():
        raise damaged(f"{member.name!r} is not a plain file")
    name = member.name.removeprefix(FILES_PREFIX)
    if not member.name.startswith(FILES_PREFIX):
        raise damaged(f"{member.name!r} is outside files/")
    try:
        check_filename_safe(name)
    except MinistryError:
        raise damaged(f"{member.name!r} is not a safe file name") from None
    if name in seen:
        raise damaged(f"{member.name!r} is in it twice")
    seen.add(name)
    return name


def check_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, name: str, sha256: str, size: int | None
) -> None:
    if size is not None and member.size != size:
        raise damaged(f"{name} has {member.size:,} bytes where the manifest says {size:,}")
    if _hash(tar, member, None) != sha256:
        raise damaged(f"{name} does not match the sha256 in the manifest")


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


def extract_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path, record: BundleFile
) -> None:
    """Copy a member to ``path``, checking it again: the bundle may have changed meanwhile."""
    with path.open("wb") as out:
        sha256 = _hash(tar, member, out)
    if sha256 != record.sha256:
        path.unlink(missing_ok=True)
        raise InvalidRequest(
            f"{record.filename} changed in the bundle while it was being imported; the files "
            "before it were imported. Import again from a bundle nothing writes to."
        )


def damaged(what: str) -> InvalidRequest:
    """The error for a bundle that does not hold what its manifest says."""
    return InvalidRequest(
        f"The bundle is damaged or was altered: {what}. Nothing was imported; "
        "export the bundle again."
    )


def mismatch(name: str) -> StorageError:
    """The error for a stored file that is not what its record says (on export)."""
    return StorageError(
        f"{name}: the stored bytes do not match their sha256 or size; "
        "run 'ministry verify' before exporting."
    )


def manifest_bytes(index: IndexConfig, records: list[BundleFile]) -> bytes:
    """The manifest of a bundle of ``index`` holding ``records``."""
    document = {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "created": datetime.now(UTC).isoformat(),
        "index": {"name": index.name, "kind": index.kind, "description": index.description},
        "files": [asdict(r) for r in records],
    }
    return json.dumps(document, indent=1).encode()
