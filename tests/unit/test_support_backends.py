"""Self-checks of the Redis and S3 launchers (tests/support/backends.py).

A launcher that listened on every interface, left a server running, or handed
out an S3 server that accepts any signature would make the backend tests prove
less than they claim, so each property is shown here with the servers' own
client libraries and no Ministry code. Missing executables skip these tests
(fail them with ``MINISTRY_REQUIRE_TOOLS=1``), like every test of the backends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import botocore.exceptions
import httpx
import pytest
import redis

from support.backends import (
    LOOPBACK,
    RedisServer,
    SeaweedS3,
    free_ports,
    missing_tool,
    port_is_free,
)


def _group_pids(group: int) -> set[int]:
    """Every live process in a process group (Linux /proc)."""
    pids: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == group:
            pids.add(int(entry.name))
    return pids


def listening(group: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket that processes of ``group`` listen on."""
    inodes: set[str] = set()
    for pid in _group_pids(group):
        try:
            links = [str(fd.readlink()) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        inodes.update(link[8:-1] for link in links if link.startswith("socket:["))
    found: set[tuple[str, int]] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            address, port = fields[1].split(":")
            if len(address) == 8:
                address = ".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0))
            found.add((address, int(port, 16)))
    return found


def group_alive(group: int) -> bool:
    """Whether any process of the group is left."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def test_free_ports_are_distinct_and_bindable() -> None:
    """Ports handed out together differ, and nothing listens on them."""
    ports = free_ports(8)
    assert len(set(ports)) == 8
    assert all(port_is_free(port) for port in ports)


def test_a_missing_tool_skips_or_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No redis-server on PATH: a skip, or a failure when tools are required."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("MINISTRY_REQUIRE_TOOLS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="redis-server not found"):
        RedisServer()
    monkeypatch.setenv("MINISTRY_REQUIRE_TOOLS", "1")
    with pytest.raises(pytest.fail.Exception, match="redis-server not found"):
        RedisServer()
    with pytest.raises(pytest.fail.Exception, match="weed"):
        missing_tool("weed not found")


@pytest.mark.slow
def test_redis_server_serves_on_loopback_and_stops(tmp_path: Path) -> None:
    """A private redis-server, durable inside its directory; stop is quick and frees the port."""
    directory = tmp_path / "redis"
    server = RedisServer(directory).start()
    try:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert server.startup_seconds < 60
        assert server.pid is not None
        assert listening(server.pid) == {(LOOPBACK, server.port)}
        client = redis.Redis.from_url(server.url, socket_timeout=5)
        try:
            assert client.ping()
            client.set("key", b"value")
            assert client.get("key") == b"value"
            assert client.config_get("save") == {"save": ""}
            assert client.config_get("appendonly") == {"appendonly": "yes"}
            assert client.config_get("appendfsync") == {"appendfsync": "always"}
            assert client.config_get("dir") == {"dir": str(directory.resolve())}
        finally:
            client.close()
    finally:
        took = server.stop()
    assert took < 5
    assert not server.running
    assert port_is_free(server.port)
    assert not group_alive(server.pid)
    # No snapshot, even on shutdown, only the append-only file; a directory it was
    # given is left in place.
    assert sorted(p.name for p in directory.iterdir()) == ["appendonlydir", "redis.log"]


@pytest.mark.slow
def test_redis_server_as_context_manager_cleans_up() -> None:
    """``with RedisServer()`` owns a temporary directory and removes it afterwards."""
    with RedisServer() as server:
        assert server.ping()
        directory, port = server.directory, server.port
        assert directory.is_dir()
    assert not directory.exists()
    assert port_is_free(port)


@pytest.fixture(scope="module")
def seaweed() -> Iterator[SeaweedS3]:
    """One SeaweedFS for the checks that do not stop it."""
    with SeaweedS3() as server:
        yield server


def test_seaweed_listens_on_loopback_only(seaweed: SeaweedS3) -> None:
    """All eight ports (HTTP and gRPC of master, volume, filer, S3) on 127.0.0.1, no others."""
    assert seaweed.pid is not None
    sockets = listening(seaweed.pid)
    assert {address for address, _ in sockets} == {LOOPBACK}
    expected = {*seaweed.ports.values(), *seaweed.grpc_ports.values()}
    assert len(expected) == 8
    assert {port for _, port in sockets} == expected
    assert seaweed.endpoint == f"http://127.0.0.1:{seaweed.ports['s3']}"


def test_seaweed_stores_objects(seaweed: SeaweedS3) -> None:
    """A bucket made with create_bucket takes objects and gives them back, by range too."""
    bucket = seaweed.create_bucket()
    client = seaweed.client()
    try:
        client.put_object(Bucket=bucket, Key="a/b/c", Body=b"0123456789")
        assert client.get_object(Bucket=bucket, Key="a/b/c")["Body"].read() == b"0123456789"
        part = client.get_object(Bucket=bucket, Key="a/b/c", Range="bytes=2-4")
        assert part["Body"].read() == b"234"
        names = [item["Name"] for item in client.list_buckets()["Buckets"]]
        assert bucket in names
    finally:
        client.close()


def test_seaweed_checks_credentials(seaweed: SeaweedS3) -> None:
    """A wrong secret, an unknown key and an unsigned request are all refused."""
    bucket = seaweed.create_bucket()
    good = seaweed.client()
    try:
        good.put_object(Bucket=bucket, Key="secret", Body=b"data")
    finally:
        good.close()
    for access_key, secret_key in [
        (seaweed.access_key, "not-the-secret"),
        ("unknown-key", seaweed.secret_key),
    ]:
        bad = seaweed.client(access_key=access_key, secret_key=secret_key, retries=0)
        try:
            with pytest.raises(botocore.exceptions.ClientError) as caught:
                bad.get_object(Bucket=bucket, Key="secret")
        finally:
            bad.close()
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with httpx.Client(trust_env=False, timeout=10) as plain:
        assert plain.get(f"{seaweed.endpoint}/{bucket}/secret").status_code == 403


def test_seaweed_environment_is_all_an_sdk_needs(seaweed: SeaweedS3) -> None:
    """A subprocess with only environment() reaches the server, path-style, signed."""
    bucket = seaweed.create_bucket()
    script = (
        "import boto3\n"
        "c = boto3.session.Session().client('s3')\n"
        f"c.put_object(Bucket={bucket!r}, Key='k', Body=b'v')\n"
        f"print(c.get_object(Bucket={bucket!r}, Key='k')['Body'].read().decode())\n"
        f"params = {{'Bucket': {bucket!r}, 'Key': 'k'}}\n"
        "print(c.generate_presigned_url('get_object', Params=params))\n"
    )
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") or key == "AWS_CA_BUNDLE"
    }
    environment.update(seaweed.environment(bucket, "blobs"))
    assert environment["MINISTRY_STORAGE"] == f"s3://{bucket}/blobs"
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    value, url = result.stdout.split()
    assert value == "v"
    assert url.startswith(f"{seaweed.endpoint}/{bucket}/k?")  # path-style


@pytest.mark.slow
def test_seaweed_stops_quickly_and_cleans_up() -> None:
    """SIGTERM, then SIGKILL of the whole group after the grace period; nothing left."""
    server = SeaweedS3().start()
    assert 0 < server.startup_seconds < 180
    pid = server.pid
    assert pid is not None
    ports = [*server.ports.values(), *server.grpc_ports.values()]
    sockets = [
        Path(f"/tmp/seaweedfs-{name}-grpc-{port}.sock") for name, port in server.grpc_ports.items()
    ]
    began = time.monotonic()
    took = server.stop(grace=2.0)
    assert time.monotonic() - began < 2.0 + 5
    assert took < 2.0 + 5
    assert not server.running
    assert not group_alive(pid)
    assert all(port_is_free(port) for port in ports)
    assert not any(path.exists() for path in sockets)
    assert not server.directory.exists()
