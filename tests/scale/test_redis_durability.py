"""A Redis metadata store that may lose acknowledged uploads, hangs, and replicas.

docs/deploy.md, "Redis persistence"; docs/security.md, "Stores that fail". Each
test starts its own redis-server(s) with the persistence it needs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from conftest import ALICE
from support.backends import RedisServer
from support.distributions import make_wheel
from support.server import MinistryServer, run_cli, wait_for
from support.uploads import post_upload

MakeRedis = Callable[..., RedisServer]

# The old behaviour: a hung Redis held each request for its 10 s socket timeout.
_OLD_HANG_SECONDS = 10.0


@pytest.fixture
def make_redis(tmp_path: Path) -> Iterator[MakeRedis]:
    """Start redis-servers of this test (``make_redis(options=…)``), stopped at the end."""
    started: list[RedisServer] = []

    def make(options: tuple[str, ...] = RedisServer.DURABLE) -> RedisServer:
        server = RedisServer(tmp_path / f"redis{len(started)}", options=options).start()
        started.append(server)
        return server

    yield make
    for server in started:
        with contextlib.suppress(OSError):
            os.kill(server.pid or 0, signal.SIGCONT)
        server.stop()


def wheel(directory: Path, name: str) -> Path:
    return make_wheel(directory, name, "1.0", files={f"{name}/__init__.py": b""})


def upload(server: MinistryServer, path: Path) -> httpx.Response:
    with server.client() as client:
        return post_upload(client, path, auth=ALICE)


def get(server: MinistryServer, path: str) -> httpx.Response:
    with server.client() as client:
        return client.get(path)


def assert_clear_error(response: httpx.Response, status: int, words: str) -> None:
    """One line that says what happened, never a traceback."""
    assert response.status_code == status, response.text
    assert words.lower() in response.text.lower(), response.text
    assert response.text.count("\n") == 1
    assert "Traceback" not in response.text


def serve_once(data: Path, environment: dict[str, str]) -> tuple[int, str]:
    """``ministry serve`` that is expected to refuse: its exit status and stderr."""
    result = run_cli("serve", "--port", "0", "--data", str(data), environment=environment)
    return result.returncode, result.stderr


def assert_one_line(stderr: str, *words: str) -> None:
    """One line starting ``ministry:``, with ``words``, and no traceback."""
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("ministry: ")
    assert "Traceback" not in stderr
    for word in words:
        assert word in stderr, (word, stderr)


def client_of(server: RedisServer) -> contextlib.closing[redis.Redis]:
    return contextlib.closing(redis.Redis.from_url(server.url, socket_timeout=5))


def with_alice(data: Path, environment: dict[str, str]) -> None:
    """User alice, added by the CLI with the stores of ``environment``."""
    result = run_cli(
        "user", "add", ALICE[0], "--password-stdin", "--data", str(data),
        stdin=ALICE[1] + "\n", environment=environment,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def metric(server: MinistryServer, line_start: str) -> str:
    text = get(server, "/-/metrics").text
    return next(line for line in text.splitlines() if line.startswith(line_start))


def test_redis_without_aof_always_is_refused_unless_overridden(
    make_redis: MakeRedis, tmp_path: Path
) -> None:
    """No AOF, then everysec: exit 2 with one line; warn starts and reports; always is clean."""
    store = make_redis(options=RedisServer.NOT_DURABLE)
    environment = {"MINISTRY_DB": store.url}
    status, stderr = serve_once(tmp_path / "refused", environment)
    assert status == 2
    assert_one_line(
        stderr, "appendonly no", "since its last snapshot", "appendonly yes and appendfsync "
        "always", "--redis-durability warn", store.url,
    )  # fmt: skip
    with client_of(store) as client:
        client.config_set("appendonly", "yes")
        client.config_set("appendfsync", "everysec")
    status, stderr = serve_once(tmp_path / "refused", environment)
    assert status == 2
    assert_one_line(stderr, "appendfsync everysec", "up to a second", "--redis-durability warn")

    server = MinistryServer(
        tmp_path / "warned", arguments=["--redis-durability", "warn"], environment=environment
    ).start()
    try:
        ready = get(server, "/-/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"
        assert "appendfsync everysec" in ready.json()["risks"]["metadata"]
        assert metric(server, 'ministry_store_risks{store="metadata"}').endswith(" 1.0")
        assert "may lose acknowledged uploads" in server.log()
    finally:
        server.stop()

    with client_of(store) as client:
        client.config_set("appendfsync", "always")
    server = MinistryServer(tmp_path / "durable", environment=environment).start()
    try:
        ready = get(server, "/-/ready")
        assert ready.json() == {"status": "ready", "stores": {"metadata": "ok", "blobs": "ok"}}
        assert metric(server, 'ministry_store_risks{store="metadata"}').endswith(" 0.0")
        assert "may lose acknowledged uploads" not in server.log()
    finally:
        server.stop()


def test_redis_without_config_is_refused_unless_overridden(
    make_redis: MakeRedis, tmp_path: Path
) -> None:
    """CONFIG renamed away (as managed Redis does): its persistence is unknown, so refused."""
    store = make_redis(options=(*RedisServer.DURABLE, "--rename-command", "CONFIG", ""))
    environment = {"MINISTRY_DB": store.url}
    status, stderr = serve_once(tmp_path / "refused", environment)
    assert status == 2
    assert_one_line(stderr, "CONFIG GET failed", "cannot be checked", "--redis-durability warn")
    warned = {**environment, "MINISTRY_REDIS_DURABILITY": "warn"}
    server = MinistryServer(tmp_path / "warned", environment=warned).start()
    try:
        ready = get(server, "/-/ready").json()
        assert ready["status"] == "ready"
        assert "CONFIG GET failed" in ready["risks"]["metadata"]
    finally:
        server.stop()


def test_a_hung_redis_is_a_quick_503_and_the_server_recovers(
    make_redis: MakeRedis, tmp_path: Path, unique: str
) -> None:
    """SIGSTOP: requests fail with 503 within about redis_timeout, not 10 s; SIGCONT heals."""
    store = make_redis()
    environment = {"MINISTRY_DB": store.url}
    with_alice(tmp_path / "data", environment)
    server = MinistryServer(tmp_path / "data", environment=environment).start()
    try:
        first, second = wheel(tmp_path, f"{unique}a"), wheel(tmp_path, f"{unique}b")
        assert upload(server, first).status_code == 200
        assert store.pid is not None
        os.kill(store.pid, signal.SIGSTOP)
        try:
            began = time.monotonic()
            page = get(server, f"/simple/{unique}-never/")
            took = time.monotonic() - began
            assert_clear_error(page, 503, "did not answer within 2 s")
            assert took < _OLD_HANG_SECONDS
            began = time.monotonic()
            response = upload(server, second)
            took = time.monotonic() - began
            assert_clear_error(response, 503, "metadata store (Redis)")
            assert took < _OLD_HANG_SECONDS
        finally:
            os.kill(store.pid, signal.SIGCONT)
        wait_for(lambda: get(server, "/-/ready").status_code == 200, 30, "ready")
        # The hung upload may have been committed once Redis went on: repeating it is safe.
        assert upload(server, second).status_code == 200
        assert second.name in get(server, f"/simple/{unique}b/").text
    finally:
        server.stop()


def test_uploads_wait_for_replicas(make_redis: MakeRedis, tmp_path: Path, unique: str) -> None:
    """redis_wait_replicas 1: a 503 that says so without a replica; with one, 200."""
    primary = make_redis()
    environment = {"MINISTRY_DB": primary.url}
    with_alice(tmp_path / "data", environment)
    waiting = {
        **environment,
        "MINISTRY_REDIS_WAIT_REPLICAS": "1",
        "MINISTRY_REDIS_WAIT_TIMEOUT": "300",
    }
    server = MinistryServer(tmp_path / "data", environment=waiting).start()
    try:
        first = wheel(tmp_path, f"{unique}a")
        response = upload(server, first)
        assert_clear_error(response, 503, "not known to be safe")
        assert "only 0 of the 1 replica(s)" in response.text
        assert "written to the metadata store" in response.text

        replica = make_redis(options=(*RedisServer.DURABLE, "--replicaof", "127.0.0.1",
                                      str(primary.port)))  # fmt: skip
        with client_of(primary) as client:
            wait_for(
                lambda: (
                    client.info("replication").get("connected_slaves") == 1
                    and client.info("replication").get("slave0", {}).get("state") == "online"
                ),
                30,
                "the replica to connect",
            )
        # The same upload again: its file is there, and now known to be on the replica.
        assert upload(server, first).status_code == 200
        second = wheel(tmp_path, f"{unique}b")
        assert upload(server, second).status_code == 200
        with client_of(primary) as one, client_of(replica) as other:
            assert one.dbsize() == other.dbsize() > 0
    finally:
        server.stop()
