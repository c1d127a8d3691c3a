"""Unit tests for ministry.core.archives: good archives pass, hostile ones are refused by name."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import random
import struct
import tarfile
import tracemalloc
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from ministry.core.archives import ArchiveInfo, ArchiveLimits, inspect_sdist, inspect_wheel
from ministry.errors import InvalidUpload

MiB = 1024 * 1024
PREFIX = "Invalid distribution file. "
WHEEL_NAME = "demo_pkg-1.0-py3-none-any.whl"
DIST_INFO = "demo_pkg-1.0.dist-info"
SDIST_NAME = "demo_pkg-1.0.tar.gz"
TOP = "demo_pkg-1.0"
METADATA = (
    b"Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n"
    b"Summary: a caf\xc3\xa9 demo\r\n\nA text.\n"
)
INIT = b"x = 1\n"
WHEEL = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
Member = tuple[tarfile.TarInfo, bytes]


# --- builders ---------------------------------------------------------------------------


def digest(data: bytes, algorithm: str = "sha256") -> str:
    raw = hashlib.new(algorithm, data).digest()
    return f"{algorithm}={base64.urlsafe_b64encode(raw).rstrip(b'=').decode()}"


def record_for(files: dict[str, bytes], dist_info: str = DIST_INFO) -> bytes:
    rows = [f"{name},{digest(data)},{len(data)}" for name, data in files.items()]
    return "\n".join([*rows, f"{dist_info}/RECORD,,", ""]).encode()


def wheel_files(dist_info: str = DIST_INFO, metadata: bytes = METADATA) -> dict[str, bytes]:
    return {
        "demo_pkg/__init__.py": INIT,
        f"{dist_info}/METADATA": metadata,
        f"{dist_info}/WHEEL": WHEEL,
    }


def write_wheel(
    path: Path,
    files: dict[str, bytes] | None = None,
    *,
    record: bytes | bool = True,
    compression: int = zipfile.ZIP_DEFLATED,
    dist_info: str = DIST_INFO,
) -> Path:
    """Write a wheel; ``record`` True computes RECORD, bytes gives it, False leaves it out."""
    files = wheel_files(dist_info) if files is None else files
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        if record is True:
            zf.writestr(f"{dist_info}/RECORD", record_for(files, dist_info))
        elif record:
            zf.writestr(f"{dist_info}/RECORD", record)
    return path


def member(
    name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, linkname: str = ""
) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data


def sdist_members(top: str = TOP, pkg_info: bytes = METADATA) -> list[Member]:
    return [
        member(top, kind=tarfile.DIRTYPE),
        member(f"{top}/PKG-INFO", pkg_info),
        member(f"{top}/setup.py", b"from setuptools import setup\nsetup()\n"),
    ]


def tar_bytes(members: Iterable[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buffer.getvalue()


def write_sdist(path: Path, members: Iterable[Member] | None = None) -> Path:
    path.write_bytes(gzip.compress(tar_bytes(sdist_members() if members is None else members)))
    return path


def refused(call: Callable[[], ArchiveInfo], fragment: str) -> str:
    with pytest.raises(InvalidUpload) as caught:
        call()
    message = caught.value.message
    assert message.startswith(PREFIX), message
    assert fragment in message, message
    return message


@pytest.fixture
def whl(tmp_path: Path) -> Path:
    return tmp_path / WHEEL_NAME


@pytest.fixture
def sdist(tmp_path: Path) -> Path:
    return tmp_path / SDIST_NAME


def wheel_refused(path: Path, fragment: str, limits: ArchiveLimits | None = None) -> str:
    return refused(lambda: inspect_wheel(path, WHEEL_NAME, limits or ArchiveLimits()), fragment)


def sdist_refused(path: Path, fragment: str, limits: ArchiveLimits | None = None) -> str:
    return refused(lambda: inspect_sdist(path, SDIST_NAME, limits or ArchiveLimits()), fragment)


# --- wheels that pass -------------------------------------------------------------------


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_good_wheel_returns_metadata_bytes_exactly(whl: Path, compression: int) -> None:
    info = inspect_wheel(write_wheel(whl, compression=compression), WHEEL_NAME)
    assert info == ArchiveInfo(metadata=METADATA, metadata_path=f"{DIST_INFO}/METADATA")


def test_dist_info_may_spell_name_and_version_differently(whl: Path) -> None:
    write_wheel(whl, wheel_files("Demo.Pkg-1.0.0.dist-info"), dist_info="Demo.Pkg-1.0.0.dist-info")
    assert inspect_wheel(whl, WHEEL_NAME).metadata_path == "Demo.Pkg-1.0.0.dist-info/METADATA"


def test_record_hashes_in_hex_are_accepted(whl: Path) -> None:
    rows = [
        f"{name},sha256={hashlib.sha256(data).hexdigest()}," for name, data in wheel_files().items()
    ]
    write_wheel(whl, record="\n".join([*rows, f"{DIST_INFO}/RECORD,,"]).encode())
    assert inspect_wheel(whl, WHEEL_NAME).metadata == METADATA


def test_record_is_not_checked_when_verification_is_off(whl: Path) -> None:
    write_wheel(whl, record=b"nonsense\n")
    assert inspect_wheel(whl, WHEEL_NAME, ArchiveLimits(verify_record=False)).metadata == METADATA


def test_sha512_record_entries_and_directory_members_are_accepted(whl: Path) -> None:
    files = wheel_files()
    rows = [f"{name},{digest(data, 'sha512')},{len(data)}" for name, data in files.items()]
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr("demo_pkg/", b"")
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(f"{DIST_INFO}/RECORD", "\n".join([*rows, f"{DIST_INFO}/RECORD,,"]))
    assert inspect_wheel(whl, WHEEL_NAME).metadata == METADATA


# --- the zip container ------------------------------------------------------------------


def test_not_a_zip(whl: Path) -> None:
    whl.write_bytes(b"just some text, not an archive\n" * 10)
    wheel_refused(whl, "File is not a zipfile")


def test_truncated_zip(whl: Path) -> None:
    data = write_wheel(whl).read_bytes()
    whl.write_bytes(data[: len(data) // 2])
    wheel_refused(whl, "File is not a zipfile")


def test_png_renamed_to_whl(whl: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + bytes(17) + b"IEND\xaeB`\x82"
    whl.write_bytes(png)
    wheel_refused(whl, "File is not a zipfile")


def test_zip_tar_polyglot(whl: Path) -> None:
    whl.write_bytes(tar_bytes([member("hello.txt", b"hello")]))
    with zipfile.ZipFile(whl, "a") as zf:  # appends a zip after the tar
        for name, data in wheel_files().items():
            zf.writestr(name, data)
    wheel_refused(whl, "File is both a zip and a tar file")


def test_prefix_data_before_the_zip(whl: Path) -> None:
    whl.write_bytes(b"#!/bin/sh\necho hidden\n" + write_wheel(whl).read_bytes())
    wheel_refused(whl, "data before its first member")


def test_trailing_data_after_the_zip(whl: Path) -> None:
    whl.write_bytes(write_wheel(whl).read_bytes() + b"hidden")
    wheel_refused(whl, "data after its end of central directory record")


def test_end_record_count_disagrees_with_central_directory(whl: Path) -> None:
    data = bytearray(write_wheel(whl).read_bytes())
    struct.pack_into("<2H", data, len(data) - 22 + 8, 2, 2)  # 4 entries really
    whl.write_bytes(bytes(data))
    wheel_refused(whl, "central directory does not hold the 2 entries")


def with_zip64_end(data: bytes, locator_offset: int | None = None) -> bytes:
    """Rewrite a small zip's end record in ZIP64 form, as writers do past 65,535 entries."""
    eocd = len(data) - 22
    _, _, _, entries, _, cd_size, cd_offset, _ = struct.unpack_from("<4s4H2LH", data, eocd)
    record = struct.pack(
        "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, cd_size, cd_offset
    )
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, eocd if locator_offset is None else 0, 1)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return data[:eocd] + record + locator + end


def test_zip64_end_record_is_understood(whl: Path) -> None:
    whl.write_bytes(with_zip64_end(write_wheel(whl).read_bytes()))
    assert inspect_wheel(whl, WHEEL_NAME).metadata == METADATA


def test_zip64_locator_pointing_elsewhere(whl: Path) -> None:
    whl.write_bytes(with_zip64_end(write_wheel(whl).read_bytes(), locator_offset=0))
    wheel_refused(whl, "ZIP64 locator that does not point at its end record")


def test_overlapping_members(whl: Path) -> None:
    data = bytearray(write_wheel(whl, compression=zipfile.ZIP_STORED).read_bytes())
    second = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 1)
    struct.pack_into("<L", data, second + 42, 0)  # its local header offset: the first member's
    whl.write_bytes(bytes(data))
    wheel_refused(whl, "hidden data or overlapping members")


def test_duplicate_member_names(whl: Path) -> None:
    files = wheel_files()
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(whl, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("demo_pkg/__init__.py", b"evil = 1\n")
        zf.writestr(f"{DIST_INFO}/RECORD", record_for(files))
    wheel_refused(whl, "'demo_pkg/__init__.py' appears more than once")


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("../evil.py", "'..' path segment"),
        ("demo_pkg/../../evil.py", "'..' path segment"),
        ("/etc/evil.py", "absolute path"),
        ("C:/evil.py", "absolute path"),
        ("demo_pkg\\evil.py", "backslash"),
        ("demo_pkg/\x1b[31m.py", "control character"),
        ("demo_pkg/\x85.py", "control character"),
        ("demo_pkg//evil.py", "empty or '.' path segment"),
        ("./demo_pkg/evil.py", "empty or '.' path segment"),
    ],
)
def test_hostile_member_names(whl: Path, name: str, fragment: str) -> None:
    write_wheel(whl, {**wheel_files(), name: b"evil\n"})
    wheel_refused(whl, fragment)


def test_nul_in_member_name(whl: Path) -> None:
    data = write_wheel(whl, {**wheel_files(), "demo_pkg/aXb.py": b""}).read_bytes()
    whl.write_bytes(data.replace(b"demo_pkg/aXb.py", b"demo_pkg/a\0b.py"))
    wheel_refused(whl, "control character")


def test_unsupported_compression(whl: Path) -> None:
    write_wheel(whl, compression=zipfile.ZIP_BZIP2)
    wheel_refused(whl, "compression method 12; a wheel may only use stored (0) or deflate (8)")


def test_data_descriptor(whl: Path) -> None:
    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            super().__init__()
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: bytes | bytearray | memoryview, /) -> int:  # type: ignore[override]
            self.data += b
            return len(b)

    sink = Unseekable()
    files = wheel_files()
    with zipfile.ZipFile(sink, "w") as zf:
        for name, data in {**files, f"{DIST_INFO}/RECORD": record_for(files)}.items():
            zf.writestr(name, data)
    whl.write_bytes(bytes(sink.data))
    wheel_refused(whl, "uses a data descriptor")


def test_too_many_members(whl: Path) -> None:
    wheel_refused(
        write_wheel(whl), "The wheel has 4 members; the limit is 3", ArchiveLimits(max_members=3)
    )


def test_declared_size_over_limit(whl: Path) -> None:
    write_wheel(whl, {**wheel_files(), "demo_pkg/data.bin": bytes(5000)})
    limits = ArchiveLimits(max_uncompressed_bytes=4096)
    wheel_refused(whl, "declared uncompressed size is over the limit of 4096 bytes", limits)


def test_compression_ratio_bomb(whl: Path) -> None:
    write_wheel(whl, {**wheel_files(), "demo_pkg/zeros.bin": bytes(20 * MiB)})
    assert whl.stat().st_size < 100_000
    wheel_refused(whl, "over the compression ratio limit of 200")


def test_bad_crc_in_a_stored_member(whl: Path) -> None:
    data = write_wheel(whl, compression=zipfile.ZIP_STORED).read_bytes()
    whl.write_bytes(data.replace(b"x = 1\n", b"x = 2\n", 1))
    wheel_refused(whl, "'demo_pkg/__init__.py' could not be read: Bad CRC-32")


def test_bad_crc_in_metadata_is_caught_without_record_check(whl: Path) -> None:
    data = write_wheel(whl, compression=zipfile.ZIP_STORED).read_bytes()
    whl.write_bytes(data.replace(b"A text.", b"A texT.", 1))
    limits = ArchiveLimits(verify_record=False)
    wheel_refused(whl, f"'{DIST_INFO}/METADATA' could not be read: Bad CRC-32", limits)


def test_local_header_name_differs_from_central_directory(whl: Path) -> None:
    data = write_wheel(whl, compression=zipfile.ZIP_STORED).read_bytes()
    whl.write_bytes(data.replace(b"demo_pkg/__init__.py", b"demo_pkg/__init__.pz", 1))
    wheel_refused(whl, "local header name 'demo_pkg/__init__.pz' differs from the central")


# --- wheel contents ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("missing", "fragment"),
    [
        ("WHEEL", f"WHEEL not found at {DIST_INFO}/WHEEL"),
        (
            "METADATA",
            f"Wheel '{WHEEL_NAME}' does not contain the required METADATA file: "
            f"{DIST_INFO}/METADATA",
        ),
    ],
)
def test_missing_wheel_or_metadata(whl: Path, missing: str, fragment: str) -> None:
    files = wheel_files()
    del files[f"{DIST_INFO}/{missing}"]
    write_wheel(whl, files)
    wheel_refused(whl, fragment)


def test_missing_record(whl: Path) -> None:
    write_wheel(whl, record=False)
    wheel_refused(
        whl, f"Wheel '{WHEEL_NAME}' does not contain the required RECORD file: {DIST_INFO}/RECORD"
    )


@pytest.mark.parametrize("dist_info", ["other_pkg-1.0.dist-info", "demo_pkg-2.0.dist-info"])
def test_dist_info_not_matching_the_filename(whl: Path, dist_info: str) -> None:
    write_wheel(whl, wheel_files(dist_info), dist_info=dist_info)
    wheel_refused(whl, f"'{dist_info}' does not match the filename")


def test_two_dist_info_directories(whl: Path) -> None:
    write_wheel(whl, {**wheel_files(), "extra-1.0.dist-info/METADATA": METADATA})
    wheel_refused(whl, "exactly one top-level .dist-info directory; it has 2")


@pytest.mark.parametrize(
    ("wheel", "fragment"),
    [
        (b"Wheel-Version: 2.0\n", "has Wheel-Version 2.0; only major version 1 is supported"),
        (b"Generator: test\n", "must have exactly one line 'Wheel-Version: 1.x'"),
        (b"Wheel-Version: 1.0\nWheel-Version: 1.0\n", "must have exactly one line"),
    ],
)
def test_bad_wheel_version(whl: Path, wheel: bytes, fragment: str) -> None:
    write_wheel(whl, {**wheel_files(), f"{DIST_INFO}/WHEEL": wheel})
    wheel_refused(whl, fragment)


def test_metadata_over_the_cap(whl: Path) -> None:
    assert len(WHEEL) < len(METADATA) - 1  # WHEEL is read under the same cap, and first
    limits = ArchiveLimits(max_metadata_bytes=len(METADATA) - 1)
    wheel_refused(
        write_wheel(whl),
        f"'{DIST_INFO}/METADATA' is {len(METADATA)} bytes; the limit is {len(METADATA) - 1}",
        limits,
    )


def test_license_file_must_exist_for_metadata_2_4(whl: Path) -> None:
    metadata = b"Metadata-Version: 2.4\nName: demo-pkg\nVersion: 1.0\nLicense-File: LICENSE\n"
    write_wheel(whl, wheel_files(metadata=metadata))
    wheel_refused(whl, f"License-File LICENSE does not exist in distribution file {WHEEL_NAME}")
    write_wheel(whl, {**wheel_files(metadata=metadata), f"{DIST_INFO}/licenses/LICENSE": b"MIT"})
    assert inspect_wheel(whl, WHEEL_NAME).metadata == metadata


def record_without(name: str) -> bytes:
    return record_for({k: v for k, v in wheel_files().items() if k != name})


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        (record_without("demo_pkg/__init__.py"), "'demo_pkg/__init__.py' is not listed in"),
        (
            record_for({**wheel_files(), "demo_pkg/gone.py": b""}),
            "lists 'demo_pkg/gone.py', which is not in the wheel",
        ),
        (
            record_for({**wheel_files(), "demo_pkg/__init__.py": b"x = 2\n"}),
            "sha256 hash of 'demo_pkg/__init__.py' does not match RECORD",
        ),
        (
            record_without("demo_pkg/__init__.py")
            + f"demo_pkg/__init__.py,{digest(INIT, 'md5')},6\n".encode(),
            "insecure hash md5",
        ),
        (
            record_without("demo_pkg/__init__.py") + b"demo_pkg/__init__.py,,6\n",
            "needs a hash like 'sha256=<urlsafe base64>'",
        ),
        (
            record_without("demo_pkg/__init__.py")
            + f"demo_pkg/__init__.py,{digest(INIT)},7\n".encode(),
            "gives the size of 'demo_pkg/__init__.py' as '7', not 6",
        ),
        (record_for(wheel_files()) + b"demo_pkg/__init__.py,,\n", "twice"),
        (record_for(wheel_files()) + b"one,two\n", "a line without 3 fields"),
    ],
)
def test_record_disagrees_with_contents(whl: Path, record: bytes, fragment: str) -> None:
    write_wheel(whl, record=record)
    wheel_refused(whl, fragment)


# --- sdists -----------------------------------------------------------------------------


def test_good_sdist_returns_pkg_info_bytes_exactly(sdist: Path) -> None:
    info = inspect_sdist(write_sdist(sdist), SDIST_NAME)
    assert info == ArchiveInfo(metadata=METADATA, metadata_path=f"{TOP}/PKG-INFO")


def test_symlink_to_a_sibling_inside_the_top_directory_is_fine(sdist: Path) -> None:
    link = member(f"{TOP}/link.py", kind=tarfile.SYMTYPE, linkname="setup.py")
    hard = member(f"{TOP}/hard.py", kind=tarfile.LNKTYPE, linkname=f"{TOP}/setup.py")
    write_sdist(sdist, [*sdist_members(), link, hard])
    assert inspect_sdist(sdist, SDIST_NAME).metadata == METADATA


def test_sdist_not_gzip(sdist: Path) -> None:
    sdist.write_bytes(tar_bytes(sdist_members()))
    sdist_refused(sdist, "File is not a tarfile")


def test_gzip_of_something_that_is_not_a_tar(sdist: Path) -> None:
    sdist.write_bytes(gzip.compress(b"this is not a tar archive\n" * 100))
    sdist_refused(sdist, "File is not a valid tar.gz archive")


def test_truncated_sdist(sdist: Path) -> None:
    data = write_sdist(
        sdist, [*sdist_members(), member(f"{TOP}/r.bin", random.Random(1).randbytes(9000))]
    )
    raw = data.read_bytes()
    sdist.write_bytes(raw[: len(raw) - 100])
    sdist_refused(sdist, "Compressed file ended before the end-of-stream marker")


def test_sdist_zip_polyglot(sdist: Path) -> None:
    write_sdist(sdist)
    with zipfile.ZipFile(sdist, "a") as zf:
        zf.writestr("evil.py", b"evil")
    sdist_refused(sdist, "File is both a zip and a tar file")


def test_two_top_level_directories(sdist: Path) -> None:
    write_sdist(sdist, [*sdist_members(), member("other-1.0/x.py", b"x")])
    sdist_refused(sdist, "Incorrect number of top-level directories in sdist")


def test_wrong_top_level_directory(sdist: Path) -> None:
    write_sdist(sdist, sdist_members("demo_pkg-2.0"))
    sdist_refused(sdist, f"Top-level directory in sdist is 'demo_pkg-2.0'; expected '{TOP}'")


def test_top_level_entry_that_is_a_file(sdist: Path) -> None:
    write_sdist(sdist, [member(TOP, b"surprise")])
    sdist_refused(sdist, f"Member '{TOP}' is at the top level")


def test_missing_pkg_info(sdist: Path) -> None:
    write_sdist(sdist, [m for m in sdist_members() if not m[0].name.endswith("PKG-INFO")])
    sdist_refused(sdist, f"PKG-INFO not found at {TOP}/PKG-INFO")


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        (f"{TOP}/../evil.py", "'..' path segment"),
        ("../evil.py", "'..' path segment"),
        ("/etc/evil.py", "absolute path"),
        (f"{TOP}/a\\..\\..\\evil.py", "backslash"),
        (f"{TOP}/\x07.py", "control character"),
    ],
)
def test_hostile_sdist_member_names(sdist: Path, name: str, fragment: str) -> None:
    write_sdist(sdist, [*sdist_members(), member(name, b"evil")])
    sdist_refused(sdist, fragment)


@pytest.mark.parametrize(
    ("kind", "linkname", "fragment"),
    [
        (tarfile.SYMTYPE, "../../etc/passwd", "unsafe to extract"),
        (tarfile.SYMTYPE, "/etc/passwd", "unsafe to extract"),
        (tarfile.SYMTYPE, "../other/file", f"links to '../other/file', outside '{TOP}'"),
        (tarfile.LNKTYPE, "../etc/passwd", "unsafe to extract"),
        (tarfile.LNKTYPE, "other/file", f"links to 'other/file', outside '{TOP}'"),
    ],
)
def test_links_escaping_the_top_directory(
    sdist: Path, kind: bytes, linkname: str, fragment: str
) -> None:
    write_sdist(sdist, [*sdist_members(), member(f"{TOP}/link", kind=kind, linkname=linkname)])
    sdist_refused(sdist, fragment)


@pytest.mark.parametrize("kind", [tarfile.FIFOTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE])
def test_device_and_fifo_members(sdist: Path, kind: bytes) -> None:
    write_sdist(sdist, [*sdist_members(), member(f"{TOP}/dev", kind=kind)])
    sdist_refused(sdist, f"Member '{TOP}/dev' is unsafe to extract: '{TOP}/dev' is a special file")


def test_sparse_member(sdist: Path) -> None:
    write_sdist(sdist, [*sdist_members(), member(f"{TOP}/sparse", kind=tarfile.GNUTYPE_SPARSE)])
    sdist_refused(sdist, f"Member '{TOP}/sparse' is a sparse file")


def test_duplicate_sdist_member(sdist: Path) -> None:
    write_sdist(sdist, [*sdist_members(), member(f"{TOP}/PKG-INFO", b"Name: evil\n")])
    sdist_refused(sdist, f"'{TOP}/PKG-INFO' appears more than once")


def test_too_many_sdist_members(sdist: Path) -> None:
    sdist_refused(write_sdist(sdist), "more than 2 members", ArchiveLimits(max_members=2))


def test_pkg_info_over_the_cap(sdist: Path) -> None:
    limits = ArchiveLimits(max_metadata_bytes=10)
    message = f"{TOP}/PKG-INFO is {len(METADATA)} bytes; the limit is 10 bytes"
    sdist_refused(write_sdist(sdist), message, limits)


def test_corrupt_header_in_the_middle_is_not_a_silent_end(sdist: Path) -> None:
    raw = tar_bytes(sdist_members())
    sdist.write_bytes(gzip.compress(raw.replace(b"/setup.py", b"/setup.pz", 1)))
    sdist_refused(sdist, "corrupt header (bad checksum)")


def test_data_hidden_after_the_end_of_the_tar(sdist: Path) -> None:
    sdist.write_bytes(gzip.compress(tar_bytes(sdist_members()) + b"hidden member"))
    sdist_refused(sdist, "data after the end of its tar archive")


def test_oversized_pax_header(sdist: Path) -> None:
    info, data = member(f"{TOP}/x.py", b"x")
    info.pax_headers = {"comment": "a" * (2 * MiB)}
    write_sdist(sdist, [*sdist_members(), (info, data)])
    sdist_refused(sdist, "A tar extended header is")


def test_sdist_license_file_must_exist_for_metadata_2_4(sdist: Path) -> None:
    metadata = b"Metadata-Version: 2.4\nName: demo-pkg\nVersion: 1.0\nLicense-File: LICENSE\n"
    write_sdist(sdist, sdist_members(pkg_info=metadata))
    sdist_refused(sdist, f"License-File LICENSE does not exist in distribution file {SDIST_NAME}")
    write_sdist(sdist, [*sdist_members(pkg_info=metadata), member(f"{TOP}/LICENSE", b"MIT")])
    assert inspect_sdist(sdist, SDIST_NAME).metadata == metadata


@pytest.fixture(scope="module")
def gzip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """50 MiB of zeros in a tar.gz of about 50 KB."""
    path = tmp_path_factory.mktemp("bomb") / SDIST_NAME
    zeros = member(f"{TOP}/zeros.bin", bytes(50 * MiB))
    with tarfile.open(path, "w:gz") as tf:
        for info, data in [*sdist_members(), zeros]:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    assert path.stat().st_size < 100_000
    return path


def test_gzip_bomb_is_refused_at_the_cap_with_bounded_memory(gzip_bomb: Path) -> None:
    limits = ArchiveLimits(max_uncompressed_bytes=10 * MiB, max_compression_ratio=1e9)
    tracemalloc.start()
    try:
        sdist_refused(gzip_bomb, f"decompressed size is over the limit of {10 * MiB} bytes", limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * MiB


def test_gzip_bomb_is_refused_by_ratio_with_default_limits(gzip_bomb: Path) -> None:
    sdist_refused(gzip_bomb, "decompressed size (at least 10")
    sdist_refused(gzip_bomb, "over the compression ratio limit of 200")


# --- no other exception escapes ---------------------------------------------------------


def mutate(rng: random.Random, data: bytes) -> bytes:
    buffer = bytearray(data)
    choice = rng.randrange(4)
    if choice == 0:
        for _ in range(rng.randint(1, 8)):
            buffer[rng.randrange(len(buffer))] ^= 1 << rng.randrange(8)
    elif choice == 1:
        del buffer[rng.randrange(len(buffer)) :]
    elif choice == 2:
        start = rng.randrange(len(buffer))
        del buffer[start : start + rng.randint(1, 64)]
    else:
        at = rng.randrange(len(buffer))
        buffer[at:at] = rng.randbytes(rng.randint(1, 64))
    return bytes(buffer)


@pytest.mark.parametrize("kind", ["wheel-deflated", "wheel-stored", "sdist"])
def test_mutated_archives_raise_only_invalid_upload(tmp_path: Path, kind: str) -> None:
    if kind == "sdist":
        good, filename, inspect = (
            write_sdist(tmp_path / "good").read_bytes(),
            SDIST_NAME,
            inspect_sdist,
        )
    else:
        stored = zipfile.ZIP_STORED if kind == "wheel-stored" else zipfile.ZIP_DEFLATED
        good = write_wheel(tmp_path / "good", compression=stored).read_bytes()
        filename, inspect = WHEEL_NAME, inspect_wheel
    rng = random.Random(0)
    outcomes = {"refused": 0, "accepted": 0}
    for attempt in range(200):
        path = tmp_path / f"{attempt}-{kind}"
        path.write_bytes(mutate(rng, good))
        try:
            inspect(path, filename)
        except InvalidUpload as exc:
            assert exc.message.startswith(PREFIX)
            outcomes["refused"] += 1
        else:
            outcomes["accepted"] += 1
    assert outcomes["refused"] > 150, outcomes
