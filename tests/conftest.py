"""Fixtures shared by every suite: a real server, its users, isolated client homes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.backends import RedisServer, SeaweedS3
from support.server import MinistryServer

ALICE = ("alice", "alice-password-1")
BOB = ("bob", "bob-password-22")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinistryServer]:
    """One server for the session, with users alice and bob; tests use their own project names."""
    instance = MinistryServer(tmp_path_factory.mktemp("shared") / "data").start()
    for name, password in (ALICE, BOB):
        result = instance.cli("user", "add", name, "--password-stdin", stdin=password + "\n")
        assert result.returncode == 0, result.stderr
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def token(server: MinistryServer) -> str:
    """An API token of alice."""
    result = server.cli("token", "create", "alice", "--description", "tests")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[MinistryServer]:
    """A server of its own, for tests that look at the whole store or restart it."""
    instance = MinistryServer(tmp_path / "data").start()
    result = instance.cli("user", "add", ALICE[0], "--password-stdin", stdin=ALICE[1] + "\n")
    assert result.returncode == 0, result.stderr
    yield instance
    instance.stop()


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
    """This worker's SeaweedFS S3 server, started when the first S3 test needs it."""
    with SeaweedS3() as server:
        yield server
