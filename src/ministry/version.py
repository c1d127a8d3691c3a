"""The version of this Ministry of Packages, as ``ministry --version`` prints it."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

__all__ = ["DISTRIBUTION", "version"]

DISTRIBUTION = "ministry-of-packages"

# What a checkout run without installing (PYTHONPATH=src) reports when its
# pyproject.toml cannot be read either: a PEP 440 local version, so tools that
# parse it still can, and which no release will ever carry.
_UNKNOWN = "0+unknown"


def version() -> str:
    """The installed distribution's version; a source tree's pyproject.toml when not installed.

    The installed metadata comes first: it is what pip resolved and what a bug report
    should name. A checkout put on ``sys.path`` without installing has no metadata,
    and then the ``pyproject.toml`` beside ``src/`` is the only record of the version.
    """
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return _source_tree_version(Path(__file__).resolve().parent.parent.parent)


def _source_tree_version(root: Path) -> str:
    """The version in ``root/pyproject.toml`` if it is this project's, else ``0+unknown``."""
    try:
        with (root / "pyproject.toml").open("rb") as file:
            project = tomllib.load(file).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return _UNKNOWN
    if project.get("name") != DISTRIBUTION or not isinstance(project.get("version"), str):
        return _UNKNOWN
    found: str = project["version"]
    return found
