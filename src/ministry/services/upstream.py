"""The HTTP client of proxy indexes, and the upstream of ``--upstream pip``.

Every call has a timeout, and a page fetch also an overall deadline, so an
upstream that drips one byte a second costs a bounded wait
(docs/security.md, "Upstreams that fail").
A page is read up to :data:`MAX_PAGE_BYTES` and refused past it, so a hostile
page costs bounded memory (docs/security.md, "Hostile upstream pages").
Each upstream has its own connection pool, which connects only where the reach
rule allows (docs/security.md, "Upstream requests (SSRF)"): see
:mod:`ministry.services.upstream_network`. ``httpx`` honours ``HTTP(S)_PROXY``
and ``NO_PROXY``, takes credentials from the URL, and drops them on redirects to
other hosts. Files are asked for without content encoding: their hash is checked
on exactly the bytes sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx

from ministry.core.masking import mask_url
from ministry.core.models import IndexConfig, Upstream
from ministry.core.negotiation import SIMPLE_HTML, SIMPLE_JSON
from ministry.core.upstream_entries import format_upstream, parse_upstreams, upstream_record
from ministry.core.upstream_reach import Reach, endpoint
from ministry.errors import InvalidRequest, UpstreamUnavailable
from ministry.services.local_upstreams import LocalUpstreams, is_local, local_directory
from ministry.services.upstream_network import checked_client, permitted

__all__ = [
    "MAX_PAGE_BYTES",
    "FetchedPage",
    "UpstreamClient",
    "base_for",
    "mask_url",
    "pip_upstreams",
    "resolve_upstreams",
]

log = logging.getLogger(__name__)

_ACCEPT = f"{SIMPLE_JSON}, {SIMPLE_HTML};q=0.2, text/html;q=0.01"
#: The largest upstream page read. The largest project pages of the public index are
#: a few MiB in JSON (a project with thousands of releases and several wheels each);
#: eight times that leaves room to grow, and the body, parsed only once it is whole,
#: plus its parsed entries stay well inside a small server's memory.
MAX_PAGE_BYTES = 32 * 1024 * 1024
# The list of every project (read by mirror runs only) of the public index is tens of MiB.
_MAX_LISTING_BYTES = 64 * 1024 * 1024
_MAX_SMALL_BYTES = 16 * 1024 * 1024
# The one place this project reads pip's effective configuration, by asking pip: the
# install command's parsed options merge pip's files, PIP_* variables and its default.
_PIP_INDEXES = (
    "import json\n"
    "from pip._internal.commands import create_command\n"
    "options, _ = create_command('install').parse_args([])\n"
    "print(json.dumps({'index_url': options.index_url, 'no_index': options.no_index,\n"
    "    'extra_index_urls': options.extra_index_urls, 'find_links': options.find_links}))\n"
)


def _pip_location(where: str, *, directory: bool) -> Upstream | None:
    """An index or find-links location of pip's as an upstream: an http(s) index, or a
    directory on this machine (a path or a ``file:`` URL); None for what cannot be one
    (a find-links web page is a page of links, not a simple index; a missing directory)."""
    if where.startswith(("http://", "https://")):
        return None if directory else Upstream(where)
    path = local_directory(where) if is_local(where) else Path(where).expanduser()
    if not path.is_dir():
        return None  # pip skips it too
    return Upstream(path.resolve().as_uri().rstrip("/") + "/")


def pip_upstreams(python: str = sys.executable) -> tuple[Upstream, ...]:
    """The locations pip on this machine installs from, in pip's order: its index URL,
    its extra index URLs, then its find-links directories (from its configuration
    files, environment or defaults)."""
    try:
        result = subprocess.run(
            [python, "-c", _PIP_INDEXES],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        found = json.loads(result.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        raise InvalidRequest(
            "--upstream pip: could not ask pip for its index URL; give the URL instead."
        ) from exc
    indexes = [] if found["no_index"] else [found["index_url"], *found["extra_index_urls"]]
    upstreams: dict[str, Upstream] = {}
    for where, directory in [(i, False) for i in indexes] + [
        (f, True) for f in found["find_links"]
    ]:
        upstream = _pip_location(str(where), directory=directory)
        if upstream is None:
            log.warning(
                "--upstream pip: %s is not a directory here nor an index, not proxied",
                mask_url(str(where)),
            )
        else:
            upstreams.setdefault(upstream.url, upstream)
    if not upstreams:
        raise InvalidRequest("--upstream pip: pip names no index to proxy; give the URL instead.")
    resolved = ", ".join(format_upstream(u) for u in upstreams.values())
    log.info("--upstream pip resolved to %s", resolved)
    return tuple(upstreams.values())


def resolve_upstreams(entries: Iterable[str | object]) -> tuple[Upstream, ...]:
    """Upstream entries as given (``pip`` standing for pip's indexes) as upstreams."""
    upstreams: list[Upstream] = []
    for entry in entries:
        if isinstance(entry, str) and entry.strip() == "pip":
            upstreams.extend(pip_upstreams())
        else:
            upstreams.extend(parse_upstreams([entry]))
    # Checked whole: a URL given twice (by hand and by pip) is refused with its name.
    return parse_upstreams([upstream_record(u, masked=False) for u in upstreams])


def base_for(config: IndexConfig, url: str) -> str:
    """The upstream whose connection rule a file URL is fetched under.

    The one on the file's host and port; with one upstream, that one. A file of an
    index with several upstreams on another host gets no upstream's own host: it may
    reach internal addresses only where ``--upstream-allow-internal`` allows, so one
    upstream's page cannot lead the server into another upstream's host.
    """
    if is_local(url):
        # A local file only under the local upstream whose directory holds it.
        local = [u.url for u in config.upstreams if LocalUpstreams.contains(u.url, url)]
        return local[0] if local else ""
    target = endpoint(url)
    for upstream in config.upstreams:
        if not is_local(upstream.url) and endpoint(upstream.url) == target:
            return upstream.url
    return config.upstreams[0].url if len(config.upstreams) == 1 else ""


@dataclass(frozen=True)
class FetchedPage:
    """An upstream's answer to a project page request: 200, 304 or 404."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    url: str = ""
    etag: str | None = None
    last_modified: str | None = None


class UpstreamClient:
    """One connection pool per process for every upstream."""

    def __init__(self, timeout: float = 10.0, allow_internal: Iterable[str] = ()) -> None:
        self.timeout = timeout
        self._allow_internal = tuple(allow_internal)
        self._clients: dict[Reach, httpx.AsyncClient] = {}
        self._local = LocalUpstreams()

    def _reach(self, base: str) -> Reach:
        return Reach.of(base, self._allow_internal)

    def _client(self, base: str) -> httpx.AsyncClient:
        """The connection pool of the upstream at ``base``: it may reach that host and port."""
        reach = self._reach(base)
        client = self._clients.get(reach)
        if client is None:
            client = self._clients[reach] = checked_client(reach, self.timeout, max_redirects=5)
        return client

    async def close(self) -> None:
        """Close the connection pools."""
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def refused(self, base: str, urls: Iterable[str]) -> set[str]:
        """The URLs a page of the upstream at ``base`` names that its requests may not reach."""
        reach = self._reach(base)
        verdicts: dict[tuple[str, int] | None, bool] = {}
        refused: set[str] = set()
        for url in urls:
            if is_local(url):
                if not self._local.contains(base, url):
                    refused.add(url)
                continue
            target = endpoint(url)
            if target not in verdicts:
                verdicts[target] = await permitted(reach, url)
            if not verdicts[target]:
                refused.add(url)
        return refused

    async def fetch_page(
        self, base: str, project: str, etag: str | None, last_modified: str | None
    ) -> FetchedPage:
        """``<base>/<project>/``, conditionally when we hold a copy; raises when upstream fails."""
        if is_local(base):
            return await self._local_page(base, project)
        url = base.rstrip("/") + "/" + project + "/"
        headers = {"Accept": _ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout * 3):
                return await self._fetch_page(base, url, headers, MAX_PAGE_BYTES)
        except (httpx.HTTPError, TimeoutError) as exc:
            raise _unavailable(url, exc) from exc
        finally:
            log.debug("upstream page %s took %.3fs", mask_url(url), time.monotonic() - started)

    async def _local_page(self, base: str, project: str) -> FetchedPage:
        """A project's page in a directory on this server (services.local_upstreams)."""
        status, body = await asyncio.to_thread(self._local.page, base, project)
        if status != 200:
            return FetchedPage(status=status)
        url = local_directory(base).as_uri().rstrip("/") + f"/{project}/"
        return FetchedPage(status=200, body=body, content_type=SIMPLE_JSON, url=url)

    async def _fetch_page(
        self, base: str, url: str, headers: dict[str, str], limit: int
    ) -> FetchedPage:
        async with self._client(base).stream("GET", url, headers=headers) as response:
            if response.status_code in (304, 404, 410):
                return FetchedPage(
                    status=404 if response.status_code == 410 else response.status_code
                )
            if response.status_code != 200:
                raise UpstreamUnavailable(
                    f"Upstream {mask_url(url)} answered {response.status_code}."
                )
            body = await _read(response, limit, url)
            return FetchedPage(
                status=200,
                body=body,
                content_type=response.headers.get("Content-Type"),
                url=str(response.url),
                etag=response.headers.get("ETag"),
                last_modified=response.headers.get("Last-Modified"),
            )

    async def fetch_small(self, base: str, url: str) -> bytes:
        """A small file whole (a PEP 658 metadata file); raises when upstream fails."""
        try:
            async with asyncio.timeout(self.timeout * 3), self.stream_file(base, url) as response:
                return await _read(response, _MAX_SMALL_BYTES, url)
        except TimeoutError as exc:
            raise _unavailable(url, exc) from exc

    async def fetch_listing(self, base: str) -> FetchedPage:
        """The upstream's list of every project (``<base>/``); raises when upstream fails."""
        if is_local(base):
            body = await asyncio.to_thread(self._local.projects, base)
            return FetchedPage(status=200, body=body, content_type=SIMPLE_JSON, url=base)
        url = base.rstrip("/") + "/"
        try:
            return await self._fetch_page(base, url, {"Accept": _ACCEPT}, _MAX_LISTING_BYTES)
        except httpx.HTTPError as exc:
            raise _unavailable(url, exc) from exc

    @asynccontextmanager
    async def stream_file(
        self, base: str, url: str, offset: int = 0
    ) -> AsyncIterator[httpx.Response]:
        """A file of the upstream at ``base`` as a streaming response: 200, or 206 from
        ``offset`` when asked.

        A resumed download asks for the rest of the file; an upstream that ignores
        ranges answers 200 with the whole file, and the caller starts over.
        """
        if is_local(url):
            async with self._local_file(base, url, offset) as response:
                yield response
            return
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            async with self._client(base).stream("GET", url, headers=headers) as response:
                if response.status_code != 200 and not (offset and response.status_code == 206):
                    raise UpstreamUnavailable(
                        f"Upstream {mask_url(url)} answered {response.status_code}."
                    )
                yield response
        except httpx.HTTPError as exc:
            raise _unavailable(url, exc) from exc

    @asynccontextmanager
    async def _local_file(self, base: str, url: str, offset: int) -> AsyncIterator[httpx.Response]:
        """A local upstream's file as a response, as if an HTTP upstream sent it."""
        size, stream = await asyncio.to_thread(self._local.open, base, url)
        try:
            await asyncio.to_thread(stream.seek, offset)
            yield httpx.Response(
                206 if offset else 200,
                headers={"Content-Length": str(size - offset)},
                stream=_LocalStream(stream),
            )
        finally:
            stream.close()


class _LocalStream(httpx.AsyncByteStream):
    """The bytes of an open local file, read off the event loop."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while chunk := await asyncio.to_thread(self._stream.read, 1024 * 1024):
            yield chunk


async def _read(response: httpx.Response, limit: int, url: str) -> bytes:
    """The body, in one buffer that never holds more than ``limit`` bytes."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UpstreamUnavailable(f"Upstream {mask_url(url)} announces more than {limit} bytes.")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        if len(body) + len(chunk) > limit:
            body.clear()  # a kept error's traceback must not keep the buffer alive
            raise UpstreamUnavailable(f"Upstream {mask_url(url)} sent more than {limit} bytes.")
        body += chunk
    # A bytearray is read as bytes by every parser; copying it would double the peak.
    return body  # type: ignore[return-value]


def _unavailable(url: str, exc: Exception) -> UpstreamUnavailable:
    unreachable = isinstance(exc, TimeoutError | httpx.TransportError)
    reason = "timed out" if isinstance(exc, TimeoutError | httpx.TimeoutException) else str(exc)
    return UpstreamUnavailable(
        f"Upstream {mask_url(url)} failed: {reason or type(exc).__name__}.",
        unreachable=unreachable,
    )
