"""The services of one server, built inside the test's own event loop on real stores.

``build_services`` makes them exactly as ``ministry serve`` does, on a SQLite file and
a blob directory below the test's temporary directory; no server process, no network.
For proxy indexes, :func:`proxy_rig` builds the proxy services again over the same
stores with a :class:`FakeUpstream` in the place of the network client, put together
the way ``wiring.py`` puts the real ones together.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ParamSpec, cast

from packaging.utils import NormalizedName

from ministry.core.models import IndexConfig, Upstream
from ministry.core.negotiation import SIMPLE_JSON
from ministry.core.permissions import Identity
from ministry.errors import UpstreamUnavailable
from ministry.services.catalog import Catalog
from ministry.services.indexes import ReadAccess
from ministry.services.metrics import Metrics
from ministry.services.projects import ProjectResolver
from ministry.services.proxy_files import ProxyFiles, ProxyStream
from ministry.services.proxy_pages import ProxyPages
from ministry.services.upstream import FetchedPage, UpstreamClient
from ministry.settings import Settings
from ministry.storage.protocols import BlobReader
from ministry.web.urls import file_path
from ministry.wiring import Services, build_services

__all__ = [
    "ADMIN",
    "PROXY",
    "UPSTREAM",
    "FakeUpstream",
    "PageRequest",
    "ProxyRig",
    "in_event_loop",
    "project",
    "proxy_rig",
    "read_all",
    "started_services",
]

P = ParamSpec("P")

#: A server administrator (identities are proven by the auth service; these tests
#: hand the services the identity a request would carry).
ADMIN = Identity("root", is_admin=True)
#: The proxy index :func:`proxy_rig` creates, and the upstream it names.
PROXY = "remote-proxy"
UPSTREAM = "http://upstream.example.test/simple/"
_FILES = "http://files.example.test/"


def in_event_loop(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an ``async def`` test in an event loop of its own (no pytest plugin needed)."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


@asynccontextmanager
async def started_services(
    data: Path, metrics: Metrics | None = None, **options: Any
) -> AsyncIterator[Services]:
    """A server's services on a data directory, started and stopped as ``serve`` does
    (with ``metrics``, as a server's: its store calls timed, its rollback watch on)."""
    settings = Settings(data=data, password_hash_cost="minimal", **options)
    services = build_services(settings, file_path, metrics)
    await services.start()
    try:
        yield services
    finally:
        await services.stop()


async def read_all(opened: BlobReader | ProxyStream) -> bytes:
    """Every byte of a download, from the blob store or from a fetch in progress."""
    if isinstance(opened, ProxyStream):
        try:
            return b"".join([chunk async for chunk in opened.chunks()])
        finally:
            opened.close()
    try:
        if opened.size == 0:
            return b""
        return b"".join([chunk async for chunk in opened.chunks(0, opened.size - 1)])
    finally:
        await opened.close()


@dataclass(frozen=True)
class PageRequest:
    """A project page request the upstream received, with the ETag it was asked with."""

    project: str
    etag: str | None


@dataclass
class _Listed:
    filename: str
    url: str
    sha256: str
    upload_time: datetime | None


class _Response:
    """What ``UpstreamClient.stream_file`` yields: headers and the raw body in chunks."""

    def __init__(self, data: bytes, hold: asyncio.Event | None) -> None:
        self.headers = {"Content-Length": str(len(data))}
        self._data = data
        self._hold = hold

    async def aiter_raw(self, chunk_size: int) -> AsyncIterator[bytes]:
        half = len(self._data) // 2
        yield self._data[:half]
        if self._hold is not None:
            await self._hold.wait()
        for start in range(half, len(self._data), chunk_size):
            yield self._data[start : start + chunk_size]


@dataclass
class FakeUpstream:
    """An upstream index the test scripts: what ``UpstreamClient`` answers, without a network.

    Pages are PEP 691 JSON with an ETag (a request naming the current one gets 304);
    a project it does not list answers 404. ``state`` "down" fails as an unreachable
    host does, "error" as a 5xx answer does. Every request is counted.
    """

    state: str = "up"
    page_requests: list[PageRequest] = field(default_factory=list)
    file_requests: list[str] = field(default_factory=list)
    #: While set and not yet released, page requests wait for it.
    hold_pages: asyncio.Event | None = None
    #: While set and not yet released, file bodies stop after their first half.
    hold_files: asyncio.Event | None = None
    _projects: dict[str, dict[str, _Listed]] = field(default_factory=dict)
    _bodies: dict[str, bytes] = field(default_factory=dict)
    _empty: set[str] = field(default_factory=set)

    def publish(
        self,
        project: str,
        filename: str,
        data: bytes,
        *,
        upload_time: datetime | None = None,
        listed_sha256: str | None = None,
    ) -> str:
        """List a file on the project's page (replacing one of that name) and serve its bytes
        at a URL of their own; the page gives their sha256 unless told another."""
        sha256 = hashlib.sha256(data).hexdigest()
        url = f"{_FILES}{sha256[:16]}/{filename}"
        self._bodies[url] = data
        listed = _Listed(filename, url, listed_sha256 or sha256, upload_time)
        self._projects.setdefault(project, {})[filename] = listed
        self._empty.discard(project)
        return url

    def remove(self, project: str) -> None:
        """The upstream no longer has the project: its page answers 404."""
        self._projects.pop(project, None)

    def list_nothing(self, project: str) -> None:
        """The project's page answers 200 with no files (as a login page parsed as one would)."""
        self._empty.add(project)

    def requests_for(self, project: str) -> int:
        """How many times the project's page was asked for."""
        return sum(1 for r in self.page_requests if r.project == project)

    def _page(self, project: str) -> bytes:
        files = [] if project in self._empty else self._projects[project].values()
        document = {
            "meta": {"api-version": "1.1"},
            "name": project,
            "files": [
                {
                    "filename": f.filename,
                    "url": f.url,
                    "hashes": {"sha256": f.sha256},
                    **(
                        {"upload-time": f.upload_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
                        if f.upload_time
                        else {}
                    ),
                }
                for f in files
            ],
        }
        return json.dumps(document, sort_keys=True).encode()

    def _fail(self, what: str) -> None:
        if self.state == "down":
            raise UpstreamUnavailable(f"Upstream {what} failed: timed out.", unreachable=True)
        if self.state == "error":
            raise UpstreamUnavailable(f"Upstream {what} answered 503.")

    # -- what the proxy services call ---------------------------------------------------

    async def fetch_page(
        self, base: str, project: str, etag: str | None, last_modified: str | None
    ) -> FetchedPage:
        """The project's page: 200 with an ETag, 304 for the current ETag, or 404."""
        assert base == UPSTREAM
        self.page_requests.append(PageRequest(project, etag))
        await asyncio.sleep(0)  # a network round trip lets other tasks run
        if self.hold_pages is not None:
            await self.hold_pages.wait()
        self._fail(f"{base}{project}/")
        if project not in self._projects:
            return FetchedPage(status=404)
        body = self._page(project)
        current = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if etag == current:
            return FetchedPage(status=304)
        url = f"{base}{project}/"
        return FetchedPage(200, body, SIMPLE_JSON, url, etag=current)

    async def refused(self, base: str, urls: Iterable[str]) -> set[str]:
        """No file URL leads anywhere internal."""
        return set()

    @asynccontextmanager
    async def stream_file(self, base: str, url: str, offset: int = 0) -> AsyncIterator[_Response]:
        """A file's bytes as the upstream serves them now."""
        self.file_requests.append(url)
        await asyncio.sleep(0)
        self._fail(url)
        if url not in self._bodies:
            raise UpstreamUnavailable(f"Upstream {url} answered 404.")
        yield _Response(self._bodies[url], self.hold_files)

    async def fetch_small(self, base: str, url: str) -> bytes:
        """No metadata files: the scripted pages announce none."""
        raise UpstreamUnavailable(f"Upstream {url} answered 404.")

    async def close(self) -> None:
        """Nothing to close."""


@dataclass
class ProxyRig:
    """A server's services with a proxy index whose upstream is a :class:`FakeUpstream`."""

    services: Services
    upstream: FakeUpstream
    metrics: Metrics
    pages: ProxyPages
    files: ProxyFiles
    catalog: Catalog

    async def access(self, index: str = PROXY) -> ReadAccess:
        """What an anonymous reader sees through an index, as of now."""
        return await self.services.indexes.read_access(index, None)

    def restarted_pages(self) -> ProxyPages:
        """The page service of another process on the same store and upstream."""
        return ProxyPages(self.services.metadata, cast(UpstreamClient, self.upstream), Metrics())

    def counted(self, metric: str, **labels: str) -> float:
        """A counter's value in the proxy services' metrics (0 before its first count)."""
        value = self.metrics.registry.get_sample_value(f"{metric}_total", labels)
        return value or 0.0


@asynccontextmanager
async def proxy_rig(
    data: Path, *, page_ttl: int = 3600, min_age: int = 0, min_age_exempt: tuple[str, ...] = ()
) -> AsyncIterator[ProxyRig]:
    """Services with the proxy index ``remote-proxy`` of a scripted upstream."""
    async with started_services(data) as services:
        config = IndexConfig(
            PROXY,
            kind="proxy",
            upstreams=(Upstream(UPSTREAM),),
            page_ttl=page_ttl,
            min_age=min_age,
            min_age_exempt=min_age_exempt,
        )
        await services.indexes.create(ADMIN, config)
        upstream = FakeUpstream()
        client = cast(UpstreamClient, upstream)
        metrics = Metrics()
        pages = ProxyPages(services.metadata, client, metrics)
        files = ProxyFiles(services.metadata, services.blobs, client, services.scratch, metrics)
        catalog = Catalog(
            services.metadata,
            services.blobs,
            ProjectResolver(services.metadata, pages),
            files,
            file_path,
        )
        yield ProxyRig(services, upstream, metrics, pages, files, catalog)


def project(name: str) -> NormalizedName:
    """A project name as the services take it (the tests use normalized names)."""
    return NormalizedName(name)
