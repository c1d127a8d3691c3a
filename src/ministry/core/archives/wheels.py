"""Wheels: the dist-info directory, its WHEEL, METADATA and RECORD, and RECORD's hashes."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
import tarfile
import zipfile
from typing import BinaryIO

from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from ministry.core.archives.common import (
    CHUNK,
    ArchiveInfo,
    ArchiveLimits,
    check_license_files,
    reading,
    refuse,
    show,
)
from ministry.core.archives.zip_framing import check_framing, check_members

__all__ = ["inspect_wheel_file"]

_SECURE_HASHES = frozenset({"sha256", "sha384", "sha512"})
_UNHASHED = frozenset({"RECORD", "RECORD.jws", "RECORD.p7s"})  # wheel spec: may lack a hash


def inspect_wheel_file(fp: BinaryIO, filename: str, limits: ArchiveLimits) -> ArchiveInfo:
    """Check an open wheel and return its METADATA (read through ``fp`` only: the file
    is opened once)."""
    if zipfile.is_zipfile(fp) and _is_tar(fp):
        raise refuse("File is both a zip and a tar file.")
    size = fp.seek(0, io.SEEK_END)
    check_framing(fp, size, limits)
    with zipfile.ZipFile(fp) as zf:
        check_members(fp, zf, size, limits)
        return _inspect_wheel_contents(zf, filename, limits)


def _is_tar(fp: BinaryIO) -> bool:
    """Whether the file, read from its start, is also a tar archive (compressed or not)."""
    fp.seek(0)
    return tarfile.is_tarfile(fp)


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
    check_license_files(metadata, names, f"{dist_info}/licenses/", filename)
    if limits.verify_record:
        _verify_record(zf, record, limits)
    return ArchiveInfo(metadata=metadata, metadata_path=metadata_info.orig_filename)


def _find_dist_info(zf: zipfile.ZipFile, filename: str) -> str:
    """Return the one top-level ``.dist-info`` directory, which must match the filename."""
    found = {name.split("/", 1)[0] for name in zf.namelist() if "/" in name}
    dirs = sorted(top for top in found if top.endswith(".dist-info"))
    if len(dirs) != 1:
        raise refuse(
            f"Wheel {show(filename)} must contain exactly one top-level .dist-info directory; "
            f"it has {len(dirs)}: {', '.join(map(show, dirs)) or 'none'}."
        )
    project, version = parse_wheel_filename(filename)[:2]
    dist, _, dist_version = dirs[0].removesuffix(".dist-info").partition("-")
    if canonicalize_name(dist) != project or _version(dist_version) != version:
        expected = f"{project.replace('-', '_')}-{version}.dist-info"
        raise refuse(
            f"The .dist-info directory {show(dirs[0])} does not match the filename "
            f"{show(filename)}; expected {expected!r}."
        )
    return dirs[0]


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _missing(filename: str, dist_info: str, part: str) -> str:
    return f"Wheel {show(filename)} does not contain the required {part} file: {dist_info}/{part}"


def _required(zf: zipfile.ZipFile, path: str, missing: str) -> zipfile.ZipInfo:
    try:
        return zf.getinfo(path)
    except KeyError:
        raise refuse(missing) from None


def _read_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """Read a small member whole (zipfile checks its CRC at the end), refusing it above ``cap``."""
    name = info.orig_filename
    if info.file_size > cap:
        raise refuse(f"{show(name)} is {info.file_size} bytes; the limit is {cap} bytes.")
    with reading(name), zf.open(info) as stream:
        data = stream.read(info.file_size + 1)  # not cap + 1: a reader may allocate that much
    if len(data) != info.file_size:
        raise refuse(f"{show(name)} holds {len(data)} bytes, not the {info.file_size} declared.")
    return data


def _check_wheel_version(data: bytes, path: str) -> None:
    lines = data.decode("utf-8", "replace").splitlines()
    fields = (line.partition(":") for line in lines)
    values = [value.strip() for key, _, value in fields if key.strip().lower() == "wheel-version"]
    if len(values) != 1 or not re.fullmatch(r"[0-9]+(\.[0-9]+)*", values[0]):
        raise refuse(f"{path} must have exactly one line 'Wheel-Version: 1.x'.")
    if values[0].split(".")[0].lstrip("0") != "1":
        raise refuse(f"{path} has Wheel-Version {values[0]}; only major version 1 is supported.")


def _verify_record(zf: zipfile.ZipFile, record: zipfile.ZipInfo, limits: ArchiveLimits) -> None:
    """Every file is listed in RECORD and every listed file exists, with its hash and size."""
    members = {info.orig_filename: info for info in zf.infolist()}
    cap = sum(2 * len(name) + 256 for name in members)  # a line is a path, a hash and a size
    entries = _parse_record(_read_zip_member(zf, record, cap), record.filename)
    for name in members:
        if not name.endswith("/") and name not in entries:
            raise refuse(f"File {show(name)} is not listed in {record.filename}.")
    unhashed = {f"{record.filename.rpartition('/')[0]}/{name}" for name in _UNHASHED}
    budget = limits.max_uncompressed_bytes
    for path, (digest, size) in entries.items():
        if path not in members:
            raise refuse(f"{record.filename} lists {show(path)}, which is not in the wheel.")
        if path not in unhashed:
            budget -= _verify_entry(zf, members[path], digest, size, budget)


def _parse_record(data: bytes, record_path: str) -> dict[str, tuple[str, str]]:
    entries: dict[str, tuple[str, str]] = {}
    with reading(record_path):
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    for row in filter(None, rows):
        if len(row) != 3:
            raise refuse(f"{record_path} has a line without 3 fields: {show(','.join(row))}.")
        if row[0] in entries:
            raise refuse(f"{record_path} lists {show(row[0])} twice.")
        entries[row[0]] = (row[1], row[2])
    return entries


def _verify_entry(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, digest: str, size: str, budget: int
) -> int:
    """Stream one member through its RECORD hash; return how many bytes it decompressed to."""
    name = show(info.orig_filename)
    algorithm, _, expected = digest.partition("=")
    if algorithm in ("md5", "sha1"):
        raise refuse(f"RECORD uses the insecure hash {algorithm} for {name}; use sha256.")
    if algorithm not in _SECURE_HASHES:
        raise refuse(f"RECORD entry for {name} needs a hash like 'sha256=<urlsafe base64>'.")
    if size and size != str(info.file_size):
        raise refuse(f"RECORD gives the size of {name} as {show(size)}, not {info.file_size}.")
    hasher = hashlib.new(algorithm)
    total = 0
    with reading(info.orig_filename), zf.open(info) as stream:
        while chunk := stream.read(CHUNK):
            hasher.update(chunk)
            total += len(chunk)
            if total > budget:
                raise refuse("The wheel decompresses to more than the uncompressed-size limit.")
    actual = base64.urlsafe_b64encode(hasher.digest()).rstrip(b"=").decode()
    # Hex is not the spec's encoding, but some published wheels (gmsh) use it; it is as strong.
    if expected.rstrip("=") not in (actual, hasher.hexdigest()):
        raise refuse(f"The {algorithm} hash of {name} does not match RECORD ({actual}).")
    return total
