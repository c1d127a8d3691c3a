"""ZIP framing: a wheel's bytes must mean one thing to every zip reader.

Duplicate names, a local header that disagrees with the central directory, bytes
hidden before, between or after members, or a lying entry count would let two
readers (ours and an installer's) see different files (docs/security.md, "Hostile uploads").
"""

from __future__ import annotations

import struct
import zipfile
from typing import BinaryIO

from ministry.core.archives.common import (
    ArchiveLimits,
    check_member_name,
    check_totals,
    refuse,
    show,
)

__all__ = ["check_framing", "check_members"]

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


def check_framing(fp: BinaryIO, size: int, limits: ArchiveLimits) -> None:
    """Check the end records and walk the central directory before zipfile parses it."""
    count, cd_offset, cd_size = _read_end_record(fp, size)
    if count > limits.max_members:
        raise refuse(f"The wheel has {count} members; the limit is {limits.max_members}.")
    _check_central_directory(fp, cd_offset, cd_size, count)


def check_members(fp: BinaryIO, zf: zipfile.ZipFile, size: int, limits: ArchiveLimits) -> None:
    """Check every member's name, method and flags, the size caps, and the layout."""
    _check_zip_members(zf, size, limits)
    _check_layout(fp, zf)


def _read_end_record(fp: BinaryIO, size: int) -> tuple[int, int, int]:
    """Return the central directory's entry count, offset and size; it must end the file."""
    tail_size = min(size, _EOCD.size + 0xFFFF)
    fp.seek(size - tail_size)
    tail = fp.read(tail_size)
    at = len(tail) - _EOCD.size  # where zipfile looks first: an end record with no comment
    if at < 0 or tail[at : at + 4] != b"PK\x05\x06" or tail[-2:] != b"\0\0":
        at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _EOCD.size > len(tail):
        raise refuse("File is not a zipfile (or is truncated): it has no end of central directory.")
    _, disk, cd_disk, _, count, cd_size, cd_offset, comment_size = _EOCD.unpack_from(tail, at)
    if at + _EOCD.size + comment_size != len(tail):
        raise refuse("The zip archive has data after its end of central directory record.")
    if disk or cd_disk:
        raise refuse("The zip archive spans several disks.")
    cd_end = size - len(tail) + at
    if cd_end >= _ZIP64_LOCATOR.size:  # zipfile takes a ZIP64 locator wherever one is present
        fp.seek(cd_end - _ZIP64_LOCATOR.size)
        if fp.read(4) == b"PK\x06\x07":
            count, cd_offset, cd_size, cd_end = _read_zip64_end(fp, cd_end)
    if cd_offset + cd_size != cd_end:
        raise refuse("The zip archive has data before its first member or a corrupt end record.")
    return count, cd_offset, cd_size


def _read_zip64_end(fp: BinaryIO, eocd_at: int) -> tuple[int, int, int, int]:
    """Read the ZIP64 end record, which zipfile expects right before its locator."""
    record_at = eocd_at - _ZIP64_LOCATOR.size - _ZIP64_EOCD.size
    fp.seek(eocd_at - _ZIP64_LOCATOR.size)
    _, disk, locator_offset, disks = _ZIP64_LOCATOR.unpack(fp.read(_ZIP64_LOCATOR.size))
    if record_at < 0 or locator_offset != record_at or disk or disks > 1:
        raise refuse("The zip archive has a ZIP64 locator that does not point at its end record.")
    fp.seek(record_at)
    signature, record_size, *_, disk, cd_disk, _, count, cd_size, cd_offset = _ZIP64_EOCD.unpack(
        fp.read(_ZIP64_EOCD.size)
    )
    if signature != b"PK\x06\x06" or record_size != _ZIP64_EOCD.size - 12 or disk or cd_disk:
        raise refuse("The zip archive has a malformed ZIP64 end of central directory record.")
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
        raise refuse(f"The zip central directory does not hold the {count} entries it declares.")


def _check_zip_members(zf: zipfile.ZipFile, size: int, limits: ArchiveLimits) -> None:
    seen: set[str] = set()
    declared = 0
    for info in zf.infolist():
        name = info.orig_filename
        check_member_name(name, strict=True)
        if name in seen:
            raise refuse(f"Member {show(name)} appears more than once in the zip archive.")
        seen.add(name)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise refuse(
                f"Member {show(name)} uses compression method {info.compress_type}; "
                "a wheel may only use stored (0) or deflate (8)."
            )
        if info.flag_bits & _FLAG_ENCRYPTED:
            raise refuse(f"Member {show(name)} is encrypted.")
        if info.flag_bits & _FLAG_DESCRIPTOR:
            raise refuse(f"Member {show(name)} uses a data descriptor; write the wheel seekably.")
        declared += info.file_size
    check_totals(declared, size, limits, "declared uncompressed size")


def _check_layout(fp: BinaryIO, zf: zipfile.ZipFile) -> None:
    """Members must lie back to back from offset 0 up to the central directory: no hidden bytes."""
    expected = 0
    for info in sorted(zf.infolist(), key=lambda member: member.header_offset):
        if info.header_offset != expected:
            raise refuse(
                f"Member {show(info.orig_filename)} does not start where the previous one ends: "
                "the zip archive has hidden data or overlapping members."
            )
        expected = _check_local_header(fp, info)
    if expected != zf.start_dir:
        raise refuse("The zip archive has hidden data before its central directory.")


def _check_local_header(fp: BinaryIO, info: zipfile.ZipInfo) -> int:
    """Compare a member's local header with its central record; return where its data ends."""
    shown = show(info.orig_filename)
    fp.seek(info.header_offset)
    head = fp.read(_LOCAL.size)
    if len(head) != _LOCAL.size or head[:4] != b"PK\x03\x04":
        raise refuse(f"Member {shown} has no local file header.")
    _, _, _, flags, method, _, _, crc, csize, usize, name_size, extra_size = _LOCAL.unpack(head)
    local_name = fp.read(name_size).decode("utf-8" if flags & _FLAG_UTF8 else "cp437", "replace")
    if local_name != info.orig_filename:
        raise refuse(
            f"Member {shown}: the local header name {show(local_name)} differs "
            "from the central directory."
        )
    sizes = (csize, usize)
    if (
        method != info.compress_type
        or crc != info.CRC
        or flags & (_FLAG_DESCRIPTOR | _FLAG_ENCRYPTED)
        or sizes not in ((info.compress_size, info.file_size), (_NO_SIZE, _NO_SIZE))
    ):
        raise refuse(f"Member {shown}: the local header differs from the central directory.")
    end: int = info.header_offset + _LOCAL.size + name_size + extra_size + info.compress_size
    return end
