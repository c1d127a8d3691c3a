"""Real storage faults: a full disk, a read-only one, Redis and S3 gone
(docs/security.md, "Stores that fail").

Each fault is made for real: small tmpfs mounts filled to the last byte or
remounted read-only (the tests run as root; without the right to mount they
skip), and the Redis and SeaweedFS servers killed and started again on the same
ports. Whatever fails, the client reads one line that says what happened (507
for no space, 503 with Retry-After for a store that is down or read-only), the
log has the cause, nothing half-written stays, reads that can be served are, and
the server recovers by itself once the fault is gone.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from conftest import ALICE, add_user
from support.backends import RedisServer, SeaweedS3
from support.distributions import make_wheel
from support.server import MinistryServer, wait_for
from support.uploads import post_upload

# Outages end within this long once the fault is gone (deadlines, not delays).
_RECOVERY_TIMEOUT = 120.0

Mount = Callable[[str, str], Path]


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Mount]:
    """Mounts a tmpfs of a size (``"4m"``) on a new directory of ``tmp_path``; unmounted after.

    The mount point itself serves as the data directory, so that the server's log
    (written beside it) is not on the volume that is filled or made read-only.
    """
    mounted: list[Path] = []

    def mount(size: str, name: str) -> Path:
        target = tmp_path / name
        target.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs (needs root): {result.stderr.strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in reversed(mounted):
        subprocess.run(["umount", "-l", str(target)], check=False)


def fill(directory: Path) -> Path:
    """Write a file in ``directory`` until its file system has no byte left; returns it."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:
        block = os.urandom(1024 * 1024)
        with contextlib.suppress(OSError):
            while True:
                out.write(block)  # short writes at the end, then ENOSPC
    assert os.statvfs(directory).f_bavail == 0
    return filler


def remount(directory: Path, mode: str) -> None:
    """Remount a tmpfs ``ro`` or ``rw``."""
    subprocess.run(["mount", "-o", f"remount,{mode}", str(directory)], check=True)


def wheel(directory: Path, name: str, size: int = 0) -> Path:
    """A wheel of ``name`` 1.0, padded with ``size`` random (incompressible) bytes."""
    files = {f"{name}/__init__.py": b"", f"{name}/data.bin": os.urandom(size)}
    return make_wheel(directory, name, "1.0", files=files)


def upload(server: MinistryServer, path: Path) -> httpx.Response:
    """Upload as alice."""
    with server.client() as client:
        return post_upload(client, path, auth=ALICE)


def get(server: MinistryServer, path: str) -> httpx.Response:
    """GET a path of the server."""
    with server.client() as client:
        return client.get(path)


def assert_clear_error(response: httpx.Response, status: int, words: str) -> None:
    """One line that says what happened, never a traceback."""
    assert response.status_code == status, response.text
    assert words.lower() in response.text.lower()
    assert response.text.count("\n") == 1
    assert "Traceback" not in response.text
    assert 'File "' not in response.text
    if status == 503:
        assert response.headers["Retry-After"].isdigit()


def assert_published(server: MinistryServer, path: Path) -> None:
    """The file is listed on its project page and downloads with its bytes."""
    project = path.name.split("-")[0]
    page = get(server, f"/simple/{project}/")
    assert page.status_code == 200 and path.name in page.text
    download = get(server, f"/packages/{project}/{path.name}")
    assert download.status_code == 200 and download.content == path.read_bytes()


def assert_absent(server: MinistryServer, path: Path) -> None:
    """Neither the project nor the file is anywhere to be seen."""
    project = path.name.split("-")[0]
    assert get(server, f"/simple/{project}/").status_code == 404
    assert get(server, f"/packages/{project}/{path.name}").status_code == 404
    assert project not in get(server, "/simple/").text


def spools(data: Path) -> list[str]:
    """Upload spools and blob temporaries left in the data directory."""
    return [p.name for d in (data / "tmp", data / "blobs" / ".tmp") for p in d.glob("*")]


def started(data: Path, environment: dict[str, str] | None = None) -> MinistryServer:
    """A server with user alice (stores set in the environment reach its CLI too)."""
    server = MinistryServer(data, environment=environment).start()
    add_user(server, *ALICE)
    return server


def test_a_full_disk_refuses_the_upload_and_keeps_serving(
    tmpfs: Mount, tmp_path: Path, unique: str
) -> None:
    """ENOSPC while the body streams is a 507, and the spool is gone."""
    volume = tmpfs("8m", "data")
    server = started(volume)
    try:
        first = wheel(tmp_path, f"{unique}a")
        assert upload(server, first).status_code == 200
        filler = fill(volume)
        big = wheel(tmp_path, f"{unique}b", size=1024 * 1024)
        response = upload(server, big)
        assert_clear_error(response, 507, "no space left on the server's storage")
        assert spools(server.data) == []
        assert_absent(server, big)
        assert_published(server, first)
        assert get(server, "/-/health").status_code == 200
        assert "No space left on device" in server.log()  # the cause, for the administrator
        filler.unlink()
        assert upload(server, big).status_code == 200
        assert_published(server, big)
    finally:
        server.stop()


def test_a_full_database_volume_rolls_the_upload_back(
    tmpfs: Mount, tmp_path: Path, unique: str
) -> None:
    """ENOSPC at the metadata commit is a 507; the database stays sound."""
    volume = tmpfs("2m", "database")
    database = volume / "ministry.sqlite3"
    server = started(tmp_path / "data", {"MINISTRY_DB": f"sqlite:///{database}"})
    try:
        first = wheel(tmp_path, f"{unique}a")
        assert upload(server, first).status_code == 200
        filler = fill(volume)
        second = wheel(tmp_path, f"{unique}b", size=64 * 1024)
        response = upload(server, second)
        assert_clear_error(response, 507, "no space left")
        assert "metadata database" in response.text
        assert_absent(server, second)  # its blob may be stored, but nothing names it
        assert_published(server, first)
        filler.unlink()
        with contextlib.closing(sqlite3.connect(database)) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert upload(server, second).status_code == 200
        assert_published(server, second)
    finally:
        server.stop()


def test_a_read_only_volume_refuses_uploads_and_serves_reads(
    tmpfs: Mount, tmp_path: Path, unique: str
) -> None:
    """EROFS is a truthful 503, reads go on, and /-/ready reports it.

    The kernel turns a volume read-only under open files after an I/O error; a test
    can only remount one that no process writes to, so the database (always open
    for writing) stays off it, and the blobs and upload spools are on it.
    """
    volume = tmpfs("16m", "data")
    database = f"sqlite:///{tmp_path / 'ministry.sqlite3'}"
    server = started(volume, {"MINISTRY_DB": database})
    try:
        first = wheel(tmp_path, f"{unique}a")
        assert upload(server, first).status_code == 200
        assert get(server, "/-/ready").json() == {
            "status": "ready",
            "stores": {"metadata": "ok", "blobs": "ok"},
        }
        remount(volume, "ro")
        second = wheel(tmp_path, f"{unique}b")
        assert_clear_error(upload(server, second), 503, "storage is read-only")
        assert_published(server, first)
        ready = get(server, "/-/ready")
        assert ready.status_code == 503
        assert ready.json()["stores"]["metadata"] == "ok"
        assert "read-only" in ready.json()["stores"]["blobs"]
        assert "Read-only file system" in server.log()
        remount(volume, "rw")
        assert get(server, "/-/ready").status_code == 200
        assert spools(server.data) == []
        assert upload(server, second).status_code == 200
        assert_published(server, second)
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            remount(volume, "rw")
        server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone: it is killed and started again."""
    with RedisServer(tmp_path / "redis") as server:
        yield server


def test_redis_down_is_a_503_and_the_server_recovers(
    own_redis: RedisServer, tmp_path: Path, unique: str
) -> None:
    """Uploads and unread pages are 503 while Redis is gone; pages read before still serve."""
    server = started(tmp_path / "data", {"MINISTRY_DB": own_redis.url})
    try:
        first = wheel(tmp_path, f"{unique}a")
        assert upload(server, first).status_code == 200
        assert_published(server, first)
        # A Redis that restarts keeps its data (RDB or AOF); this one is told to save now.
        with contextlib.closing(redis.Redis.from_url(own_redis.url)) as client:
            client.save()
        own_redis.halt()
        second = wheel(tmp_path, f"{unique}b")
        assert_clear_error(upload(server, second), 503, "metadata store (Redis) is unavailable")
        assert_clear_error(get(server, f"/simple/{unique}-never/"), 503, "unavailable")
        assert_published(server, first)  # kept in the process: still served
        assert get(server, "/-/ready").status_code == 503
        assert "ConnectionError" in server.log()
        own_redis.resume()
        wait_for(lambda: get(server, "/-/ready").status_code == 200, _RECOVERY_TIMEOUT, "ready")
        assert upload(server, second).status_code == 200
        assert_published(server, second)
    finally:
        server.stop()


@pytest.fixture
def own_seaweed(tmp_path: Path) -> Iterator[SeaweedS3]:
    """A SeaweedFS S3 server of this test alone: it is killed and started again, and
    elects itself leader again after a second instead of SeaweedFS's ten."""
    with SeaweedS3(tmp_path / "seaweed", election_timeout=1.0) as server:
        yield server


def test_s3_down_is_a_503_for_bytes_and_pages_still_serve(
    own_seaweed: SeaweedS3, tmp_path: Path, unique: str
) -> None:
    """Uploads and downloads are 503 while S3 is gone; pages need no bytes and serve."""
    bucket = own_seaweed.create_bucket()
    environment = {**own_seaweed.environment(bucket), "AWS_MAX_ATTEMPTS": "1"}
    server = started(tmp_path / "data", environment)
    try:
        first = wheel(tmp_path, f"{unique}a")
        assert upload(server, first).status_code == 200
        assert_published(server, first)
        own_seaweed.halt()
        second = wheel(tmp_path, f"{unique}b")
        assert_clear_error(upload(server, second), 503, "blob store (S3) cannot be reached")
        download = get(server, f"/packages/{unique}a/{first.name}")
        assert_clear_error(download, 503, "cannot be reached")
        assert own_seaweed.endpoint not in download.text
        page = get(server, f"/simple/{unique}a/")
        assert page.status_code == 200 and first.name in page.text
        for path in ("/simple/", f"/pypi/{unique}a/json", f"/project/{unique}a/"):
            assert get(server, path).status_code == 200, path
        assert get(server, "/-/ready").status_code == 503
        assert spools(server.data) == []
        assert_absent(server, second)
        own_seaweed.resume()
        wait_for(lambda: get(server, "/-/ready").status_code == 200, _RECOVERY_TIMEOUT, "ready")
        assert_published(server, first)
        assert upload(server, second).status_code == 200
        assert_published(server, second)
    finally:
        server.stop()
