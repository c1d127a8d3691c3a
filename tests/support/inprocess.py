"""The server and the CLI run inside the test process: the fast tier of the suite.

``InProcessServer`` runs exactly what ``ministry serve`` runs (``cli.serve.serving``:
the stores, the services, the Tornado application and the HTTP server with its limits)
on 127.0.0.1:0, in an event loop on a thread of its own, so that the synchronous tests
talk to it over real sockets with a real HTTP client, as they talk to a process. It
costs milliseconds to start instead of a second or two, and ``cli`` calls the CLI's
entry function instead of starting an interpreter.

What a process has and this has not: its own signals, umask, environment and
``--processes`` workers, and a crash that cannot take the tests down with it. Tests of
those keep ``support.server.MinistryServer``. Both classes offer the same methods, so a
test does not care which one its fixture gives it.

Each server's log lines are told apart by a context variable set in its thread (and
copied into every task and ``asyncio.to_thread`` call the server makes).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import io
import logging
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import tornado.netutil

from ministry.cli.logs import JsonFormatter, text_formatter
from ministry.cli.main import main, parse
from ministry.cli.serve import serving
from ministry.services.mirror_jobs import mirror_jobs
from ministry.storage.private_files import PRIVATE_UMASK
from ministry.web.tls import server_tls
from support.server import http_client, log_barrier, times_served

__all__ = ["InProcessServer", "call_cli"]

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 30.0

_serving: contextvars.ContextVar[InProcessServer | None] = contextvars.ContextVar(
    "serving", default=None
)
# One process-wide umask while anything here runs, as ``ministry`` sets it for itself.
_umask_lock = threading.Lock()


class _Router(logging.Handler):
    """Sends each record to the log of the in-process server that made it."""

    def emit(self, record: logging.LogRecord) -> None:
        server = _serving.get()
        if server is not None:
            server.record(record)


_router = _Router()


def _route_logs() -> None:
    root = logging.getLogger()
    if _router not in root.handlers:
        root.addHandler(_router)
    # What ``ministry serve`` logs: INFO and above (the access lines are INFO).
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)


class InProcessServer:
    """A server on a thread of the test process, with its own data directory."""

    def __init__(
        self,
        data: Path,
        *,
        arguments: Sequence[str] = (),
        environment: Mapping[str, str] | None = None,
        config: Path | None = None,
    ) -> None:
        foreign = sorted(
            name
            for name, value in (environment or {}).items()
            if not name.startswith("MINISTRY_") and os.environ.get(name) != value
        )
        if foreign:
            # Libraries read those from os.environ, which a thread cannot have of its own.
            raise ValueError(f"an in-process server takes only MINISTRY_* variables: {foreign}")
        self.data = data
        self._where = ["--config", str(config)] if config else ["--data", str(data)]
        self._arguments = list(arguments)
        self._environment = {**os.environ, **(environment or {})}
        self._lines: list[str] = []
        self._lines_lock = threading.Lock()
        self._formatter: logging.Formatter = text_formatter()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self.port = 0
        self.scheme = "http"

    @property
    def environment(self) -> dict[str, str]:
        """The environment the server and its CLI run with."""
        return dict(self._environment)

    @property
    def url(self) -> str:
        """Base URL without a trailing slash."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> InProcessServer:
        """Start serving; returns once the socket listens (or raises what stopped it)."""
        _, settings = parse(
            [
                "serve",
                *([] if "--config" in self._where else ["--port", "0"]),
                *self._where,
                *self._arguments,
            ],
            self._environment,
        )
        if settings.log_format == "json":
            self._formatter = JsonFormatter()
        jobs = mirror_jobs(settings.file)
        tls = server_tls(settings.tls_cert, settings.tls_key)
        self.scheme = "http" if tls is None else "https"
        sockets = tornado.netutil.bind_sockets(settings.port, settings.host)
        self.port = int(sockets[0].getsockname()[1])
        _route_logs()
        ready = threading.Event()

        async def run() -> None:
            _serving.set(self)
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
            try:
                async with serving(settings, jobs, sockets, tls):
                    logging.getLogger("ministry").info(
                        "serving %s://%s:%d/ (data: %s)",
                        self.scheme,
                        settings.host,
                        self.port,
                        settings.data.resolve(),
                    )
                    ready.set()
                    await self._stopping.wait()
                logging.getLogger("ministry").info("stopped")
            finally:
                for sock in sockets:
                    sock.close()

        def thread() -> None:
            try:
                asyncio.run(run())
            except BaseException as exc:  # handed to whoever waits for start or stop
                self._failure = exc
                self.record_text("".join(traceback.format_exception(exc)))
            finally:
                ready.set()

        self._thread = threading.Thread(target=thread, name=f"ministry-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(_START_TIMEOUT):
            raise AssertionError(f"in-process server did not start:\n{self.log()}")
        if self._failure is not None:
            raise RuntimeError(f"in-process server failed to start:\n{self.log()}")
        return self

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, signum: int = 15, timeout: float = _STOP_TIMEOUT) -> int:
        """Stop as SIGTERM stops ``ministry serve``; 0, or 1 if it ended with an error."""
        del signum  # one way to stop a thread; kept for the same call as MinistryServer
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or not thread.is_alive():
            return 0 if self._failure is None else 1
        assert loop is not None and stopping is not None
        loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout)
        if thread.is_alive():
            raise AssertionError(f"in-process server did not stop within {timeout} s")
        return 0 if self._failure is None else 1

    def record(self, record: logging.LogRecord) -> None:
        """Keep one log record, formatted as ``ministry serve`` writes it."""
        self.record_text(self._formatter.format(record))

    def record_text(self, text: str) -> None:
        """Keep a line of log text."""
        with self._lines_lock:
            self._lines.append(text)

    def log(self) -> str:
        """Everything the server has logged, including every request answered so far."""
        if self._thread is not None and self._thread.is_alive():
            self._log_barrier()
        return self._text()

    def _log_barrier(self) -> None:
        log_barrier(self.url, self._text)

    def _text(self) -> str:
        with self._lines_lock:
            return "".join(line + "\n" for line in self._lines)

    def served(self, path: str, status: int = 200) -> int:
        """How many times the access log shows ``GET path`` answered with ``status``."""
        return times_served(self.log(), path, status)

    def cli(self, *arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a ``ministry`` sub-command against this server's data directory."""
        return call_cli(*arguments, *self._where, stdin=stdin, environment=self._environment)

    def client(self, **options: Any) -> httpx.Client:
        """An HTTP client for this server (no environment proxies, no redirects)."""
        return http_client(self.url, **options)


def call_cli(
    *arguments: str, stdin: str | None = None, environment: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``ministry`` through its entry function, as a process would run it.

    Standard input, output and error are the given text and captured buffers; the exit
    status is what the process would exit with (argparse's SystemExit included, 1 with a
    traceback on stderr for an exception that escapes).
    """
    out, err = _CallBuffer(), _CallBuffer()
    environ = {**os.environ, **(environment or {})}
    with (
        _umask_lock,
        _restored_umask(),
        _own_logging(),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        _stdin(stdin),
    ):
        status = _in_a_loop_free_thread(lambda: _exit_of(arguments, environ, err))
    return subprocess.CompletedProcess(
        ["ministry", *arguments], status, stdout=out.getvalue(), stderr=err.getvalue()
    )


class _CallBuffer(io.StringIO):
    """Captured output of one CLI call, leaving out what in-process servers log meanwhile.

    The CLI's log handler writes to whatever ``sys.stderr`` is when it starts: this
    buffer. Records of a server thread reach every root handler, that one too.
    """

    def write(self, text: str) -> int:
        if _serving.get() is not None:
            return len(text)
        return super().write(text)


def _exit_of(arguments: Sequence[str], environ: Mapping[str, str], err: io.StringIO) -> int:
    try:
        return main(list(arguments), environ)
    except SystemExit as exit_:
        return _exit_status(exit_.code, err)
    except BaseException:  # what the interpreter would print before exiting
        err.write(traceback.format_exc())
        return 1


def _in_a_loop_free_thread(call: Callable[[], int]) -> int:
    """``call()`` here, or on a thread of its own when this one runs an event loop (as a
    browser test's does): a command runs its own loop, and loops do not nest."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return call()
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(call()))
    worker.start()
    worker.join()
    return result[0]


def _exit_status(code: object, err: io.StringIO) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    err.write(f"{code}\n")
    return 1


@contextlib.contextmanager
def _stdin(text: str | None) -> Iterator[None]:
    saved = sys.stdin
    sys.stdin = io.StringIO(text or "")
    try:
        yield
    finally:
        sys.stdin = saved


@contextlib.contextmanager
def _restored_umask() -> Iterator[None]:
    saved = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(saved)


@contextlib.contextmanager
def _own_logging() -> Iterator[None]:
    """The CLI adds a handler writing to its (captured) stderr: it goes with the call."""
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
        root.setLevel(level)
