"""The proxy's caches in Redis: upstream pages and cached files, per proxy index.

Filling a cache is not a change: no serial, no audit entry. The last access of a
cached file lives apart from its record, so a read never rewrites the record.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from datetime import datetime
from typing import cast

from ministry.core.models import CachedFile, CachedPage
from ministry.core.records import dumps, loads
from ministry.storage.redis.base import RedisDatabase, text
from ministry.storage.redis.side_blobs import CACHED_BLOB, CACHED_COMPLETE, COMPLETE, SIDE_BLOB

__all__ = ["CachesMixin"]


#: Blobs looked up, or file records read, per round trip.
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
            pipe.sadd(self.key(CACHED_BLOB, entry.index, entry.sha256), entry.filename)
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
        """Drop a cached file's record (and its member of the blob's lookup, which is
        only tidiness: a member is checked against the record before it counts)."""
        value = await self.read(self.redis.hget(self.key("cached", index), filename))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self.key("cached", index), filename)
            pipe.hdel(self.key("cached-used", index), filename)
            if value is not None:
                pipe.srem(self.key(CACHED_BLOB, index, json.loads(value)["sha256"]), filename)
            await self.read(pipe.execute())

    async def blobs_in_use(self, sha256s: Collection[str]) -> set[str]:
        """Which of these blobs a hosted file (its distribution, metadata or provenance)
        or a cached file of any index names.

        Looked up per blob asked about, never by reading every hosted record: a
        distribution blob in each index's hash from sha256 to filename, a metadata or
        provenance blob in each index's ``side-blob`` set, whose members are checked
        against their records (``storage.redis.side_blobs``). An index's sets are
        completed from its records once, the first time it is asked about after an
        upgrade: a record written meanwhile adds its own member in its transaction,
        and every record there before is read by the scan.
        """
        wanted = sorted(set(sha256s))
        if not wanted:
            return set()
        found: set[str] = set()
        indexes = list(map(text, await self.read(self.redis.hkeys(self.key("indexes")))))
        cached = list(map(text, await self.read(self.redis.smembers(self.key("cached-indexes")))))
        await self._complete(indexes, COMPLETE, "files", _sides, SIDE_BLOB)
        await self._complete(cached, CACHED_COMPLETE, "cached", _blob, CACHED_BLOB)
        for start in range(0, len(wanted), _PAGE):
            batch = wanted[start : start + _PAGE]
            found |= await self._hosted_blobs(indexes, batch)
            found |= await self._claimed(cached, CACHED_BLOB, "cached", _blob, batch)
        return found

    async def _hosted_blobs(self, indexes: list[str], wanted: list[str]) -> set[str]:
        """Which of ``wanted`` a hosted file of one of ``indexes`` names."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for index in indexes:
                pipe.hmget(self.key("sha256", index), wanted)
            answers = await self.read(pipe.execute())
        found = {
            sha256 for named in answers for sha256, name in zip(wanted, named, strict=True) if name
        }
        rest = [sha256 for sha256 in wanted if sha256 not in found]
        return found | await self._claimed(indexes, SIDE_BLOB, "files", _sides, rest)

    async def _claimed(
        self,
        indexes: list[str],
        lookup: str,
        records: str,
        named: Callable[[bytes], set[str]],
        wanted: list[str],
    ) -> set[str]:
        """Which of ``wanted`` a record of ``records:<index>`` names, as the sets
        ``lookup:<index>:<sha256>`` claim and the records confirm: two round trips."""
        if not wanted or not indexes:
            return set()
        async with self.redis.pipeline(transaction=False) as pipe:
            for index in indexes:
                for sha256 in wanted:
                    pipe.smembers(self.key(lookup, index, sha256))
            answers = iter(await self.read(pipe.execute()))
        claims = [
            (index, text(filename), sha256)
            for index in indexes
            for sha256 in wanted
            for filename in next(answers)
        ]
        if not claims:
            return set()
        async with self.redis.pipeline(transaction=False) as pipe:
            for index, filename, _ in claims:
                pipe.hget(self.key(records, index), filename)
            values = await self.read(pipe.execute())
        return {
            sha256
            for (_, _, sha256), value in zip(claims, values, strict=True)
            if value is not None and sha256 in named(value)
        }

    async def _complete(
        self,
        indexes: list[str],
        marker: str,
        records: str,
        named: Callable[[bytes], set[str]],
        lookup: str,
    ) -> None:
        """Fill the ``lookup`` sets of indexes whose ``records`` predate them (once)."""
        if not indexes:
            return
        complete = await self.read(self.redis.smismember(self.key(marker), indexes))
        for index, done in zip(indexes, complete, strict=True):
            if done:
                continue
            cursor: int = 0
            while True:
                cursor, page = await self.read(
                    self.redis.hscan(self.key(records, index), cursor, count=_PAGE)
                )
                async with self.redis.pipeline(transaction=False) as pipe:
                    for filename, value in cast("dict[bytes, bytes]", page).items():
                        for sha256 in named(value):
                            pipe.sadd(self.key(lookup, index, sha256), text(filename))
                    await self.read(pipe.execute())
                if not cursor:
                    break
            await self.read(self.redis.sadd(self.key(marker), index))


def _sides(record: bytes) -> set[str]:
    """The metadata and provenance blobs a hosted file's stored record names."""
    fields = json.loads(record)
    return {fields[name] for name in _SIDE_BLOBS if fields.get(name)}


def _blob(record: bytes) -> set[str]:
    """The blob a cache record names."""
    return {json.loads(record)["sha256"]}
