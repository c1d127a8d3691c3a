"""``ministry backup`` under upload load, and ``ministry restore`` into new stores."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest

from conftest import ALICE, add_user
from support.distributions import make_wheel
from support.inprocess import InProcessServer, call_cli
from support.server import wait_for
from support.uploads import post_upload

# The command and the stores are under test, not a server process: the servers run in
# the test process.
pytestmark = pytest.mark.in_process

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


class Uploader(threading.Thread):
    """Uploads new versions of one project until stopped; remembers each 200 and its sha256."""

    def __init__(self, server: InProcessServer, directory: Path, project: str) -> None:
        super().__init__(daemon=True)
        self._server, self._directory, self._project = server, directory, project
        self.acknowledged: dict[str, str] = {}
        self.failures: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        with self._server.client() as client:
            number = 0
            while not self._halt.is_set():
                number += 1
                wheel = make_wheel(self._directory, self._project, f"1.0.{number}")
                response = post_upload(client, wheel, auth=ALICE)
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text}")
                    return
                self.acknowledged[wheel.name] = hashlib.sha256(wheel.read_bytes()).hexdigest()

    def stop(self) -> None:
        """Finish the upload in flight and stop."""
        self._halt.set()
        self.join(timeout=60)


@pytest.fixture
def uploader(fresh_server: InProcessServer, tmp_path: Path, unique: str) -> Iterator[Uploader]:
    """A running uploader; stopped at the end whatever happens."""
    directory = tmp_path / "wheels"
    directory.mkdir()
    thread = Uploader(fresh_server, directory, unique)
    thread.start()
    yield thread
    thread.stop()


def served(server: InProcessServer, project: str) -> dict[str, str]:
    """Every file the project page lists, downloaded and checked against its listed sha256."""
    found: dict[str, str] = {}
    with server.client() as client:
        page = client.get(f"/simple/{project}/", headers=JSON)
        assert page.status_code == 200, page.text
        for entry in page.json()["files"]:
            response = client.get(urljoin(str(page.url), entry["url"]))
            assert response.status_code == 200, entry["filename"]
            digest = hashlib.sha256(response.content).hexdigest()
            assert digest == entry["hashes"]["sha256"], entry["filename"]
            found[entry["filename"]] = digest
    return found


def backup(server: InProcessServer, directory: Path) -> str:
    result = server.cli("backup", str(directory))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stderr


def restore(directory: Path, target: Path) -> tuple[int, str]:
    result = call_cli("restore", str(directory), "--data", str(target))
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stderr


def blob_files(root: Path) -> dict[Path, int]:
    """Every blob file below ``root`` and its inode number."""
    return {path: path.stat().st_ino for path in (root / "sha256").rglob("*") if path.is_file()}


def test_backup_under_upload_load_restores_every_acknowledged_file(
    fresh_server: InProcessServer, uploader: Uploader, tmp_path: Path, unique: str
) -> None:
    wait_for(lambda: len(uploader.acknowledged) >= 5, 120, "the first uploads")
    before = dict(uploader.acknowledged)
    report = backup(fresh_server, tmp_path / "backup")
    wait_for(lambda: len(uploader.acknowledged) > len(before), 120, "uploads after the backup")
    uploader.stop()
    assert not uploader.failures, uploader.failures
    assert "backed up" in report

    code, output = restore(tmp_path / "backup", tmp_path / "restored")
    assert code == 0, output
    restored = InProcessServer(tmp_path / "restored").start()
    try:
        files = served(restored, unique)
    finally:
        restored.stop()
    assert before.items() <= files.items()
    assert files.items() <= uploader.acknowledged.items()


def test_second_backup_copies_only_new_blobs(
    fresh_server: InProcessServer, tmp_path: Path, unique: str
) -> None:
    with fresh_server.client() as client:
        for version in ("1.0", "2.0"):
            wheel = make_wheel(tmp_path, unique, version)
            assert post_upload(client, wheel, auth=ALICE).status_code == 200
    target = tmp_path / "backup"
    backup(fresh_server, target)
    first = blob_files(target / "blobs")
    assert first

    with fresh_server.client() as client:
        wheel = make_wheel(tmp_path, unique, "3.0")
        assert post_upload(client, wheel, auth=ALICE).status_code == 200
    report = backup(fresh_server, target)
    second = blob_files(target / "blobs")
    assert {path: second.get(path) for path in first} == first  # not copied again
    new = set(second) - set(first)
    assert new
    assert f"{len(new)} new" in report

    code, output = restore(target, tmp_path / "restored")
    assert code == 0, output
    restored = InProcessServer(tmp_path / "restored").start()
    try:
        assert served(restored, unique) == served(fresh_server, unique)
    finally:
        restored.stop()


def test_damaged_backup_is_refused_and_nothing_is_written(
    fresh_server: InProcessServer, tmp_path: Path, unique: str
) -> None:
    with fresh_server.client() as client:
        for version in ("1.0", "2.0"):
            wheel = make_wheel(tmp_path, unique, version)
            assert post_upload(client, wheel, auth=ALICE).status_code == 200
    target = tmp_path / "backup"
    backup(fresh_server, target)
    damaged = sorted(blob_files(target / "blobs"))[-1]
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0x01
    damaged.write_bytes(bytes(data))

    code, output = restore(target, tmp_path / "restored")
    assert code != 0
    assert "damaged" in output and damaged.name in output
    assert not blob_files(tmp_path / "restored" / "blobs")
    database = tmp_path / "restored" / "ministry.sqlite3"
    if database.exists():
        with sqlite3.connect(database) as connection:
            for table in ("files", "changelog", "users", "indexes"):
                count = connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
                assert count == 0, table


def test_restore_into_a_store_in_use_is_refused(
    fresh_server: InProcessServer, tmp_path: Path, unique: str
) -> None:
    with fresh_server.client() as client:
        assert (
            post_upload(client, make_wheel(tmp_path, unique, "1.0"), auth=ALICE).status_code == 200
        )
    backup(fresh_server, tmp_path / "backup")
    before = served(fresh_server, unique)

    code, output = restore(tmp_path / "backup", fresh_server.data)
    assert code != 0
    assert "not empty" in output
    assert served(fresh_server, unique) == before


def test_interrupted_backup_is_not_restorable(tmp_path: Path) -> None:
    """A directory without a manifest is refused with a message that says what to do."""
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "metadata.sqlite3.partial").write_bytes(b"half")
    code, output = restore(tmp_path / "backup", tmp_path / "restored")
    assert code != 0
    assert "no complete backup" in output


def test_backup_of_redis_and_s3_restores_into_sqlite_and_files(
    shared_stores: Callable[[], dict[str, str]], tmp_path: Path, unique: str
) -> None:
    shared = InProcessServer(tmp_path / "node", environment=shared_stores()).start()
    try:
        add_user(shared, *ALICE)
        with shared.client() as client:
            for version in ("1.0", "2.0"):
                wheel = make_wheel(tmp_path, unique, version)
                assert post_upload(client, wheel, auth=ALICE).status_code == 200
        backup(shared, tmp_path / "backup")
        expected = served(shared, unique)
    finally:
        shared.stop()

    code, output = restore(tmp_path / "backup", tmp_path / "restored")
    assert code == 0, output
    restored = InProcessServer(tmp_path / "restored").start()
    try:
        assert served(restored, unique) == expected
    finally:
        restored.stop()
