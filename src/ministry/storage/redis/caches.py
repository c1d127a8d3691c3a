"""The proxy's caches in Redis: upstream pages and cached files, per proxy index.

Filling a cache is not a change: no serial, no audit entry. The last access of a
cached file lives apart from its record, so a read never rewrites the record.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import datetime
from typing import cast

from ministry.core.models import CachedFile, CachedPage
from ministry.core.records import dumps, loads
from ministry.storage.redis.base import RedisDatabase, text

__all__ = ["CachesMixin"]


#: File records read per round trip when looking for the blobs of side files.
_PAGE = 500
_SIDE_BLOBS = ("metadata_sha256", "provenance_sha256")


class CachesMixin(RedisDatabase):
    """The ``ProxyCacheStore`` role of ``MetadataStore``."""

    async def get_cached_page(self, index: str, project: str) -> CachedPage | None:
        """The page last fetched for a project, if any."""
        value = await self.read(self.redis.hget(self.key("pages", index), project))
        return loads(CachedPage, value) if value else None

    async def put_cached_page(self, page: CachedPage) -> None:
        """Keep a fetched page, replacing the one before."""
        await self.read(self.redis.hset(self.key("pages", page.index), page.project, dumps(page)))

    async def list_cached_projects(self, index: str) -> list[str]:
        """The projects an upstream is known to have (their pages are cached)."""
        values = await self.read(self.redis.hvals(self.key("pages", index)))
        return sorted(p.project for p in (loads(CachedPage, v) for v in values) if p.status == 200)

    async def get_cached_file(self, index: str, filename: str) -> CachedFile | None:
        """A cached upstream file, if it is cached."""
        value = await self.read(self.redis.hget(self.key("cached", index), filename))
        if value is None:
            return None
        used = await self.read(self.redis.hget(self.key("cached-used", index), filename))
        entry = loads(CachedFile, value)
        return replace(entry, last_access=datetime.fromisoformat(text(used))) if used else entry

    async def put_cached_file(self, entry: CachedFile) -> None:
        """Record a file whose bytes are now in the blob store."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key("cached", entry.index), entry.filename, dumps(entry))
            pipe.hdel(self.key("cached-used", entry.index), entry.filename)
            pipe.sadd(self.key("cached-indexes"), entry.index)
            await self.read(pipe.execute())

    async def touch_cached_file(self, index: str, filename: str, when: datetime) -> None:
        """Record a read of a cached file (for least-recently-used eviction)."""
        await self.read(self.redis.hset(self.key("cached-used", index), filename, when.isoformat()))

    async def list_cached_files(self) -> list[CachedFile]:
        """Every cached file, least recently used first."""
        found: list[CachedFile] = []
        for index in map(text, await self.read(self.redis.smembers(self.key("cached-indexes")))):
            for name in map(text, await self.read(self.redis.hkeys(self.key("cached", index)))):
                entry = await self.get_cached_file(index, name)
                if entry is not None:
                    found.append(entry)
        return sorted(found, key=lambda e: e.last_access)

    async def pin_files(
        self, index: str, project: str, hashes: Mapping[str, str]
    ) -> dict[str, str]:
        """Pin the first sha256 of each filename, in one transaction; the pinned hashes.

        One hash per index, its fields ``project/filename`` (neither can hold a slash).
        """
        if not hashes:
            return {}
        key, fields = self.key("pins", index), [f"{project}/{name}" for name in hashes]
        async with self.redis.pipeline(transaction=True) as pipe:
            for field, sha256 in zip(fields, hashes.values(), strict=True):
                pipe.hsetnx(key, field, sha256)
            pipe.hmget(key, fields)
            *_, pinned = await self.read(pipe.execute())
        return {name: text(value) for name, value in zip(hashes, pinned, strict=True) if value}

    async def forget_cached_file(self, index: str, filename: str) -> None:
        """Drop a cached file's record."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self.key("cached", index), filename)
            pipe.hdel(self.key("cached-used", index), filename)
            await self.read(pipe.execute())

    async def blobs_in_use(self, sha256s: Collection[str]) -> set[str]:
        """Which of these blobs a hosted file (its distribution, metadata or provenance)
        or a cached file of any index names.

        Distribution blobs are looked up in each index's hash from sha256 to filename;
        metadata and provenance blobs have no such hash, so each index's file records
        are read a page at a time (an eviction pass asks once for all it evicts).
        """
        wanted = set(sha256s)
        if not wanted:
            return set()
        found: set[str] = set()
        indexes = list(map(text, await self.read(self.redis.hkeys(self.key("indexes")))))
        ordered = sorted(wanted)
        for index in indexes:
            named = await self.read(self.redis.hmget(self.key("sha256", index), ordered))
            found.update(sha for sha, name in zip(ordered, named, strict=True) if name)
            cursor: int = 0
            while True:
                cursor, page = await self.read(
                    self.redis.hscan(self.key("files", index), cursor, count=_PAGE)
                )
                for record_text in cast("dict[bytes, bytes]", page).values():
                    record = json.loads(record_text)
                    found.update(
                        record.get(field) for field in _SIDE_BLOBS if record.get(field) in wanted
                    )
                if not cursor:
                    break
        cached_indexes = await self.read(self.redis.smembers(self.key("cached-indexes")))
        for index in map(text, cached_indexes):
            for value in await self.read(self.redis.hvals(self.key("cached", index))):
                sha256 = json.loads(value)["sha256"]
                if sha256 in wanted:
                    found.add(sha256)
        return found
