"""Eviction of the bounded proxy cache, against each metadata store and real blobs.

What goes first (least recently used), what goes together (a file and its side
files), and what never goes: files a mirror holds, files being read, blobs another
record names, and blobs put again since they were cached. The pins of filenames stay.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest

from ministry.core.models import Actor, CachedFile, IndexConfig, Upstream
from ministry.core.permissions import Identity
from ministry.errors import Conflict, NotFound, PermissionDenied
from ministry.services.metrics import Metrics
from ministry.services.proxy_cache import CacheReaders, CacheStore, ProxyCache
from ministry.storage.filesystem import FileBlobStore
from ministry.storage.redis import RedisMetadataStore
from ministry.storage.sqlite import SqliteMetadataStore
from support.records import dist_file

T = TypeVar("T")
_RUNNER = asyncio.Runner()
ADMIN = Identity("root", is_admin=True)
UPSTREAM = "https://pypi.example/simple/"
KiB = 1024


def run(coroutine: Awaitable[T]) -> T:
    """Run one coroutine on the module's event loop (a Redis client stays on its loop)."""
    return _RUNNER.run(coroutine)  # type: ignore[arg-type]


class Cache:
    """A metadata store, a blob store and the eviction over them, with a clock for access."""

    def __init__(self, metadata: CacheStore, blobs: FileBlobStore, bound: int | None) -> None:
        self.metadata = metadata
        self.blobs = blobs
        self.metrics = Metrics()
        self.readers = CacheReaders()
        self.proxy_cache = ProxyCache(
            metadata, blobs, self.metrics, self.readers, bound, patience=0.0
        )
        self.start = datetime.now(UTC) - timedelta(days=1)

    def put(
        self, index: str, filename: str, size: int, minutes: int, *, mirrored: bool = False
    ) -> str:
        """Cache ``size`` bytes as ``filename``, last read ``minutes`` after the start."""
        sha256 = run(self.blobs.put_bytes(filename.encode().ljust(size, b".")))
        cached = datetime.now(UTC)
        when = self.start + timedelta(minutes=minutes)
        entry = CachedFile(index, filename, sha256, size, cached, when, mirrored=mirrored)
        run(self.metadata.put_cached_file(entry))
        return sha256

    def names(self) -> list[str]:
        """What is cached, least recently used first."""
        return [f"{e.index}/{e.filename}" for e in run(self.metadata.list_cached_files())]

    def stored(self, sha256: str) -> bool:
        """Whether the blob is still under its key (not set aside, not gone)."""
        return self.blobs.path_of(sha256).exists()

    def aside(self) -> set[str]:
        """The blobs set aside."""

        async def collect() -> set[str]:
            return {blob.sha256 async for blob in self.blobs.list_aside()}

        return run(collect())


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.slow)])
def cache(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cache]:
    """Two proxy indexes (``upstream`` bounded to 10 KiB of its own) and a hosted one."""
    if request.param == "sqlite":
        metadata: CacheStore = SqliteMetadataStore(tmp_path / "ministry.sqlite3")
    else:
        url = request.getfixturevalue("redis_url")
        metadata = RedisMetadataStore(f"{url}?prefix=c{secrets.token_hex(6)}")
    blobs = FileBlobStore(tmp_path / "blobs")
    run(metadata.open())  # type: ignore[attr-defined]
    run(blobs.open())
    actor = Actor("alice")
    bounded = IndexConfig(
        "upstream", "proxy", upstreams=(Upstream(UPSTREAM),), max_cache_size=10 * KiB
    )
    run(metadata.create_index(bounded, actor))
    run(
        metadata.create_index(IndexConfig("other", "proxy", upstreams=(Upstream(UPSTREAM),)), actor)
    )
    run(metadata.create_index(IndexConfig("main"), actor))
    yield Cache(metadata, blobs, 20 * KiB)
    run(metadata.close())  # type: ignore[attr-defined]


def test_least_recently_used_go_first_with_their_side_files(cache: Cache) -> None:
    """Over the server's bound, the oldest entries go, each with its .metadata and
    .provenance; records and blobs both, and the filename's pin stays."""
    oldest = cache.put("other", "a-1.0-py3-none-any.whl", 6 * KiB, 1)
    side = cache.put("other", "a-1.0-py3-none-any.whl.metadata", 1 * KiB, 1)
    proven = cache.put("other", "a-1.0-py3-none-any.whl.provenance", 1 * KiB, 1)
    cache.put("other", "b-1.0.tar.gz", 7 * KiB, 2)
    cache.put("other", "c-1.0.tar.gz", 7 * KiB, 3)
    newest = cache.put("other", "d-1.0.tar.gz", 7 * KiB, 4)
    pins = {"a-1.0-py3-none-any.whl": oldest}
    run(cache.metadata.pin_files("other", "a", pins))
    dry = run(cache.proxy_cache.prune(ADMIN, dry_run=True))
    assert (dry.evicted_files, dry.evicted_bytes) == (4, 15 * KiB)
    assert len(cache.names()) == 6  # a dry run evicts nothing
    outcome = run(cache.proxy_cache.prune(ADMIN))
    assert (outcome.evicted_files, outcome.evicted_bytes) == (4, 15 * KiB)
    assert outcome.by_index == {"other": (4, 15 * KiB)}
    assert cache.names() == ["other/c-1.0.tar.gz", "other/d-1.0.tar.gz"]
    assert outcome.total == 14 * KiB <= 20 * KiB
    assert not any(cache.stored(s) for s in (oldest, side, proven))
    assert cache.stored(newest)
    assert run(cache.metadata.pin_files("other", "a", {})) == {}
    assert run(cache.metadata.pin_files("other", "a", {"a-1.0-py3-none-any.whl": "0" * 64})) == (
        pins
    )
    evicted = cache.metrics.registry.get_sample_value(
        "ministry_proxy_cache_evicted_bytes_total", {"index": "other"}
    )
    assert evicted == 15 * KiB
    again = run(cache.proxy_cache.prune(ADMIN))
    assert again.evicted_files == 0  # within the bound: nothing more goes


def test_an_index_bound_evicts_only_from_that_index(cache: Cache) -> None:
    """``upstream``'s own 10 KiB bound takes its oldest files, not the other index's older
    ones; --index with --max-size prunes one index to a size of its own."""
    cache.put("other", "old-1.0.tar.gz", 4 * KiB, 0)
    cache.put("upstream", "u1-1.0.tar.gz", 4 * KiB, 1)
    cache.put("upstream", "u2-1.0.tar.gz", 4 * KiB, 2)
    cache.put("upstream", "u3-1.0.tar.gz", 4 * KiB, 3)
    run(cache.proxy_cache.prune(ADMIN))
    assert cache.names() == [
        "other/old-1.0.tar.gz",
        "upstream/u2-1.0.tar.gz",
        "upstream/u3-1.0.tar.gz",
    ]
    outcome = run(cache.proxy_cache.prune(ADMIN, index="upstream", max_size=5 * KiB))
    assert outcome.by_index == {"upstream": (1, 4 * KiB)}
    (upstream,) = [c for c in run(cache.metadata.list_indexes()) if c.name == "upstream"]
    usage = run(cache.proxy_cache.usage(ADMIN, upstream))  # what the index's page shows
    assert (usage.index, usage.files, usage.bytes, usage.bound) == (
        "upstream",
        1,
        4 * KiB,
        10 * KiB,
    )
    with pytest.raises(PermissionDenied):
        run(cache.proxy_cache.usage(Identity("mallory"), upstream))
    assert cache.names() == ["other/old-1.0.tar.gz", "upstream/u3-1.0.tar.gz"]
    with pytest.raises(Conflict, match="hosted"):
        run(cache.proxy_cache.prune(ADMIN, index="main"))
    with pytest.raises(NotFound):
        run(cache.proxy_cache.prune(ADMIN, index="nowhere"))
    with pytest.raises(PermissionDenied):
        run(cache.proxy_cache.prune(Identity("mallory")))


def test_what_never_goes(cache: Cache) -> None:
    """A mirror's files, a file being read, a blob a hosted file shares, a blob another
    proxy index names and a blob put again since it was cached all stay (the records of
    the last three go: the bytes are someone else's)."""
    mirrored = cache.put("other", "held-1.0.tar.gz", 6 * KiB, 0, mirrored=True)
    cache.put("other", "held-1.0.tar.gz.metadata", 1 * KiB, 0)
    reading = cache.put("other", "reading-1.0.tar.gz", 6 * KiB, 1)
    shared = cache.put("other", "shared-1.0.tar.gz", 6 * KiB, 2)
    hosted = replace(dist_file("shared-1.0.tar.gz", project="shared"), sha256=shared)
    run(cache.metadata.add_file(hosted, "shared", {}, Actor("alice")))
    twice = cache.put("other", "twice-1.0.tar.gz", 6 * KiB, 3)
    cache.put("upstream", "twice-1.0.tar.gz", 6 * KiB, 30)
    refreshed = cache.put("other", "refreshed-1.0.tar.gz", 6 * KiB, 4)
    cache.put("other", "new-1.0.tar.gz", 6 * KiB, 5)
    # An upload of the same bytes puts the blob again after it was cached.
    old = run(cache.metadata.get_cached_file("other", "refreshed-1.0.tar.gz"))
    assert old is not None
    run(cache.metadata.put_cached_file(replace(old, cached=cache.start)))
    run(cache.blobs.put_bytes(b"refreshed-1.0.tar.gz".ljust(6 * KiB, b".")))
    cache.readers.acquire("other", "reading-1.0.tar.gz")
    outcome = run(cache.proxy_cache.prune(ADMIN, max_size=20 * KiB))
    assert sorted(cache.names()) == [
        "other/held-1.0.tar.gz",
        "other/held-1.0.tar.gz.metadata",
        "other/reading-1.0.tar.gz",
        "upstream/twice-1.0.tar.gz",
    ]
    assert outcome.deleted_blobs == 1  # new-1.0.tar.gz only, the youngest evictable
    assert all(cache.stored(s) for s in (mirrored, reading, shared, twice, refreshed))
    usage = {u.index: u for u in outcome.usage}
    assert usage["other"].mirrored_bytes == 6 * KiB
    cache.readers.release("other", "reading-1.0.tar.gz")
    run(cache.proxy_cache.prune(ADMIN, max_size=12 * KiB))
    assert "other/reading-1.0.tar.gz" not in cache.names()
    assert not cache.stored(reading)


def test_one_node_evicts_at_a_time(cache: Cache) -> None:
    """While another node holds the eviction lease, a prune says so (here at once; the
    command waits a few seconds first) and evicts nothing."""
    cache.put("other", "a-1.0.tar.gz", 30 * KiB, 0)
    now = datetime.now(UTC)
    assert run(
        cache.metadata.claim_mirror_job("proxy cache eviction", now, now + timedelta(minutes=5))
    )
    with pytest.raises(Conflict, match="Another process"):
        run(cache.proxy_cache.prune(ADMIN))
    assert cache.names() == ["other/a-1.0.tar.gz"]
    run(cache.metadata.release_mirror_job("proxy cache eviction"))
    assert run(cache.proxy_cache.prune(ADMIN)).evicted_files == 1


def test_a_kept_file_past_the_bound_starts_a_pass(cache: Cache) -> None:
    """The running total is counted in memory; crossing a bound evicts to 90% of it."""

    async def scenario() -> list[str]:
        proxy = cache.proxy_cache
        for minute in range(6):
            name = f"f{minute}-1.0.tar.gz"
            sha256 = await cache.blobs.put_bytes(name.encode().ljust(3 * KiB, b"."))
            when = cache.start + timedelta(minutes=minute)
            now = datetime.now(UTC)
            await cache.metadata.put_cached_file(
                CachedFile("upstream", name, sha256, 3 * KiB, now, when)
            )
            proxy.kept("upstream", 3 * KiB, 10 * KiB)
            await asyncio.sleep(0)
            while proxy._pass is not None and not proxy._pass.done():
                await proxy._pass
        return [e.filename for e in await cache.metadata.list_cached_files()]

    kept = run(scenario())
    assert sum(3 * KiB for _ in kept) <= 10 * KiB
    assert kept == ["f3-1.0.tar.gz", "f4-1.0.tar.gz", "f5-1.0.tar.gz"]


class _CommitDuringThePass:
    """The metadata store, with an upload's commit run just before the pass's second look
    at the records (``blobs_in_use`` after the blobs were set aside)."""

    def __init__(self, metadata: CacheStore, commit: Callable[[], Awaitable[None]]) -> None:
        self._metadata = metadata
        self._commit = commit
        self._looks = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._metadata, name)

    async def blobs_in_use(self, sha256s: set[str]) -> set[str]:
        self._looks += 1
        if self._looks == 2:
            await self._commit()
        return await self._metadata.blobs_in_use(sha256s)


def test_an_upload_committed_during_a_pass_keeps_its_blob(cache: Cache) -> None:
    """An upload of a cached file's bytes commits its record while a pass evicts the
    file (its put came before the file was cached, so the blob looks evictable):
    committed before the pass looks at the records again, the pass puts the blob
    back; committed after, the upload's own ``put_back`` does. A later pass drops a
    set-aside blob only once no record names it and its grace period is over."""
    actor = Actor("alice")

    def hosted(name: str, sha256: str) -> Callable[[], Awaitable[None]]:
        record = replace(dist_file(f"{name}-1.0.tar.gz", project=name), sha256=sha256)

        async def commit() -> None:
            await cache.metadata.add_file(record, name, {}, actor)

        return commit

    early = cache.put("other", "early-1.0.tar.gz", 30 * KiB, 0)
    hooked = _CommitDuringThePass(cache.metadata, hosted("early", early))
    during = ProxyCache(
        cast(CacheStore, hooked), cache.blobs, cache.metrics, cache.readers, 20 * KiB
    )
    assert run(during.prune(ADMIN)).evicted_files == 1
    assert hooked._looks == 2
    assert cache.stored(early)  # put back by the pass
    assert run(cache.blobs.put_back(early))  # the upload's check after its commit

    late = cache.put("other", "late-1.0.tar.gz", 30 * KiB, 1)
    unnamed = cache.put("other", "unnamed-1.0.tar.gz", 30 * KiB, 2)
    assert run(cache.proxy_cache.prune(ADMIN, max_size=0)).evicted_files == 2
    assert not cache.stored(late) and not cache.stored(unnamed)
    assert cache.aside() == {late, unnamed}
    run(hosted("late", late)())
    assert run(cache.blobs.put_back(late))  # the upload's check after its commit
    assert cache.stored(late)

    run(cache.proxy_cache.prune(ADMIN))  # named: dropped; unnamed, in its grace period: kept
    assert cache.aside() == {unnamed}
    cache.proxy_cache._aside_grace = timedelta(0)
    run(cache.proxy_cache.prune(ADMIN))
    assert cache.aside() == set()
    assert cache.stored(late) and cache.stored(early) and not cache.stored(unnamed)
    with pytest.raises(NotFound):
        run(cache.blobs.open_blob(unnamed))


def _forget_lookups(metadata: CacheStore) -> None:
    """On Redis, drop the per-blob lookups, as in a store written before they existed."""
    if not isinstance(metadata, RedisMetadataStore):
        return

    async def drop() -> None:
        for pattern in ("side-blob*", "cached-blob*"):
            async for key in metadata.redis.scan_iter(match=metadata.key(pattern)):
                await metadata.redis.delete(key)

    run(drop())


@pytest.mark.parametrize("older_store", [False, True], ids=["lookups", "completed"])
def test_a_blob_a_record_of_another_index_names_stays(cache: Cache, older_store: bool) -> None:
    """Evicted records whose bytes a hosted file of another index names (as its metadata,
    as its provenance, shared by two wheels of which one is deleted) or a cache record
    of another index under another filename names: the records go, the blobs stay.
    Once nothing names them, a pass deletes them. ``completed``: on Redis the lookups
    are missing (a store from before them) and the pass completes them first."""
    actor = Actor("alice")
    run(cache.metadata.create_index(IndexConfig("team", allow_delete=True), actor))
    cache.put("upstream", "seed-1.0.tar.gz", 1 * KiB, 99)
    # From here on the lookups are complete: the records written below add their own.
    assert run(cache.metadata.blobs_in_use({"0" * 64})) == set()
    metadata = cache.put("other", "w-1.0-py3-none-any.whl.metadata", 2 * KiB, 0)
    proven = cache.put("other", "w-1.0-py3-none-any.whl.provenance", 2 * KiB, 0)
    cache.put("other", "w-1.0-py3-none-any.whl", 2 * KiB, 0)
    renamed = cache.put("other", "x-1.0.tar.gz", 2 * KiB, 1)
    copy = CachedFile("upstream", "y-1.0.tar.gz", renamed, 2 * KiB, cache.start, cache.start)
    run(cache.metadata.put_cached_file(replace(copy, last_access=datetime.now(UTC))))
    unnamed = cache.put("other", "z-1.0.tar.gz", 2 * KiB, 2)
    wheels = [
        replace(
            dist_file(f"w-1.0-{tag}.whl", project="w"),
            index="team",
            metadata_sha256=metadata,
            provenance_sha256=proven if tag == "py3-none-any" else None,
        )
        for tag in ("py3-none-any", "cp311-cp311-win_amd64")
    ]
    for wheel in wheels:
        run(cache.metadata.add_file(wheel, "w", {}, actor))
    run(cache.metadata.delete_files("team", [wheels[1].filename], actor))
    if older_store:
        _forget_lookups(cache.metadata)

    outcome = run(cache.proxy_cache.prune(ADMIN, index="other", max_size=0))
    assert outcome.evicted_files == 5
    assert [n for n in cache.names() if n.startswith("other/")] == []
    assert outcome.deleted_blobs == 2  # the wheel's own blob and z's
    assert all(cache.stored(s) for s in (metadata, proven, renamed))
    assert not cache.stored(unnamed)

    run(cache.metadata.delete_files("team", [wheels[0].filename], actor))
    run(cache.metadata.forget_cached_file("upstream", "y-1.0.tar.gz"))
    for filename, sha256 in (("m.metadata", metadata), ("p.provenance", proven), ("r", renamed)):
        now = datetime.now(UTC)
        run(
            cache.metadata.put_cached_file(CachedFile("other", filename, sha256, 2 * KiB, now, now))
        )
    assert run(cache.proxy_cache.prune(ADMIN, index="other", max_size=0)).deleted_blobs == 3
    assert not any(cache.stored(s) for s in (metadata, proven, renamed))
