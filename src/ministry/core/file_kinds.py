"""A release's files by kind, the way people choose one: the source distribution,
the pure-Python wheels, then the wheels of each platform."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

__all__ = ["group_files"]

SOURCE = "Source distribution"
PURE = "Wheels: pure Python (any platform)"
OTHER = "Other files"


def _platforms(filename: str) -> frozenset[str] | None:
    """The platform tags of a wheel; None for anything that is not a wheel."""
    if not filename.endswith(".whl"):
        return None
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return None
    return frozenset(tag.platform for tag in tags)


def group_files(files: Iterable[Mapping[str, Any]]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """The files under a heading each, in the order above; platforms by their tags' names
    (a wheel built for several tags, manylinux ones say, is one group)."""
    source: list[Mapping[str, Any]] = []
    pure: list[Mapping[str, Any]] = []
    other: list[Mapping[str, Any]] = []
    by_platform: dict[frozenset[str], list[Mapping[str, Any]]] = {}
    for file in files:
        name = str(file["filename"])
        platforms = _platforms(name)
        if platforms is None:
            sdist = file.get("packagetype") == "sdist" or name.endswith((".tar.gz", ".zip"))
            (source if sdist else other).append(file)
        elif platforms == {"any"}:
            pure.append(file)
        else:
            by_platform.setdefault(platforms, []).append(file)
    groups = [(SOURCE, source), (PURE, pure)]
    for platforms in sorted(by_platform, key=lambda p: sorted(p)):
        groups.append((f"Wheels for {', '.join(sorted(platforms))}", by_platform[platforms]))
    groups.append((OTHER, other))
    return [
        (heading, sorted(group, key=lambda f: str(f["filename"])))
        for heading, group in groups
        if group
    ]
