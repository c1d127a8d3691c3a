"""Distribution filenames: what an upload may be called, and what its name says.

The filename is the key every cache and client uses, so it is checked before a
single byte is stored: no path tricks, a known type, and a name and version
that ``packaging`` can parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from ministry.core.models import PackageType
from ministry.errors import InvalidUpload

__all__ = ["DistributionName", "check_filename_safe", "parse_distribution_filename"]

# Longer names cannot be stored on common filesystems (255 bytes per component).
_MAX_FILENAME_BYTES = 255
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
# Everything a wheel or sdist filename may contain under the specifications,
# plus "+" for local versions and "!" for epochs. Anything else (non-ASCII
# look-alikes, spaces, shell metacharacters) is refused.
_ALLOWED = re.compile(r"[A-Za-z0-9._+!-]+\Z")


@dataclass(frozen=True)
class DistributionName:
    """What a distribution's filename says about it."""

    filename: str
    project: NormalizedName
    version: Version
    packagetype: PackageType
    #: Python tags of a wheel joined by "." (the form ``pyversion`` of clients), or "source".
    python_tag: str
    tags: frozenset[Tag]


def check_filename_safe(filename: str) -> None:
    """Refuse filenames that could escape a directory or confuse a file system or a person."""
    if _CONTROL_CHARACTERS.search(filename):
        raise InvalidUpload(
            "Cannot upload a file with non-printable characters (ordinals 0-31) "
            "or the DEL character (ordinal 127) in the name.",
            field="content",
        )
    if "/" in filename or "\\" in filename:
        raise InvalidUpload("Cannot upload a file with '/' or '\\' in the name.", field="content")
    if len(filename.encode("utf-8")) > _MAX_FILENAME_BYTES:
        raise InvalidUpload(
            f"Filename is longer than {_MAX_FILENAME_BYTES} bytes.", field="content"
        )
    if not _ALLOWED.match(filename) or filename.startswith("."):
        raise InvalidUpload(
            f"Invalid filename {filename!r}: only ASCII letters, digits and "
            "'.', '_', '-', '+', '!' may appear in a distribution filename.",
            field="content",
        )


def parse_distribution_filename(filename: str) -> DistributionName:
    """Parse a wheel or sdist filename, or refuse it with the reason."""
    check_filename_safe(filename)
    if filename.endswith(".whl"):
        return _parse_wheel(filename)
    if filename.endswith(".tar.gz"):
        return _parse_sdist(filename)
    raise InvalidUpload(
        f"Invalid file extension: use .tar.gz for an sdist or .whl for a wheel, not {filename!r}. "
        "Eggs, .exe, .msi and .zip sdists are not accepted (as on the public index).",
        field="content",
    )


def _parse_wheel(filename: str) -> DistributionName:
    try:
        name, version, _build, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise InvalidUpload(f"Invalid wheel filename: {exc}", field="content") from exc
    python_tags = sorted({tag.interpreter for tag in tags})
    return DistributionName(
        filename=filename,
        project=name,
        version=version,
        packagetype="bdist_wheel",
        python_tag=".".join(python_tags),
        tags=tags,
    )


def _parse_sdist(filename: str) -> DistributionName:
    try:
        name, version = parse_sdist_filename(filename)
    except InvalidSdistFilename as exc:
        raise InvalidUpload(
            f"Invalid source distribution filename: {exc}", field="content"
        ) from exc
    return DistributionName(
        filename=filename,
        project=canonicalize_name(name),
        version=version,
        packagetype="sdist",
        python_tag="source",
        tags=frozenset(),
    )
