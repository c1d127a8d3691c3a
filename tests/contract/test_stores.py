"""The contract every ``MetadataStore`` and ``BlobStore`` keeps, run against each backend.

Only the embedded backends exist so far; a new backend joins by adding a factory
to ``METADATA_STORES`` or ``BLOB_STORES``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from packaging.utils import NormalizedName

from ministry.core.models import AddFileOutcome, Token, User
from ministry.errors import Conflict, NotFound
from ministry.storage.filesystem import FileBlobStore
from ministry.storage.protocols import BlobStore, MetadataStore
from ministry.storage.sqlite import SqliteMetadataStore
from ministry.storage.temporary import create_temporary
from support.records import dist_file

T = TypeVar("T")

METADATA_STORES: dict[str, Callable[[Path], MetadataStore]] = {
    "sqlite": lambda directory: SqliteMetadataStore(directory / "ministry.sqlite3"),
}
BLOB_STORES: dict[str, Callable[[Path], BlobStore]] = {
    "filesystem": lambda directory: FileBlobStore(directory / "blobs"),
}


def run(coroutine: Awaitable[T]) -> T:
    """Run one coroutine on a fresh event loop."""
    return asyncio.run(coroutine)  # type: ignore[arg-type]


@pytest.fixture(params=sorted(METADATA_STORES))
def metadata(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    """An open, empty metadata store."""
    store = METADATA_STORES[request.param](tmp_path)
    run(store.open())
    yield store
    run(store.close())


@pytest.fixture(params=sorted(BLOB_STORES))
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    """An open, empty blob store."""
    store = BLOB_STORES[request.param](tmp_path)
    run(store.open())
    yield store
    run(store.close())


def test_empty_store(metadata: MetadataStore) -> None:
    """A new store has serial 0 and nothing in it."""
    assert run(metadata.last_serial()) == 0
    assert run(metadata.list_projects("main")) == []
    assert run(metadata.get_project("main", NormalizedName("demo"))) is None
    assert run(metadata.get_file("main", "demo-1.0.tar.gz")) is None


def test_add_file_publishes_with_a_new_serial(metadata: MetadataStore) -> None:
    """A published file is found by name and project, with its change's serial."""
    result = run(metadata.add_file(dist_file("demo-1.0.tar.gz"), "Demo", {"summary": "x"}, "alice"))
    assert result.outcome is AddFileOutcome.ADDED
    assert result.file.serial == run(metadata.last_serial()) > 0
    stored = run(metadata.get_file("main", "demo-1.0.tar.gz"))
    assert stored == result.file
    assert run(metadata.list_files("main", NormalizedName("demo"))) == [stored]
    (project,) = run(metadata.list_projects("main"))
    assert (project.name, project.display_name, project.last_serial) == (
        "demo",
        "Demo",
        stored.serial,
    )
    (release,) = run(metadata.list_releases("main", NormalizedName("demo")))
    assert (release.version, release.metadata) == ("1.0", {"summary": "x"})
    assert run(metadata.list_projects("other-index")) == []


def test_serial_is_strictly_increasing_and_logged(metadata: MetadataStore) -> None:
    """Every change bumps the serial; the change log lists them in order."""
    serials = []
    for version in ("1.0", "1.1", "1.2"):
        added = run(
            metadata.add_file(
                dist_file(f"demo-{version}.tar.gz", version=version), "demo", {}, "bob"
            )
        )
        serials.append(added.file.serial)
    run(metadata.add_user(User("carol", "hash", datetime.now(UTC)), "admin"))
    assert serials == sorted(set(serials))
    changes = run(metadata.changes_since(0))
    assert [c.serial for c in changes] == sorted(c.serial for c in changes)
    assert [c.filename for c in changes[:3]] == [f"demo-{v}.tar.gz" for v in ("1.0", "1.1", "1.2")]
    assert changes[-1].action == "add-user"
    assert changes[-1].detail == "carol"
    assert changes[0].actor == "bob"
    assert run(metadata.changes_since(serials[1])) == changes[2:]
    assert len(run(metadata.changes_since(0, limit=2))) == 2


def test_obstacles_are_reported_not_stored(metadata: MetadataStore) -> None:
    """A taken filename, the same bytes renamed and a second sdist leave the store unchanged."""
    first = run(metadata.add_file(dist_file("demo-1.0.tar.gz"), "demo", {}, "a")).file
    serial = run(metadata.last_serial())
    taken = run(metadata.add_file(dist_file("demo-1.0.tar.gz", sha="other"), "demo", {}, "a"))
    assert (taken.outcome, taken.file) == (AddFileOutcome.FILENAME_TAKEN, first)
    same_bytes = dist_file("demo-1.0-py3-none-any.whl", sha="demo-1.0.tar.gz")
    renamed = run(metadata.add_file(same_bytes, "demo", {}, "a"))
    assert (renamed.outcome, renamed.file) == (AddFileOutcome.CONTENT_TAKEN, first)
    second_sdist = dist_file("demo-1.0.0.tar.gz", version="1.0.0")
    sdist = run(metadata.add_file(second_sdist, "demo", {}, "a"))
    assert (sdist.outcome, sdist.file) == (AddFileOutcome.SDIST_TAKEN, first)
    assert run(metadata.last_serial()) == serial
    assert run(metadata.list_files("main", NormalizedName("demo"))) == [first]


def test_one_release_per_canonical_version(metadata: MetadataStore) -> None:
    """``1.0`` and ``1.0.0`` are one release; later files take its spelling and metadata."""
    run(metadata.add_file(dist_file("demo-1.0.tar.gz"), "demo", {"summary": "first"}, "a"))
    wheel = dist_file("demo-1.0.0-py3-none-any.whl", version="1.0.0")
    added = run(metadata.add_file(wheel, "Demo", {"summary": "second"}, "a"))
    assert added.file.version == "1.0"
    (release,) = run(metadata.list_releases("main", NormalizedName("demo")))
    assert release.metadata == {"summary": "first"}
    (project,) = run(metadata.list_projects("main"))
    assert project.display_name == "Demo"  # the newest upload's spelling


def test_users_and_tokens(metadata: MetadataStore) -> None:
    """Users are unique; tokens are found by id and listed per user; use is not a change."""
    when = datetime(2026, 5, 6, tzinfo=UTC)
    run(metadata.add_user(User("alice", "$argon2id$x", when, is_admin=True), "cli"))
    with pytest.raises(Conflict):
        run(metadata.add_user(User("alice", "other", when), "cli"))
    assert run(metadata.get_user("alice")) == User("alice", "$argon2id$x", when, is_admin=True)
    assert run(metadata.get_user("nobody")) is None
    token = Token("0123456789abcdef", "alice", "hash", when, "ci", expires=when + timedelta(days=1))
    run(metadata.add_token(token, "cli"))
    serial = run(metadata.last_serial())
    run(metadata.touch_token(token.token_id, when + timedelta(hours=1)))
    assert run(metadata.last_serial()) == serial
    stored = run(metadata.get_token(token.token_id))
    assert stored == replace(token, last_used=when + timedelta(hours=1))
    assert run(metadata.list_tokens("alice")) == [stored]
    assert run(metadata.list_tokens("bob")) == []
    assert [u.name for u in run(metadata.list_users())] == ["alice"]


_RACER = """
import asyncio, pathlib, sys
from ministry.storage.sqlite import SqliteMetadataStore
from support.records import dist_file

async def main(database, content):
    store = SqliteMetadataStore(pathlib.Path(database))
    await store.open()
    file = dist_file("race-1.0.tar.gz", project="race", sha=content)
    result = await store.add_file(file, "race", {}, content)
    await store.close()
    print(result.outcome.name)

asyncio.run(main(*sys.argv[1:]))
"""


def test_racing_processes_have_one_winner(tmp_path: Path) -> None:
    """HOSTILE 70: processes publishing one filename with other bytes: exactly one wins."""
    database = tmp_path / "ministry.sqlite3"
    store = SqliteMetadataStore(database)
    run(store.open())
    run(store.close())
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(database), f"bytes-{n}"],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
        )
        for n in range(6)
    ]
    outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in racers)
    assert outcomes == ["ADDED"] + ["FILENAME_TAKEN"] * 5


def test_blob_round_trip(blobs: BlobStore, tmp_path: Path) -> None:
    """Bytes come back as stored, in any range; missing and malformed keys are not found."""
    data = os.urandom(700_000)
    sha256 = run(blobs.put_bytes(data))
    assert sha256 == hashlib.sha256(data).hexdigest()

    async def read(start: int, end: int) -> bytes:
        blob = await blobs.open_blob(sha256)
        try:
            assert blob.size == len(data)
            return b"".join([chunk async for chunk in blob.chunks(start, end)])
        finally:
            await blob.close()

    assert run(read(0, len(data) - 1)) == data
    assert run(read(10, 300_010)) == data[10:300_011]
    for key in ("0" * 64, "../../etc/passwd", "ABC"):
        with pytest.raises(NotFound):
            run(blobs.open_blob(key))


def test_put_file_takes_the_file_and_deduplicates(blobs: BlobStore, tmp_path: Path) -> None:
    """A put file is moved in; putting the same bytes again only removes the new copy."""
    data = b"wheel bytes"
    sha256 = hashlib.sha256(data).hexdigest()
    for name in ("first", "second"):
        local = tmp_path / name
        local.write_bytes(data)
        run(blobs.put_file(local, sha256))
        assert not local.exists()
    blob = run(blobs.open_blob(sha256))
    assert blob.size == len(data)
    run(blob.close())


def test_opening_sweeps_only_orphaned_temporary_files(tmp_path: Path) -> None:
    """Temporary files of a dead process go on open; those of live processes stay."""
    temporary = tmp_path / "blobs" / ".tmp"
    temporary.mkdir(parents=True)
    descriptor, live = create_temporary(temporary, "blob")
    os.close(descriptor)
    orphan = temporary / "blob-999999999.1-orphan"
    orphan.write_bytes(b"partial")
    store = FileBlobStore(tmp_path / "blobs")
    run(store.open())
    assert live.exists()
    assert not orphan.exists()
