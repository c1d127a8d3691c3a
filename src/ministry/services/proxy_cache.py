"""The bound on what proxy indexes keep of their upstreams, and the eviction that holds it.

A bound is server-wide (``max_cache_size``: every proxy index's files together)
and per index (its ``max_cache_size`` setting). When one is exceeded, the least
recently used proxied files are evicted: their records are dropped and their blobs
set aside, to be deleted a grace period later (below), so a later request fetches
them from upstream again, checked against the
sha256 the filename was pinned to, as on the first fetch (pins stay). A file goes
with its ``.metadata`` and ``.provenance`` side files: together they are one entry.

Never evicted: hosted files (they are not in the cache at all), files a mirror run
fetched or claimed (``CachedFile.mirrored``: a mirror holds what it was asked for,
typically for a server about to go offline), and files this process is reading
or fetching right now. A blob goes only when no other record names it
(``ProxyCacheStore.blobs_in_use``: blobs are content-addressed, and a hosted file
or another proxy index may have the same bytes; the stores look up each blob asked
about, so a pass costs in proportion to what it evicts, not to what is hosted). A
reader in another process
keeps reading a local blob it has open; an S3 GET under way completes.

Why an upload of the same bytes never loses its blob. An upload puts its blob (P),
commits its record (C), then calls ``BlobStore.put_back`` (B), and only then
answers. A pass checks the records (K1), sets the blob aside (A: out of the
served namespace, to ``evicting/``, unless it was put since it was cached),
checks the records again (K2) and puts back what a record names now; set-aside
blobs are deleted only by a later pass, past ``ASIDE_GRACE``, after a third
check (K3) finds no record naming them. Each side writes, then reads what the
other writes: C then B, A then K2. So either K2 sees the record (C before K2:
the pass puts the blob back), or B comes after A (C after K2) and finds the key
empty unless the blob was put again since A, and puts the set-aside bytes back.
B fails only if the set-aside copy was deleted first, that is if C came after K3,
more than ``ASIDE_GRACE`` after A while P came before A: an upload that took that
long between its put and its commit is refused, not acknowledged. Both stores
are read-after-write consistent (S3 is, for keys and listings) and the metadata
stores' commits are visible to the next read, which is all the argument needs;
it holds whichever node runs the pass, and a pass cut short is finished by the
next one (K3 puts back what a record names). Reads find a set-aside blob too
(``BlobStore.open_blob``), so a record committed between K1 and K2 stays readable.

The running total is counted in memory as files are kept: a pass, which reads
every cache record, runs only when the total passes a bound, and then evicts down
to 90% of it, so that the next pass is many downloads away; a pass every five
minutes catches what other processes and nodes added. Passes in a cluster take a
lease first (``MirrorRunStore.claim_mirror_job``, under a name no mirror job can
have), so one node evicts at a time; deletes are idempotent besides.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from ministry.core.models import CachedFile, CacheUsage, IndexConfig
from ministry.core.permissions import Identity, check_admin, check_manage_index
from ministry.errors import Conflict, MinistryError, NotFound
from ministry.services.metrics import Metrics
from ministry.storage.protocols import BlobStore, IndexStore, MirrorRunStore, ProxyCacheStore

__all__ = ["ASIDE_GRACE", "CacheReaders", "CacheStore", "ProxyCache", "PruneOutcome"]

log = logging.getLogger(__name__)

_SIDE_SUFFIXES = (".metadata", ".provenance")
#: An automatic pass evicts down to this share of the bound it found exceeded.
_LOW_WATER = 0.9
#: How often a server checks the bounds whatever it kept itself.
_PERIOD = 300.0
#: The lease's name: mirror job names are lower-case words without spaces.
_LEASE = "proxy cache eviction"
_LEASE_TIME = timedelta(minutes=10)
#: Seconds ``ministry cache prune`` waits by default for another process's pass to end.
_PATIENCE = 10.0
#: How long a blob set aside stays there: far longer than an upload takes from its
#: put to its commit and the check after it.
ASIDE_GRACE = timedelta(minutes=15)


class CacheStore(ProxyCacheStore, IndexStore, MirrorRunStore, Protocol):
    """The roles eviction uses: the cache records, the indexes' bounds, and the lease."""


class CacheReaders:
    """The proxied files this process is fetching or sending now, which no pass evicts."""

    def __init__(self) -> None:
        self._open: Counter[tuple[str, str]] = Counter()

    def acquire(self, index: str, filename: str) -> None:
        """A fetch or a read of the file began."""
        self._open[(index, filename)] += 1

    def release(self, index: str, filename: str) -> None:
        """It ended."""
        key = (index, filename)
        self._open[key] -= 1
        if self._open[key] <= 0:
            del self._open[key]

    def busy(self, index: str, filename: str) -> bool:
        """Whether the file is being fetched or read."""
        return (index, filename) in self._open


@dataclass
class PruneOutcome:
    """What a pass evicted (or, dry, would evict), and what the caches hold after it."""

    dry_run: bool
    #: The server-wide bound (None: none; a prune's ``max_size`` is not it).
    bound: int | None
    evicted_files: int = 0
    evicted_bytes: int = 0
    #: Blobs taken out of the store: set aside now, deleted by a pass past the grace
    #: period (fewer than files: side files share none, but other records may).
    deleted_blobs: int = 0
    #: Evicted (files, bytes) by index.
    by_index: dict[str, tuple[int, int]] = field(default_factory=dict)
    usage: list[CacheUsage] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Bytes kept after the pass."""
        return sum(u.bytes for u in self.usage)


@dataclass
class _Entry:
    """A proxied file with its side files: what is evicted together."""

    index: str
    name: str
    members: list[CachedFile] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(m.size for m in self.members)

    @property
    def last_access(self) -> datetime:
        return max(m.last_access for m in self.members)

    @property
    def mirrored(self) -> bool:
        return any(m.mirrored for m in self.members)


def _entries(files: Iterable[CachedFile]) -> list[_Entry]:
    """Cached files as entries, least recently used first."""
    entries: dict[tuple[str, str], _Entry] = {}
    for file in files:
        name = file.filename
        for suffix in _SIDE_SUFFIXES:
            name = name.removesuffix(suffix)
        entry = entries.setdefault((file.index, name), _Entry(file.index, name))
        entry.members.append(file)
    return sorted(entries.values(), key=lambda e: e.last_access)


class ProxyCache:
    """Keeps proxy caches within their bounds; reports what they hold."""

    def __init__(
        self,
        metadata: CacheStore,
        blobs: BlobStore,
        metrics: Metrics,
        readers: CacheReaders,
        max_size: int | None,
        *,
        patience: float = _PATIENCE,
        aside_grace: timedelta = ASIDE_GRACE,
    ) -> None:
        self._metadata = metadata
        self._blobs = blobs
        self._metrics = metrics
        self.readers = readers
        self.max_size = max_size
        #: Seconds a command waits for another process's pass to end.
        self._patience = patience
        #: How long a set-aside blob no record names is kept before it is deleted.
        self._aside_grace = aside_grace
        #: Bytes kept per index as this process knows them; None until a pass counted.
        self._totals: dict[str, int] | None = None
        self._lock = asyncio.Lock()
        self._pass: asyncio.Task[None] | None = None
        self._again = False
        self._periodic: asyncio.Task[None] | None = None

    # -- automatic eviction --------------------------------------------------------------

    def kept(self, index: str, size: int, bound: int | None) -> None:
        """A file of ``size`` bytes was cached in ``index`` (whose own bound is ``bound``):
        start a pass if a bound is now exceeded. Cheap: no store is read here."""
        self._metrics.proxy_cache_bytes.labels(index).inc(size)
        self._metrics.proxy_cache_files.labels(index).inc()
        if self.max_size is None and bound is None:
            return
        if self._totals is None:
            self._schedule()  # the first pass counts what is there
            return
        self._totals[index] = self._totals.get(index, 0) + size
        over_index = bound is not None and self._totals[index] > bound
        over_all = self.max_size is not None and sum(self._totals.values()) > self.max_size
        if over_index or over_all:
            self._schedule()

    def _schedule(self) -> None:
        if self._pass is not None and not self._pass.done():
            self._again = True
            return
        self._pass = asyncio.ensure_future(self._passes())

    async def _passes(self) -> None:
        while True:
            self._again = False
            await self._quietly()
            if not self._again:
                return

    def start(self) -> None:
        """Check the bounds every few minutes, for what other processes keep (a server)."""
        self._periodic = asyncio.ensure_future(self._every_period())

    async def stop(self) -> None:
        """End the periodic checks and a pass under way."""
        for task in (self._periodic, self._pass):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _every_period(self) -> None:
        while True:
            await self._quietly()
            await asyncio.sleep(_PERIOD)

    async def _quietly(self) -> None:
        """An automatic pass: a failure is logged, and the next file kept (or the next
        period) tries again; nothing a client asked for waits on it."""
        try:
            await self._prune(low_water=True)
        except MinistryError as exc:
            log.warning("proxy cache: eviction failed: %s", exc.message)
        except Exception:  # whatever it is, it must not end the periodic checks silently
            log.exception("proxy cache: eviction failed")

    # -- commands ------------------------------------------------------------------------

    async def stats(self, identity: Identity) -> PruneOutcome:
        """What every proxy index keeps, with the bounds (an administrator's question)."""
        check_admin(identity, "see the proxy caches")
        files = await self._metadata.list_cached_files()
        bounds = await self._bounds()
        return PruneOutcome(True, self.max_size, usage=_usage(files, bounds))

    async def usage(self, identity: Identity, config: IndexConfig) -> CacheUsage:
        """What one proxy index keeps, for those who manage it (its page shows it to
        them: it reads every cache record, as ``stats`` does)."""
        check_manage_index(identity, config)
        files = await self._metadata.list_cached_files()
        (usage,) = _usage(
            [f for f in files if f.index == config.name], {config.name: config.max_cache_size}
        )
        return usage

    async def prune(
        self,
        identity: Identity,
        *,
        index: str | None = None,
        max_size: int | None = None,
        dry_run: bool = False,
    ) -> PruneOutcome:
        """Evict now, down to the bounds (exactly, not to 90%), or to ``max_size``: the
        total's bound, or ``index``'s when one is named (then only its files go)."""
        check_admin(identity, "prune the proxy caches")
        if index is not None:
            config = next((c for c in await self._metadata.list_indexes() if c.name == index), None)
            if config is None:
                raise NotFound(f"No index {index!r}.")
            if config.kind != "proxy":
                raise Conflict(f"Index {index!r} is hosted: it keeps no proxy cache.")
        outcome = await self._prune(index=index, max_size=max_size, dry_run=dry_run)
        if outcome is None:
            raise Conflict(
                "Another process is evicting from the proxy caches right now; try again "
                "in a minute."
            )
        return outcome

    # -- the pass ------------------------------------------------------------------------

    async def _bounds(self) -> dict[str, int | None]:
        return {
            c.name: c.max_cache_size
            for c in await self._metadata.list_indexes()
            if c.kind == "proxy"
        }

    async def _prune(
        self,
        *,
        index: str | None = None,
        max_size: int | None = None,
        dry_run: bool = False,
        low_water: bool = False,
    ) -> PruneOutcome | None:
        """One pass; None when another process holds the lease (an automatic pass gives
        up at once, a command waits a few seconds for a pass under way to end)."""
        async with self._lock:
            if dry_run:
                return await self._plan_and_evict(index, max_size, dry_run, low_water)
            if not await self._claim(patience=0.0 if low_water else self._patience):
                return None
            try:
                await self._sweep_aside()
                return await self._plan_and_evict(index, max_size, dry_run, low_water)
            finally:
                await self._metadata.release_mirror_job(_LEASE)

    async def _sweep_aside(self) -> None:
        """Blobs earlier passes set aside: put back those a record names (a pass cut
        short between its two checks), drop those past the grace period."""
        aside = [blob async for blob in self._blobs.list_aside()]
        if not aside:
            return
        in_use = await self._metadata.blobs_in_use({blob.sha256 for blob in aside})
        expired = datetime.now(UTC) - self._aside_grace
        for blob in aside:
            if blob.sha256 in in_use:
                if await self._blobs.put_back(blob.sha256):
                    await self._blobs.drop_aside(blob.sha256)
            elif blob.modified < expired:
                await self._blobs.drop_aside(blob.sha256)

    async def _claim(self, patience: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while True:
            now = datetime.now(UTC)
            if await self._metadata.claim_mirror_job(_LEASE, now, now + _LEASE_TIME):
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.2)

    async def _plan_and_evict(
        self, index: str | None, max_size: int | None, dry_run: bool, low_water: bool
    ) -> PruneOutcome:
        files = await self._metadata.list_cached_files()
        bounds = await self._bounds()
        total_bound = self.max_size if max_size is None or index is not None else max_size
        if index is not None and max_size is not None:
            bounds[index] = max_size
        share = _LOW_WATER if low_water else 1.0
        victims = self._choose(_entries(files), bounds, total_bound, share, index)
        outcome = PruneOutcome(dry_run, self.max_size)
        for entry in victims:
            files_before, bytes_before = outcome.by_index.get(entry.index, (0, 0))
            outcome.by_index[entry.index] = (
                files_before + len(entry.members),
                bytes_before + entry.size,
            )
            outcome.evicted_files += len(entry.members)
            outcome.evicted_bytes += entry.size
        if not dry_run and victims:
            outcome.deleted_blobs = await self._evict(victims)
        gone = {(m.index, m.filename) for e in victims for m in e.members}
        if dry_run:
            gone = set()
        kept = [f for f in files if (f.index, f.filename) not in gone]
        outcome.usage = _usage(kept, bounds)
        if not dry_run:
            self._totals = {u.index: u.bytes for u in outcome.usage}
            for usage in outcome.usage:
                self._metrics.proxy_cache_bytes.labels(usage.index).set(usage.bytes)
                self._metrics.proxy_cache_files.labels(usage.index).set(usage.files)
        return outcome

    def _choose(
        self,
        entries: list[_Entry],
        bounds: dict[str, int | None],
        total_bound: int | None,
        share: float,
        only: str | None,
    ) -> list[_Entry]:
        """The entries to evict, least recently used first, until every bound holds."""
        sizes = Counter[str]()
        for entry in entries:
            sizes[entry.index] += entry.size
        evictable = [
            e
            for e in entries
            if not e.mirrored
            and (only is None or e.index == only)
            and not any(self.readers.busy(m.index, m.filename) for m in e.members)
        ]
        chosen: list[_Entry] = []
        taken: set[int] = set()
        for name, bound in bounds.items():
            if bound is None:
                continue
            for entry in evictable:
                if sizes[name] <= bound * share:
                    break
                if entry.index == name and id(entry) not in taken:
                    chosen.append(entry)
                    taken.add(id(entry))
                    sizes[name] -= entry.size
        if total_bound is not None:
            for entry in evictable:
                if sum(sizes.values()) <= total_bound * share:
                    break
                if id(entry) not in taken:
                    chosen.append(entry)
                    taken.add(id(entry))
                    sizes[entry.index] -= entry.size
        return chosen

    async def _evict(self, victims: list[_Entry]) -> int:
        """Drop the records, set aside each blob no record names any more, then put back
        those a record committed meanwhile names (see the module's docstring)."""
        members = [m for e in victims for m in e.members]
        for member in members:
            await self._metadata.forget_cached_file(member.index, member.filename)
        in_use = await self._metadata.blobs_in_use({m.sha256 for m in members})
        cached: dict[str, datetime] = {}
        for member in members:
            if member.sha256 not in in_use:
                cached[member.sha256] = max(member.cached, cached.get(member.sha256, member.cached))
        aside = [s for s, when in cached.items() if await self._blobs.set_aside(s, when)]
        named_now = await self._metadata.blobs_in_use(set(aside)) if aside else set()
        for sha256 in named_now:
            await self._blobs.put_back(sha256)
        deleted = len(aside) - len(named_now)
        for entry in victims:
            self._metrics.proxy_cache_evicted_files.labels(entry.index).inc(len(entry.members))
            self._metrics.proxy_cache_evicted_bytes.labels(entry.index).inc(entry.size)
            log.info("proxy %s: evicted %s (%d bytes)", entry.index, entry.name, entry.size)
        return deleted


def _usage(files: Iterable[CachedFile], bounds: dict[str, int | None]) -> list[CacheUsage]:
    """What each proxy index keeps (every proxy index, those with nothing cached too)."""
    usage = {name: CacheUsage(name, bound=bound) for name, bound in bounds.items()}
    for file in files:
        entry = usage.setdefault(file.index, CacheUsage(file.index))
        entry.files += 1
        entry.bytes += file.size
        if file.mirrored:
            entry.mirrored_bytes += file.size
    return sorted(usage.values(), key=lambda u: u.index)
