"""What makes files one release, and what a release allows (docs/security.md, "Release identity").

A release is its canonical PEP 440 version, however a filename spells it:
``2.0``, ``02.0`` and ``2.0.0`` are one release. ``packaging``'s
``canonicalize_version`` is the key: it normalizes the spelling and strips
trailing zeros of the release segment, so two versions get one key exactly when
``Version`` calls them equal. A release has one sdist and one wheel per build
tag and tag set; its files are yanked together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Protocol, TypeVar

from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_version,
    parse_sdist_filename,
    parse_wheel_filename,
)

from ministry.core.models import AddFileOutcome

__all__ = [
    "clash_outcome",
    "clashing_file",
    "filename_release_key",
    "group_by_release",
    "release_key",
    "release_yank",
]


class _Versioned(Protocol):
    @property
    def version(self) -> str: ...


class _File(_Versioned, Protocol):
    @property
    def filename(self) -> str: ...

    @property
    def packagetype(self) -> str: ...

    @property
    def yanked(self) -> str | None: ...


F = TypeVar("F", bound=_File)
V = TypeVar("V", bound=_Versioned)


def release_key(version: str) -> str:
    """The key that makes every spelling of a version one release."""
    return canonicalize_version(version)


@lru_cache(maxsize=65536)
def filename_release_key(filename: str) -> str | None:
    """The release key a filename spells (None: unparsed): other releases' files go unread."""
    try:
        if filename.endswith(".whl"):
            version = parse_wheel_filename(filename)[1]
        else:
            version = parse_sdist_filename(filename)[1]
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return release_key(str(version))


def group_by_release(files: Iterable[V]) -> dict[str, list[V]]:
    """Files by release key, each group in the order given."""
    groups: dict[str, list[V]] = {}
    keys: dict[str, str] = {}  # most files of a release spell its version alike
    for f in files:
        key = keys.get(f.version)
        if key is None:
            key = keys[f.version] = release_key(f.version)
        groups.setdefault(key, []).append(f)
    return groups


def _wheel_slot(filename: str) -> tuple[object, frozenset[Tag]] | None:
    """The build tag and tag set of a wheel: two wheels of a release may not share both."""
    try:
        _name, _version, build, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return None
    return build, tags


def clashing_file(new: _File, release: Iterable[F]) -> F | None:
    """The file of the release the new one would duplicate: its sdist, or a wheel of its tags."""
    slot = _wheel_slot(new.filename) if new.packagetype == "bdist_wheel" else None
    for other in release:
        if other.filename == new.filename or other.packagetype != new.packagetype:
            continue
        if new.packagetype == "sdist" or (slot is not None and _wheel_slot(other.filename) == slot):
            return other
    return None


def clash_outcome(packagetype: str) -> AddFileOutcome:
    """What a store reports for a file that ``clashing_file`` refuses."""
    return AddFileOutcome.SDIST_TAKEN if packagetype == "sdist" else AddFileOutcome.WHEEL_TAKEN


def release_yank(files: Sequence[_File]) -> str | None:
    """The yank of a release (all its files yanked): its first reason, or None when not yanked."""
    if not files or any(f.yanked is None for f in files):
        return None
    return next((f.yanked for f in files if f.yanked), "")
