"""A loopback HTTP server whose answers a test writes path by path.

For upstreams that misbehave in ways a static tree cannot (a page that points
elsewhere, a redirect to another port, an error body, a page of 200 MiB) and for
the "internal service" a hostile page points at: it records every path asked for,
so a test can tell that a request never reached it.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import httpx

LOOPBACK = "127.0.0.1"


@dataclass
class Answer:
    """What one path answers: a status, headers and a body (or chunks, sent chunked)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Callable[[], Iterable[bytes]] | None = None


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.owner.record(self.path)
        answer = self.server.owner.answers.get(self.path.split("?")[0], Answer(404, b"nothing"))
        self.send_response(answer.status)
        for key, value in answer.headers.items():
            self.send_header(key, value)
        if answer.chunks is None:
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in answer.chunks():
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True  # the client stopped reading and went away

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, owner: ScriptedServer, handler: type[http.server.BaseHTTPRequestHandler]
    ) -> None:
        super().__init__((LOOPBACK, 0), handler)
        self.owner = owner


class ScriptedServer:
    """Answers from ``answers`` by request path; ``paths`` lists what was asked for."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler] = _Handler) -> None:
        self.answers: dict[str, Answer] = {}
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self._server = _Server(self, handler)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def record(self, path: str) -> None:
        """Note a request."""
        with self._lock:
            self.paths.append(path)

    def url(self, path: str, host: str = LOOPBACK) -> str:
        """An absolute URL of this server."""
        return f"http://{host}:{self.port}{path}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.owner.record(self.path)  # an absolute URL: what the client asked for
        with httpx.Client(trust_env=False, follow_redirects=False, timeout=30) as client:
            answer = client.get(self.path)
        self.send_response(answer.status_code)
        for key in ("Content-Type", "Location", "ETag"):
            if key in answer.headers:
                self.send_header(key, answer.headers[key])
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    def log_message(self, format: str, *args: object) -> None:
        pass


class ForwardProxy(ScriptedServer):
    """A plain HTTP forward proxy (``HTTP_PROXY``): it connects wherever it is asked to,
    as many proxies do, and ``paths`` lists the URLs it was asked for."""

    def __init__(self) -> None:
        super().__init__(_ProxyHandler)
