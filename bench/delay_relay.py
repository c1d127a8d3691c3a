"""A loopback TCP relay that holds every request for a while, as a network would.

Each connection is opened to the target after the delay (the handshake's round trip),
and every chunk the client sends reaches the target that much later, in order; answers
come back at once. So each request costs one added round trip of ``DELAY_MS``, and a
new connection one more: what an upstream across a network costs a proxy that loopback
hides. bench/proxy_compare.py starts it with ``--delay-ms``.

    python bench/delay_relay.py LISTEN_PORT TARGET_PORT DELAY_MS
"""

from __future__ import annotations

import asyncio
import sys

HOST = "127.0.0.1"


async def _delayed(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float
) -> None:
    """Client to target: each chunk sent ``delay`` seconds after it arrived, in order."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, chunk = await queue.get()
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            if not chunk:
                writer.write_eof()
                return
            writer.write(chunk)
            await writer.drain()

    sender = asyncio.ensure_future(send())
    try:
        while True:
            chunk = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, chunk))
            if not chunk:
                break
        await sender
    finally:
        sender.cancel()


async def _straight(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Target to client, as it comes."""
    while chunk := await reader.read(65536):
        writer.write(chunk)
        await writer.drain()
    writer.write_eof()


async def main() -> None:
    listen, target, delay = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) / 1000

    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        await asyncio.sleep(delay)
        try:
            target_r, target_w = await asyncio.open_connection(HOST, target)
        except OSError:
            client_w.close()
            return
        try:
            await asyncio.gather(_delayed(client_r, target_w, delay), _straight(target_r, client_w))
        except (ConnectionError, OSError):
            pass
        finally:
            client_w.close()
            target_w.close()

    server = await asyncio.start_server(relay, HOST, listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
