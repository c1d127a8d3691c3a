"""Fixtures shared by every suite: a real server, its users, isolated client homes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support import children
from support.backends import RedisServer, SeaweedS3
from support.hypothesis_profiles import load_profile
from support.inprocess import InProcessServer
from support.server import MinistryServer, Server
from support.tls import Certificates, make_certificates

# One conftest module only: a second one elsewhere would shadow this one's names
# (ALICE, add_user) for the modules that import them.
load_profile()
# Every server and command the suite starts inherits this: Argon2id at its least cost, so
# that hundreds of servers and users cost no CPU-seconds each. Tests of the standard cost
# build their hashers themselves (tests/unit/test_password_cost.py).
os.environ.setdefault("MINISTRY_PASSWORD_HASH_COST", "minimal")
# Servers in this process reach their loopback upstreams directly, whatever proxy the
# machine sets (a server process gets the same from the tests that start it).
for _variable in ("NO_PROXY", "no_proxy"):
    os.environ[_variable] = ",".join(
        filter(None, (os.environ.get(_variable), "127.0.0.1", "localhost"))
    )

# What makes a test "slow": it starts a process of its own (a server, the CLI, a client
# tool, Redis, S3, nginx, a browser). `pytest -m "not slow"` leaves those out and runs the
# rest in the test process. Whole directories are slow, so are tests using these
# fixtures; any other test that starts a process must say so with @pytest.mark.slow,
# or it fails: the audit hook below refuses to start a process for an unmarked test.
_SLOW_DIRECTORIES = frozenset({"e2e", "scale"})
_PROCESS_FIXTURES = frozenset(
    {
        "fresh_process",
        "redis_url",
        "s3",
        "s3_environment",
        "seaweed",
        "shared_stores",
        "shared_server",
        "shared_token",
        "nodes",
    }
)
_SPAWNING = frozenset({"subprocess.Popen", "os.posix_spawn", "os.fork", "os.exec"})
_spawn_allowed = True


def _refuse_unmarked_spawn(event: str, arguments: tuple[object, ...]) -> None:
    if event in _SPAWNING and not _spawn_allowed:
        raise RuntimeError(
            f"a test not marked slow started a process ({event} {arguments[:2]!r}): "
            "mark it @pytest.mark.slow, or do the work in-process"
        )


sys.addaudithook(_refuse_unmarked_spawn)


def pytest_configure(config: pytest.Config) -> None:
    """Every server the suite starts stops with it, also when it is interrupted, timed
    out or killed (support/children.py); the pytest-xdist controller passes SIGTERM on
    to its workers."""
    controller = not hasattr(config, "workerinput") and bool(
        getattr(config.option, "numprocesses", None)
    )
    children.install(forward=controller)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of the slow directories and of the process fixtures, then put the
    slow directories first and the other modules holding slow tests next: the workers
    start on the long tests and end on short ones, instead of one worker finishing a
    long test while the others wait. A module's tests stay together, so its module
    fixtures are set up once."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if item.path.parent.name in _SLOW_DIRECTORIES or fixtures & _PROCESS_FIXTURES:
            item.add_marker(pytest.mark.slow)
    slow_modules = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(
        key=lambda item: (
            item.path.parent.name not in _SLOW_DIRECTORIES,
            item.path not in slow_modules,
        )
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Let only slow tests (their fixtures included) start processes."""
    global _spawn_allowed
    _spawn_allowed = item.get_closest_marker("slow") is not None
    try:
        return (yield)
    finally:
        _spawn_allowed = True


ALICE = ("alice", "alice-password-1")
BOB = ("bob", "bob-password-22")


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest) -> Server:
    """One server per worker, with users alice and bob; tests use their own project names.

    In the test process, except for the modules of e2e/ and scale/, whose real clients
    (pip, uv, twine, …, a browser) talk to a ``ministry serve`` process, as users' do.
    """
    process = _wants_processes(request)
    instance: Server = request.getfixturevalue("server_process" if process else "in_process_server")
    return instance


def _wants_processes(request: pytest.FixtureRequest) -> bool:
    """Server processes for e2e/ and scale/, unless the module is marked ``in_process``."""
    return (
        request.path.parent.name in _SLOW_DIRECTORIES
        and request.node.get_closest_marker("in_process") is None
    )


@pytest.fixture(scope="session")
def in_process_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The worker's server in the test process (what ``server`` gives the fast tiers)."""
    instance = InProcessServer(tmp_path_factory.mktemp("shared") / "data").start()
    _add_users(instance)
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The worker's ``ministry serve`` process (what ``server`` gives e2e/ and scale/)."""
    instance = MinistryServer(tmp_path_factory.mktemp("shared-process") / "data").start()
    _add_users(instance)
    yield instance
    instance.stop()


_TOKENS: dict[int, str] = {}


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    """An API token of alice on ``server`` (one per server)."""
    if id(server) not in _TOKENS:
        _TOKENS[id(server)] = _token_of_alice(server)
    return _TOKENS[id(server)]


@pytest.fixture
def fresh_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A server of its own with user alice, for tests that look at the whole store or
    restart it: a process for e2e/ and scale/, as ``server``."""
    kind = MinistryServer if _wants_processes(request) else InProcessServer
    instance = kind(tmp_path / "data").start()
    add_user(instance, *ALICE)
    yield instance
    instance.stop()


@pytest.fixture
def fresh_process(tmp_path: Path) -> Iterator[Server]:
    """A ``ministry serve`` process of its own, for tests of the process itself (signals,
    its memory)."""
    instance = MinistryServer(tmp_path / "data").start()
    add_user(instance, *ALICE)
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A throw-away certificate authority and a certificate for 127.0.0.1 signed by it;
    the key readable by its owner only, as a server's must be."""
    made = make_certificates(tmp_path_factory.mktemp("tls"))
    made.key.chmod(0o600)
    return made


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A private home directory for client processes."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> str:
    """A project-name stem no other test uses."""
    return "t" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:10]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server of this test worker's own, for the Redis metadata store."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture(scope="session")
def seaweed() -> Iterator[SeaweedS3]:
    """This worker's SeaweedFS S3 server, started when the first S3 test needs it.

    Its settings go into the worker's own environment as well: boto3 reads them only
    from there, so the commands and servers of tests on it can then run in the test
    process instead of starting interpreters of their own.
    """
    with SeaweedS3() as server, pytest.MonkeyPatch.context() as patch:
        for name, value in server.environment().items():
            patch.setenv(name, value)
        yield server


@pytest.fixture(scope="session")
def shared_stores(redis_url: str, seaweed: SeaweedS3) -> Callable[[], dict[str, str]]:
    """Makes the environment of a new, empty pair of shared stores (Redis and S3).

    Every call gets a key prefix of its own in this worker's Redis and S3 bucket,
    so each deployment a test builds starts empty.
    """
    bucket = seaweed.create_bucket()

    def make() -> dict[str, str]:
        prefix = "t" + secrets.token_hex(6)
        return {
            **seaweed.environment(bucket, prefix=prefix),
            "MINISTRY_DB": f"{redis_url}?prefix={prefix}",
        }

    return make


@pytest.fixture(scope="session")
def shared_server(
    tmp_path_factory: pytest.TempPathFactory, shared_stores: Callable[[], dict[str, str]]
) -> Iterator[Server]:
    """Like ``server``, but on Redis and S3 (the stores of a scaled-out deployment)."""
    instance = MinistryServer(
        tmp_path_factory.mktemp("shared-stores") / "data", environment=shared_stores()
    ).start()
    _add_users(instance)
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def shared_token(shared_server: Server) -> str:
    """An API token of alice on ``shared_server``."""
    return _token_of_alice(shared_server)


def add_user(instance: Server, name: str, password: str) -> None:
    """Create a user through the CLI of a running server."""
    result = instance.cli("user", "add", name, "--password-stdin", stdin=password + "\n")
    assert result.returncode == 0, result.stderr


def _add_users(instance: Server) -> None:
    for user in (ALICE, BOB):
        add_user(instance, *user)


def _token_of_alice(instance: Server) -> str:
    result = instance.cli("token", "create", "alice", "--description", "tests")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def nodes(tmp_path: Path, shared_stores: Callable[[], dict[str, str]]) -> Iterator[list[Server]]:
    """Two nodes (separate processes) on one new, empty pair of shared stores, with user alice."""
    with two_nodes(tmp_path, shared_stores()) as started:
        yield started


@contextlib.contextmanager
def two_nodes(directory: Path, environment: dict[str, str]) -> Iterator[list[Server]]:
    """Two ``ministry serve`` processes on the shared stores ``environment`` names, with
    user alice; stopped on leaving."""
    started: list[Server] = []
    try:
        for n in (1, 2):
            started.append(MinistryServer(directory / f"node-{n}", environment=environment).start())
        add_user(started[0], *ALICE)
        yield started
    finally:
        for node in started:
            node.stop()
