"""Upstream simple indexes on loopback, for the caching-proxy tests (issue 4).

The proxy must work against upstreams it did not write, and must survive them
misbehaving, so the tests never point it at the internet and never at a mock:

* ``StaticUpstream`` is a plain threaded HTTP server serving a PEP 503 tree (HTML
  only, relative file URLs, no JSON, no ``.metadata`` files) as a directory of
  static files behind nginx would. It counts every request it receives and can
  be made to fail in the ways a real upstream fails: an error status, a hang, a
  connection cut mid-file, bytes whose hash differs from the page, a login page
  instead of a project page, and going away and coming back on the same port.
* ``PypiServerUpstream`` runs the real ``pypiserver`` (an independent
  implementation of the simple API, installed as a test dependency) as a
  subprocess; its access log tells how often each path was asked for.

Another ``ministry serve`` as upstream is ``support.server.MinistryServer``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import html
import http.server
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from support import children
from support.server import Server, wait_for
from support.uploads import post_upload

LOOPBACK = "127.0.0.1"

# How long stop() and offline() wait for request threads to notice that the server is
# going away. Every blocking point in a handler is released when the server closes
# (hangs wait on an event, sockets are shut down), so this is a safety net, not a delay.
_THREAD_JOIN_TIMEOUT = 2.0
_START_TIMEOUT = 30.0


def with_userinfo(url: str, user: str, password: str) -> str:
    """``url`` with a user and password in it, as an upstream that asks for them is
    configured (``***`` as the password gives the masked form the server shows)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.netloc}"))


def free_port() -> int:
    """A loopback port that was free a moment ago.

    Only for servers that cannot be told to bind port 0 and report it (pypiserver
    prints the port it was given, not the one it got); another process can take
    the port before it is used, so callers retry on "address already in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def project_of(filename: str) -> str:
    """The normalized project name a distribution filename belongs to."""
    if filename.endswith(".whl"):
        name = parse_wheel_filename(filename)[0]
    else:
        name = parse_sdist_filename(filename)[0]
    return canonicalize_name(name)


@dataclasses.dataclass(frozen=True)
class HostedFile:
    """One distribution file an upstream serves, with what its page says about it."""

    filename: str
    project: str
    path: Path
    sha256: str
    size: int
    requires_python: str | None = None
    #: A PEP 740 provenance document, served at ``/integrity/<filename>/provenance``.
    provenance: bytes | None = None


@dataclasses.dataclass
class ReceivedRequest:
    """One request as the upstream saw it; ``status`` is filled in once it is answered.

    The headers are kept so that tests can check what the proxy asked for (its
    ``Accept`` header, conditional ``If-None-Match`` revalidation, credentials).
    """

    method: str
    path: str
    headers: dict[str, str]
    status: int | None = None


@dataclasses.dataclass(frozen=True)
class _Faults:
    status: int | None = None
    hang: float | None = None
    truncate_after: int | None = None
    corrupt: bool = False
    login_page: bool = False
    rate: int | None = None


LOGIN_PAGE = b"<html><body>Please log in</body></html>\n"


class _Server(http.server.ThreadingHTTPServer):
    """One listening generation of a StaticUpstream (offline() ends it, online() starts another).

    It keeps the open connections and request threads so that closing it cuts
    keep-alive connections too: an upstream that went away must not go on
    answering on a connection a client pooled before.
    """

    daemon_threads = True
    block_on_close = False  # we join our own threads, with a deadline
    allow_reuse_address = True  # re-bind the same port at once after offline()
    request_queue_size = 128  # 20 clients connecting at once must not overflow the backlog

    def __init__(self, upstream: StaticUpstream, port: int) -> None:
        self.upstream = upstream
        self.closing = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._request_threads: set[threading.Thread] = set()
        super().__init__((LOOPBACK, port), _Handler)

    def process_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"static-upstream-{self.server_address[1]}",
            daemon=True,
        )
        with self._lock:
            self._connections.add(request)
            self._request_threads.add(thread)
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._connections.discard(request)
                self._request_threads.discard(threading.current_thread())

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gives up (a timeout test) or a connection we cut ourselves is
        # expected here; anything else is a bug in this file and is shown.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        if self.closing.is_set() and isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]

    def close(self) -> None:
        """Stop accepting, release hanging handlers, cut open connections, join threads."""
        self.closing.set()
        self.shutdown()  # ends serve_forever; every accepted connection is registered by now
        self.server_close()  # the port now refuses connections
        with self._lock:
            connections = list(self._connections)
            threads = list(self._request_threads)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + _THREAD_JOIN_TIMEOUT
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as real upstreams do
    timeout = 30  # an idle keep-alive connection does not hold a thread forever

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the upstream's record of requests is `received`; stderr stays quiet

    def _answer(self, *, send_body: bool) -> None:
        upstream = self.server.upstream
        self._record = upstream._record(
            self.command, self.path, {key.lower(): value for key, value in self.headers.items()}
        )
        faults = upstream._faults
        if faults.hang is not None and self.server.closing.wait(faults.hang):
            self.close_connection = True  # stopped while hanging: the connection is cut
            return
        if faults.status is not None:
            self._send(faults.status, f"fault injected: {faults.status}\n".encode(), send_body)
            return
        path = unquote(urlsplit(self.path).path)
        if path == "/simple":
            self._redirect("/simple/")
        elif path == "/simple/":
            self._page(upstream._index_page(), send_body)
        elif path.startswith("/simple/"):
            name = path.removeprefix("/simple/")
            if not name.endswith("/"):
                self._redirect(f"/simple/{quote(name)}/")
            elif faults.login_page:
                self._send(200, LOGIN_PAGE, send_body, content_type="text/html")
            else:
                page = upstream._project_page(name.removesuffix("/"))
                if page is None:
                    self._send(404, b"Not Found\n", send_body)
                else:
                    self._page(page, send_body)
        elif path.startswith("/files/"):
            hosted = upstream._file(path.removeprefix("/files/"))
            if hosted is None:
                self._send(404, b"Not Found\n", send_body)
            else:
                self._file(hosted, faults, send_body)
        elif path.startswith("/integrity/") and path.endswith("/provenance"):
            hosted = upstream._file(path.removeprefix("/integrity/").removesuffix("/provenance"))
            if hosted is None or hosted.provenance is None:
                self._send(404, b"Not Found\n", send_body)
            else:
                kind = "application/vnd.pypi.integrity.v1+json"
                self._send(200, hosted.provenance, send_body, content_type=kind)
        else:
            self._send(404, b"Not Found\n", send_body)

    def _page(self, body: bytes, send_body: bool) -> None:
        # A static file server sends a validator and honours it; the proxy revalidates with it.
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        if etag in {tag.strip() for tag in self.headers.get("If-None-Match", "").split(",")}:
            self._send(304, b"", send_body=False, extra={"ETag": etag})
        else:
            self._send(200, body, send_body, content_type="text/html", extra={"ETag": etag})

    def _file(self, hosted: HostedFile, faults: _Faults, send_body: bool) -> None:
        data = hosted.path.read_bytes()
        if faults.corrupt and data:
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
        start = _range_start(self.headers.get("Range"), len(data))
        if start is not None and faults.truncate_after is None:
            # As nginx does for a static file: the rest of it from the asked offset.
            span = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
            self._headers(206, len(data) - start, "application/octet-stream", span)
            if send_body:
                self._write_paced(data[start:], faults.rate)
            return
        if faults.rate is not None and faults.truncate_after is None:
            self._headers(200, len(data), "application/octet-stream", {})
            if send_body:
                self._write_paced(data, faults.rate)
            return
        if faults.truncate_after is None or not send_body:
            self._send(200, data, send_body, content_type="application/octet-stream")
            return
        # Never send the whole file: a switch that sometimes does nothing hides broken tests.
        cut = max(0, min(faults.truncate_after, len(data) - 1))
        self._headers(200, len(data), "application/octet-stream", {})
        self.wfile.write(data[:cut])
        self.wfile.flush()
        self.close_connection = True  # the server closes the socket after this handler

    def _write_paced(self, data: bytes, rate: int | None) -> None:
        """Send ``data``, at most ``rate`` bytes a second when a rate is set."""
        step = 64 * 1024 if rate is None else max(1, rate // 20)
        for offset in range(0, len(data), step):
            if rate is not None and self.server.closing.wait(step / rate):
                self.close_connection = True  # stopped while sending: the connection is cut
                return
            try:
                self.wfile.write(data[offset : offset + step])
                self.wfile.flush()
            except OSError:
                self.close_connection = True  # the client went away (it was killed)
                return

    def _redirect(self, location: str) -> None:
        self._send(301, b"", send_body=False, extra={"Location": location})

    def _send(
        self,
        status: int,
        body: bytes,
        send_body: bool,
        *,
        content_type: str = "text/plain",
        extra: dict[str, str] | None = None,
    ) -> None:
        length = 0 if status in (204, 304) else len(body)
        self._headers(status, length, content_type, extra or {})
        if send_body and length:
            self.wfile.write(body)

    def _headers(self, status: int, length: int, content_type: str, extra: dict[str, str]) -> None:
        self._record.status = status
        self.send_response(status)
        if status not in (204, 304):
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(length))
        for key, value in extra.items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()


class _LoopbackIndex:
    """Addresses shared by the test upstreams: a simple index at ``/simple/`` on a port."""

    port: int

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT`` without a trailing slash."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        """The simple index URL to configure as upstream; ends in ``/simple/``."""
        return f"{self.base}/simple/"

    @staticmethod
    def page_path(project: str) -> str:
        """The request path of a project's page, for ``count``."""
        return f"/simple/{canonicalize_name(project)}/"


class StaticUpstream(_LoopbackIndex):
    """A static PEP 503 tree on a loopback port, with counters and fault switches.

    ``/simple/`` lists the projects, ``/simple/<normalized>/`` lists their files as
    ``../../files/<filename>#sha256=<hex>`` (relative, like pypiserver's HTML), and
    ``/files/<filename>`` serves them. Only HTML: a JSON ``Accept`` still gets HTML,
    as from a plain file server, and there are no ``.metadata`` files. Project
    names must be requested normalized (a static tree has no other directories);
    ``/simple/name`` without the slash is redirected, as file servers do.

    Every fault switch may be flipped while requests are in flight and applies to
    requests that arrive afterwards. Files are read from the paths given to
    ``add`` when they are served; the page's hash is the one taken at ``add``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, HostedFile] = {}
        self._received: list[ReceivedRequest] = []
        self._faults = _Faults()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # Life cycle ------------------------------------------------------------------------

    def start(self) -> Self:
        """Start listening on a port of its own (port 0); idempotent."""
        if self.port == 0:
            self._listen(0)
        return self

    def offline(self) -> None:
        """Stop accepting connections (they are refused) and cut the open ones.

        This is "upstream stopped": the port is closed, requests that are hanging
        are dropped without an answer, pooled keep-alive connections are closed.
        """
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is not None:
            server.close()
        if thread is not None:
            thread.join(_THREAD_JOIN_TIMEOUT)

    def online(self) -> None:
        """Listen again on the same port as before ("upstream restarted")."""
        if self.port == 0:
            raise RuntimeError("online() needs a port: call start() first")
        if self._server is None:
            self._listen(self.port)

    def stop(self) -> None:
        """Close for good; returns promptly even while requests are hanging."""
        self.offline()

    @property
    def is_online(self) -> bool:
        """Whether the port is accepting connections."""
        return self._server is not None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _listen(self, port: int) -> None:
        # Re-binding a port we just closed works at once with SO_REUSEADDR; another
        # process may have taken it meanwhile, which we report rather than hide.
        deadline = time.monotonic() + 5.0
        while True:
            try:
                server = _Server(self, port)
                break
            except OSError as error:
                if error.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"static-upstream-{server.server_address[1]}-accept",
            daemon=True,
        )
        with self._lock:
            self._server, self._thread = server, thread
            self.port = int(server.server_address[1])
        thread.start()

    # Addresses -------------------------------------------------------------------------

    @staticmethod
    def file_path(filename: str) -> str:
        """The request path of a file, for ``count``."""
        return f"/files/{quote(filename)}"

    # Content ---------------------------------------------------------------------------

    def add(
        self, path: Path, requires_python: str | None = None, provenance: bytes | None = None
    ) -> HostedFile:
        """Serve the distribution at ``path`` (a file of the same name is replaced), with
        its PEP 740 ``provenance`` document if given (its page then links it)."""
        data = path.read_bytes()
        hosted = HostedFile(
            filename=path.name,
            project=project_of(path.name),
            path=path,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            requires_python=requires_python,
            provenance=provenance,
        )
        with self._lock:
            self._files[path.name] = hosted
        return hosted

    @property
    def files(self) -> dict[str, HostedFile]:
        """The files served, by filename."""
        with self._lock:
            return dict(self._files)

    def _file(self, filename: str) -> HostedFile | None:
        with self._lock:
            return self._files.get(filename)

    def _index_page(self) -> bytes:
        with self._lock:
            projects = sorted({hosted.project for hosted in self._files.values()})
        anchors = "".join(
            f'    <a href="{quote(name)}/">{html.escape(name)}</a><br>\n' for name in projects
        )
        return _html_document("Simple index", anchors)

    def _project_page(self, name: str) -> bytes | None:
        with self._lock:
            hosted = sorted(
                (item for item in self._files.values() if item.project == name),
                key=lambda item: item.filename,
            )
        if not hosted:
            return None
        anchors = ""
        for item in hosted:
            attributes = f'href="../../files/{quote(item.filename)}#sha256={item.sha256}"'
            if item.requires_python is not None:
                attributes += f' data-requires-python="{html.escape(item.requires_python)}"'
            if item.provenance is not None:
                where = f"{self.base}/integrity/{quote(item.filename)}/provenance"
                attributes += f' data-provenance="{html.escape(where)}"'
            anchors += f"    <a {attributes}>{html.escape(item.filename)}</a><br>\n"
        return _html_document(f"Links for {html.escape(name)}", anchors)

    # Requests seen ---------------------------------------------------------------------

    def _record(self, method: str, path: str, headers: dict[str, str]) -> ReceivedRequest:
        request = ReceivedRequest(method, path, headers)
        with self._lock:
            self._received.append(request)
        return request

    @property
    def received(self) -> list[ReceivedRequest]:
        """Every request received so far, oldest first, with headers and answer status."""
        with self._lock:
            return list(self._received)

    @property
    def requests(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every request received so far, oldest first."""
        return [(request.method, request.path) for request in self.received]

    def count(self, path_prefix: str, method: str | None = None) -> int:
        """How many requests had a path starting with ``path_prefix`` (and this method)."""
        return sum(
            1
            for request in self.received
            if request.path.startswith(path_prefix) and method in (None, request.method)
        )

    def clear_requests(self) -> None:
        """Forget the requests seen so far (for counting one phase of a test)."""
        with self._lock:
            self._received.clear()

    # Faults ----------------------------------------------------------------------------

    def _set(self, **changes: object) -> None:
        with self._lock:
            self._faults = dataclasses.replace(self._faults, **changes)  # type: ignore[arg-type]

    def fail_with(self, status: int | None) -> None:
        """Answer every request with this error status (400-599); ``None`` heals."""
        if status is not None and not 400 <= status <= 599:
            raise ValueError(f"fail_with takes an error status, not {status}")
        self._set(status=status)

    def hang(self, seconds: float | None) -> None:
        """Wait this long before answering any request; ``None`` heals.

        Each request waits in its own thread on an event that stop() and offline()
        set, so other requests are not held up and stopping is never delayed.
        """
        self._set(hang=seconds)

    def truncate_files(self, after_bytes: int | None) -> None:
        """Send files with their full Content-Length, then close after this many bytes.

        The cut is at most one byte before the end, so a file is never sent whole.
        """
        if after_bytes is not None and after_bytes < 0:
            raise ValueError("after_bytes must not be negative")
        self._set(truncate_after=after_bytes)

    def pace_files(self, bytes_per_second: int | None) -> None:
        """Send file bodies at this rate, as a slow link does; ``None`` heals."""
        if bytes_per_second is not None and bytes_per_second < 1:
            raise ValueError("bytes_per_second must be positive")
        self._set(rate=bytes_per_second)

    def corrupt_files(self, enabled: bool) -> None:
        """Serve files with their middle byte flipped (same length); pages keep the true hash."""
        self._set(corrupt=enabled)

    def serve_html_error_as_page(self, enabled: bool) -> None:
        """Answer project pages ``200 text/html`` with a login page, as a captive portal does."""
        self._set(login_page=enabled)

    def heal(self) -> None:
        """Turn every fault switch off."""
        self._set(**dataclasses.asdict(_Faults()))


def _range_start(header: str | None, size: int) -> int | None:
    """The offset of an open-ended ``bytes=N-`` range inside the file; None otherwise."""
    match = re.fullmatch(r"bytes=(\d+)-", (header or "").strip())
    if match is None or int(match[1]) >= size:
        return None
    return int(match[1])


def _html_document(title: str, body: str) -> bytes:
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        '    <meta name="pypi:repository-version" content="1.0">\n'
        f"    <title>{title}</title>\n  </head>\n  <body>\n"
        f"    <h1>{title}</h1>\n{body}  </body>\n</html>\n"
    ).encode()


# pypiserver ------------------------------------------------------------------------------

_PYPISERVER_HEALTH = "/ministry-tests-health"
_ACCESS_LINE = re.compile(r'"([A-Z]+) (\S+) HTTP/[0-9.]+" (\d{3}) ')


class PypiServerUpstream(_LoopbackIndex):
    """The real pypiserver on a free loopback port, serving ``directory/packages``.

    Reads need no authentication (``-a . -P .``); fallback to the public index for
    unknown projects is disabled, since it would redirect the proxy to the internet.
    It runs bottle's single-threaded wsgiref server, which logs one access line per
    request before it accepts the next, so its log is an exact request counter.
    Its HTML links files as ``/packages/<filename>#sha256=...`` (absolute paths) and
    it answers non-normalized project names with a 301 to the normalized page.
    """

    def __init__(self, directory: Path, *, arguments: Sequence[str] = ()) -> None:
        self.directory = directory
        self.packages = directory / "packages"
        self.log_path = directory / "pypiserver.log"
        self._arguments = list(arguments)
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def command(self, port: int) -> list[str]:
        """The pypiserver command line for a port."""
        return [
            sys.executable,
            "-m",
            "pypiserver",
            "run",
            "--port",
            str(port),
            "--host",
            LOOPBACK,
            "--authenticate",
            ".",
            "--passwords",
            ".",
            "--disable-fallback",
            "--backend",
            "simple-dir",  # lists the directory on every request: add() needs no restart
            "--server",
            "wsgiref",  # single-threaded, with the access log the counters read
            "--hash-algo",
            "sha256",
            "--health-endpoint",
            _PYPISERVER_HEALTH,
            "-v",  # access lines are logged at INFO
            *self._arguments,
            str(self.packages),
        ]

    # Life cycle ------------------------------------------------------------------------

    def start(self) -> Self:
        """Start pypiserver and wait until it answers; idempotent."""
        if self.process is not None and self.process.poll() is None:
            return self
        self.packages.mkdir(parents=True, exist_ok=True)
        for _attempt in range(5):
            if self._start_on(free_port()):
                return self
        raise RuntimeError(f"pypiserver found no free port:\n{self.log()}")

    def _start_on(self, port: int) -> bool:
        with self.log_path.open("ab") as log:
            offset = log.tell()
            self.process = subprocess.Popen(
                self.command(port),
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                preexec_fn=children.die_with_parent(),  # support/children.py says why
            )
        children.started(self.process)
        self.port = port
        deadline = time.monotonic() + _START_TIMEOUT
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while True:
                if self.process.poll() is not None:
                    output = self.log_path.read_bytes()[offset:].decode(errors="replace")
                    if "Address already in use" in output:
                        return False  # someone took the port between free_port() and bind
                    raise RuntimeError(f"pypiserver exited early:\n{output}")
                try:
                    if client.get(f"{self.base}{_PYPISERVER_HEALTH}").status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"pypiserver did not start:\n{self.log()}")
                time.sleep(0.05)

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
        status = self.process.wait(timeout=grace)
        children.stopped(self.process)
        return status

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # Addresses and content -------------------------------------------------------------

    @staticmethod
    def file_path(filename: str) -> str:
        """The request path of a file, for ``count``."""
        return f"/packages/{filename}"

    def add(self, path: Path) -> Path:
        """Copy a distribution into the served directory; it is listed from the next request.

        The copy is written under a dot-name (which pypiserver ignores) and renamed,
        so that no request ever sees half a file.
        """
        self.packages.mkdir(parents=True, exist_ok=True)
        target = self.packages / path.name
        partial = self.packages / f".{path.name}.{secrets.token_hex(4)}.partial"
        shutil.copyfile(path, partial)
        partial.replace(target)
        return target

    # Requests seen ---------------------------------------------------------------------

    def log(self) -> str:
        """Everything pypiserver has written so far."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def _log_barrier(self) -> None:
        # wsgiref writes the access line after the response, then accepts the next
        # connection: once the line of a request made now is in the log, every
        # earlier request's line is too.
        token = secrets.token_hex(8)
        try:
            httpx.get(
                f"{self.base}{_PYPISERVER_HEALTH}?log-barrier={token}",
                trust_env=False,
                timeout=10,
            )
        except httpx.TransportError:
            return  # stopped: nothing more will be logged
        wait_for(lambda: token in self.log(), 10, "the pypiserver access log")

    def access_log(self) -> list[tuple[str, str, int]]:
        """``(method, path, status)`` of every request answered, oldest first.

        Health checks (readiness polls and log barriers) are left out.
        """
        if self.process is not None and self.process.poll() is None:
            self._log_barrier()
        return [
            (method, path, int(status))
            for method, path, status in _ACCESS_LINE.findall(self.log())
            if not path.startswith(_PYPISERVER_HEALTH)
        ]

    @property
    def requests(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every request answered, oldest first."""
        return [(method, path) for method, path, _status in self.access_log()]

    def count(self, path_prefix: str, method: str | None = None) -> int:
        """How many requests had a path starting with ``path_prefix`` (and this method)."""
        return sum(
            1
            for request_method, path, _status in self.access_log()
            if path.startswith(path_prefix) and method in (None, request_method)
        )


def publish_to_ministry(server: Server, path: Path, auth: tuple[str, str]) -> None:
    """Upload a file to a Ministry used as an upstream."""
    with server.client() as client:
        response = post_upload(client, path, auth=auth)
    assert response.status_code == 200, response.text


@dataclasses.dataclass
class Upstream:
    """Any kind of upstream, seen the same way by the tests: publish, count, stop."""

    kind: str
    url: str
    publish: Callable[[Path], object]
    page_requests: Callable[[str], int]
    file_requests: Callable[[str], int]
    stop: Callable[[], object]

    @classmethod
    def of_static(cls, upstream: StaticUpstream) -> Upstream:
        """A static PEP 503 tree (HTML only)."""
        return cls(
            "static",
            upstream.url,
            upstream.add,
            lambda project: upstream.count(upstream.page_path(project)),
            lambda filename: upstream.count(upstream.file_path(filename)),
            upstream.offline,
        )

    @classmethod
    def of_pypiserver(cls, upstream: PypiServerUpstream) -> Upstream:
        """A pypiserver."""
        return cls(
            "pypiserver",
            upstream.url,
            upstream.add,
            lambda project: upstream.count(upstream.page_path(project)),
            lambda filename: upstream.count(upstream.file_path(filename)),
            upstream.stop,
        )

    @classmethod
    def of_ministry(cls, server: Server, auth: tuple[str, str]) -> Upstream:
        """Another Ministry (PEP 691 JSON, upload times, PEP 658 metadata); uploads as ``auth``."""
        return cls(
            "ministry",
            f"{server.url}/simple/",
            lambda path: publish_to_ministry(server, path, auth),
            lambda project: server.served(f"/simple/{project}/"),
            lambda filename: server.served(f"/packages/{project_of(filename)}/{filename}"),
            server.stop,
        )
