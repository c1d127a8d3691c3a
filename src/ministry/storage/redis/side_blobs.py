"""Which records name a blob: the Redis layout's lookups for evicting cached files.

Distribution blobs have one per index already (``sha256:<index>``, from sha256 to
filename). The metadata and provenance blobs a hosted file names have
``side-blob:<index>:<sha256>``, the set of the filenames that name it, written in
the same transaction as the file's record (several files share one: the wheels of
a release for several platforms usually have the same metadata). The files a
proxy index caches have ``cached-blob:<index>:<sha256>``, the filenames of its
cache records with those bytes, written with the record.

A member is a hint, checked against its record before it counts, so a member left
behind (a record replaced, deleted or evicted) never keeps a blob in use; a
missing member would let a blob in use be deleted, so every write of a record adds
its own. Stores written before the lookups existed are read once per index and
completed (the ``*-complete`` sets of index names): see ``CachesMixin.blobs_in_use``.
"""

from __future__ import annotations

from ministry.core.models import DistFile

__all__ = ["CACHED_BLOB", "CACHED_COMPLETE", "COMPLETE", "SIDE_BLOB", "side_blobs"]

#: The key part of the set of hosted filenames naming a blob: ``side-blob:<index>:<sha256>``.
SIDE_BLOB = "side-blob"
#: The set of the indexes whose ``side-blob`` sets hold every hosted file.
COMPLETE = "side-blobs-complete"
#: The key part of the set of cached filenames with a blob: ``cached-blob:<index>:<sha256>``.
CACHED_BLOB = "cached-blob"
#: The set of the proxy indexes whose ``cached-blob`` sets hold every cached file.
CACHED_COMPLETE = "cached-blobs-complete"


def side_blobs(file: DistFile) -> set[str]:
    """The metadata and provenance blobs a hosted file names."""
    return {s for s in (file.metadata_sha256, file.provenance_sha256) if s}
