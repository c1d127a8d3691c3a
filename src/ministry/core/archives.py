"""Inspect an uploaded wheel or sdist and return its core metadata, refusing hostile archives.

An upload is untrusted bytes that pip, uv and our own metadata parser read later, so every
ambiguity between archive readers is refused rather than resolved: duplicate names, a local
header that disagrees with the central directory, bytes hidden before, between or after zip
members, a file that is both a zip and a tar (HOSTILE 31-39, STANDARDS U12). Nothing is
extracted to disk. Members are read one at a time, in chunks, under fixed caps on member
count, decompressed bytes, compression ratio and metadata size, so a bomb costs bounded
memory and time. The code is synchronous because the upload service runs it in a worker thread.
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import posixpath
import re
import struct
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Self

from packaging.metadata import parse_email
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from ministry.errors import InvalidUpload

__all__ = ["ArchiveInfo", "ArchiveLimits", "inspect_sdist", "inspect_wheel"]

_CHUNK = 1024 * 1024
_RATIO_FLOOR = 10 * 1024 * 1024  # small archives may compress well; only big ones are bombs
_MAX_TAR_HEADER = 1024 * 1024  # tarfile reads pax and GNU long-name headers whole
_SDIST_ROOT = "/sdist-root"  # a notional destination for tarfile.data_filter; never created
_SECURE_HASHES = frozenset({"sha256", "sha384", "sha512"})
_UNHASHED = frozenset({"RECORD", "RECORD.jws", "RECORD.p7s"})  # wheel spec: may lack a hash
_TAR_EXTENDED = frozenset(
    {tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME}
    | {tarfile.GNUTYPE_LONGLINK}
)
# Errors that the standard library raises on corrupt input; each becomes an InvalidUpload.
_CORRUPT: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    EOFError,
    zlib.error,
    OSError,
    ValueError,  # includes UnicodeDecodeError and packaging's InvalidVersion
    struct.error,
    csv.Error,
    NotImplementedError,
    OverflowError,
)

# ZIP records (APPNOTE 4.3): end of central directory, ZIP64 locator and end, local header.
_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_LOCAL = struct.Struct("<4s2B4HL2L2H")
_CENTRAL_SIZE = 46
_FLAG_ENCRYPTED = 0x0001 | 0x0040
_FLAG_DESCRIPTOR = 0x0008
_FLAG_UTF8 = 0x0800
_NO_SIZE = 0xFFFFFFFF


@dataclass(frozen=True)
class ArchiveLimits:
    """Fixed caps that bound the memory and time one inspection may take."""

    max_metadata_bytes: int = 4 * 1024 * 1024
    max_members: int = 50_000
    max_uncompressed_bytes: int = 2 * 1024**3
    max_compression_ratio: float = 200.0
    verify_record: bool = True


@dataclass(frozen=True)
class ArchiveInfo:
    """The core metadata file of a distribution, byte for byte, and its path in the archive."""

    metadata: bytes
    metadata_path: str


def inspect_wheel(
    path: Path, filename: str, limits: ArchiveLimits = ArchiveLimits()
) -> ArchiveInfo:
    """Check the wheel at ``path`` and return its METADATA, or raise InvalidUpload."""
    try:
        with path.open("rb") as fp:
            return _inspect_wheel(fp, path, filename, limits)
    except _CORRUPT as exc:
        raise _refuse(f"File is not a valid zipfile: {exc}") from exc


def inspect_sdist(
    path: Path, filename: str, limits: ArchiveLimits = ArchiveLimits()
) -> ArchiveInfo:
    """Check the sdist at ``path`` and return its ``PKG-INFO``, or raise InvalidUpload."""
    try:
        with path.open("rb") as fp:
            return _inspect_sdist(fp, path, filename.removesuffix(".tar.gz"), limits)
    except _CORRUPT as exc:
        raise _refuse(f"File is not a valid tar.gz archive: {exc}") from exc


# --- shared -------------------------------------------------------------------------------


def _refuse(reason: str) -> InvalidUpload:
    return InvalidUpload(f"Invalid distribution file. {reason}")


def _show(text: str) -> str:
    """Quote a name from the archive for a message: escaped, and cut short if very long."""
    shown = repr(text)
    return shown if len(shown) <= 200 else f"{shown[:200]}...'"


@contextmanager
def _reading(name: str) -> Iterator[None]:
    """Turn a corrupt-data error while reading one member into a refusal naming it."""
    try:
        yield
    except _CORRUPT as exc:
        raise _refuse(f"Member {_show(name)} could not be read: {exc}") from exc


def _check_totals(total: int, compressed: int, limits: ArchiveLimits, what: str) -> None:
    """Apply the size cap and, above 10 MiB, the ratio cap to ``total`` uncompressed bytes."""
    if total > limits.max_uncompressed_bytes:
        raise _refuse(
            f"The archive's {what} is over the limit of {limits.max_uncompressed_bytes} bytes "
            f"(at least {total} bytes)."
        )
    if total > _RATIO_FLOOR and total > limits.max_compression_ratio * max(compressed, 1):
        raise _refuse(
            f"The archive's {what} (at least {total} bytes from {compressed} compressed) is over "
            f"the compression ratio limit of {limits.max_compression_ratio:g} (a zip bomb?)."
        )


def _check_member_name(name: str, *, strict: bool) -> None:
    """Refuse names that escape, hide or confuse; ``strict`` also refuses '' and '.' segments."""
    shown = _show(name)
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in name):
        raise _refuse(f"Member {shown} has a control character or invalid UTF-8 in its name.")
    if "\\" in name:
        raise _refuse(f"Member {shown} has a backslash in its name; use '/' between directories.")
    parts = name.removesuffix("/").split("/")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise _refuse(f"Member {shown} has an absolute path.")
    if ".." in parts:
        raise _refuse(f"Member {shown} has a '..' path segment.")
    if strict and ("" in parts or "." in parts):
        raise _refuse(f"Member {shown} has an empty or '.' path segment.")


def _license_files(metadata: bytes) -> list[str]:
    """The License-File paths that core metadata 2.4+ promises exist (U12); else none."""
    try:
        raw, _ = parse_email(metadata)
        if Version(raw.get("metadata_version", "0")) < Version("2.4"):
            return []
    except ValueError:
        return []  # unreadable metadata is refused, with a better message, by its own parser
    return raw.get("license_files", [])


def _check_license_files(metadata: bytes, names: set[str], prefix: str, filename: str) -> None:
    for license_file in _license_files(metadata):
        if f"{prefix}{license_file}" not in names:
            raise _refuse(
                f"License-File {license_file} does not exist in distribution file {filename} "
                f"at {prefix}{license_file}."
            )


# --- wheels: the zip container ----------------------------------------------------------


def _inspect_wheel(fp: BinaryIO, path: Path, filename: str, limits: ArchiveLimits) -> ArchiveInfo:
    if zipfile.is_zipfile(path) and tarfile.is_tarfile(path):
        raise _refuse("File is both a zip and a tar file.")
    size = fp.seek(0, io.SEEK_END)
    count, cd_offset, cd_size = _read_end_record(fp, size)
    if count > limits.max_members:
        raise _refuse(f"The wheel has {count} members; the limit is {limits.max_members}.")
    _check_central_directory(fp, cd_offset, cd_size, count)
    with zipfile.ZipFile(fp) as zf:
        _check_zip_members(zf, size, limits)
        _check_layout(fp, zf)
        return _inspect_wheel_contents(zf, filename, limits)


def _read_end_record(fp: BinaryIO, size: int) -> tuple[int, int, int]:
    """Return the central directory's entry count, offset and size; it must end the file."""
    tail_size = min(size, _EOCD.size + 0xFFFF)
    fp.seek(size - tail_size)
    tail = fp.read(tail_size)
    at = len(tail) - _EOCD.size  # where zipfile looks first: an end record with no comment
    if at < 0 or tail[at : at + 4] != b"PK\x05\x06" or tail[-2:] != b"\0\0":
        at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _EOCD.size > len(tail):
        raise _refuse(
            "File is not a zipfile (or is truncated): it has no end of central directory."
        )
    _, disk, cd_disk, _, count, cd_size, cd_offset, comment_size = _EOCD.unpack_from(tail, at)
    if at + _EOCD.size + comment_size != len(tail):
        raise _refuse("The zip archive has data after its end of central directory record.")
    if disk or cd_disk:
        raise _refuse("The zip archive spans several disks.")
    cd_end = size - len(tail) + at
    if cd_end >= _ZIP64_LOCATOR.size:  # zipfile takes a ZIP64 locator wherever one is present
        fp.seek(cd_end - _ZIP64_LOCATOR.size)
        if fp.read(4) == b"PK\x06\x07":
            count, cd_offset, cd_size, cd_end = _read_zip64_end(fp, cd_end)
    if cd_offset + cd_size != cd_end:
        raise _refuse("The zip archive has data before its first member or a corrupt end record.")
    return count, cd_offset, cd_size


def _read_zip64_end(fp: BinaryIO, eocd_at: int) -> tuple[int, int, int, int]:
    """Read the ZIP64 end record, which zipfile expects right before its locator."""
    record_at = eocd_at - _ZIP64_LOCATOR.size - _ZIP64_EOCD.size
    fp.seek(eocd_at - _ZIP64_LOCATOR.size)
    _, disk, locator_offset, disks = _ZIP64_LOCATOR.unpack(fp.read(_ZIP64_LOCATOR.size))
    if record_at < 0 or locator_offset != record_at or disk or disks > 1:
        raise _refuse("The zip archive has a ZIP64 locator that does not point at its end record.")
    fp.seek(record_at)
    signature, record_size, *_, disk, cd_disk, _, count, cd_size, cd_offset = _ZIP64_EOCD.unpack(
        fp.read(_ZIP64_EOCD.size)
    )
    if signature != b"PK\x06\x06" or record_size != _ZIP64_EOCD.size - 12 or disk or cd_disk:
        raise _refuse("The zip archive has a malformed ZIP64 end of central directory record.")
    return count, cd_offset, cd_size, record_at


def _check_central_directory(fp: BinaryIO, offset: int, size: int, count: int) -> None:
    """Walk the central directory so zipfile never parses more entries than the end record says."""
    fp.seek(offset)
    position = seen = 0
    while position < size and seen < count:
        head = fp.read(_CENTRAL_SIZE)
        if len(head) < _CENTRAL_SIZE or head[:4] != b"PK\x01\x02":
            break
        name_size, extra_size, comment_size = struct.unpack_from("<3H", head, 28)
        position += _CENTRAL_SIZE + name_size + extra_size + comment_size
        seen += 1
        fp.seek(offset + position)
    if position != size or seen != count:
        raise _refuse(f"The zip central directory does not hold the {count} entries it declares.")


def _check_zip_members(zf: zipfile.ZipFile, size: int, limits: ArchiveLimits) -> None:
    seen: set[str] = set()
    declared = 0
    for info in zf.infolist():
        name = info.orig_filename
        _check_member_name(name, strict=True)
        if name in seen:
            raise _refuse(f"Member {_show(name)} appears more than once in the zip archive.")
        seen.add(name)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _refuse(
                f"Member {_show(name)} uses compression method {info.compress_type}; "
                "a wheel may only use stored (0) or deflate (8)."
            )
        if info.flag_bits & _FLAG_ENCRYPTED:
            raise _refuse(f"Member {_show(name)} is encrypted.")
        if info.flag_bits & _FLAG_DESCRIPTOR:
            raise _refuse(f"Member {_show(name)} uses a data descriptor; write the wheel seekably.")
        declared += info.file_size
    _check_totals(declared, size, limits, "declared uncompressed size")


def _check_layout(fp: BinaryIO, zf: zipfile.ZipFile) -> None:
    """Members must lie back to back from offset 0 up to the central directory: no hidden bytes."""
    expected = 0
    for info in sorted(zf.infolist(), key=lambda member: member.header_offset):
        if info.header_offset != expected:
            raise _refuse(
                f"Member {_show(info.orig_filename)} does not start where the previous one ends: "
                "the zip archive has hidden data or overlapping members."
            )
        expected = _check_local_header(fp, info)
    if expected != zf.start_dir:
        raise _refuse("The zip archive has hidden data before its central directory.")


def _check_local_header(fp: BinaryIO, info: zipfile.ZipInfo) -> int:
    """Compare a member's local header with its central record; return where its data ends."""
    shown = _show(info.orig_filename)
    fp.seek(info.header_offset)
    head = fp.read(_LOCAL.size)
    if len(head) != _LOCAL.size or head[:4] != b"PK\x03\x04":
        raise _refuse(f"Member {shown} has no local file header.")
    _, _, _, flags, method, _, _, crc, csize, usize, name_size, extra_size = _LOCAL.unpack(head)
    local_name = fp.read(name_size).decode("utf-8" if flags & _FLAG_UTF8 else "cp437", "replace")
    if local_name != info.orig_filename:
        raise _refuse(
            f"Member {shown}: the local header name {_show(local_name)} differs "
            "from the central directory."
        )
    sizes = (csize, usize)
    if (
        method != info.compress_type
        or crc != info.CRC
        or flags & (_FLAG_DESCRIPTOR | _FLAG_ENCRYPTED)
        or sizes not in ((info.compress_size, info.file_size), (_NO_SIZE, _NO_SIZE))
    ):
        raise _refuse(f"Member {shown}: the local header differs from the central directory.")
    end: int = info.header_offset + _LOCAL.size + name_size + extra_size + info.compress_size
    return end


# --- wheels: the contents ---------------------------------------------------------------


def _inspect_wheel_contents(
    zf: zipfile.ZipFile, filename: str, limits: ArchiveLimits
) -> ArchiveInfo:
    dist_info = _find_dist_info(zf, filename)
    wheel = _required(zf, f"{dist_info}/WHEEL", f"WHEEL not found at {dist_info}/WHEEL.")
    metadata_info = _required(
        zf, f"{dist_info}/METADATA", _missing(filename, dist_info, "METADATA")
    )
    record = _required(zf, f"{dist_info}/RECORD", _missing(filename, dist_info, "RECORD"))
    _check_wheel_version(_read_zip_member(zf, wheel, limits.max_metadata_bytes), wheel.filename)
    metadata = _read_zip_member(zf, metadata_info, limits.max_metadata_bytes)
    names = set(zf.namelist())
    _check_license_files(metadata, names, f"{dist_info}/licenses/", filename)
    if limits.verify_record:
        _verify_record(zf, record, limits)
    return ArchiveInfo(metadata=metadata, metadata_path=metadata_info.orig_filename)


def _find_dist_info(zf: zipfile.ZipFile, filename: str) -> str:
    """Return the one top-level ``.dist-info`` directory, which must match the filename."""
    found = {name.split("/", 1)[0] for name in zf.namelist() if "/" in name}
    dirs = sorted(top for top in found if top.endswith(".dist-info"))
    if len(dirs) != 1:
        raise _refuse(
            f"Wheel {_show(filename)} must contain exactly one top-level .dist-info directory; "
            f"it has {len(dirs)}: {', '.join(map(_show, dirs)) or 'none'}."
        )
    project, version = parse_wheel_filename(filename)[:2]
    dist, _, dist_version = dirs[0].removesuffix(".dist-info").partition("-")
    if canonicalize_name(dist) != project or _version(dist_version) != version:
        expected = f"{project.replace('-', '_')}-{version}.dist-info"
        raise _refuse(
            f"The .dist-info directory {_show(dirs[0])} does not match the filename "
            f"{_show(filename)}; expected {expected!r}."
        )
    return dirs[0]


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _missing(filename: str, dist_info: str, part: str) -> str:
    return f"Wheel {_show(filename)} does not contain the required {part} file: {dist_info}/{part}"


def _required(zf: zipfile.ZipFile, path: str, missing: str) -> zipfile.ZipInfo:
    try:
        return zf.getinfo(path)
    except KeyError:
        raise _refuse(missing) from None


def _read_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """Read a small member whole (zipfile checks its CRC at the end), refusing it above ``cap``."""
    name = info.orig_filename
    if info.file_size > cap:
        raise _refuse(f"{_show(name)} is {info.file_size} bytes; the limit is {cap} bytes.")
    with _reading(name), zf.open(info) as stream:
        data = stream.read(info.file_size + 1)  # not cap + 1: a reader may allocate that much
    if len(data) != info.file_size:
        raise _refuse(f"{_show(name)} holds {len(data)} bytes, not the {info.file_size} declared.")
    return data


def _check_wheel_version(data: bytes, path: str) -> None:
    lines = data.decode("utf-8", "replace").splitlines()
    fields = (line.partition(":") for line in lines)
    values = [value.strip() for key, _, value in fields if key.strip().lower() == "wheel-version"]
    if len(values) != 1 or not re.fullmatch(r"[0-9]+(\.[0-9]+)*", values[0]):
        raise _refuse(f"{path} must have exactly one line 'Wheel-Version: 1.x'.")
    if values[0].split(".")[0].lstrip("0") != "1":
        raise _refuse(f"{path} has Wheel-Version {values[0]}; only major version 1 is supported.")


def _verify_record(zf: zipfile.ZipFile, record: zipfile.ZipInfo, limits: ArchiveLimits) -> None:
    """Every file is listed in RECORD and every listed file exists, with its hash and size."""
    members = {info.orig_filename: info for info in zf.infolist()}
    cap = sum(2 * len(name) + 256 for name in members)  # a line is a path, a hash and a size
    entries = _parse_record(_read_zip_member(zf, record, cap), record.filename)
    for name in members:
        if not name.endswith("/") and name not in entries:
            raise _refuse(f"File {_show(name)} is not listed in {record.filename}.")
    unhashed = {f"{record.filename.rpartition('/')[0]}/{name}" for name in _UNHASHED}
    budget = limits.max_uncompressed_bytes
    for path, (digest, size) in entries.items():
        if path not in members:
            raise _refuse(f"{record.filename} lists {_show(path)}, which is not in the wheel.")
        if path not in unhashed:
            budget -= _verify_entry(zf, members[path], digest, size, budget)


def _parse_record(data: bytes, record_path: str) -> dict[str, tuple[str, str]]:
    entries: dict[str, tuple[str, str]] = {}
    with _reading(record_path):
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    for row in filter(None, rows):
        if len(row) != 3:
            raise _refuse(f"{record_path} has a line without 3 fields: {_show(','.join(row))}.")
        if row[0] in entries:
            raise _refuse(f"{record_path} lists {_show(row[0])} twice.")
        entries[row[0]] = (row[1], row[2])
    return entries


def _verify_entry(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, digest: str, size: str, budget: int
) -> int:
    """Stream one member through its RECORD hash; return how many bytes it decompressed to."""
    name = _show(info.orig_filename)
    algorithm, _, expected = digest.partition("=")
    if algorithm in ("md5", "sha1"):
        raise _refuse(f"RECORD uses the insecure hash {algorithm} for {name}; use sha256.")
    if algorithm not in _SECURE_HASHES:
        raise _refuse(f"RECORD entry for {name} needs a hash like 'sha256=<urlsafe base64>'.")
    if size and size != str(info.file_size):
        raise _refuse(f"RECORD gives the size of {name} as {_show(size)}, not {info.file_size}.")
    hasher = hashlib.new(algorithm)
    total = 0
    with _reading(info.orig_filename), zf.open(info) as stream:
        while chunk := stream.read(_CHUNK):
            hasher.update(chunk)
            total += len(chunk)
            if total > budget:
                raise _refuse("The wheel decompresses to more than the uncompressed-size limit.")
    actual = base64.urlsafe_b64encode(hasher.digest()).rstrip(b"=").decode()
    # Hex is not the spec's encoding, but some published wheels (gmsh) use it; it is as strong.
    if expected.rstrip("=") not in (actual, hasher.hexdigest()):
        raise _refuse(f"The {algorithm} hash of {name} does not match RECORD ({actual}).")
    return total


# --- sdists -----------------------------------------------------------------------------


class _CappedReader(io.RawIOBase):
    """Hands tarfile decompressed bytes, refusing once past the size or ratio cap (HOSTILE 32)."""

    def __init__(self, stream: gzip.GzipFile, compressed: int, limits: ArchiveLimits) -> None:
        super().__init__()
        self._stream, self._compressed, self._limits = stream, compressed, limits
        self._total = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        data = self._stream.read(_CHUNK if size < 0 else min(size, _CHUNK))
        self._total += len(data)
        _check_totals(self._total, self._compressed, self._limits, "decompressed size")
        return data


class _CappedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses corrupt headers (tarfile would end the listing there in silence)
    and oversized pax or GNU long-name headers (tarfile would read them whole into memory)."""

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
        try:
            info = super().frombuf(buf, encoding, errors)
        except tarfile.HeaderError as exc:
            if not buf or buf.count(0) == tarfile.BLOCKSIZE:
                raise  # no block, or a block of zeros: the end of the archive
            raise _refuse(f"File is not a valid tar.gz archive: corrupt header ({exc}).") from exc
        if info.type in _TAR_EXTENDED and info.size > _MAX_TAR_HEADER:
            raise _refuse(
                f"A tar extended header is {info.size} bytes; the limit is {_MAX_TAR_HEADER}."
            )
        return info


def _inspect_sdist(fp: BinaryIO, path: Path, top: str, limits: ArchiveLimits) -> ArchiveInfo:
    if fp.read(2) != b"\x1f\x8b":
        raise _refuse("File is not a tarfile: an sdist must be a gzip-compressed tar (.tar.gz).")
    if zipfile.is_zipfile(path):
        raise _refuse("File is both a zip and a tar file.")
    size = fp.seek(0, io.SEEK_END)
    fp.seek(0)
    with gzip.GzipFile(fileobj=fp, mode="rb") as unzipped:
        reader = _CappedReader(unzipped, size, limits)
        with tarfile.open(fileobj=reader, mode="r|", tarinfo=_CappedTarInfo) as tf:
            metadata, names = _scan_sdist(tf, top, limits)
            while chunk := tf.fileobj.read(_CHUNK):  # the gzip CRC is checked at its very end
                if chunk.count(0) != len(chunk):
                    raise _refuse("The sdist has data after the end of its tar archive.")
    if metadata is None:
        raise _refuse(f"PKG-INFO not found at {top}/PKG-INFO.")
    _check_license_files(metadata, names, f"{top}/", f"{top}.tar.gz")
    return ArchiveInfo(metadata=metadata, metadata_path=f"{top}/PKG-INFO")


def _scan_sdist(
    tf: tarfile.TarFile, top: str, limits: ArchiveLimits
) -> tuple[bytes | None, set[str]]:
    """Check each member as it streams past; return PKG-INFO (if met) and all member names."""
    metadata: bytes | None = None
    names: set[str] = set()
    tops: set[str] = set()
    for member in tf:
        if len(names) >= limits.max_members:
            raise _refuse(f"The sdist has more than {limits.max_members} members.")
        name = _check_tar_member(member)
        if name in names:
            raise _refuse(f"Member {_show(name)} appears more than once in the tar archive.")
        names.add(name)
        tops.add(name.split("/", 1)[0])
        if len(tops) > 1:
            found = ", ".join(map(_show, sorted(tops)))
            raise _refuse(f"Incorrect number of top-level directories in sdist: {found}.")
        if name == f"{top}/PKG-INFO":
            metadata = _read_pkg_info(tf, member, name, limits.max_metadata_bytes)
    if tops != {top}:
        found = ", ".join(map(_show, tops)) or "none (the sdist is empty)"
        raise _refuse(f"Top-level directory in sdist is {found}; expected {top!r}, the filename.")
    return metadata, names


def _check_tar_member(member: tarfile.TarInfo) -> str:
    """Refuse an unsafe member or one that escapes its top-level directory; return its name."""
    _check_member_name(member.name, strict=False)
    shown = _show(member.name)
    try:
        tarfile.data_filter(member, _SDIST_ROOT)
    except tarfile.FilterError as exc:
        raise _refuse(f"Member {shown} is unsafe to extract: {exc}.") from exc
    if member.issparse():
        raise _refuse(f"Member {shown} is a sparse file.")
    name = posixpath.normpath(member.name)
    top = name.split("/", 1)[0]
    if name == top and not member.isdir():
        raise _refuse(f"Member {shown} is at the top level; an sdist has one top-level directory.")
    if member.issym() or member.islnk():
        base = posixpath.dirname(name) if member.issym() else ""
        target = posixpath.normpath(posixpath.join(base, member.linkname))
        if not target.startswith(f"{top}/"):
            raise _refuse(f"Member {shown} links to {_show(member.linkname)}, outside {top!r}.")
    return name


def _read_pkg_info(tf: tarfile.TarFile, member: tarfile.TarInfo, name: str, cap: int) -> bytes:
    if not member.isreg():
        raise _refuse(f"{name} is not a regular file.")
    if member.size > cap:
        raise _refuse(f"{name} is {member.size} bytes; the limit is {cap} bytes.")
    stream = tf.extractfile(member)
    if stream is None:
        raise _refuse(f"{name} is not a regular file.")
    with _reading(name), stream:
        data = stream.read(member.size + 1)
    if len(data) != member.size:
        raise _refuse(f"{name} holds {len(data)} bytes, not the {member.size} declared.")
    return data
