"""Upstream project pages for proxy indexes: fetched once, kept, revalidated, served stale.

A page is fresh for the index's ``page_ttl``; after that it is revalidated with
a conditional request. Concurrent requests for one project share one upstream
request (single flight). When the upstream fails, the last good page is served
and marked stale, and further attempts wait a little, so an upstream outage
does not make every request wait for a timeout (docs/security.md, "Upstreams that fail"). An answer
that is not a believable page never replaces a good one
(docs/security.md, "Hostile upstream pages"). An index with several upstreams
keeps each one's pages, freshness and retry timer apart, and merges their pages
by filename (docs/proxy.md, "Several upstreams").
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from cachetools import LRUCache
from packaging.utils import NormalizedName

from ministry.core.hashing import sha256_hex
from ministry.core.masking import mask_url
from ministry.core.models import CachedPage, IndexConfig, Upstream
from ministry.core.upstream_cache import KeptPage, dump_page, load_page
from ministry.core.upstream_entries import routed
from ministry.core.upstream_pages import (
    UpstreamFile,
    UpstreamPage,
    UpstreamPageError,
    parse_page,
)
from ministry.errors import UpstreamUnavailable
from ministry.services.metrics import Metrics
from ministry.services.upstream import FetchedPage, UpstreamClient
from ministry.storage.protocols import ProxyCacheStore

__all__ = ["ProxyPage", "ProxyPages"]

log = logging.getLogger(__name__)

# An upstream 404 is believed for a short while only: the project may appear soon.
_NOT_FOUND_TTL = 60.0
# After a failed attempt, serve what is kept for this long before trying again.
_RETRY_AFTER = 30.0
_PARSED_PAGES = 256
_EMPTY = UpstreamPage(name="", files=(), versions=(), status=None)


@dataclass(frozen=True)
class _Source:
    """One upstream of a proxy index, as its pages are fetched and kept.

    ``config`` is the index with this upstream alone (and its own page TTL); ``slot``
    names it for the retry timers. The only upstream of an index keeps its pages under
    the project's name, as before an index could have several; each of several keeps
    them under ``<project>@<tag of its URL>``, so each has its own cached pages.
    """

    config: IndexConfig
    slot: str
    tag: str
    pins: bool

    @classmethod
    def sole(cls, config: IndexConfig) -> _Source:
        """The one upstream of ``config``: its pages are pinned as they are fetched."""
        ttl = config.upstreams[0].page_ttl
        sub = config if ttl is None else replace(config, page_ttl=ttl)
        return cls(sub, config.name, "", pins=True)

    @classmethod
    def of(cls, config: IndexConfig, upstream: Upstream) -> _Source:
        """One of several upstreams: the merged page is pinned, not each upstream's."""
        ttl = config.page_ttl if upstream.page_ttl is None else upstream.page_ttl
        tag = sha256_hex(mask_url(upstream.url).encode())[:16]
        sub = replace(config, upstreams=(upstream,), page_ttl=ttl)
        return cls(sub, f"{config.name}@{tag}", tag, pins=False)

    @property
    def url(self) -> str:
        """This upstream's URL."""
        assert self.config.upstream is not None
        return self.config.upstream

    def key(self, project: str) -> str:
        """The name this upstream's page of ``project`` is kept under."""
        return f"{project}@{self.tag}" if self.tag else project


@dataclass(frozen=True)
class ProxyPage:
    """A project as a proxy index knows it, and whether that knowledge is past its freshness."""

    index: str
    project: NormalizedName
    kept: KeptPage
    token: str
    fresh_until: float
    stale: bool


class ProxyPages:
    """Fetches, keeps and revalidates upstream project pages."""

    def __init__(
        self,
        metadata: ProxyCacheStore,
        client: UpstreamClient,
        metrics: Metrics,
        *,
        offline: bool = False,
    ) -> None:
        self._metadata = metadata
        self._client = client
        self._metrics = metrics
        self.offline = offline
        self._in_flight: dict[tuple[str, str], asyncio.Future[ProxyPage | None]] = {}
        self._retry_at: dict[tuple[str, str], float] = {}
        # An upstream that cannot be reached at all is not asked again for a while, for
        # any project: an install of thirty projects must not wait thirty timeouts.
        self._unreachable_until: dict[str, float] = {}
        self._last_error: dict[str, Exception] = {}
        # Parsed documents by token: a download must not re-read a page of 2,000 files.
        self._parsed: LRUCache[str, KeptPage] = LRUCache(_PARSED_PAGES)
        # Pages merged from several upstreams, by the tokens of the pages merged.
        self._merged_pages: LRUCache[str, KeptPage] = LRUCache(_PARSED_PAGES)

    def clear(self) -> None:
        """Forget the parsed pages (after the store went back: its kept pages may be older)."""
        self._parsed.clear()
        self._merged_pages.clear()

    async def get(
        self, config: IndexConfig, project: NormalizedName, *, revalidate: bool = False
    ) -> ProxyPage | None:
        """The upstream's page of a project, or None when the upstream has no such project.

        ``revalidate`` asks the upstream even while the kept page is fresh (a mirror
        run must see what changed since the last one); with an ETag that costs a 304.
        An index with several upstreams asks those the name is routed to and merges
        their pages (docs/proxy.md, "Several upstreams").
        """
        upstreams = routed(config.upstreams, project)
        if not upstreams:
            return None
        if len(config.upstreams) == 1:
            return await self._get_one(_Source.sole(config), project, revalidate)
        sources = [_Source.of(config, upstream) for upstream in upstreams]
        return await self._merged(config, project, sources, revalidate)

    async def _get_one(
        self, source: _Source, project: NormalizedName, revalidate: bool
    ) -> ProxyPage | None:
        config = source.config
        kept = await self._metadata.get_cached_page(config.name, source.key(project))
        key = (source.slot, str(project))
        fresh = kept is not None and self._is_fresh(config, kept) and not revalidate
        if kept is not None and (fresh or self.offline):
            self._count(config, "hit" if self._is_fresh(config, kept) else "stale")
            return self._page(kept, fresh=self._is_fresh(config, kept), config=config)
        if self.offline:
            return None
        now = time.monotonic()
        waiting = max(self._retry_at.get(key, 0.0), self._unreachable_until.get(source.slot, 0.0))
        if now < waiting:
            # Recently failed: answer at once instead of waiting for another timeout.
            error = self._last_error[source.slot]
            return self._fall_back(source, key, kept, error, retry=False)
        flight = self._in_flight.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._refresh(source, project, kept))
            self._in_flight[key] = flight
            flight.add_done_callback(lambda _: self._in_flight.pop(key, None))
        return await asyncio.shield(flight)

    async def _merged(
        self,
        config: IndexConfig,
        project: NormalizedName,
        sources: list[_Source],
        revalidate: bool,
    ) -> ProxyPage | None:
        """One page from the pages of several upstreams: each filename from the first
        upstream that offers it; an upstream that fails leaves the others' files served."""
        results = await asyncio.gather(
            *(self._get_one(source, project, revalidate) for source in sources),
            return_exceptions=True,
        )
        pages: list[tuple[_Source, ProxyPage]] = []
        failed: list[_Source] = []
        for source, result in zip(sources, results, strict=True):
            if isinstance(result, UpstreamUnavailable):
                failed.append(source)
            elif isinstance(result, BaseException):
                raise result
            elif result is not None:
                pages.append((source, result))
        if failed and not pages:
            error = results[sources.index(failed[0])]
            assert isinstance(error, UpstreamUnavailable)
            raise error
        if failed:
            log.warning(
                "proxy %s: %s failed for %s; serving the files of %s only",
                config.name,
                ", ".join(mask_url(s.url) for s in failed),
                project,
                ", ".join(mask_url(s.url) for s, _ in pages),
            )
        if not pages:
            return None
        # Pinning is per index: the same upstream pages merge afresh for another index.
        parts = [config.name, project, *(f"{s.tag}={page.token}" for s, page in pages)]
        token = sha256_hex("\n".join(parts).encode())
        merged = self._merged_pages.get(token)
        if merged is None:
            merged = await self._merge(config, project, pages)
            self._merged_pages[token] = merged
        return ProxyPage(
            index=config.name,
            project=project,
            kept=merged,
            token=token,
            fresh_until=min(page.fresh_until for _, page in pages),
            stale=bool(failed) or any(page.stale for _, page in pages),
        )

    async def _merge(
        self, config: IndexConfig, project: NormalizedName, pages: list[tuple[_Source, ProxyPage]]
    ) -> KeptPage:
        files: dict[str, tuple[_Source, UpstreamFile]] = {}
        first_seen: dict[str, datetime] = {}
        versions: dict[str, None] = {}
        status: str | None = None
        for source, page in pages:
            versions.update(dict.fromkeys(page.kept.page.versions))
            status = status or page.kept.page.status
            for file in page.kept.page.files:
                offered = files.get(file.filename)
                if offered is None:
                    files[file.filename] = (source, file)
                    if file.filename in page.kept.first_seen:
                        first_seen[file.filename] = page.kept.first_seen[file.filename]
                elif offered[1].hashes.get("sha256") != file.hashes.get("sha256"):
                    # Never mixed: the bytes of the upstream listed first are the file
                    # (docs/security.md, "Dependency confusion across upstreams").
                    log.warning(
                        "proxy %s: %s is offered by %s with sha256 %s and by %s with sha256 "
                        "%s; keeping the first",
                        config.name,
                        file.filename,
                        mask_url(offered[0].url),
                        offered[1].hashes.get("sha256"),
                        mask_url(source.url),
                        file.hashes.get("sha256"),
                    )
        merged = UpstreamPage(
            name=project,
            files=tuple(file for _, file in files.values()),
            versions=tuple(versions),
            status=status,
        )
        return KeptPage(await self._pinned(config, project, merged, None), first_seen)

    @staticmethod
    def _age(kept: CachedPage) -> float:
        return (datetime.now(UTC) - kept.fetched).total_seconds()

    def _is_fresh(self, config: IndexConfig, kept: CachedPage) -> bool:
        ttl = config.page_ttl if kept.status == 200 else min(config.page_ttl, _NOT_FOUND_TTL)
        # A fetch time in the future means the clock went back: revalidate
        # (docs/security.md, "Upstreams that fail").
        return 0 <= self._age(kept) < ttl

    def _page(self, kept: CachedPage, *, fresh: bool, config: IndexConfig) -> ProxyPage | None:
        if kept.status != 200:
            return None
        remaining = max(0.0, config.page_ttl - self._age(kept)) if fresh else 0.0
        return ProxyPage(
            index=kept.index,
            project=NormalizedName(kept.project),
            kept=self._load(kept),
            token=kept.token,
            fresh_until=time.monotonic() + remaining,
            stale=not fresh,
        )

    def _load(self, kept: CachedPage) -> KeptPage:
        parsed = self._parsed.get(kept.token)
        if parsed is None:
            parsed = load_page(kept.document)
            self._parsed[kept.token] = parsed
        return parsed

    def _count(self, config: IndexConfig, result: str) -> None:
        self._metrics.proxy_pages.labels(config.name, result).inc()

    async def _refresh(
        self, source: _Source, project: NormalizedName, kept: CachedPage | None
    ) -> ProxyPage | None:
        config = source.config
        assert config.upstream is not None
        key = (source.slot, str(project))
        conditional = kept is not None and kept.status == 200
        try:
            with self._metrics.upstream_seconds.labels("page").time():
                fetched = await self._client.fetch_page(
                    config.upstream,
                    project,
                    kept.etag if conditional and kept else None,
                    kept.last_modified if conditional and kept else None,
                )
            page = self._parse(fetched, project, kept) if fetched.status == 200 else None
            if page is not None:
                page = await self._reachable(config, page)
        except (UpstreamUnavailable, UpstreamPageError) as exc:
            return self._fall_back(source, key, kept, exc)
        self._retry_at.pop(key, None)
        self._unreachable_until.pop(source.slot, None)
        now = datetime.now(UTC)
        if fetched.status == 304 and kept is not None:
            stored = replace(kept, fetched=now)
            self._count(config, "revalidated")
        elif page is None:
            document, token = dump_page(KeptPage(_EMPTY, {}), now)
            stored = CachedPage(config.name, source.key(project), 404, now, document, token)
            self._count(config, "not_found")
        else:
            if source.pins:
                page = await self._pinned(config, project, page, kept)
            stored = self._kept(config, source.key(project), page, fetched, kept, now)
            self._count(config, "refreshed" if kept else "miss")
        await self._metadata.put_cached_page(stored)
        return self._page(stored, fresh=True, config=config)

    def _parse(
        self, fetched: FetchedPage, project: NormalizedName, kept: CachedPage | None
    ) -> UpstreamPage:
        page = parse_page(fetched.body, fetched.content_type, fetched.url, project)
        if not page.files and kept is not None and kept.status == 200:
            before = len(self._load(kept).page.files)
            if before:
                # A login or error page served as HTML parses as a project without files;
                # a project losing every file at once is far less likely
                # (docs/security.md, "Hostile upstream pages").
                raise UpstreamPageError(
                    f"the upstream page lists no files where it listed {before}"
                )
        return page

    async def _reachable(self, config: IndexConfig, page: UpstreamPage) -> UpstreamPage:
        """The page without the files whose URLs lead where this upstream may not reach
        (docs/security.md, "Upstream requests (SSRF)")."""
        assert config.upstream is not None
        refused = await self._client.refused(config.upstream, (f.url for f in page.files))
        if not refused:
            return page
        for file in page.files:
            if file.url in refused:
                log.warning(
                    "proxy %s: dropped %s from the page of %s: its URL %s leads to an internal "
                    "address (see --upstream-allow-internal)",
                    config.name,
                    file.filename,
                    page.name,
                    mask_url(file.url),
                )
        return replace(page, files=tuple(f for f in page.files if f.url not in refused))

    async def _pinned(
        self,
        config: IndexConfig,
        project: NormalizedName,
        page: UpstreamPage,
        previous: CachedPage | None,
    ) -> UpstreamPage:
        """The page with every filename at the bytes first seen for it (docs/security.md,
        "Pinned proxied files"): a changed file is offered at its pinned hash while those
        bytes are cached, and left off the page otherwise."""
        seen = _hashes(page)
        # The page kept before also counts as seen (it may predate pinning): one write.
        before = _hashes(self._load(previous).page) if previous and previous.status == 200 else {}
        pins = await self._metadata.pin_files(config.name, project, {**seen, **before})
        changed = {name for name, sha256 in seen.items() if pins.get(name, sha256) != sha256}
        if not changed:
            return page
        files: list[UpstreamFile] = []
        for file in page.files:
            if file.filename not in changed:
                files.append(file)
                continue
            self._metrics.upstream_changed_files.labels(config.name).inc()
            pinned = pins[file.filename]
            cached = await self._metadata.get_cached_file(config.name, file.filename)
            keep = cached is not None and cached.sha256 == pinned
            log.warning(
                "proxy %s: upstream now lists %s with sha256 %s, but it was %s; %s",
                config.name,
                file.filename,
                seen[file.filename],
                pinned,
                "serving the cached file" if keep else "left off the page",
            )
            if cached is not None and keep:
                # The metadata hash describes the new bytes: clients read the file's own.
                pin = {"sha256": pinned}
                files.append(replace(file, hashes=pin, metadata_hashes=None, size=cached.size))
        return replace(page, files=tuple(files))

    @staticmethod
    def _kept(
        config: IndexConfig,
        project: str,
        page: UpstreamPage,
        fetched: FetchedPage,
        previous: CachedPage | None,
        now: datetime,
    ) -> CachedPage:
        seen = (
            load_page(previous.document).first_seen if previous and previous.status == 200 else {}
        )
        document, token = dump_page(KeptPage(page, seen), now)
        return CachedPage(
            config.name, project, 200, now, document, token, fetched.etag, fetched.last_modified
        )

    def _fall_back(
        self,
        source: _Source,
        key: tuple[str, str],
        kept: CachedPage | None,
        error: Exception,
        *,
        retry: bool = True,
    ) -> ProxyPage | None:
        config = source.config
        if retry:
            retry_at = time.monotonic() + _RETRY_AFTER
            self._retry_at[key] = retry_at
            self._last_error[source.slot] = error
            if isinstance(error, UpstreamUnavailable) and error.unreachable:
                self._unreachable_until[source.slot] = retry_at
        log.log(
            logging.WARNING if retry else logging.INFO,
            "upstream %s for %s: %s%s; %s",
            mask_url(config.upstream or ""),
            key[1],
            error,
            "" if retry else " (not retried yet)",
            "serving the kept page (stale)" if kept else "nothing kept to serve",
        )
        if kept is None:
            self._count(config, "error")
            # The cause (a status, a body, an address) is in the log line above, not for
            # clients (docs/security.md, "Upstream requests (SSRF)").
            raise UpstreamUnavailable(
                f"The upstream index failed to answer and project {key[1]!r} is not cached "
                f"in index {config.name!r}; try again later."
            ) from error
        self._count(config, "stale")
        return self._page(kept, fresh=False, config=config)


def _hashes(page: UpstreamPage) -> dict[str, str]:
    """The sha256 of every file of a page that gives one, by filename."""
    return {f.filename: f.hashes["sha256"] for f in page.files if "sha256" in f.hashes}
