"""How URL paths are built: the default index at the root, every other one under its name."""

from __future__ import annotations

import re
from urllib.parse import quote

from ministry.core.models import index_prefix

__all__ = ["INDEX_PATTERN", "file_path", "index_prefix", "local_path", "provenance_path"]

#: An index name in a URL: one lower-case part, or two joined by "/" (core.index_rules).
INDEX_PATTERN = r"[a-z0-9][a-z0-9._-]*(?:/[a-z0-9][a-z0-9._-]*)?"
# Browsers drop tabs and newlines from a URL and read a backslash as "/", so "/", tab,
# "/evil" or "/", backslash, "evil" would lead off-site; nor has a path spaces or controls.
_NOT_IN_LOCAL_PATH = re.compile(r"[\x00-\x20\x7f\\]")


def local_path(target: str) -> str:
    """Where to go after logging in: a path on this server, never another site
    (docs/security.md, "HTTP abuse")."""
    if (
        target.startswith("/")
        and not target.startswith("//")
        and not _NOT_IN_LOCAL_PATH.search(target)
    ):
        return target
    return "/"


def file_path(index: str, project: str, filename: str) -> str:
    """The URL path of a file; ``.metadata`` appended gives its PEP 658 file.

    No query string, ever: pip and uv would build different metadata URLs from it
    (docs/protocol.md, "Metadata files").
    """
    return f"{index_prefix(index)}/packages/{quote(project)}/{quote(filename, safe='+!')}"


def provenance_path(index: str, project: str, version: str, filename: str) -> str:
    """The URL path of a file's PEP 740 provenance in the Integrity API."""
    where = "/".join(quote(part, safe="+!") for part in (project, version, filename))
    return f"{index_prefix(index)}/integrity/{where}/provenance"
