"""Real distribution files made to order: wheels and sdists with chosen metadata.

They are built the way build backends build them (a dist-info with METADATA,
WHEEL and a correct RECORD; a PEP 625 sdist with PKG-INFO), so that pip, uv and
twine accept them; keyword arguments bend one rule at a time for hostile tests.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.utils import canonicalize_name


def _escaped(name: str) -> str:
    return canonicalize_name(name).replace("-", "_")


def metadata_text(
    name: str,
    version: str,
    *,
    requires_dist: Iterable[str] = (),
    requires_python: str | None = None,
    summary: str | None = None,
    metadata_version: str = "2.1",
    extra_headers: Iterable[tuple[str, str]] = (),
    description: str | None = None,
) -> str:
    """A core metadata file."""
    lines = [f"Metadata-Version: {metadata_version}", f"Name: {name}", f"Version: {version}"]
    if summary is not None:
        lines.append(f"Summary: {summary}")
    if requires_python is not None:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {requirement}" for requirement in requires_dist]
    lines += [f"{key}: {value}" for key, value in extra_headers]
    text = "\n".join(lines) + "\n"
    if description is not None:
        text += "\n" + description
    return text


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def make_wheel(
    directory: Path,
    name: str,
    version: str,
    *,
    metadata: str | None = None,
    dist_info_name: str | None = None,
    filename: str | None = None,
    files: Mapping[str, bytes] | None = None,
    tag: str = "py3-none-any",
    **metadata_options: object,
) -> Path:
    """Write a wheel that installs a module named after the project; returns its path."""
    escaped = _escaped(name)
    dist_info = f"{dist_info_name or f'{escaped}-{version}'}.dist-info"
    contents: dict[str, bytes] = dict(
        files or {f"{escaped}/__init__.py": f"VERSION = {version!r}\n".encode()}
    )
    text = metadata if metadata is not None else metadata_text(name, version, **metadata_options)  # type: ignore[arg-type]
    contents[f"{dist_info}/METADATA"] = text.encode()
    contents[f"{dist_info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: ministry-tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
    ).encode()
    record = [_record_line(path, data) for path, data in contents.items()]
    record.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = directory / (filename or f"{escaped}-{version}-{tag}.whl")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in contents.items():
            archive.writestr(member, data)
    return path


def make_sdist(
    directory: Path,
    name: str,
    version: str,
    *,
    metadata: str | None = None,
    filename: str | None = None,
    top: str | None = None,
    **metadata_options: object,
) -> Path:
    """Write a PEP 625 sdist with PKG-INFO and a pyproject.toml; returns its path."""
    escaped = _escaped(name)
    top = top or f"{escaped}-{version}"
    text = (
        metadata
        if metadata is not None
        else metadata_text(
            name,
            version,
            metadata_version="2.2",
            **metadata_options,  # type: ignore[arg-type]
        )
    )
    members = {
        f"{top}/PKG-INFO": text.encode(),
        f"{top}/pyproject.toml": f'[project]\nname = "{name}"\nversion = "{version}"\n'.encode(),
        f"{top}/{escaped}/__init__.py": b"",
    }
    path = directory / (filename or f"{escaped}-{version}.tar.gz")
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as archive:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return path
