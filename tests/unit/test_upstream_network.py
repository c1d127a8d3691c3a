"""services.upstream_network: kept-alive connections, and those an upstream closes."""

from __future__ import annotations

import asyncio

from ministry.core.upstream_reach import Reach
from ministry.services.upstream_network import checked_client

_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"


async def _serve(close_after_answer: bool, connections: list[int]) -> asyncio.Server:
    """A loopback HTTP/1.1 server answering every request ``ok``; it counts connections,
    and closes each after its first answer when asked to (as an upstream's idle timeout
    does)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(_ANSWER)
                await writer.drain()
                if close_after_answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed its end
        finally:
            writer.close()
            await writer.wait_closed()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def _requests(close_after_answer: bool) -> tuple[list[str], int]:
    connections: list[int] = []
    server = await _serve(close_after_answer, connections)
    port = server.sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}/"
    async with server, checked_client(Reach.of(base, ()), 5.0, max_redirects=0) as client:
        bodies = []
        for _ in range(3):
            response = await client.get(base)
            bodies.append(response.text)
            await asyncio.sleep(0)  # let a closing server's FIN arrive
        return bodies, len(connections)


def test_an_upstream_connection_is_kept_alive_across_requests() -> None:
    bodies, connections = asyncio.run(_requests(close_after_answer=False))
    assert bodies == ["ok"] * 3
    assert connections == 1


def test_a_connection_the_upstream_closed_is_not_used_again() -> None:
    bodies, connections = asyncio.run(_requests(close_after_answer=True))
    assert bodies == ["ok"] * 3
    assert connections == 3
