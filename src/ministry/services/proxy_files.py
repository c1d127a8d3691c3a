"""Files of proxy indexes: served from the cache, or fetched from upstream while being served.

A file not cached yet is fetched once, by a task of its own, into a temporary
file; every client asking for it meanwhile reads that file as it grows. The
last byte is held back until the whole file has arrived and its sha256 matches
the upstream page: a truncated or altered download is never kept, never
completed to a client (its connection is cut instead, so the client sees an
error), and never served to anyone later (docs/security.md, "Upstreams that fail").

A file's PEP 740 provenance document, when its upstream page names one, is fetched
once its file has been kept (and on demand by the Integrity API), checked against the
file's sha256 with ``services.attestations.verify_provenance``, and kept beside it as
``<filename>.provenance``: a proxy that goes offline or restarts still serves it. One
that does not verify is dropped with a log line (docs/security.md, "Attestations").
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cachetools import LRUCache

from ministry.core.hashing import Digests, StreamingHasher, sha256_hex
from ministry.core.masking import mask_url
from ministry.core.models import CachedFile, FileEntry, IndexConfig
from ministry.errors import (
    AttestationRejected,
    MinistryError,
    NotFound,
    StorageError,
    UpstreamUnavailable,
)
from ministry.services import scratch_kinds
from ministry.services.attestations import verify_provenance
from ministry.services.metrics import Metrics
from ministry.services.proxy_cache import CacheReaders, ProxyCache
from ministry.services.upstream import UpstreamClient, base_for
from ministry.storage.file_blob import FileBlob
from ministry.storage.protocols import BlobReader, BlobStore, ProxyCacheStore, Scratch

# BlobReader too: what ``open`` returns for a cached file, so callers need not know the stores.
__all__ = ["BlobReader", "ProxyFiles", "ProxyStream", "missing_bytes", "upstream_failed"]

log = logging.getLogger(__name__)

_CHUNK = 256 * 1024
_METADATA_SUFFIX = ".metadata"
_PROVENANCE_SUFFIX = ".provenance"
#: Provenance checks remembered: (document sha256, filename, file sha256) that verified,
#: and (index, filename, file sha256) whose upstream document did not.
_CHECKS_KEPT = 4096
_KIND = scratch_kinds.PROXY
_TOUCH_INTERVAL = timedelta(hours=1)


@dataclass
class _Fetch:
    """One download in progress, shared by every reader of the file."""

    path: Path
    descriptor: int
    size: int | None = None
    written: int = 0
    verified: bool = False
    error: UpstreamUnavailable | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    readers: int = 0

    def notify(self) -> None:
        """Wake every reader waiting for more bytes or the end."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait(self) -> None:
        """Until something changes."""
        await self._changed.wait()

    @property
    def finished(self) -> bool:
        """The download ended, well or badly."""
        return self.verified or self.error is not None


class ProxyStream:
    """A client's view of a download in progress."""

    def __init__(self, fetch: _Fetch) -> None:
        self._fetch = fetch
        self._descriptor = os.dup(fetch.descriptor)
        fetch.readers += 1

    async def size(self) -> int | None:
        """The file's length once upstream has answered (None if it did not say)."""
        await self._fetch.started.wait()
        if self._fetch.error is not None and self._fetch.written == 0:
            raise self._fetch.error
        return self._fetch.size

    async def kept(self) -> None:
        """Until the whole file has arrived, matched its hash and been kept in the cache;
        raises ``UpstreamUnavailable`` if the download fails instead."""
        fetch = self._fetch
        while not fetch.finished:
            await fetch.wait()
        if fetch.error is not None:
            raise fetch.error

    async def kept_copy(self) -> FileBlob:
        """Once the file is checked and kept: a reader of any byte range of it, from this
        download's own copy (a range is never sent from unchecked bytes, and there is no
        second open of the cache, which may have evicted the file since). Raises
        ``UpstreamUnavailable`` if the download, or keeping it, fails."""
        await self.kept()
        return FileBlob(os.dup(self._descriptor), self._fetch.written)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes; raises ``UpstreamUnavailable`` if the download fails."""
        fetch, position = self._fetch, 0
        loop = asyncio.get_running_loop()
        while True:
            # Hold the last byte back until the whole file is verified.
            available = fetch.written if fetch.verified else fetch.written - 1
            if position < available:
                length = min(_CHUNK, available - position)
                chunk = await loop.run_in_executor(
                    None, os.pread, self._descriptor, length, position
                )
                position += len(chunk)
                yield chunk
            elif fetch.error is not None:
                raise fetch.error
            elif fetch.verified:
                return
            else:
                await fetch.wait()

    def close(self) -> None:
        """Release this reader's handle."""
        os.close(self._descriptor)
        self._fetch.readers -= 1


class ProxyFiles:
    """Serves proxied files from the cache, fetching each from upstream at most once at a time."""

    def __init__(
        self,
        metadata: ProxyCacheStore,
        blobs: BlobStore,
        client: UpstreamClient,
        scratch: Scratch,
        metrics: Metrics,
        *,
        offline: bool = False,
        cache: ProxyCache | None = None,
    ) -> None:
        self._metadata = metadata
        #: Told of every file kept, to hold the cache's bounds; knows what is in use.
        self._cache = cache
        self._readers = cache.readers if cache is not None else CacheReaders()
        self._blobs = blobs
        self._client = client
        self._scratch = scratch
        self._metrics = metrics
        self.offline = offline
        self._fetches: dict[tuple[str, str], _Fetch] = {}
        self._small: dict[tuple[str, str], asyncio.Future[str]] = {}
        self._provenances: dict[tuple[str, str], asyncio.Future[str | None]] = {}
        self._proven: LRUCache[tuple[str, str, str], bool] = LRUCache(_CHECKS_KEPT)
        self._refused: LRUCache[tuple[str, str, str], bool] = LRUCache(_CHECKS_KEPT)
        self._prefetches: set[asyncio.Task[None]] = set()

    async def cached(self, index: str, filename: str) -> CachedFile | None:
        """The cache record of a file, if its bytes are kept."""
        return await self._metadata.get_cached_file(index, filename)

    async def open(self, config: IndexConfig, entry: FileEntry) -> BlobReader | ProxyStream:
        """The file from the cache, or a stream of it while it is fetched from upstream."""
        kept = await self._metadata.get_cached_file(config.name, entry.filename)
        if kept is not None and kept.sha256 == entry.sha256:
            self._metrics.proxy_files.labels(config.name, "hit").inc()
            # The access time says which files are still wanted; to the hour is plenty,
            # and a durable write on every hit would serialize downloads on the disk.
            now = _now()
            if now - kept.last_access > _TOUCH_INTERVAL:
                await self._metadata.touch_cached_file(config.name, entry.filename, now)
            self._readers.acquire(config.name, entry.filename)
            try:
                reader = await self._blobs.open_blob(kept.sha256)
            except NotFound as exc:
                self._readers.release(config.name, entry.filename)
                if self.offline or entry.upstream_url is None:
                    raise missing_bytes(entry.filename, metadata=False, proxied=True) from exc
                # Evicted by another process between the record and the blob: fetch it again.
                await self._metadata.forget_cached_file(config.name, entry.filename)
            else:
                return _Reading(reader, self._readers, config.name, entry.filename)
        if self.offline or entry.upstream_url is None:
            raise NotFound(f"{entry.filename!r} is not cached, and this server is offline.")
        key = (config.name, entry.filename)
        fetch = self._fetches.get(key)
        if fetch is None:
            fetch = self._start(config, entry, key)
        return ProxyStream(fetch)

    def _start(self, config: IndexConfig, entry: FileEntry, key: tuple[str, str]) -> _Fetch:
        descriptor, path = self._scratch.new_file(_KIND)
        fetch = _Fetch(path, descriptor, size=entry.size)
        self._fetches[key] = fetch
        self._readers.acquire(*key)
        task = asyncio.ensure_future(self._download(config, entry, fetch))
        task.add_done_callback(lambda _: self._end(key, fetch))
        return fetch

    def _end(self, key: tuple[str, str], fetch: _Fetch) -> None:
        self._fetches.pop(key, None)
        self._readers.release(*key)
        os.close(fetch.descriptor)
        fetch.path.unlink(missing_ok=True)

    async def _download(self, config: IndexConfig, entry: FileEntry, fetch: _Fetch) -> None:
        assert entry.upstream_url is not None
        try:
            with self._metrics.upstream_seconds.labels("file").time():
                digests = await self._receive(config, entry, fetch)
            if digests.sha256 != entry.sha256 or (fetch.size not in (None, digests.size)):
                raise UpstreamUnavailable(
                    f"Upstream sent {entry.filename!r} with other bytes than its page "
                    "promises; it was not kept."
                )
            await self.keep(config, entry.filename, fetch.path, digests.sha256, digests.size)
            fetch.verified = True
            self._metrics.proxy_files.labels(config.name, "miss").inc()
            if entry.provenance is not None:
                task = asyncio.ensure_future(self._prefetch_provenance(config, entry))
                self._prefetches.add(task)
                task.add_done_callback(self._prefetches.discard)
        except UpstreamUnavailable as exc:
            self._fail(config, entry, fetch, exc)
        except Exception as exc:  # a failure must reach the readers, whatever it is
            self._fail(config, entry, fetch, UpstreamUnavailable(f"Fetching failed: {exc}"))
            raise
        finally:
            fetch.started.set()
            fetch.notify()

    async def _receive(self, config: IndexConfig, entry: FileEntry, fetch: _Fetch) -> Digests:
        assert entry.upstream_url is not None and config.upstream is not None
        hasher = StreamingHasher()
        loop = asyncio.get_running_loop()
        base = base_for(config, entry.upstream_url)
        async with self._client.stream_file(base, entry.upstream_url) as response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit():
                if fetch.size is not None and int(declared) != fetch.size:
                    raise UpstreamUnavailable(
                        f"Upstream announces {declared} bytes for {entry.filename!r}, "
                        f"its page {fetch.size}."
                    )
                fetch.size = int(declared)
            fetch.started.set()
            async for chunk in response.aiter_raw(_CHUNK):
                # Hashed where it is written, off the event loop: three digests of every
                # chunk would otherwise hold up every other request (one chunk at a time,
                # in order, so the digests see the bytes as the file has them).
                await loop.run_in_executor(None, _write_and_hash, fetch.descriptor, chunk, hasher)
                fetch.written += len(chunk)
                fetch.notify()
        return hasher.digests()

    def _fail(
        self, config: IndexConfig, entry: FileEntry, fetch: _Fetch, error: UpstreamUnavailable
    ) -> None:
        # What went wrong is for the log (and the operator's 'verify --repair', as the
        # cause); a client learns only that the upstream failed.
        fetch.error = upstream_failed()
        fetch.error.__cause__ = error
        self._metrics.proxy_files.labels(config.name, "error").inc()
        log.warning("proxy %s: %s: %s", config.name, entry.filename, error)

    async def keep(
        self,
        config: IndexConfig,
        filename: str,
        path: Path,
        sha256: str,
        size: int,
        *,
        mirrored: bool = False,
    ) -> None:
        """Cache a verified file of a proxy index (the blob store takes ``path`` away);
        a mirror run's files are ``mirrored``, never evicted."""
        # Readers of a download in progress keep reading through their handles.
        await self._blobs.put_file(path, sha256)
        now = _now()
        await self._metadata.put_cached_file(
            CachedFile(config.name, filename, sha256, size, now, now, mirrored=mirrored)
        )
        # As an upload does: an eviction of the same bytes may have set the blob aside
        # between the put and the record (docs/proxy.md, "Eviction and uploads"). A
        # file a mirror holds must stay; any other would be fetched again if lost.
        await self._blobs.put_back(sha256)
        self._kept(config, size)

    async def hold_for_mirror(self, kept: CachedFile) -> None:
        """Mark a file cached before a mirror run asked for it as the mirror's too."""
        if not kept.mirrored:
            await self._metadata.put_cached_file(replace(kept, mirrored=True))

    def _kept(self, config: IndexConfig, size: int) -> None:
        if self._cache is not None:
            self._cache.kept(config.name, size, config.max_cache_size)

    async def metadata(self, config: IndexConfig, entry: FileEntry) -> str:
        """Make sure a proxied wheel's PEP 658 file is cached; returns its blob's sha256."""
        name = entry.filename + _METADATA_SUFFIX
        expected = entry.metadata_sha256
        assert expected is not None
        kept = await self._metadata.get_cached_file(config.name, name)
        if kept is not None and kept.sha256 == expected:
            self._metrics.proxy_files.labels(config.name, "hit").inc()
            return kept.sha256
        if self.offline or entry.upstream_url is None:
            raise NotFound(f"{name!r} is not cached, and this server is offline.")
        key = (config.name, name)
        flight = self._small.get(key)
        if flight is None:
            flight = asyncio.ensure_future(
                self._fetch_small(config, entry.upstream_url, name, expected)
            )
            self._small[key] = flight
            flight.add_done_callback(lambda _: self._small.pop(key, None))
        return await asyncio.shield(flight)

    async def _fetch_small(self, config: IndexConfig, url: str, name: str, expected: str) -> str:
        assert config.upstream is not None
        try:
            with self._metrics.upstream_seconds.labels("metadata").time():
                data = await self._client.fetch_small(base_for(config, url), url + _METADATA_SUFFIX)
            if sha256_hex(data) != expected:
                raise UpstreamUnavailable(
                    f"Upstream sent {name!r} with other bytes than its page promises "
                    f"({mask_url(url)}); it was not kept."
                )
        except UpstreamUnavailable as exc:
            self._metrics.proxy_files.labels(config.name, "error").inc()
            log.warning("proxy %s: %s: %s", config.name, name, exc)
            raise upstream_failed() from exc
        sha256 = await self._blobs.put_bytes(data)
        now = _now()
        await self._metadata.put_cached_file(
            CachedFile(config.name, name, sha256, len(data), cached=now, last_access=now)
        )
        self._metrics.proxy_files.labels(config.name, "miss").inc()
        self._kept(config, len(data))
        return sha256

    async def provenance(self, config: IndexConfig, entry: FileEntry) -> str | None:
        """The sha256 of a proxied file's verified provenance document in the blob store,
        fetched from upstream the first time; None when the upstream names none, the
        server is offline and has none, or the upstream's did not verify."""
        name = entry.filename + _PROVENANCE_SUFFIX
        kept = await self._metadata.get_cached_file(config.name, name)
        if kept is not None:
            if await self._still_proves(config, entry, kept.sha256):
                return kept.sha256
            await self._metadata.forget_cached_file(config.name, name)
        if self.offline or entry.provenance is None or config.upstream is None:
            return None
        if (config.name, entry.filename, entry.sha256) in self._refused:
            return None
        key = (config.name, name)
        flight = self._provenances.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._fetch_provenance(config, entry, name))
            self._provenances[key] = flight
            flight.add_done_callback(lambda _: self._provenances.pop(key, None))
        return await asyncio.shield(flight)

    async def _still_proves(self, config: IndexConfig, entry: FileEntry, sha256: str) -> bool:
        """Whether a kept provenance is about the file the page lists now (checked once per
        process: the page's sha256 of a filename could change, the kept document not)."""
        key = (sha256, entry.filename, entry.sha256)
        if key in self._proven:
            return True
        try:
            blob = await self._blobs.open_blob(sha256)
        except NotFound:
            return False
        try:
            data = b"".join([chunk async for chunk in blob.chunks(0, blob.size - 1)])
        finally:
            await blob.close()
        try:
            await asyncio.to_thread(verify_provenance, data, entry.filename, entry.sha256)
        except AttestationRejected as exc:
            log.warning(
                "proxy %s: kept provenance of %s dropped: %s", config.name, entry.filename, exc
            )
            return False
        self._proven[key] = True
        return True

    async def _fetch_provenance(
        self, config: IndexConfig, entry: FileEntry, name: str
    ) -> str | None:
        assert config.upstream is not None and entry.provenance is not None
        try:
            with self._metrics.upstream_seconds.labels("provenance").time():
                data = await self._client.fetch_small(
                    base_for(config, entry.provenance), entry.provenance
                )
        except UpstreamUnavailable as exc:
            self._metrics.proxy_files.labels(config.name, "error").inc()
            log.warning("proxy %s: %s: %s", config.name, name, exc)
            raise upstream_failed() from exc
        try:
            await asyncio.to_thread(verify_provenance, data, entry.filename, entry.sha256)
        except AttestationRejected as exc:
            # Remembered, so that every request does not fetch and check it again.
            self._refused[(config.name, entry.filename, entry.sha256)] = True
            log.warning(
                "proxy %s: the upstream's provenance of %s was dropped: %s [%s]",
                config.name,
                entry.filename,
                exc.message,
                exc.reason,
            )
            return None
        sha256 = await self._blobs.put_bytes(data)
        now = _now()
        await self._metadata.put_cached_file(
            CachedFile(config.name, name, sha256, len(data), cached=now, last_access=now)
        )
        self._proven[(sha256, entry.filename, entry.sha256)] = True
        self._metrics.proxy_files.labels(config.name, "miss").inc()
        self._kept(config, len(data))
        return sha256

    async def _prefetch_provenance(self, config: IndexConfig, entry: FileEntry) -> None:
        """Keep a fetched file's provenance as well, while the upstream is reachable."""
        try:
            await self.provenance(config, entry)
        except MinistryError as exc:
            log.info("proxy %s: provenance of %s not kept: %s", config.name, entry.filename, exc)


class _Reading:
    """A cached file open for a client: no eviction pass of this process deletes it
    until it is closed."""

    def __init__(self, reader: BlobReader, readers: CacheReaders, index: str, name: str) -> None:
        self._reader = reader
        self._readers = readers
        self._key = (index, name)
        self._open = True

    @property
    def size(self) -> int:
        """Length of the file in bytes."""
        return self._reader.size

    def chunks(self, start: int, end: int) -> AsyncIterator[bytes]:
        """The bytes from ``start`` to ``end`` inclusive."""
        return self._reader.chunks(start, end)

    async def close(self) -> None:
        """Release the blob, and the file to eviction."""
        if self._open:
            self._open = False
            self._readers.release(*self._key)
        await self._reader.close()


def upstream_failed() -> UpstreamUnavailable:
    """The error a client sees when an upstream failed: its status, body or address
    stay in the log (docs/security.md, "Upstream requests (SSRF)")."""
    return UpstreamUnavailable("The upstream index failed to answer; try again later.")


def missing_bytes(filename: str, metadata: bool, *, proxied: bool) -> StorageError:
    """The error for a recorded file whose bytes are gone from the blob store (a 500:
    the client asked for something the index lists, and the server lost it)."""
    what = f"{filename}.metadata" if metadata else filename
    remedy = (
        "an administrator can fetch it again with 'ministry verify --repair'"
        if proxied
        else "an administrator must restore it from a backup ('ministry verify' lists "
        "every such file)"
    )
    return StorageError(f"The stored bytes of {what!r} are missing; {remedy}.")


def _now() -> datetime:
    return datetime.now(UTC)


def _write_and_hash(descriptor: int, data: bytes, hasher: StreamingHasher) -> None:
    _write_all(descriptor, data)
    hasher.update(data)


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]
