"""A real ``ministry serve`` process on a free loopback port, and the CLI next to it."""

from __future__ import annotations

import os
import re
import secrets
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, Self

import httpx

from support import children

_READY = re.compile(r"serving (https?)://127\.0\.0\.1:(\d+)/")
_START_TIMEOUT = 30.0


def ministry_command(*arguments: str) -> list[str]:
    """The command line that runs ``ministry`` from the interpreter running the tests."""
    return [sys.executable, "-m", "ministry", *arguments]


class Server(Protocol):
    """What a test uses of a server, whether a process of its own (``MinistryServer``) or
    one in the test process (``support.inprocess.InProcessServer``)."""

    data: Path
    port: int

    @property
    def url(self) -> str: ...

    @property
    def environment(self) -> dict[str, str]: ...

    @property
    def running(self) -> bool: ...

    def start(self) -> Self: ...

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 20.0) -> int: ...

    def log(self) -> str: ...

    def served(self, path: str, status: int = 200) -> int: ...

    def cli(
        self, *arguments: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]: ...

    def client(self, **options: Any) -> httpx.Client: ...


class MinistryServer:
    """One server process with its own data directory and log file."""

    def __init__(
        self,
        data: Path,
        *,
        arguments: Sequence[str] = (),
        environment: Mapping[str, str] | None = None,
        config: Path | None = None,
    ) -> None:
        self.data = data
        # With a config file, the file says where the data is and which port to take.
        self._where = ["--config", str(config)] if config else ["--data", str(data)]
        self.log_path = data.parent / f"{data.name}-server.log"
        self._arguments = list(arguments)
        self._environment = {**os.environ, **(environment or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        #: https when started with a TLS certificate (the "serving" line says which).
        self.scheme = "http"

    @property
    def environment(self) -> dict[str, str]:
        """The environment the server and its CLI run with."""
        return dict(self._environment)

    @property
    def url(self) -> str:
        """Base URL without a trailing slash."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> MinistryServer:
        """Start the process and wait until it says it is serving."""
        with self.log_path.open("ab") as log:
            offset = log.tell()
            self.process = subprocess.Popen(
                ministry_command(
                    "serve",
                    *([] if "--config" in self._where else ["--port", "0"]),
                    *self._where,
                    *self._arguments,
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._environment,
                preexec_fn=children.die_with_parent(),  # support/children.py says why
            )
        children.started(self.process)

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"ministry serve exited early:\n{self.log()}")
            match = _READY.search(self.log_path.read_bytes()[offset:].decode(errors="replace"))
            if match:
                self.scheme, self.port = match[1], int(match[2])
            return match is not None

        wait_for(ready, _START_TIMEOUT, "ministry serve to start")
        return self

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Signal the process and wait for it; returns its exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signum)
        status = self.process.wait(timeout=timeout)
        children.stopped(self.process)
        return status

    def log(self) -> str:
        """Everything the server has logged, including every request answered so far."""
        if self.port and self.process is not None and self.process.poll() is None:
            self._log_barrier()
        return self.log_path.read_text(errors="replace")

    def _log_barrier(self) -> None:
        log_barrier(self.url, lambda: self.log_path.read_text(errors="replace"))

    def served(self, path: str, status: int = 200) -> int:
        """How many times the access log shows ``GET path`` answered with ``status``."""
        return times_served(self.log(), path, status)

    def cli(self, *arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a ``ministry`` sub-command against this server's data directory.

        In the test process when the server's environment is the test process's but for
        ``MINISTRY_*`` variables (the command then sees what a process would); in a
        process of its own otherwise (libraries read the other variables, such as the
        S3 client's, from the process's environment).
        """
        if all(
            name.startswith("MINISTRY_") or os.environ.get(name) == value
            for name, value in self._environment.items()
        ):
            from support.inprocess import call_cli  # here: that module imports this one

            return call_cli(*arguments, *self._where, stdin=stdin, environment=self._environment)
        return run_cli(*arguments, *self._where, stdin=stdin, environment=self._environment)

    def client(self, **options: Any) -> httpx.Client:
        """An HTTP client for this server (no environment proxies, no redirects)."""
        return http_client(self.url, **options)


# One TLS context for every client the tests make: building one reads the whole CA
# bundle, which took a sixth of the fast tier's time when each client built its own.
# A server of the tests serving HTTPS has a certificate no bundle trusts: a test's
# client of it passes ``verify`` with the test's own authority.
_TLS = ssl.create_default_context()
# The log barrier asks a server of the tests on loopback only when its log is complete,
# whatever certificate it has at the moment (a test may have just replaced it).
_UNCHECKED = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
_UNCHECKED.check_hostname = False
_UNCHECKED.verify_mode = ssl.CERT_NONE


def http_client(base_url: str, **options: Any) -> httpx.Client:
    """An HTTP client for a server of the tests (no environment proxies, no redirects)."""
    options.setdefault("verify", _TLS)
    options.setdefault("timeout", 30.0)
    return httpx.Client(base_url=base_url, trust_env=False, **options)


def run_cli(
    *arguments: str, stdin: str | None = None, environment: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``ministry`` with the given arguments."""
    return subprocess.run(
        ministry_command(*arguments),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(environment or {})},
    )


def log_barrier(url: str, log: Callable[[], str]) -> None:
    """Return once every request a server has answered so far is in its log.

    A response can reach the client a moment before its access-log line is written.
    The server logs requests in the order it answers them, so once a request made now
    is in the log, every earlier one is too.
    """
    token = secrets.token_hex(8)
    try:
        with http_client(url, timeout=10, verify=_UNCHECKED) as client:
            client.get(f"/-/health?log-barrier={token}")
    except httpx.HTTPError:
        return  # stopping or stopped: nothing more will be logged for requests
    wait_for(lambda: token in log(), 10, "the access log")


def times_served(log: str, path: str, status: int = 200) -> int:
    """How many times an access log shows ``GET path`` answered with ``status``."""
    pattern = re.compile(rf'"GET {re.escape(path)} HTTP/1\.1" {status} ')
    return len(pattern.findall(log))


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
