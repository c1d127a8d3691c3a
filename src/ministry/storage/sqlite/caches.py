"""The proxy's caches: upstream project pages and the files fetched from upstream.

They are kept in the store, not in process memory, so every process shares them
and an offline restart still serves whatever was ever fetched. Filling a cache
is not a change anyone made: it does not bump the serial or enter the audit log.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Mapping
from datetime import datetime

from ministry.core.models import CachedFile, CachedPage, PinnedFile
from ministry.storage.sqlite.database import Database

__all__ = [
    "PUT_CACHED",
    "CachesMixin",
    "cached_file_of",
    "cached_row",
    "page_of",
    "pinned_file_of",
]


def page_of(row: sqlite3.Row) -> CachedPage:
    return CachedPage(
        index=row["index_name"],
        project=row["project"],
        status=row["status"],
        fetched=datetime.fromisoformat(row["fetched"]),
        document=row["document"],
        token=row["token"],
        etag=row["etag"],
        last_modified=row["last_modified"],
    )


def cached_file_of(row: sqlite3.Row) -> CachedFile:
    return CachedFile(
        index=row["index_name"],
        filename=row["filename"],
        sha256=row["sha256"],
        size=row["size"],
        cached=datetime.fromisoformat(row["cached"]),
        last_access=datetime.fromisoformat(row["last_access"]),
        mirrored=bool(row["mirrored"]),
    )


#: Keeps a cached file's record, its values from ``cached_row``.
PUT_CACHED = (
    "INSERT OR REPLACE INTO cached_files"
    " (index_name, filename, sha256, size, cached, last_access, mirrored)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def cached_row(entry: CachedFile) -> tuple[object, ...]:
    return (
        entry.index,
        entry.filename,
        entry.sha256,
        entry.size,
        entry.cached.isoformat(),
        entry.last_access.isoformat(),
        int(entry.mirrored),
    )


def pinned_file_of(row: sqlite3.Row) -> PinnedFile:
    return PinnedFile(row["index_name"], row["project"], row["filename"], row["sha256"])


#: Blobs asked about per query (SQLite allows 32766 parameters; far fewer suffice).
_BATCH = 500


class CachesMixin(Database):
    """The ``ProxyCacheStore`` role of ``MetadataStore``."""

    async def get_cached_page(self, index: str, project: str) -> CachedPage | None:
        """The page last fetched for a project, if any."""
        row = await self._run(
            lambda c: c.execute(
                "SELECT * FROM upstream_pages WHERE index_name = ? AND project = ?",
                (index, project),
            ).fetchone()
        )
        return page_of(row) if row else None

    async def put_cached_page(self, page: CachedPage) -> None:
        """Keep a fetched page, replacing the one before."""
        await self._run(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO upstream_pages VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    page.index,
                    page.project,
                    page.status,
                    page.fetched.isoformat(),
                    page.document,
                    page.token,
                    page.etag,
                    page.last_modified,
                ),
            )
        )

    async def list_cached_projects(self, index: str) -> list[str]:
        """The projects an upstream is known to have (their pages are cached)."""
        rows = await self._run(
            lambda c: c.execute(
                "SELECT project FROM upstream_pages WHERE index_name = ? AND status = 200"
                " ORDER BY project",
                (index,),
            ).fetchall()
        )
        return [row["project"] for row in rows]

    async def get_cached_file(self, index: str, filename: str) -> CachedFile | None:
        """A cached upstream file, if it is cached."""
        row = await self._run(
            lambda c: c.execute(
                "SELECT * FROM cached_files WHERE index_name = ? AND filename = ?",
                (index, filename),
            ).fetchone()
        )
        return cached_file_of(row) if row else None

    async def put_cached_file(self, entry: CachedFile) -> None:
        """Record a file whose bytes are now in the blob store."""
        await self._run(lambda c: c.execute(PUT_CACHED, cached_row(entry)))

    async def touch_cached_file(self, index: str, filename: str, when: datetime) -> None:
        """Record a read of a cached file (for least-recently-used eviction)."""
        await self._run(
            lambda c: c.execute(
                "UPDATE cached_files SET last_access = ? WHERE index_name = ? AND filename = ?",
                (when.isoformat(), index, filename),
            )
        )

    async def list_cached_files(self) -> list[CachedFile]:
        """Every cached file, least recently used first."""
        rows = await self._run(
            lambda c: c.execute("SELECT * FROM cached_files ORDER BY last_access").fetchall()
        )
        return [cached_file_of(row) for row in rows]

    async def pin_files(
        self, index: str, project: str, hashes: Mapping[str, str]
    ) -> dict[str, str]:
        """Pin the first sha256 of each filename, in one transaction; the pinned hashes."""

        def pin(connection: sqlite3.Connection) -> dict[str, str]:
            with self._write(connection) as c:
                c.executemany(
                    "INSERT OR IGNORE INTO pinned_files VALUES (?, ?, ?, ?)",
                    [(index, project, name, sha256) for name, sha256 in hashes.items()],
                )
                rows = c.execute(
                    "SELECT filename, sha256 FROM pinned_files"
                    " WHERE index_name = ? AND project = ?",
                    (index, project),
                ).fetchall()
            return {row["filename"]: row["sha256"] for row in rows if row["filename"] in hashes}

        return await self._run(pin)

    async def forget_cached_file(self, index: str, filename: str) -> None:
        """Drop a cached file's record (its blob is removed by the caller if unused)."""
        await self._run(
            lambda c: c.execute(
                "DELETE FROM cached_files WHERE index_name = ? AND filename = ?",
                (index, filename),
            )
        )

    async def blobs_in_use(self, sha256s: Collection[str]) -> set[str]:
        """Which of these blobs a hosted file (its distribution, metadata or provenance)
        or a cached file of any index names."""
        wanted = list(dict.fromkeys(sha256s))

        def query(c: sqlite3.Connection) -> set[str]:
            found: set[str] = set()
            for start in range(0, len(wanted), _BATCH):
                batch = wanted[start : start + _BATCH]
                marks = ", ".join("?" * len(batch))
                for column in ("sha256", "metadata_sha256", "provenance_sha256"):
                    rows = c.execute(
                        f"SELECT {column} FROM files WHERE {column} IN ({marks})",  # noqa: S608
                        batch,
                    ).fetchall()
                    found.update(row[0] for row in rows)
                rows = c.execute(
                    f"SELECT sha256 FROM cached_files WHERE sha256 IN ({marks})",  # noqa: S608
                    batch,
                ).fetchall()
                found.update(row[0] for row in rows)
            return found

        return await self._run(query) if wanted else set()
