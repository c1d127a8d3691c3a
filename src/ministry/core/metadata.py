"""Core metadata (``METADATA`` / ``PKG-INFO``), read from the uploaded file itself.

The form fields a client sends are not trusted: flit, for one, always claims
metadata 2.3. What the index stores and serves comes from the file, parsed and
validated by ``packaging`` (metadata 1.0 to 2.6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from packaging.metadata import (
    ExceptionGroup,
    InvalidMetadata,
    Metadata,
    RawMetadata,
    parse_email,
)
from packaging.version import InvalidVersion, Version

from ministry.errors import InvalidUpload

__all__ = ["CoreMetadata", "parse_core_metadata"]

# distutils wrote "UNKNOWN" for every empty field; the public index drops it.
_PLACEHOLDER = "UNKNOWN"
_KNOWN_FIELDS = RawMetadata.__optional_keys__ | RawMetadata.__required_keys__


@dataclass(frozen=True)
class CoreMetadata:
    """The validated metadata of one distribution file."""

    name: str
    version: Version
    metadata_version: str
    requires_python: str | None
    #: The raw fields (``packaging`` names: ``requires_dist``, ``project_urls``, …), JSON-safe.
    fields: dict[str, Any]


def parse_core_metadata(data: bytes) -> CoreMetadata:
    """Parse and validate core metadata bytes, or refuse them with every problem found."""
    if b"\x00" in data:
        raise InvalidUpload("Invalid metadata: the metadata file contains NUL bytes.")
    raw, unparsed = parse_email(data)
    # Unknown headers are harmless and ignored; a known field that did not parse
    # (bad encoding, a single-use field given twice) is an error.
    problems = [
        f"{key.replace('_', '-')}: invalid or repeated value"
        for key in sorted(unparsed)
        if key in _KNOWN_FIELDS
    ]
    cleaned = _drop_placeholders(raw)
    try:
        metadata = Metadata.from_raw(_validatable(cleaned), validate=True)
    except ExceptionGroup as group:
        problems.extend(_describe(exc) for exc in group.exceptions)
    if problems:
        raise InvalidUpload("Invalid metadata: " + "; ".join(problems) + ".")
    return CoreMetadata(
        name=metadata.name,
        version=metadata.version,
        metadata_version=cleaned.get("metadata_version", metadata.metadata_version),
        requires_python=str(metadata.requires_python) if metadata.requires_python else None,
        fields=dict(cleaned),
    )


def _validatable(raw: RawMetadata) -> RawMetadata:
    checked: dict[str, Any] = dict(raw)
    # Metadata-Version 2.0 was never a standard, but bdist_wheel wrote it for years;
    # its fields are those of 2.1, so old wheels are read as 2.1.
    if checked.get("metadata_version") == "2.0":
        checked["metadata_version"] = "2.1"
    # setuptools (from 56, 2021) and hatchling (before 1.26) wrote License-File
    # years before metadata 2.4 defined it; the public index holds thousands of
    # such files and every installer ignores the field. It is kept, not checked.
    try:
        older = Version(checked.get("metadata_version", "1.0")) < Version("2.4")
    except InvalidVersion:
        older = False  # not a version at all: Metadata.from_raw refuses it with the reason
    if older:
        checked.pop("license_files", None)
    return cast(RawMetadata, checked)


def _drop_placeholders(raw: RawMetadata) -> RawMetadata:
    cleaned: dict[str, Any] = {}
    for key, value in raw.items():
        if value == _PLACEHOLDER:
            continue
        if isinstance(value, list):
            value = [item for item in value if item != _PLACEHOLDER]
            if not value:
                continue
        cleaned[key] = value
    return cast(RawMetadata, cleaned)


def _describe(exc: Exception) -> str:
    if isinstance(exc, InvalidMetadata):
        return f"{exc.field}: {exc}"
    return str(exc)
