"""Sdists: one gzip-compressed tar, read as a stream under a decompression cap, never extracted."""

from __future__ import annotations

import gzip
import io
import posixpath
import tarfile
import zipfile
from pathlib import Path
from typing import BinaryIO, Self

from ministry.core.archives.common import (
    CHUNK,
    ArchiveInfo,
    ArchiveLimits,
    check_license_files,
    check_member_name,
    check_totals,
    reading,
    refuse,
    show,
)

__all__ = ["inspect_sdist_file"]

_MAX_TAR_HEADER = 1024 * 1024  # tarfile reads pax and GNU long-name headers whole
_SDIST_ROOT = "/sdist-root"  # a notional destination for tarfile.data_filter; never created
_TAR_EXTENDED = frozenset(
    {tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME}
    | {tarfile.GNUTYPE_LONGLINK}
)


class _CappedReader(io.RawIOBase):
    """Hands tarfile decompressed bytes, refusing once past the size or ratio cap
    (docs/security.md, "Hostile uploads")."""

    def __init__(self, stream: gzip.GzipFile, compressed: int, limits: ArchiveLimits) -> None:
        super().__init__()
        self._stream, self._compressed, self._limits = stream, compressed, limits
        self._total = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        data = self._stream.read(CHUNK if size < 0 else min(size, CHUNK))
        self._total += len(data)
        check_totals(self._total, self._compressed, self._limits, "decompressed size")
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
            raise refuse(f"File is not a valid tar.gz archive: corrupt header ({exc}).") from exc
        if info.type in _TAR_EXTENDED and info.size > _MAX_TAR_HEADER:
            raise refuse(
                f"A tar extended header is {info.size} bytes; the limit is {_MAX_TAR_HEADER}."
            )
        return info


def inspect_sdist_file(fp: BinaryIO, path: Path, top: str, limits: ArchiveLimits) -> ArchiveInfo:
    if fp.read(2) != b"\x1f\x8b":
        raise refuse("File is not a tarfile: an sdist must be a gzip-compressed tar (.tar.gz).")
    if zipfile.is_zipfile(path):
        raise refuse("File is both a zip and a tar file.")
    size = fp.seek(0, io.SEEK_END)
    fp.seek(0)
    with gzip.GzipFile(fileobj=fp, mode="rb") as unzipped:
        reader = _CappedReader(unzipped, size, limits)
        with tarfile.open(fileobj=reader, mode="r|", tarinfo=_CappedTarInfo) as tf:
            metadata, names = _scan_sdist(tf, top, limits)
            while chunk := tf.fileobj.read(CHUNK):  # the gzip CRC is checked at its very end
                if chunk.count(0) != len(chunk):
                    raise refuse("The sdist has data after the end of its tar archive.")
    if metadata is None:
        raise refuse(f"PKG-INFO not found at {top}/PKG-INFO.")
    check_license_files(metadata, names, f"{top}/", f"{top}.tar.gz")
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
            raise refuse(f"The sdist has more than {limits.max_members} members.")
        name = _check_tar_member(member)
        if name in names:
            raise refuse(f"Member {show(name)} appears more than once in the tar archive.")
        names.add(name)
        tops.add(name.split("/", 1)[0])
        if len(tops) > 1:
            found = ", ".join(map(show, sorted(tops)))
            raise refuse(f"Incorrect number of top-level directories in sdist: {found}.")
        if name == f"{top}/PKG-INFO":
            metadata = _read_pkg_info(tf, member, name, limits.max_metadata_bytes)
    if tops != {top}:
        found = ", ".join(map(show, tops)) or "none (the sdist is empty)"
        raise refuse(f"Top-level directory in sdist is {found}; expected {top!r}, the filename.")
    return metadata, names


def _check_tar_member(member: tarfile.TarInfo) -> str:
    """Refuse an unsafe member or one that escapes its top-level directory; return its name."""
    check_member_name(member.name, strict=False)
    shown = show(member.name)
    try:
        tarfile.data_filter(member, _SDIST_ROOT)
    except tarfile.FilterError as exc:
        raise refuse(f"Member {shown} is unsafe to extract: {exc}.") from exc
    if member.issparse():
        raise refuse(f"Member {shown} is a sparse file.")
    name = posixpath.normpath(member.name)
    top = name.split("/", 1)[0]
    if name == top and not member.isdir():
        raise refuse(f"Member {shown} is at the top level; an sdist has one top-level directory.")
    if member.issym() or member.islnk():
        base = posixpath.dirname(name) if member.issym() else ""
        target = posixpath.normpath(posixpath.join(base, member.linkname))
        if not target.startswith(f"{top}/"):
            raise refuse(f"Member {shown} links to {show(member.linkname)}, outside {top!r}.")
    return name


def _read_pkg_info(tf: tarfile.TarFile, member: tarfile.TarInfo, name: str, cap: int) -> bytes:
    if not member.isreg():
        raise refuse(f"{name} is not a regular file.")
    if member.size > cap:
        raise refuse(f"{name} is {member.size} bytes; the limit is {cap} bytes.")
    stream = tf.extractfile(member)
    if stream is None:
        raise refuse(f"{name} is not a regular file.")
    with reading(name), stream:
        data = stream.read(member.size + 1)
    if len(data) != member.size:
        raise refuse(f"{name} holds {len(data)} bytes, not the {member.size} declared.")
    return data
