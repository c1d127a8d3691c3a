"""Connections to upstreams that can only go where the reach rule allows.

The rule is checked on the address actually connected to (docs/security.md,
"Upstream requests (SSRF)"): the network backend resolves a host name itself,
checks every address it resolves to, and connects to a checked address, so a
name cannot resolve to a public address for the check and to an internal one
for the connection. TLS still verifies, and sends as SNI, the host name of the
URL. Every redirect hop opens its connection through the same backend.

Through an ``HTTP(S)_PROXY`` the proxy connects and resolves, not this server:
then each request (each redirect hop too) is checked before it is sent, on the
addresses the host name resolves to here; the proxy itself should refuse
internal addresses to close the gap between that check and its connection.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from ministry.core.upstream_reach import Address, Reach, endpoint, ip_literal
from ministry.services.httpx_internals import environment_proxies, send_through

__all__ = ["AddressRefused", "checked_client", "permitted"]

log = logging.getLogger(__name__)


class AddressRefused(httpx.ConnectError):
    """A request was not sent: its host leads to an internal address the rule refuses."""


async def _resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to (itself when it is an IP address)."""
    literal = ip_literal(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    answers = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[Address] = []
    for _family, _type, _proto, _name, sockaddr in answers:
        address = ip_literal(str(sockaddr[0]))
        if address is not None and address not in found:
            found.append(address)
    return found


async def permitted(reach: Reach, url: str) -> bool:
    """Whether a request to ``url`` may be sent, as far as can be told before connecting.

    A name that does not resolve now is not refused here: its connection decides.
    """
    target = endpoint(url)
    if target is None:
        return False
    host, port = target
    try:
        addresses = await _resolve(host, port)
    except OSError:
        return True
    return all(reach.permits(host, port, address) for address in addresses)


def _readable(sock: socket.socket | None) -> bool:
    """Whether the socket has something to read (or is closed): an idle connection that
    is readable was closed by the upstream."""
    if sock is None:
        return False
    if sock.fileno() < 0:
        return True
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class _Stream(httpcore.AsyncNetworkStream):
    """A connection that answers "is it readable?" with one poll of its socket.

    httpcore asks that of every idle connection of a pool each time a request takes or
    gives back a connection (to drop those the upstream closed). The stream it wraps
    looks the socket up through its attribute table on each question, which profiles of
    a cold install showed at several per cent of the event loop's time; the socket is
    the same for the connection's life, TLS or not, so it is looked up once here.
    """

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return _readable(self._socket)
        return self._inner.get_extra_info(info)


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address, and connects to a checked one."""

    def __init__(self, reach: Reach) -> None:
        self._reach = reach
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """A connection to an address of ``host`` that the rule permits, or ConnectError."""
        try:
            async with asyncio.timeout(timeout):
                addresses = await _resolve(host, port)
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        refused = [a for a in addresses if not self._reach.permits(host, port, a)]
        if refused or not addresses:
            log.warning("refused to connect to %s:%s: internal address %s", host, port, refused)
            raise httpcore.ConnectError(f"{host}:{port} leads to an internal address")
        error: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return _Stream(
                    await self._inner.connect_tcp(
                        str(address), port, timeout, local_address, socket_options
                    )
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = httpcore.ConnectError(str(exc))
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        """Never: upstreams are reached over TCP."""
        raise httpcore.ConnectError("upstreams are not reached over Unix sockets")

    async def sleep(self, seconds: float) -> None:
        """As the default backend does."""
        await self._inner.sleep(seconds)


@functools.cache
def _tls() -> ssl.SSLContext:
    """The one TLS context of every upstream connection of this process.

    Building one reads the whole CA bundle (tens of milliseconds on the event loop);
    a context is only read once made, so every pool and transport can share it.
    """
    return httpx.create_ssl_context(trust_env=True)


class _CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool that uses the checked backend."""

    def __init__(self, reach: Reach, limits: httpx.Limits) -> None:
        super().__init__(verify=_tls(), trust_env=True, limits=limits)
        pool = httpcore.AsyncConnectionPool(
            ssl_context=_tls(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_CheckedBackend(reach),
        )
        send_through(self, pool)


def checked_client(reach: Reach, timeout: float, max_redirects: int) -> httpx.AsyncClient:
    """An httpx client whose every connection, direct or through a proxy, obeys ``reach``."""
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    direct = _CheckedTransport(reach, limits)
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {}
    for pattern, proxy in environment_proxies().items():
        mounts[pattern] = (
            direct
            if proxy is None
            else httpx.AsyncHTTPTransport(proxy=proxy, verify=_tls(), trust_env=True, limits=limits)
        )
    hooks: dict[str, list[Any]] = {}
    if any(proxy is not None for proxy in environment_proxies().values()):

        async def check(request: httpx.Request) -> None:
            if not await permitted(reach, str(request.url)):
                raise AddressRefused(
                    f"{request.url.host} leads to an internal address", request=request
                )

        hooks["request"] = [check]
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        follow_redirects=True,
        max_redirects=max_redirects,
        transport=direct,
        mounts=mounts,
        event_hooks=hooks,
        headers={"User-Agent": "ministry-of-packages"},
    )
