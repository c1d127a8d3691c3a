"""Where a manifest lives below a blob store's root, the same in every backend.

``manifests/<kind>/<ab>/<key>.json``: beside ``sha256/`` and ``quarantine/``, never
inside them, so blob listings and ``verify`` never see a manifest. The kind is a
short word and the key a hex sha256, both checked here, so the path is built from
nothing a client chose.
"""

from __future__ import annotations

import re

from ministry.errors import StorageError

__all__ = ["MANIFESTS", "NAME", "manifest_directory", "manifest_path"]

MANIFESTS = "manifests"
_KIND = re.compile(r"[a-z]{1,16}\Z")
_KEY = re.compile(r"[0-9a-f]{64}\Z")
#: The name of a manifest file, as the listings recognise it.
NAME = re.compile(r"[0-9a-f]{64}\.json\Z")


def manifest_directory(kind: str) -> str:
    """The directory (or key prefix, with a trailing slash) of one kind of manifest."""
    if not _KIND.match(kind):
        raise StorageError(f"{kind[:40]!r} is not a manifest kind.")
    return f"{MANIFESTS}/{kind}/"


def manifest_path(kind: str, key: str) -> str:
    """The path of one manifest below the store's root."""
    if not _KEY.match(key):
        raise StorageError(f"{key[:80]!r} is not a manifest key.")
    return f"{manifest_directory(kind)}{key[:2]}/{key}.json"
