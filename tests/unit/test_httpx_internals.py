"""services.httpx_internals against the installed httpx: fails when a release changes them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
import pytest
import tornado.httpserver
import tornado.testing
import tornado.web

from ministry.services.httpx_internals import environment_proxies, send_through

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "request_method")


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy settings but the ones a test sets (any spelling, either case)."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def test_environment_proxies_reads_the_variables_as_httpx_does(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("HTTP_PROXY", "http://proxy.example.test:3128")
    environment.setenv("HTTPS_PROXY", "proxy.example.test:3129")
    environment.setenv(
        "NO_PROXY", "localhost, 192.0.2.7,::1,.internal.example.test,https://exempt.example.test"
    )
    assert environment_proxies() == {
        "http://": "http://proxy.example.test:3128",
        "https://": "http://proxy.example.test:3129",
        "all://localhost": None,
        "all://192.0.2.7": None,
        "all://[::1]": None,
        "all://*.internal.example.test": None,
        "https://exempt.example.test": None,
    }


def test_environment_proxies_is_empty_when_no_proxy_exempts_everything(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("ALL_PROXY", "http://proxy.example.test:3128")
    assert environment_proxies() == {"all://": "http://proxy.example.test:3128"}
    environment.setenv("NO_PROXY", "*")
    assert environment_proxies() == {}


class _Recording(httpcore.AsyncNetworkBackend):
    """The default backend, noting every host and port asked for; or refusing them all,
    as the checked backend refuses an internal address."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.connected: list[tuple[str, int]] = []
        self._refuse = refuse
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connected.append((host, port))
        if self._refuse:
            raise httpcore.ConnectError(f"{host}:{port} refused")
        return await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Hello(tornado.web.RequestHandler):
    def get(self) -> None:
        self.finish(b"hello")


def _client(backend: httpcore.AsyncNetworkBackend) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport()
    send_through(transport, httpcore.AsyncConnectionPool(network_backend=backend))
    return httpx.AsyncClient(transport=transport)


def test_send_through_puts_the_pool_under_the_transport() -> None:
    """Requests go through the given pool's backend, to a real server on loopback."""
    backend = _Recording()

    async def scenario() -> int:
        sock, port = tornado.testing.bind_unused_port()
        server = tornado.httpserver.HTTPServer(tornado.web.Application([(r"/", _Hello)]))
        server.add_sockets([sock])
        try:
            async with _client(backend) as client:
                response = await client.get(f"http://127.0.0.1:{port}/")
            assert (response.status_code, response.content) == (200, b"hello")
        finally:
            server.stop()
            await server.close_all_connections()
        return port

    port = asyncio.run(scenario())
    assert backend.connected == [("127.0.0.1", port)]


def test_the_pools_errors_come_out_as_httpx_errors() -> None:
    """The transport still maps httpcore's errors: callers catch httpx.ConnectError."""

    async def scenario() -> None:
        async with _client(_Recording(refuse=True)) as client:
            with pytest.raises(httpx.ConnectError, match="refused"):
                await client.get("http://upstream.example.test/")

    asyncio.run(scenario())
