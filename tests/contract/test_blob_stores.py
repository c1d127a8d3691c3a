"""The ``BlobStore`` contract, run against every implementation (issue 5).

Each test runs on ``FileBlobStore`` (a local directory) and on ``S3BlobStore``
against a real SeaweedFS S3 server on loopback (tests/support/backends.py), one
server per test worker, one bucket per worker and one key prefix per test. A new
backend joins by adding a ``Backend`` to ``_BACKENDS``.

The S3 store reads its endpoint, region and credentials from the environment as
every AWS SDK does, so the tests set exactly those variables and nothing else.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import httpx
import pytest

from ministry.errors import NotFound, StorageError
from ministry.storage.filesystem import FileBlobStore
from ministry.storage.protocols import BlobStore, StoredBlob
from ministry.storage.s3 import S3BlobStore
from support.backends import SeaweedS3, free_ports
from support.server import wait_for

T = TypeVar("T")
MiB = 1024 * 1024
# Bigger than the S3 store's multipart threshold (16 MiB), so it goes up in parts.
LARGE = 20 * MiB + 12345
# Every chunk a reader yields is at most this big (both stores use 256 KiB).
MAX_CHUNK = 1 * MiB
WHEEL = "demo_pkg-1.0-py3-none-any.whl"

MALFORMED = [
    "",
    "abc",
    "0" * 63,
    "0" * 65,
    "A" * 64,
    "0" * 63 + "g",
    "0" * 64 + "\n",
    "../" + "0" * 61,
    "sha256/00/00/" + "0" * 64,
    "/etc/passwd",
]


#: Keys per S3 listing request in the paging tests: S3 pages the same way at any size.
_PAGE = 100


def few_per_page(blobs: BlobStore) -> None:
    """Make an S3 store list ``_PAGE`` keys per request, so paging needs few objects."""
    if isinstance(blobs, S3BlobStore):
        blobs.listing_page = _PAGE


def run(coroutine: Awaitable[T]) -> T:
    """Run one coroutine on a fresh event loop."""
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def payload(size: int, seed: int = 0) -> bytes:
    """Bytes that differ at every offset (a shifted range would not compare equal)."""
    block = hashlib.sha256(seed.to_bytes(8, "big")).digest() * 2048 + bytes(range(251))
    return (block * (size // len(block) + 1))[:size]


async def read(store: BlobStore, key: str, start: int, end: int) -> bytes:
    """The bytes ``start``..``end`` of a blob, checking the chunk bound on the way."""
    blob = await store.open_blob(key)
    try:
        chunks = [chunk async for chunk in blob.chunks(start, end)]
    finally:
        await blob.close()
    assert all(0 < len(chunk) <= MAX_CHUNK for chunk in chunks)
    return b"".join(chunks)


async def size_of(store: BlobStore, key: str) -> int:
    """A blob's size."""
    blob = await store.open_blob(key)
    try:
        return blob.size
    finally:
        await blob.close()


async def listing(store: BlobStore) -> list[StoredBlob]:
    """Everything ``list_blobs`` yields."""
    return [blob async for blob in store.list_blobs()]


@dataclass
class Backend:
    """How to build stores that share one location (several nodes on one bucket)."""

    name: str
    make: Callable[[bool], BlobStore]
    #: The bytes at a location ``quarantine`` returned (read past the store).
    fetch: Callable[[str], bytes]
    #: Makes a blob look an hour old, where the backend lets a test set the time.
    age: Callable[[str], None] | None = None

    def store(self, *, redirect: bool = False) -> BlobStore:
        """A new store instance on the same location, not yet opened."""
        return self.make(redirect)


@pytest.fixture(scope="session")
def bucket(seaweed: SeaweedS3) -> str:
    """This worker's bucket; each test writes under a prefix of its own."""
    return seaweed.create_bucket()


@pytest.fixture
def s3_environment(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> SeaweedS3:
    """The standard AWS variables pointing at this worker's SeaweedFS."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in seaweed.environment().items():
        monkeypatch.setenv(name, value)
    return seaweed


def _filesystem(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    root = tmp_path / "blobs"

    def age(key: str) -> None:
        old = (datetime.now(UTC) - timedelta(hours=1)).timestamp()
        os.utime(FileBlobStore(root).path_of(key), (old, old))

    return Backend(
        "filesystem",
        lambda _redirect: FileBlobStore(root),
        fetch=lambda location: Path(location).read_bytes(),
        age=age,
    )


def _s3(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    from ministry.storage.s3 import S3BlobStore

    seaweed: SeaweedS3 = request.getfixturevalue("s3_environment")
    name: str = request.getfixturevalue("bucket")
    prefix = "tests/" + sha256(request.node.nodeid.encode())[:16]

    def fetch(location: str) -> bytes:
        parts = urlsplit(location)
        assert parts.scheme == "s3"
        client = seaweed.client()
        try:
            body = client.get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))["Body"]
            return bytes(body.read())
        finally:
            client.close()

    return Backend("s3", lambda redirect: S3BlobStore(name, prefix, redirect=redirect), fetch)


_BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Backend]] = {
    "filesystem": _filesystem,
    "s3": _s3,
}


# S3 is a SeaweedFS process: slow.
@pytest.fixture(
    params=[pytest.param(n, marks=pytest.mark.slow) if n == "s3" else n for n in sorted(_BACKENDS)]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each blob store implementation in turn."""
    return _BACKENDS[request.param](request, tmp_path)


@pytest.fixture
def blobs(backend: Backend) -> Iterator[BlobStore]:
    """An open store with nothing under its location."""
    store = backend.store()
    run(store.open())
    yield store
    run(store.close())


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    """Where uploads are spooled before the store takes them."""
    path = tmp_path / "spool"
    path.mkdir()
    return path


def spooled(spool: Path, data: bytes, name: str = "upload") -> Path:
    """A spooled upload holding ``data``."""
    path = spool / name
    path.write_bytes(data)
    return path


def test_put_bytes_round_trip_and_ranges(blobs: BlobStore) -> None:
    """put_bytes returns the sha256; any inclusive 0-based range reads back exactly."""
    data = payload(600 * 1024 + 7)  # spans several 256 KiB chunks, not a multiple of one
    key = run(blobs.put_bytes(data))
    assert key == sha256(data)
    assert run(size_of(blobs, key)) == len(data)
    last = len(data) - 1
    for start, end in [
        (0, last),  # the whole blob
        (0, 0),  # the first byte
        (last, last),  # the last byte
        (1000, 2000),  # the middle
        (256 * 1024 - 3, 256 * 1024 + 3),  # across a chunk boundary
        (64 * 1024 - 3, 64 * 1024 + 3),  # across the first bytes S3 opens a blob with
        (100, last),  # an open-ended range (bytes=100-)
        (last - 499, last),  # a suffix range (bytes=-500)
    ]:
        assert run(read(blobs, key, start, end)) == data[start : end + 1], (start, end)


def test_put_file_takes_the_file(blobs: BlobStore, spool: Path) -> None:
    """put_file stores the bytes under their sha256 and removes the spooled file."""
    data = payload(300 * 1024, seed=1)
    local = spooled(spool, data)
    run(blobs.put_file(local, sha256(data)))
    assert not local.exists()
    assert run(read(blobs, sha256(data), 0, len(data) - 1)) == data
    assert run(read(blobs, sha256(data), 5, 9)) == data[5:10]


def test_second_put_only_removes_the_local_file(blobs: BlobStore, spool: Path) -> None:
    """Blobs are immutable: putting an existing key again writes nothing, even other bytes."""
    data = payload(4096, seed=2)
    key = run(blobs.put_bytes(data))
    again = spooled(spool, data, "again")
    run(blobs.put_file(again, key))
    assert not again.exists()
    # Bytes that do not match the key could only arrive through a bug upstream; they
    # must not replace what is stored (this shows the second put wrote nothing at all).
    impostor = spooled(spool, b"other bytes", "impostor")
    run(blobs.put_file(impostor, key))
    assert not impostor.exists()
    assert run(read(blobs, key, 0, len(data) - 1)) == data
    assert run(blobs.put_bytes(data)) == key
    assert run(size_of(blobs, key)) == len(data)


def test_empty_blob(blobs: BlobStore) -> None:
    """A zero-length blob is stored and opened; it has no bytes to read."""
    key = run(blobs.put_bytes(b""))
    assert key == sha256(b"")
    assert run(size_of(blobs, key)) == 0
    assert run(read(blobs, key, 0, -1)) == b""


def test_large_file_streams_without_holding_it_in_memory(blobs: BlobStore, spool: Path) -> None:
    """A 20 MB upload goes to the store and back in bounded memory, and reads by ranges."""
    local = spool / "large"
    digest = hashlib.sha256()
    with local.open("wb") as out:
        for offset in range(0, LARGE, MiB):
            block = payload(min(MiB, LARGE - offset), seed=offset)
            digest.update(block)
            out.write(block)
    reference = spool.parent / "reference"
    shutil.copyfile(local, reference)
    key = digest.hexdigest()

    async def upload_and_hash() -> str:
        await blobs.put_file(local, key)
        blob = await blobs.open_blob(key)
        try:
            assert blob.size == LARGE
            check = hashlib.sha256()
            async for chunk in blob.chunks(0, LARGE - 1):
                assert len(chunk) <= MAX_CHUNK
                check.update(chunk)
            return check.hexdigest()
        finally:
            await blob.close()

    tracemalloc.start()
    try:
        read_back = run(upload_and_hash())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not local.exists()
    assert read_back == key
    # Measured: ~0.5 MiB for files, ~4.5 MiB for S3 (two 16 MiB parts in flight, each
    # sent in 1 MiB blocks); either stays the same for a 150 MB file.
    assert peak < LARGE // 3, f"peak Python allocations {peak} bytes for a {LARGE}-byte file"

    with reference.open("rb") as original:
        for start, end in [
            (0, 99),
            (16 * MiB - 50, 16 * MiB + 50),  # across the S3 store's part boundary
            (LARGE // 2, LARGE // 2 + 300 * 1024),
            (LARGE - 1, LARGE - 1),
        ]:
            original.seek(start)
            assert run(read(blobs, key, start, end)) == original.read(end - start + 1)


def test_missing_and_malformed_keys_are_not_found(blobs: BlobStore, spool: Path) -> None:
    """A key nobody stored, or one that is no sha256 at all, is NotFound (never a path)."""
    with pytest.raises(NotFound):
        run(blobs.open_blob(sha256(b"never stored")))
    for key in MALFORMED:
        with pytest.raises(NotFound):
            run(blobs.open_blob(key))
        # Without a redirect there is no URL for any key; with one, a bad key is NotFound.
        assert run(blobs.download_url(key, WHEEL)) is None
        local = spooled(spool, b"data")
        with pytest.raises(NotFound):
            run(blobs.put_file(local, key))


def test_reading_past_the_end_is_a_storage_error(blobs: BlobStore) -> None:
    """A range beyond the stored bytes means the store lost data: an error, not short data."""
    data = payload(1000, seed=3)
    key = run(blobs.put_bytes(data))
    with pytest.raises(StorageError):
        run(read(blobs, key, 990, 1010))


def test_a_reader_closed_early_leaves_the_store_usable(blobs: BlobStore) -> None:
    """Stopping after the first chunk (a client that hangs up) releases the read."""
    data = payload(MiB, seed=4)
    key = run(blobs.put_bytes(data))

    async def first_chunk() -> bytes:
        blob = await blobs.open_blob(key)
        try:
            chunks = blob.chunks(0, len(data) - 1)
            chunk = await anext(chunks)
            await chunks.aclose()  # type: ignore[attr-defined]
            return chunk
        finally:
            await blob.close()

    for _ in range(3):
        assert data.startswith(run(first_chunk()))
    assert run(read(blobs, key, 0, len(data) - 1)) == data


def test_concurrent_puts_of_one_blob(backend: Backend, spool: Path) -> None:
    """Two nodes storing the same upload at the same moment both succeed; one blob results."""
    data = payload(200 * 1024, seed=5)
    key = sha256(data)
    stores = [backend.store(), backend.store()]

    async def race() -> None:
        await asyncio.gather(*(store.open() for store in stores))
        try:
            await asyncio.gather(
                *(
                    store.put_file(spooled(spool, data, f"racer-{n}"), key)
                    for n, store in enumerate(stores)
                )
            )
            for store in stores:
                assert await read(store, key, 0, len(data) - 1) == data
        finally:
            await asyncio.gather(*(store.close() for store in stores))

    run(race())
    assert list(spool.iterdir()) == []


def test_a_blob_is_visible_to_another_instance_at_once(backend: Backend) -> None:
    """What one node stored, another node (its own store instance) reads right away."""
    writer, reader = backend.store(), backend.store()
    data = payload(5000, seed=6)

    async def hand_over() -> bytes:
        await writer.open()
        await reader.open()
        try:
            key = await writer.put_bytes(data)
            return await read(reader, key, 0, len(data) - 1)
        finally:
            await writer.close()
            await reader.close()

    assert run(hand_over()) == data


def test_no_download_url_without_redirect(blobs: BlobStore) -> None:
    """Files, and S3 without --storage-redirect, leave sending the bytes to the server."""
    key = run(blobs.put_bytes(b"bytes"))
    assert run(blobs.download_url(key, WHEEL)) is None
    assert run(blobs.download_url(key, WHEEL + ".metadata")) is None


def test_list_blobs_names_every_blob_once_with_its_size(blobs: BlobStore) -> None:
    """The listing yields each stored blob once: its key, its length, a current time."""
    assert run(listing(blobs)) == []
    before = datetime.now(UTC) - timedelta(minutes=1)  # S3 times have a 1 s resolution
    stored = {run(blobs.put_bytes(payload(n * 1000, seed=n))): n * 1000 for n in range(5)}
    found = run(listing(blobs))
    assert sorted(blob.sha256 for blob in found) == sorted(stored)
    after = datetime.now(UTC) + timedelta(minutes=1)
    for blob in found:
        assert blob.size == stored[blob.sha256]
        assert before <= blob.modified <= after, blob


def test_list_blobs_pages_through_a_large_store(blobs: BlobStore) -> None:
    """More blobs than one S3 listing page are all listed, each once."""
    few_per_page(blobs)

    async def fill() -> set[str]:
        limit = asyncio.Semaphore(16)

        async def put(n: int) -> str:
            async with limit:
                return await blobs.put_bytes(n.to_bytes(4, "big"))

        return set(await asyncio.gather(*(put(n) for n in range(2 * _PAGE + 10))))

    keys = run(fill())
    found = [blob.sha256 for blob in run(listing(blobs))]
    assert len(found) == len(keys)
    assert set(found) == keys


def test_manifests_are_replaced_listed_and_kept_apart_from_blobs(blobs: BlobStore) -> None:
    """A manifest replaces the one under its key, lists by kind, and is never a blob."""
    first, second = sha256(b"first"), sha256(b"second")

    async def exercise() -> tuple[list[bytes], list[bytes], bytes | None, bytes | None]:
        await blobs.put_manifest("file", first, b'{"n": 1}')
        await blobs.put_manifest("file", first, b'{"n": 2}')
        await blobs.put_manifest("file", second, b'{"n": 3}')
        await blobs.put_manifest("user", first, b'{"user": true}')
        files = [document async for key, document in blobs.list_manifests("file")]
        users = [(key, document) async for key, document in blobs.list_manifests("user")]
        return (
            files,
            users,
            await blobs.get_manifest("file", first),
            (await blobs.get_manifest("group", first)),
        )

    files, users, got, missing = run(exercise())
    assert sorted(files) == [b'{"n": 2}', b'{"n": 3}']
    assert users == [(first, b'{"user": true}')]
    assert got == b'{"n": 2}'
    assert missing is None
    assert run(listing(blobs)) == []


@pytest.mark.parametrize(
    ("kind", "key"),
    [("file", "../" + "0" * 61), ("../file", "0" * 64), ("File", "0" * 64), ("", "0" * 64),
     ("file", "0" * 64 + "/x"), ("file/../../x", "0" * 64)],
)  # fmt: skip
def test_a_manifest_key_names_nothing_else(blobs: BlobStore, kind: str, key: str) -> None:
    """Kinds and keys are checked: nothing outside the manifests can be named."""
    with pytest.raises(StorageError):
        run(blobs.put_manifest(kind, key, b"{}"))
    with pytest.raises(StorageError):
        run(blobs.get_manifest(kind, key))


def test_manifests_pages_through_many(blobs: BlobStore) -> None:
    """More manifests than one S3 listing page are all read, each once."""
    few_per_page(blobs)

    async def fill_and_list() -> list[bytes]:
        limit = asyncio.Semaphore(16)

        async def put(n: int) -> None:
            async with limit:
                await blobs.put_manifest("file", sha256(str(n).encode()), str(n).encode())

        await asyncio.gather(*(put(n) for n in range(2 * _PAGE + 5)))
        return [(key, document) async for key, document in blobs.list_manifests("file")]

    found = run(fill_and_list())
    assert sorted(int(document) for _, document in found) == list(range(2 * _PAGE + 5))
    assert all(key == sha256(document) for key, document in found)


def test_a_put_of_a_stored_blob_makes_it_young_again(backend: Backend, blobs: BlobStore) -> None:
    """Putting bytes the store holds refreshes ``modified``: the upload about to commit a
    record naming them must not lose them to ``ministry verify`` as an old orphan."""
    key = run(blobs.put_bytes(b"stored once"))
    if backend.age is not None:
        backend.age(key)
    (first,) = run(listing(blobs))
    # Where the time cannot be set, wait for the clock to pass the store's 1 s resolution.
    wait_for(lambda: datetime.now(UTC) > first.modified + timedelta(seconds=1.5), 10, "a tick")
    run(blobs.put_bytes(b"stored once"))
    (second,) = run(listing(blobs))
    assert second.modified > first.modified
    assert run(read(blobs, key, 0, 10)) == b"stored once"


def in_key(blobs: BlobStore, key: str) -> bool:
    """Whether the blob is under its key: in the listing (a set-aside blob is not)."""
    return key in {blob.sha256 for blob in run(listing(blobs))}


def set_aside_now(blobs: BlobStore) -> list[StoredBlob]:
    """The set-aside blobs."""

    async def collect() -> list[StoredBlob]:
        return [blob async for blob in blobs.list_aside()]

    return run(collect())


def test_set_aside_spares_a_blob_put_again_and_puts_back(
    backend: Backend, blobs: BlobStore
) -> None:
    """An evicted cache's blob is set aside unless someone put it again since it was
    cached (an upload about to commit a record naming it); set aside, it is out of the
    listing but still readable, ``put_back`` restores it, and doing anything twice, or
    to a blob never stored, is a quiet no."""
    key = run(blobs.put_bytes(b"cached from upstream"))
    cached = datetime.now(UTC) + timedelta(seconds=5)  # the record's time, after the put
    assert run(blobs.set_aside(key, cached)) is True
    assert not in_key(blobs, key)
    (listed,) = set_aside_now(blobs)
    assert (listed.sha256, listed.size) == (key, 20)
    assert listed.modified > datetime.now(UTC) - timedelta(minutes=1)  # when it went aside
    assert run(read(blobs, key, 0, 19)) == b"cached from upstream"  # a reader still finds it
    assert run(blobs.set_aside(key, cached)) is False
    assert run(blobs.set_aside(sha256(b"never stored"), cached)) is False
    assert run(blobs.put_back(key)) is True
    assert in_key(blobs, key)
    assert run(blobs.put_back(key)) is True  # the key holds it: nothing to do
    run(blobs.drop_aside(key))
    run(blobs.drop_aside(key))
    assert set_aside_now(blobs) == []
    assert run(blobs.put_back(sha256(b"never stored"))) is False
    assert run(blobs.set_aside(key, cached)) is True
    run(blobs.drop_aside(key))
    with pytest.raises(NotFound):
        run(blobs.open_blob(key))
    assert run(blobs.put_back(key)) is False  # gone for good
    again = run(blobs.put_bytes(b"put again by an upload"))
    if backend.age is not None:
        backend.age(again)
    past = datetime.now(UTC) - timedelta(hours=2)  # cached long before that put
    run(blobs.put_bytes(b"put again by an upload"))  # the upload's put refreshes it
    assert run(blobs.set_aside(again, past)) is False
    assert in_key(blobs, again)
    assert set_aside_now(blobs) == []
    for malformed in MALFORMED:
        with pytest.raises(NotFound):
            run(blobs.set_aside(malformed, cached))
        with pytest.raises(NotFound):
            run(blobs.put_back(malformed))
        with pytest.raises(NotFound):
            run(blobs.drop_aside(malformed))


def _put_during_the_move(blobs: BlobStore, put: Callable[[], None]) -> Callable[[], None]:
    """Make ``put`` run inside the S3 store's ``set_aside`` after its HEAD and its copy,
    just before the DELETE of the original; returns the undo."""
    from ministry.storage.s3 import S3BlobStore

    assert isinstance(blobs, S3BlobStore)
    client = blobs._connect()
    original = client.delete_object

    def delete_object(**arguments: str) -> object:
        if "/sha256/" in "/" + arguments["Key"]:  # the original, not a set-aside copy
            put()
        return original(**arguments)

    client.delete_object = delete_object
    return lambda: setattr(client, "delete_object", original)


#: Where the upload's commit lands: before the eviction looks at the records again,
#: between that and the next pass (which drops set-aside blobs no record names), or
#: after that pass.
COMMIT_POSITIONS = ("before the second check", "before the next pass", "after the next pass")


# Where an upload's put lands in the eviction: before it, between the store's look at
# the blob and its move (S3 only: the file store moves with one rename), after it.
@pytest.mark.parametrize("put_at", ["before", "during", "after"])
def test_an_upload_racing_an_eviction_keeps_its_bytes(
    backend: Backend, blobs: BlobStore, spool: Path, put_at: str
) -> None:
    """The whole interleaving, driven by hand: an upload puts its blob, commits a record
    naming it, then calls ``put_back``; an eviction of a cache record with the same
    bytes looks at the records, sets the blob aside, looks again and puts back what a
    record names, and a later pass puts back or drops what is set aside. Wherever the
    upload's put and commit land, the blob is under its key at the end, or the upload
    learns that it is not."""
    if put_at == "during" and backend.name != "s3":
        pytest.skip("the file store looks at the blob after its move, not before")
    data = payload(5000, seed=11)
    key = sha256(data)
    for commit_at in COMMIT_POSITIONS:
        run(blobs.put_bytes(data))  # cached from upstream
        if backend.age is not None:
            backend.age(key)
        # The cache record's time: after the blob was stored, before the upload's put
        # where the store can tell (S3's clock has one-second steps).
        cached = datetime.now(UTC) + timedelta(seconds=5)
        if put_at == "before" and backend.age is not None:
            cached = datetime.now(UTC) - timedelta(minutes=5)
        records: set[str] = set()
        upload = spooled(spool, data)
        puts: list[str] = []

        def put(upload: Path = upload, puts: list[str] = puts) -> None:
            run(blobs.put_file(upload, key))
            puts.append(key)

        def commit_and_confirm(records: set[str] = records) -> bool:
            records.add(key)
            return run(blobs.put_back(key))

        undo = _put_during_the_move(blobs, put) if put_at == "during" else None
        if put_at == "before":
            put()
        try:
            moved = run(blobs.set_aside(key, cached))  # the first check found no record
        finally:
            if undo is not None:
                undo()
        assert moved is not (put_at == "before" and backend.age is not None)
        if put_at == "after":
            put()
        assert puts == [key]
        if commit_at == "before the second check":
            assert commit_and_confirm()
        if key in records:  # the second check
            assert run(blobs.put_back(key))
        if commit_at == "before the next pass":
            assert commit_and_confirm()
        if key in records:  # the next pass puts back what a record names, then drops
            assert run(blobs.put_back(key))
        run(blobs.drop_aside(key))
        if commit_at == "after the next pass":
            confirmed = commit_and_confirm()
            if put_at == "during" or (put_at == "before" and moved):
                # Put before the move, committed after the next pass dropped the
                # set-aside copy (a grace period later): the upload is refused.
                assert not confirmed
                continue
            assert confirmed
        assert in_key(blobs, key), (put_at, commit_at)
        assert run(read(blobs, key, 0, len(data) - 1)) == data
        assert set_aside_now(blobs) == []
        run(blobs.set_aside(key, datetime.now(UTC) + timedelta(seconds=5)))
        run(blobs.drop_aside(key))


def test_a_reader_keeps_reading_a_deleted_local_blob(tmp_path: Path) -> None:
    """A download in another process that has the file open is not cut by an eviction."""
    store = FileBlobStore(tmp_path / "blobs")

    async def scenario() -> bytes:
        await store.open()
        data = payload(3 * MiB, seed=4)
        key = await store.put_bytes(data)
        reader = await store.open_blob(key)
        try:
            assert await store.set_aside(key, datetime.now(UTC) + timedelta(seconds=2))
            await store.drop_aside(key)
            return b"".join([chunk async for chunk in reader.chunks(0, reader.size - 1)])
        finally:
            await reader.close()

    assert run(scenario()) == payload(3 * MiB, seed=4)
    assert not list((tmp_path / "blobs" / "evicting").iterdir())


def test_quarantine_moves_a_blob_out_of_reach_and_keeps_it(
    backend: Backend, blobs: BlobStore, spool: Path
) -> None:
    """A quarantined blob is missing to readers and the listing, its bytes are kept where
    quarantine says, and a later put stores the key anew."""
    data, other = payload(3000, seed=8), payload(2000, seed=9)
    key, kept = run(blobs.put_bytes(data)), run(blobs.put_bytes(other))
    where = run(blobs.quarantine(key))
    assert where is not None and key in where and "quarantine/" in where
    assert backend.fetch(where) == data
    with pytest.raises(NotFound):
        run(blobs.open_blob(key))
    assert [blob.sha256 for blob in run(listing(blobs))] == [kept]
    assert run(blobs.quarantine(key)) is None  # nothing left to move
    assert run(blobs.quarantine(sha256(b"never stored"))) is None
    for malformed in MALFORMED:
        with pytest.raises(NotFound):
            run(blobs.quarantine(malformed))
    run(blobs.put_file(spooled(spool, data), key))
    assert run(read(blobs, key, 0, len(data) - 1)) == data
    assert sorted(blob.sha256 for blob in run(listing(blobs))) == sorted([key, kept])


def test_the_listing_skips_what_is_not_a_blob(tmp_path: Path) -> None:
    """Stray files in the file store's tree (a wrong name, a wrong place, a link, a
    temporary file) are no blobs: the listing shows only what a key reaches."""
    store = FileBlobStore(tmp_path / "blobs")
    run(store.open())
    key = run(store.put_bytes(b"real"))
    leaf = store.path_of(key).parent
    (leaf / "notes.txt").write_text("x")
    (leaf / ("f" * 64)).write_bytes(b"in the wrong directory")
    (leaf / (key[:4] + "0" * 60)).symlink_to(store.path_of(key))
    (tmp_path / "blobs" / ".tmp" / "blob-1.0-stray").write_bytes(b"half")
    assert [blob.sha256 for blob in run(listing(store))] == [key]


def test_s3_listing_stays_under_its_prefix(
    s3: Backend, bucket: str, s3_environment: SeaweedS3
) -> None:
    """A store lists its own prefix only: not a sibling prefix that begins the same way."""
    from ministry.storage.s3 import S3BlobStore

    store = s3.store()
    assert isinstance(store, S3BlobStore)
    sibling = S3BlobStore(bucket, store.prefix + "x")

    async def fill_and_list() -> list[StoredBlob]:
        await store.open()
        await sibling.open()
        try:
            await sibling.put_bytes(b"a neighbour's blob")
            key = await store.put_bytes(b"our blob")
            assert await sibling.quarantine(key) is None
            return await listing(store)
        finally:
            await store.close()
            await sibling.close()

    assert [blob.sha256 for blob in run(fill_and_list())] == [sha256(b"our blob")]


# S3 only: pre-signed downloads, and what a misconfiguration looks like.


@pytest.fixture
def s3(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The S3 backend alone."""
    return _s3(request, tmp_path)


def test_s3_redirect_gives_a_url_clients_fetch_directly(s3: Backend) -> None:
    """The pre-signed URL serves the exact bytes with the headers Ministry would send."""
    store = s3.store(redirect=True)
    data = payload(70_000, seed=7)
    metadata = b"Metadata-Version: 2.4\nName: demo-pkg\nVersion: 1.0\n"

    async def urls() -> tuple[str | None, str | None, str | None]:
        await store.open()
        try:
            key = await store.put_bytes(data)
            meta_key = await store.put_bytes(metadata)
            return (
                await store.download_url(key, WHEEL),
                await store.download_url(meta_key, WHEEL + ".metadata"),
                await store.download_url(key, 'odd "näme".whl'),
            )
        finally:
            await store.close()

    wheel_url, metadata_url, odd_url = run(urls())
    assert wheel_url is not None and metadata_url is not None and odd_url is not None
    assert "X-Amz-Signature=" in wheel_url and "X-Amz-Expires=3600" in wheel_url
    with httpx.Client(trust_env=False, timeout=30.0) as client:
        response = client.get(wheel_url)
        assert response.status_code == 200
        assert response.content == data
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.headers["content-disposition"] == f'attachment; filename="{WHEEL}"'

        partial = client.get(wheel_url, headers={"Range": "bytes=100-199"})
        assert partial.status_code == 206
        assert partial.content == data[100:200]

        response = client.get(metadata_url)
        assert response.status_code == 200
        assert response.content == metadata
        assert response.headers["content-type"].startswith("text/plain")
        assert "content-disposition" not in response.headers

        response = client.get(odd_url)
        assert response.status_code == 200
        disposition = response.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="odd _n_me_.whl"')
        assert "filename*=UTF-8''odd%20%22n%C3%A4me%22.whl" in disposition

        # A key that is no sha256 never becomes a URL.
        for key in MALFORMED:
            with pytest.raises(NotFound):
                run(store.download_url(key, WHEEL))

        # The signature covers the response headers: changing them is refused.
        tampered = wheel_url.replace("attachment", "inline")
        assert client.get(tampered).status_code == 403


def test_s3_missing_bucket_is_a_clear_error(s3_environment: SeaweedS3) -> None:
    """open() names the bucket that does not exist and never creates it."""
    from ministry.storage.s3 import S3BlobStore

    store = S3BlobStore("no-such-bucket-here", "blobs")
    with pytest.raises(StorageError) as caught:
        run(store.open())
    message = caught.value.message
    assert "'no-such-bucket-here' does not exist" in message
    assert s3_environment.endpoint in message
    run(store.close())
    client = s3_environment.client()
    try:
        names = [b["Name"] for b in client.list_buckets().get("Buckets", [])]
    finally:
        client.close()
    assert "no-such-bucket-here" not in names


def test_s3_wrong_credentials_are_refused_without_leaking_them(
    s3_environment: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server really checks signatures; the error names the problem, not the secret."""
    from ministry.storage.s3 import S3BlobStore

    wrong_secret = "wrong-secret-" + "x" * 20
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong_secret)
    store = S3BlobStore(bucket, "blobs")
    with pytest.raises(StorageError) as caught:
        run(store.open())
    message = caught.value.message
    assert "refused access" in message
    assert wrong_secret not in message
    assert s3_environment.secret_key not in message
    assert os.environ["AWS_ACCESS_KEY_ID"] not in message
    run(store.close())


def test_s3_unreachable_endpoint_is_a_storage_error(
    s3_environment: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing listening at the endpoint: a StorageError that says which endpoint."""
    from ministry.storage.s3 import S3BlobStore

    (port,) = free_ports(1)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    store = S3BlobStore(bucket, "blobs")
    with pytest.raises(StorageError) as caught:
        run(store.open())
    assert f"127.0.0.1:{port}" in caught.value.message
    run(store.close())


def test_s3_keys_use_the_prefix_and_the_file_store_layout(
    s3: Backend, s3_environment: SeaweedS3
) -> None:
    """Objects sit at <prefix>/sha256/<ab>/<cd>/<sha256>, nothing else is written."""
    from ministry.storage.s3 import S3BlobStore

    store = s3.store()
    assert isinstance(store, S3BlobStore)
    data = b"layout"
    key = sha256(data)

    async def put() -> None:
        await store.open()
        try:
            await store.put_bytes(data)
        finally:
            await store.close()

    run(put())
    client = s3_environment.client()
    try:
        listed = client.list_objects_v2(Bucket=store.bucket, Prefix=store.prefix + "/")
    finally:
        client.close()
    keys = [item["Key"] for item in listed.get("Contents", [])]
    assert keys == [f"{store.prefix}/sha256/{key[:2]}/{key[2:4]}/{key}"]
