"""The HTTP server and its limits: header size, timeouts, and a cap on open connections.

Every limit here bounds what one client can hold (memory, a file descriptor, a
slot in the event loop) without a request ever reaching a handler (docs/security.md,
"HTTP abuse"). docs/deploy.md lists them for operators, with what to set in
nginx in front.
"""

from __future__ import annotations

import logging
import resource
import ssl
from datetime import timedelta
from typing import Any

import tornado.httpserver
import tornado.ioloop
import tornado.iostream
import tornado.web
from tornado import gen

__all__ = [
    "BODY_LIMIT",
    "IDLE_MARGIN",
    "MAX_CONNECTIONS",
    "MAX_HEADER_SIZE",
    "CappedHTTPServer",
    "connection_cap",
    "make_server",
]

log = logging.getLogger(__name__)

#: The request line and headers together. Room for the largest Kerberos (Negotiate)
#: and SSO headers a company proxy adds (up to about 48 KiB); pip, uv and browsers
#: send a few hundred bytes. A longer head is a flood: the connection is closed.
MAX_HEADER_SIZE = 64 * 1024
#: Seconds a connection gets beyond the client timeout (the ``client_timeout`` setting)
#: to send its next request, and the whole head of it: Tornado counts both from the
#: same moment, so a client that trickles its headers (slowloris) is cut off then. At
#: the default of 60 s that is 75 s, longer than nginx's 60 s upstream keep-alive, so
#: nginx never sends a request on a connection being closed.
IDLE_MARGIN = 15.0
#: Forms and management requests carry no more than this; uploads raise it.
BODY_LIMIT = 1024 * 1024
#: Open connections per process. Each may hold up to ``MAX_HEADER_SIZE`` (or a
#: ``BODY_LIMIT`` body) in memory; more clients than this need more processes or nginx.
MAX_CONNECTIONS = 2048
# A connection may need a second descriptor (the file it sends, an upstream socket, a
# spool); the stores, logs and listening sockets need a few more.
_DESCRIPTORS_PER_CONNECTION = 2
_RESERVED_DESCRIPTORS = 256
# A refused client gets this long to send its request, so that closing with the request
# unread does not reset the connection before the answer is read.
_REFUSAL_LINGER = timedelta(seconds=5)
# Beyond this many refusals at once, new connections are closed without an answer.
_MAX_REFUSING = _RESERVED_DESCRIPTORS // 2


class CappedHTTPServer(tornado.httpserver.HTTPServer):
    """An HTTPServer that serves ``max_connections`` connections at once and refuses more.

    A refused client gets a 503 with ``Retry-After``, which pip and uv retry, instead
    of a connection that hangs or a process that runs out of file descriptors.
    """

    max_connections = MAX_CONNECTIONS
    _open = 0
    _refusing = 0

    @property
    def open_connections(self) -> int:
        """Connections being served now (refused ones are not counted)."""
        return self._open

    def handle_stream(self, stream: tornado.iostream.IOStream, address: tuple[Any, ...]) -> None:
        """Serve the connection, or refuse it when the cap is reached."""
        if self._open < self.max_connections:
            self._open += 1
            super().handle_stream(stream, address)
        elif self._refusing < _MAX_REFUSING:
            self._refusing += 1
            tornado.ioloop.IOLoop.current().spawn_callback(self._refuse, stream)
        else:
            stream.close()

    def on_close(self, server_conn: object) -> None:
        """A served connection is gone: its slot is free."""
        self._open -= 1
        super().on_close(server_conn)

    async def _refuse(self, stream: tornado.iostream.IOStream) -> None:
        try:
            request = stream.read_until_regex(b"\r?\n\r?\n", max_bytes=MAX_HEADER_SIZE)
            await gen.with_timeout(
                _REFUSAL_LINGER, request, quiet_exceptions=tornado.iostream.StreamClosedError
            )
            await stream.write(_busy_response(self.max_connections))
        except (TimeoutError, tornado.iostream.StreamClosedError):
            pass  # the client sent nothing in time, or left
        finally:
            stream.close()
            self._refusing -= 1


def _busy_response(cap: int) -> bytes:
    body = (
        f"503 Too many connections: this server process is serving its limit of {cap} "
        "connections. Try again in a moment.\n"
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Server: Ministry\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Retry-After: 1\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    return head + body


def connection_cap(wanted_connections: int = MAX_CONNECTIONS) -> int:
    """How many connections this process can serve, raising its open-files limit if needed.

    Tornado's accept loop spins on EMFILE when descriptors run out, so the cap must
    stay below the limit. The soft limit is often 1024 while the hard one is far
    higher; it is raised (as Go's runtime does) to what ``wanted_connections`` need.
    """
    wanted = wanted_connections * _DESCRIPTORS_PER_CONNECTION + _RESERVED_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-files limit from %d: %s", soft, exc)
    if soft == resource.RLIM_INFINITY:
        return wanted_connections
    usable = (soft - _RESERVED_DESCRIPTORS) // _DESCRIPTORS_PER_CONNECTION
    return max(1, min(wanted_connections, usable))


def make_server(
    app: tornado.web.Application,
    max_connections: int,
    client_timeout: float,
    tls: ssl.SSLContext | None = None,
) -> CappedHTTPServer:
    """The server for ``app``, with every limit above and at most ``max_connections``.

    Any body but an upload's (which streams, and which web.stalls watches instead) is
    at most ``BODY_LIMIT`` bytes and must arrive whole within ``client_timeout``
    seconds; a request's head gets ``IDLE_MARGIN`` more. With ``tls`` (web.tls) every
    connection is HTTPS, and requests know it (``request.protocol``).
    """
    server = CappedHTTPServer(
        app,
        ssl_options=tls,
        max_header_size=MAX_HEADER_SIZE,
        max_body_size=BODY_LIMIT,
        max_buffer_size=BODY_LIMIT,
        idle_connection_timeout=client_timeout + IDLE_MARGIN,
        body_timeout=client_timeout,
    )
    server.max_connections = connection_cap(max_connections)
    log.info("at most %d connections at once in this process", server.max_connections)
    return server
