"""The contract every ``MetadataStore`` and ``BlobStore`` keeps, run against each backend.

Only the embedded backends exist so far; a new backend joins by adding a factory
to ``METADATA_STORES`` or ``BLOB_STORES``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest
from packaging.utils import NormalizedName

from ministry.core.models import (
    SESSION_PREFIX,
    Actor,
    AddFileOutcome,
    AddFileResult,
    CachedFile,
    CachedPage,
    Group,
    IndexConfig,
    MirrorRun,
    Project,
    ProjectRole,
    Publisher,
    Release,
    Route,
    Token,
    Upstream,
    User,
)
from ministry.core.records import to_record
from ministry.core.trusted_publishing import PublishToken, TrustedPublisher
from ministry.errors import Conflict, NotFound, StorageError, StorageUnavailable
from ministry.storage.filesystem import FileBlobStore
from ministry.storage.protocols import BlobStore, MetadataStore
from ministry.storage.publishers import KEPT_AFTER_EXPIRY
from ministry.storage.redis import RedisMetadataStore
from ministry.storage.redis import packages as redis_packages
from ministry.storage.redis.base import LAYOUT
from ministry.storage.redis.durability import RedisOptions
from ministry.storage.sqlite import SqliteMetadataStore
from ministry.storage.sqlite.schema import _MIGRATIONS
from ministry.storage.temporary import create_temporary, create_temporary_directory, sweep_orphans
from support.backends import free_ports
from support.records import dist_file

T = TypeVar("T")


def _redis(request: pytest.FixtureRequest) -> RedisMetadataStore:
    # Every store gets a key prefix of its own in the worker's Redis server.
    url = request.getfixturevalue("redis_url")
    return RedisMetadataStore(f"{url}?prefix=t{secrets.token_hex(6)}")


METADATA_STORES: dict[str, Callable[[Path, pytest.FixtureRequest], MetadataStore]] = {
    "sqlite": lambda directory, _: SqliteMetadataStore(directory / "ministry.sqlite3"),
    "redis": lambda _, request: _redis(request),
}
BLOB_STORES: dict[str, Callable[[Path], BlobStore]] = {
    "filesystem": lambda directory: FileBlobStore(directory / "blobs"),
}


# One event loop for the whole module: a store's connections belong to the loop they
# were opened on (Redis clients, unlike threads, cannot move between loops).
_RUNNER = asyncio.Runner()


def _slow_if_served(name: str) -> Any:
    """A backend name as a parameter; marked slow when its server is a process (Redis)."""
    return pytest.param(name, marks=pytest.mark.slow) if name == "redis" else name


def run(coroutine: Awaitable[T]) -> T:
    """Run one coroutine on the module's event loop."""
    return _RUNNER.run(coroutine)  # type: ignore[arg-type]


@pytest.fixture(params=[_slow_if_served(name) for name in sorted(METADATA_STORES)])
def metadata(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    """An open, empty metadata store."""
    store = METADATA_STORES[request.param](tmp_path, request)
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


@pytest.mark.parametrize("backend", [_slow_if_served(name) for name in sorted(METADATA_STORES)])
def test_a_store_exists_once_opened(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Commands refuse a store that was never made (a mistyped --data or --db): ``exists``
    tells them, and asking makes nothing."""
    store = METADATA_STORES[backend](tmp_path, request)
    assert run(store.exists()) is False
    assert run(store.exists()) is False
    run(store.open())
    try:
        assert run(store.exists()) is True
    finally:
        run(store.close())


def test_a_durable_store_reports_no_risk(metadata: MetadataStore) -> None:
    """SQLite commits to disk; the test Redis appends every write with fsync: neither was
    started despite a risk, so ``/-/ready`` has none to report."""
    assert metadata.risks() == ()


def test_add_file_publishes_with_a_new_serial(metadata: MetadataStore) -> None:
    """A published file is found by name and project, with its change's serial."""
    result = run(
        metadata.add_file(dist_file("demo-1.0.tar.gz"), "Demo", {"summary": "x"}, Actor("alice"))
    )
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


def test_a_file_keeps_its_provenance(metadata: MetadataStore) -> None:
    """The sha256 of a file's provenance document is stored and read back with the file;
    a file without one reads back as None."""
    proven = replace(dist_file("demo-1.0.tar.gz"), provenance_sha256="c" * 64)
    run(metadata.add_file(proven, "demo", {}, Actor("alice")))
    run(metadata.add_file(dist_file("demo-1.0-py3-none-any.whl"), "demo", {}, Actor("alice")))
    stored = run(metadata.get_file("main", "demo-1.0.tar.gz"))
    assert stored is not None and stored.provenance_sha256 == "c" * 64
    plain = run(metadata.get_file("main", "demo-1.0-py3-none-any.whl"))
    assert plain is not None and plain.provenance_sha256 is None
    listed = {
        f.filename: f.provenance_sha256
        for f in run(metadata.list_files("main", NormalizedName("demo")))
    }
    assert listed == {"demo-1.0.tar.gz": "c" * 64, "demo-1.0-py3-none-any.whl": None}


def test_serial_is_strictly_increasing_and_logged(metadata: MetadataStore) -> None:
    """Every change bumps the serial; the change log lists them in order."""
    serials = []
    for version in ("1.0", "1.1", "1.2"):
        added = run(
            metadata.add_file(
                dist_file(f"demo-{version}.tar.gz", version=version),
                "demo",
                {},
                Actor("bob", "10.0.0.7"),
            )
        )
        serials.append(added.file.serial)
    run(metadata.add_user(User("carol", "hash", datetime.now(UTC)), Actor("admin")))
    assert serials == sorted(set(serials))
    changes = run(metadata.changes_since(0))
    assert [c.serial for c in changes] == sorted(c.serial for c in changes)
    assert [c.filename for c in changes[:3]] == [f"demo-{v}.tar.gz" for v in ("1.0", "1.1", "1.2")]
    assert changes[-1].action == "add-user"
    assert changes[-1].detail == "carol"
    assert (changes[0].actor, changes[0].address) == ("bob", "10.0.0.7")
    assert run(metadata.changes_since(serials[1])) == changes[2:]
    assert len(run(metadata.changes_since(0, limit=2))) == 2


def test_raise_serial_skips_serials_and_starts_a_new_generation(metadata: MetadataStore) -> None:
    """The generation stays put while the store lives; raising the serial above the newest
    makes the next change's serial greater than the floor and renews the generation, and
    raising it to where it is or lower changes nothing."""
    generation = run(metadata.generation())
    assert len(generation) >= 16 and run(metadata.generation()) == generation
    run(metadata.raise_serial(0))
    assert (run(metadata.last_serial()), run(metadata.generation())) == (0, generation)
    added = run(metadata.add_file(dist_file("demo-1.0.tar.gz"), "demo", {}, Actor("alice")))
    serial = added.file.serial
    run(metadata.raise_serial(serial))
    assert (run(metadata.last_serial()), run(metadata.generation())) == (serial, generation)
    run(metadata.raise_serial(serial + 10))
    assert run(metadata.last_serial()) == serial + 10
    renewed = run(metadata.generation())
    # Both at once, as every request reads them.
    assert run(metadata.position()) == (serial + 10, renewed)
    assert renewed != generation
    again = run(metadata.add_file(dist_file("demo-1.1.tar.gz", version="1.1"), "demo", {},
                                  Actor("alice")))  # fmt: skip
    assert again.file.serial == serial + 11 == run(metadata.last_serial())
    assert [c.serial for c in run(metadata.changes_since(0))] == [serial, serial + 11]
    assert run(metadata.generation()) == renewed


def test_the_generation_differs_between_stores(tmp_path: Path) -> None:
    """Two stores, each freshly initialised, have generations of their own."""
    stores = [SqliteMetadataStore(tmp_path / f"{n}.sqlite3") for n in (1, 2)]
    for store in stores:
        run(store.open())
    try:
        assert run(stores[0].generation()) != run(stores[1].generation())
    finally:
        for store in stores:
            run(store.close())


@pytest.mark.slow
def test_a_redis_that_came_back_empty_has_a_new_generation(request: pytest.FixtureRequest) -> None:
    """A Redis that lost its keys (restarted empty) gets a new generation when it is next
    asked (here with the serial, as a request asks), and keeps that one."""
    store = _redis(request)
    run(store.open())
    try:
        generation = run(store.generation())
        run(store.redis.delete(store.key("generation"), store.key("serial")))
        serial, renewed = run(store.position())
        assert serial == 0 and renewed != generation and run(store.generation()) == renewed
    finally:
        run(store.close())


def test_obstacles_are_reported_not_stored(metadata: MetadataStore) -> None:
    """A taken filename, the same bytes renamed and a second sdist leave the store unchanged."""
    first = run(metadata.add_file(dist_file("demo-1.0.tar.gz"), "demo", {}, Actor("a"))).file
    serial = run(metadata.last_serial())
    taken = run(
        metadata.add_file(dist_file("demo-1.0.tar.gz", sha="other"), "demo", {}, Actor("a"))
    )
    assert (taken.outcome, taken.file) == (AddFileOutcome.FILENAME_TAKEN, first)
    same_bytes = dist_file("demo-1.0-py3-none-any.whl", sha="demo-1.0.tar.gz")
    renamed = run(metadata.add_file(same_bytes, "demo", {}, Actor("a")))
    assert (renamed.outcome, renamed.file) == (AddFileOutcome.CONTENT_TAKEN, first)
    second_sdist = dist_file("demo-1.0.0.tar.gz", version="1.0.0")
    sdist = run(metadata.add_file(second_sdist, "demo", {}, Actor("a")))
    assert (sdist.outcome, sdist.file) == (AddFileOutcome.SDIST_TAKEN, first)
    assert run(metadata.last_serial()) == serial
    assert run(metadata.list_files("main", NormalizedName("demo"))) == [first]


def test_one_release_per_canonical_version(metadata: MetadataStore) -> None:
    """``1.0`` and ``1.0.0`` are one release; later files take its spelling and metadata."""
    run(metadata.add_file(dist_file("demo-1.0.tar.gz"), "demo", {"summary": "first"}, Actor("a")))
    wheel = dist_file("demo-1.0.0-py3-none-any.whl", version="1.0.0")
    added = run(metadata.add_file(wheel, "Demo", {"summary": "second"}, Actor("a")))
    assert added.file.version == "1.0"
    (release,) = run(metadata.list_releases("main", NormalizedName("demo")))
    assert release.metadata == {"summary": "first"}
    (project,) = run(metadata.list_projects("main"))
    assert project.display_name == "Demo"  # the newest upload's spelling


def test_a_release_has_one_wheel_per_tags_under_any_spelling(metadata: MetadataStore) -> None:
    """docs/security.md "Release identity": a second wheel for the same build and tags under
    another spelling of the version is refused and changes nothing; other tags join."""
    first = run(metadata.add_file(dist_file("demo-2.0-py3-none-any.whl", version="2.0"), "demo",
                                  {}, Actor("a"))).file  # fmt: skip
    serial = run(metadata.last_serial())
    for spelling in ("2.0.0", "02.0", "2"):
        again = dist_file(f"demo-{spelling}-py3-none-any.whl", version=spelling)
        result = run(metadata.add_file(again, "demo", {}, Actor("a")))
        assert (result.outcome, result.file) == (AddFileOutcome.WHEEL_TAKEN, first)
    assert run(metadata.last_serial()) == serial
    joined = [
        dist_file("demo-2.0.0-py2.py3-none-any.whl", version="2.0.0"),
        dist_file("demo-2.0.0-1-py3-none-any.whl", version="2.0.0"),
        dist_file("demo-2.0.0.tar.gz", version="2.0.0"),
    ]
    for file in joined:
        result = run(metadata.add_file(file, "demo", {}, Actor("a")))
        assert (result.outcome, result.file.version) == (AddFileOutcome.ADDED, "2.0")
    sdist = run(metadata.add_file(dist_file("demo-2.tar.gz", version="2"), "demo", {}, Actor("a")))
    assert (sdist.outcome, sdist.file.filename) == (AddFileOutcome.SDIST_TAKEN, "demo-2.0.0.tar.gz")
    (release,) = run(metadata.list_releases("main", NormalizedName("demo")))
    assert release.version == "2.0"
    assert len(run(metadata.list_files("main", NormalizedName("demo")))) == 4


def test_a_file_joining_a_yanked_release_is_yanked(metadata: MetadataStore) -> None:
    """docs/indexes.md: the yank belongs to the release; a file yanked alone does not spread."""
    run(metadata.add_file(dist_file("demo-1.0.tar.gz"), "demo", {}, Actor("a")))
    run(metadata.set_yanked("main", ["demo-1.0.tar.gz"], "broken", Actor("y")))
    late = dist_file("demo-1.0.0-py3-none-any.whl", version="1.0.0")
    added = run(metadata.add_file(late, "demo", {}, Actor("a")))
    assert added.file.yanked == "broken"
    assert run(metadata.get_file("main", late.filename)) == added.file
    run(metadata.add_file(dist_file("demo-3.0.tar.gz", version="3.0"), "demo", {}, Actor("a")))
    run(metadata.add_file(dist_file("demo-3.0-py3-none-any.whl", version="3.0"), "demo", {},
                          Actor("a")))  # fmt: skip
    run(metadata.set_yanked("main", ["demo-3.0.tar.gz"], "", Actor("y")))
    other = dist_file("demo-3.0.0-py2-none-any.whl", version="3.0.0")
    assert run(metadata.add_file(other, "demo", {}, Actor("a"))).file.yanked is None


async def _records(*records: tuple[str, object]) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    for kind, value in records:
        yield kind, to_record(value)


def test_two_spellings_already_stored_are_one_release(metadata: MetadataStore) -> None:
    """Files stored with two spellings of one release (an older release, a restored backup)
    stay, count as one release for new uploads, and keep the release while one is left."""
    when = datetime(2026, 1, 2, tzinfo=UTC)
    run(metadata.import_records(_records(
        ("project", Project("main", NormalizedName("demo"), "demo", when, 3)),
        ("release", Release("main", NormalizedName("demo"), "1.0", when, {"summary": "old"})),
        ("file", dist_file("demo-1.0.0.tar.gz", version="1.0.0")),
        ("file", dist_file("demo-1.0-py3-none-any.whl")),
        ("file", dist_file("demo-1.0.0-py3-none-any.whl", version="1.0.0")),
    )))  # fmt: skip
    sdist = run(metadata.add_file(dist_file("demo-1.0.tar.gz"), "demo", {}, Actor("a")))
    assert (sdist.outcome, sdist.file.filename) == (AddFileOutcome.SDIST_TAKEN, "demo-1.0.0.tar.gz")
    stored = [f.filename for f in run(metadata.list_files("main", NormalizedName("demo")))]
    run(metadata.set_yanked("main", stored, "old", Actor("y")))
    late = dist_file("demo-1.0-py2-none-any.whl")
    assert run(metadata.add_file(late, "demo", {}, Actor("a"))).file.yanked == "old"
    run(metadata.delete_files("main", ["demo-1.0-py3-none-any.whl", late.filename], Actor("d")))
    (release,) = run(metadata.list_releases("main", NormalizedName("demo")))
    assert (release.version, release.metadata) == ("1.0", {"summary": "old"})
    assert len(run(metadata.list_files("main", NormalizedName("demo")))) == 2


_SPELLINGS = ("1.0", "1.0.0", "01.0", "1", "1.00", "1.0.0.0")


def test_racing_spellings_of_one_release_have_one_winner(metadata: MetadataStore) -> None:
    """Concurrent uploads of one wheel or one sdist under several spellings: one wins."""

    async def race() -> list[list[AddFileOutcome]]:
        outcomes = []
        for filename in ("demo-{}-py3-none-any.whl", "demo-{}.tar.gz"):
            results = await asyncio.gather(
                *(
                    metadata.add_file(
                        dist_file(filename.format(v), version=v), "demo", {}, Actor(v)
                    )
                    for v in _SPELLINGS
                )
            )
            outcomes.append(sorted(r.outcome.name for r in results))
        return outcomes

    wheels, sdists = run(race())
    assert wheels == ["ADDED"] + ["WHEEL_TAKEN"] * 5
    assert sdists == ["ADDED"] + ["SDIST_TAKEN"] * 5
    assert len(run(metadata.list_files("main", NormalizedName("demo")))) == 2
    assert len(run(metadata.list_releases("main", NormalizedName("demo")))) == 1


def test_users_and_tokens(metadata: MetadataStore) -> None:
    """Users are unique; tokens are found by id and listed per user; use is not a change."""
    when = datetime(2026, 5, 6, tzinfo=UTC)
    run(metadata.add_user(User("alice", "$argon2id$x", when, is_admin=True), Actor("cli")))
    with pytest.raises(Conflict):
        run(metadata.add_user(User("alice", "other", when), Actor("cli")))
    assert run(metadata.get_user("alice")) == User("alice", "$argon2id$x", when, is_admin=True)
    assert run(metadata.get_user("nobody")) is None
    token = Token("0123456789abcdef", "alice", "hash", when, "ci", expires=when + timedelta(days=1))
    run(metadata.add_token(token, Actor("cli")))
    serial = run(metadata.last_serial())
    run(metadata.touch_token(token.token_id, when + timedelta(hours=1)))
    assert run(metadata.last_serial()) == serial
    stored = run(metadata.get_token(token.token_id))
    assert stored == replace(token, last_used=when + timedelta(hours=1))
    assert run(metadata.list_tokens("alice")) == [stored]
    assert run(metadata.list_tokens("bob")) == []
    assert [u.name for u in run(metadata.list_users())] == ["alice"]


def test_sessions_are_stored_but_are_no_changes(metadata: MetadataStore) -> None:
    """A browser session is a token every node finds, but logging in and out is not logged."""
    when = datetime(2026, 5, 6, tzinfo=UTC)
    run(metadata.add_user(User("alice", "$argon2id$x", when), Actor("cli")))
    serial = run(metadata.last_serial())
    session = Token(SESSION_PREFIX + "0123456789abcdef", "alice", "hash", when, "Browser session")
    assert session.is_session
    run(metadata.add_token(session, Actor("alice")))
    assert run(metadata.get_token(session.token_id)) == session
    run(metadata.revoke_token(session.token_id, Actor("alice")))
    stored = run(metadata.get_token(session.token_id))
    assert stored is not None and stored.revoked
    assert run(metadata.last_serial()) == serial
    assert run(metadata.changes_since(serial)) == []


def test_removing_a_user_takes_their_tokens_and_memberships(metadata: MetadataStore) -> None:
    """A removed user leaves no token to log in with and no group membership behind; the
    name is free again, and the removal is a change."""
    when = datetime(2026, 5, 6, tzinfo=UTC)
    for name in ("alice", "bob"):
        run(metadata.add_user(User(name, "$argon2id$x", when), Actor("cli")))
    token = Token("0123456789abcdef", "bob", "hash", when, "ci")
    run(metadata.add_token(token, Actor("cli")))
    run(metadata.touch_token(token.token_id, when))
    run(metadata.create_group("devs", Actor("cli")))
    run(metadata.set_group_members("devs", ["alice", "bob"], [], Actor("cli")))
    before = run(metadata.last_serial())
    run(metadata.remove_user("bob", Actor("cli")))
    assert run(metadata.last_serial()) == before + 1
    assert run(metadata.changes_since(before))[0].action == "remove-user"
    assert run(metadata.get_user("bob")) is None
    assert run(metadata.get_token(token.token_id)) is None
    assert run(metadata.list_tokens("bob")) == []
    assert [g.members for g in run(metadata.list_groups())] == [("alice",)]
    with pytest.raises(NotFound):
        run(metadata.remove_user("bob", Actor("cli")))
    run(metadata.add_user(User("bob", "$argon2id$y", when), Actor("cli")))
    assert run(metadata.list_tokens("bob")) == []


def test_yank_and_unyank(metadata: MetadataStore) -> None:
    """Yanking sets a reason (possibly empty), unyanking clears it; each is a change."""
    run(metadata.add_file(dist_file("demo-1.0.tar.gz"), "demo", {}, Actor("a")))
    before = run(metadata.last_serial())
    (yanked,) = run(metadata.set_yanked("main", ["demo-1.0.tar.gz", "nope"], "broken", Actor("y")))
    assert yanked.yanked == "broken"
    stored = run(metadata.get_file("main", "demo-1.0.tar.gz"))
    assert stored is not None and stored.yanked == "broken"
    (project,) = run(metadata.list_projects("main"))
    assert project.last_serial == run(metadata.last_serial()) > before
    run(metadata.set_yanked("main", ["demo-1.0.tar.gz"], "", Actor("y")))
    assert run(metadata.get_file("main", "demo-1.0.tar.gz")).yanked == ""  # type: ignore[union-attr]
    run(metadata.set_yanked("main", ["demo-1.0.tar.gz"], None, Actor("y")))
    assert run(metadata.get_file("main", "demo-1.0.tar.gz")).yanked is None  # type: ignore[union-attr]
    actions = [c.action for c in run(metadata.changes_since(before))]
    assert actions == ["yank", "yank", "unyank"]


def test_delete_retires_the_filename(metadata: MetadataStore) -> None:
    """A deleted filename accepts its old bytes again but never other bytes
    (docs/security.md, "Hostile uploads")."""
    run(metadata.add_file(dist_file("demo-1.0.tar.gz"), "demo", {}, Actor("a")))
    run(metadata.add_file(dist_file("demo-2.0.tar.gz", version="2.0"), "demo", {}, Actor("a")))
    (deleted,) = run(metadata.delete_files("main", ["demo-1.0.tar.gz"], Actor("d")))
    assert deleted.filename == "demo-1.0.tar.gz"
    assert run(metadata.get_file("main", "demo-1.0.tar.gz")) is None
    assert [r.version for r in run(metadata.list_releases("main", NormalizedName("demo")))] == [
        "2.0"
    ]
    other = run(metadata.add_file(dist_file("demo-1.0.tar.gz", sha="x"), "demo", {}, Actor("a")))
    assert other.outcome is AddFileOutcome.FILENAME_RETIRED
    same = run(metadata.add_file(dist_file("demo-1.0.tar.gz"), "demo", {}, Actor("a")))
    assert same.outcome is AddFileOutcome.ADDED
    run(metadata.delete_files("main", ["demo-1.0.tar.gz", "demo-2.0.tar.gz"], Actor("d")))
    assert run(metadata.get_project("main", NormalizedName("demo"))) is None
    assert run(metadata.list_projects("main")) == []


def test_a_filename_retired_without_its_file(metadata: MetadataStore) -> None:
    """A rebuild puts back a deletion the store never saw: the name is retired for other
    bytes at once, once only, and no serial is used."""
    before = run(metadata.last_serial())
    sha = dist_file("demo-1.0.tar.gz").sha256
    assert run(metadata.retire_filename("main", "demo-1.0.tar.gz", sha)) is True
    assert run(metadata.retire_filename("main", "demo-1.0.tar.gz", sha)) is False
    assert run(metadata.last_serial()) == before
    other = run(metadata.add_file(dist_file("demo-1.0.tar.gz", sha="x"), "demo", {}, Actor("a")))
    assert other.outcome is AddFileOutcome.FILENAME_RETIRED
    assert run(metadata.get_file("main", "demo-1.0.tar.gz")) is None


def test_replace_existing(metadata: MetadataStore) -> None:
    """Where overwriting is allowed, other bytes replace a file; the same bytes stay put."""
    run(metadata.add_file(dist_file("demo-1.0.tar.gz"), "demo", {}, Actor("a")))
    newer = dist_file("demo-1.0.tar.gz", sha="newer")
    result = run(metadata.add_file(newer, "demo", {}, Actor("a"), replace_existing=True))
    assert result.outcome is AddFileOutcome.REPLACED
    assert run(metadata.get_file("main", "demo-1.0.tar.gz")).sha256 == newer.sha256  # type: ignore[union-attr]
    again = run(metadata.add_file(newer, "demo", {}, Actor("a"), replace_existing=True))
    assert again.outcome is AddFileOutcome.FILENAME_TAKEN


def test_a_refused_replacement_keeps_the_file(metadata: MetadataStore) -> None:
    """Where overwriting is allowed, a replacement refused (its bytes are another file's, or
    it is a second wheel for the release's tags) leaves the old file and its hash in place."""
    old = run(metadata.add_file(dist_file("demo-1.0.tar.gz"), "demo", {}, Actor("a"))).file
    wheel = dist_file("demo-1.0-py3-none-any.whl")
    run(metadata.add_file(wheel, "demo", {}, Actor("a")))
    serial = run(metadata.last_serial())
    taken = dist_file("demo-1.0.tar.gz", sha=wheel.filename)
    result = run(metadata.add_file(taken, "demo", {}, Actor("a"), replace_existing=True))
    assert result.outcome is AddFileOutcome.CONTENT_TAKEN
    assert run(metadata.get_file("main", "demo-1.0.tar.gz")) == old
    assert run(metadata.last_serial()) == serial
    same = run(metadata.add_file(dist_file("demo-1.0.tar.gz"), "demo", {}, Actor("a")))
    assert same.outcome is AddFileOutcome.FILENAME_TAKEN
    copy = dist_file("demo-1.0-py2-none-any.whl", sha="demo-1.0.tar.gz")
    assert run(metadata.add_file(copy, "demo", {}, Actor("a"))).outcome is (
        AddFileOutcome.CONTENT_TAKEN
    )
    other = dist_file("demo-1.0-py3-none-any.whl", sha="x")
    renamed = run(metadata.add_file(replace(other, filename="demo-1.0.0-py3-none-any.whl"),
                                    "demo", {}, Actor("a"), replace_existing=True))  # fmt: skip
    assert renamed.outcome is AddFileOutcome.WHEEL_TAKEN


def test_indexes(metadata: MetadataStore) -> None:
    """Index settings round-trip; names are unique; deleting removes the contents too."""
    config = IndexConfig(
        "team/dev",
        bases=("team/prod", "main"),
        private=True,
        readers=("bob", "@qa"),
        uploaders=("alice",),
        admins=("@leads",),
        allow_delete=True,
        allow_inherit=("shared-*",),
        routes=(Route("acme-*", "team/prod"), Route("secret", "-")),
        description="development",
    )
    proxy = IndexConfig(
        "upstream",
        kind="proxy",
        upstreams=(
            Upstream("https://user:secret@mirror.example.test/simple/"),
            Upstream("https://corp.example.test/simple/", only=("acme-*",), page_ttl=30),
        ),
        page_ttl=60,
        min_age=86400,
        min_age_exempt=("urgent-*",),
    )
    run(metadata.create_index(proxy, Actor("admin")))
    run(metadata.create_index(config, Actor("admin")))
    with pytest.raises(Conflict):
        run(metadata.create_index(config, Actor("admin")))
    assert run(metadata.list_indexes()) == [config, proxy]
    run(metadata.delete_index("upstream", Actor("admin")))
    changed = replace(config, private=False, bases=("main",))
    run(metadata.update_index(changed, Actor("admin")))
    assert run(metadata.list_indexes()) == [changed]
    with pytest.raises(NotFound):
        run(metadata.update_index(IndexConfig("ghost"), Actor("admin")))
    file = replace(dist_file("demo-1.0.tar.gz"), index="team/dev")
    run(metadata.add_file(file, "demo", {}, Actor("a")))
    assert [p.index for p in run(metadata.projects_named(NormalizedName("demo")))] == ["team/dev"]
    when = datetime(2026, 1, 1, tzinfo=UTC)
    run(metadata.add_user(User("alice", "h", when), Actor("cli")))
    run(
        metadata.add_token(
            Token("00000000000000bb", "alice", "h", when, index="team/dev"), Actor("a")
        )
    )
    run(metadata.delete_index("team/dev", Actor("admin")))
    assert run(metadata.list_indexes()) == []
    assert run(metadata.projects_named(NormalizedName("demo"))) == []
    assert run(metadata.changes_since(0))[-1].action == "delete-index"
    # Made again under the same name, the index neither takes other bytes under an
    # old filename nor honours a token meant for the old one.
    run(metadata.create_index(IndexConfig("team/dev"), Actor("admin")))
    other = replace(file, sha256="f" * 64)
    assert run(metadata.add_file(other, "demo", {}, Actor("a"))).outcome is (
        AddFileOutcome.FILENAME_RETIRED
    )
    assert run(metadata.get_token("00000000000000bb")).revoked  # type: ignore[union-attr]


def test_groups(metadata: MetadataStore) -> None:
    """Groups hold existing users; membership changes are logged."""
    when = datetime(2026, 1, 1, tzinfo=UTC)
    for name in ("alice", "bob"):
        run(metadata.add_user(User(name, "h", when), Actor("cli")))
    run(metadata.create_group("qa", Actor("cli")))
    with pytest.raises(Conflict):
        run(metadata.create_group("qa", Actor("cli")))
    run(metadata.set_group_members("qa", ["alice", "bob"], [], Actor("cli")))
    run(metadata.set_group_members("qa", [], ["alice"], Actor("cli")))
    assert run(metadata.list_groups()) == [Group("qa", ("bob",))]
    with pytest.raises(NotFound):
        run(metadata.set_group_members("qa", ["nobody"], [], Actor("cli")))
    with pytest.raises(NotFound):
        run(metadata.set_group_members("ghosts", ["bob"], [], Actor("cli")))
    run(metadata.delete_group("qa", Actor("cli")))
    assert run(metadata.list_groups()) == []


def test_user_updates_and_token_scopes(metadata: MetadataStore) -> None:
    """A user's flags change; a token keeps its index and projects and can be revoked."""
    when = datetime(2026, 1, 1, tzinfo=UTC)
    run(metadata.add_user(User("alice", "h", when), Actor("cli")))
    run(metadata.update_user(User("alice", "h2", when, is_admin=True, disabled=True), Actor("cli")))
    assert run(metadata.get_user("alice")) == User("alice", "h2", when, True, True)
    with pytest.raises(NotFound):
        run(metadata.update_user(User("ghost", "h", when), Actor("cli")))
    token = Token("00000000000000aa", "alice", "hash", when, index="team/dev", projects=("a", "b"))
    run(metadata.add_token(token, Actor("cli")))
    assert run(metadata.get_token(token.token_id)) == token
    run(metadata.revoke_token(token.token_id, Actor("cli")))
    assert run(metadata.get_token(token.token_id)) == replace(token, revoked=True)
    with pytest.raises(NotFound):
        run(metadata.revoke_token("ffffffffffffffff", Actor("cli")))


def test_older_data_directories_are_upgraded(tmp_path: Path) -> None:
    """A database made by the first release (no user_version) gains the new tables and columns."""
    database = tmp_path / "ministry.sqlite3"
    with sqlite3.connect(database) as connection:
        for statement in _MIGRATIONS[0]:
            connection.execute(statement)
        connection.execute("INSERT INTO users VALUES ('old', 'h', '2025-01-01T00:00:00+00:00', 1)")
    store = SqliteMetadataStore(database)
    run(store.open())
    try:
        user = run(store.get_user("old"))
        assert user is not None and user.is_admin and not user.disabled
        assert run(store.list_indexes()) == []
    finally:
        run(store.close())


def test_a_database_of_a_newer_release_is_refused_and_kept(tmp_path: Path) -> None:
    """Opening newer data must not write this release's schema number over the newer one:
    the newer release would then replay its migrations on tables that exist, and fail."""
    database = tmp_path / "ministry.sqlite3"
    run(SqliteMetadataStore(database).open())
    newer = len(_MIGRATIONS) + 1
    with sqlite3.connect(database) as connection:
        connection.execute(f"PRAGMA user_version = {newer}")
    with pytest.raises(StorageError, match=f"newer release.*schema {newer}"):
        run(SqliteMetadataStore(database).open())
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (newer,)


def test_a_failed_migration_is_named_and_changes_nothing(tmp_path: Path) -> None:
    """A migration that cannot apply says which one, and leaves the version where it was."""
    database = tmp_path / "ministry.sqlite3"
    run(SqliteMetadataStore(database).open())
    older = len(_MIGRATIONS) - 1
    with sqlite3.connect(database) as connection:
        connection.execute(f"PRAGMA user_version = {older}")  # its tables exist already
    with pytest.raises(StorageError, match=f"schema {older + 1} failed"):
        run(SqliteMetadataStore(database).open())
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (older,)


def test_redis_of_a_newer_release_is_refused(redis_url: str) -> None:
    """Redis records its key layout on first open and refuses a newer one."""
    url = f"{redis_url}?prefix=layout{secrets.token_hex(6)}"
    store = RedisMetadataStore(url)
    try:
        run(store.open())
        assert run(store.redis.get(store.key("layout"))) == str(LAYOUT)
        run(store.redis.set(store.key("layout"), LAYOUT + 1))
    finally:
        run(store.close())
    newer = RedisMetadataStore(url)
    try:
        with pytest.raises(StorageError, match=f"layout {LAYOUT + 1}"):
            run(newer.open())
    finally:
        run(newer.close())


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM files WHERE index_name = 'main' AND project = 'p' ORDER BY filename",
        "SELECT * FROM projects WHERE name = 'p'",
        "SELECT * FROM files WHERE index_name = 'main' AND sha256 = 'x' LIMIT 1",
        "SELECT * FROM releases WHERE index_name = 'main' AND project = 'p'",
        # A batch of the search's newest summaries: each a short search, never a scan.
        "SELECT DISTINCT project FROM releases WHERE index_name = 'main' AND project > 'p'"
        " ORDER BY project LIMIT 5",
        "SELECT project, version FROM releases WHERE index_name = 'main'"
        " AND project BETWEEN 'p' AND 'q' ORDER BY project",
    ],
)
def test_request_path_queries_use_an_index(tmp_path: Path, query: str) -> None:
    """A page's queries search an index: a scan would grow with the store, not the page.

    A project's files once came in filename order by walking the primary key, which
    read every file of the index (half a second with a million files).
    """
    database = tmp_path / "ministry.sqlite3"
    store = SqliteMetadataStore(database)
    run(store.open())
    run(store.close())
    with sqlite3.connect(database) as connection:
        plan = " | ".join(row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {query}"))
    assert plan.startswith("SEARCH"), plan
    assert "TEMP B-TREE" not in plan, plan
    assert "sqlite_autoindex_files_1 (index_name=?)" not in plan, plan


def test_newest_summaries(metadata: MetadataStore) -> None:
    """The newest release of each project with its summary, in one read, for the search:
    by PEP 440 order, not by upload order or by text."""
    actor = Actor("alice", "local")
    for project, version, summary in (
        ("p", "1.0", "Old"),
        ("p", "10.0", "Newest"),
        ("p", "2.0", "Middle"),
        ("q", "1.0", None),
    ):
        fields = {"summary": summary} if summary else {}
        record = dist_file(f"{project}-{version}.tar.gz", project=project, version=version)
        run(metadata.add_file(record, project, fields, actor))
    assert run(_batches(metadata, "main")) == [[("p", "10.0", "Newest"), ("q", "1.0", "")]]
    assert run(_batches(metadata, "other")) == []


async def _batches(
    metadata: MetadataStore, index: str, batch: int | None = None
) -> list[list[tuple[str, str, str]]]:
    stream = (
        metadata.newest_summaries(index)
        if batch is None
        else metadata.newest_summaries(index, batch=batch)
    )
    return [found async for found in stream]


def test_newest_summaries_in_batches(metadata: MetadataStore) -> None:
    """More projects than one batch: every project once, in name order, the lists no
    longer than asked, a project's releases never split between two lists."""
    actor = Actor("alice", "local")
    names = [f"p{n:02d}" for n in range(11)]
    for name in names:
        for version in ("1.0", "2.0", "1.5"):
            record = dist_file(f"{name}-{version}.tar.gz", project=name, version=version)
            run(metadata.add_file(record, name, {"summary": f"{name} {version}"}, actor))
    elsewhere = replace(dist_file("p05a-1.0.tar.gz", project="p05a"), index="other")
    run(metadata.add_file(elsewhere, "p05a", {}, actor))
    for batch in (1, 3, 4, 11, 12):
        lists = run(_batches(metadata, "main", batch))
        assert all(0 < len(found) <= batch for found in lists), (batch, lists)
        assert [row for found in lists for row in found] == [
            (name, "2.0", f"{name} 2.0") for name in names
        ], batch
    assert len(run(_batches(metadata, "main", 3))) == 4
    assert run(_batches(metadata, "other", 1)) == [[("p05a", "1.0", "")]]


def test_project_list(metadata: MetadataStore) -> None:
    """The compact list the listings keep holds the projects ``list_projects`` gives, in
    its order, and only the index's own."""
    actor = Actor("alice", "local")
    for project in ("zeta-lib", "alpha", "mid-way"):
        record = dist_file(f"{project}-1.0.tar.gz", project=project, version="1.0")
        run(metadata.add_file(record, project, {}, actor))
    compact = run(metadata.project_list("main"))
    assert list(compact) == run(metadata.list_projects("main"))
    assert [p.name for p in compact] == ["alpha", "mid-way", "zeta-lib"]
    assert compact.find("main", "zeta-lib") is not None
    assert list(run(metadata.project_list("other"))) == []


def test_project_list_of_more_projects_than_one_read(
    metadata: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that reads every project in rounds (Redis: HSCAN, 20 a round here; 300
    projects are past the size Redis answers in one round) gives each project once, in
    name order, for the list and for the search's summaries."""
    monkeypatch.setattr(redis_packages, "_SCAN", 20)
    actor = Actor("alice", "local")
    names = sorted(f"proj-{n:03d}" for n in range(300))
    for name in names:
        record = dist_file(f"{name}-1.0.tar.gz", project=name, version="1.0")
        run(metadata.add_file(record, name, {"summary": name}, actor))
    assert [p.name for p in run(metadata.project_list("main"))] == names
    summaries = [row for found in run(_batches(metadata, "main", 128)) for row in found]
    assert summaries == [(name, "1.0", name) for name in names]


def test_count_projects(metadata: MetadataStore) -> None:
    """The count the home page shows, without reading the projects: it follows uploads and
    deletions, and counts each index apart."""
    actor = Actor("alice", "local")
    assert run(metadata.count_projects("main")) == 0
    for project in ("p", "q", "r"):
        record = dist_file(f"{project}-1.0.tar.gz", project=project, version="1.0")
        run(metadata.add_file(record, project, {}, actor))
    assert run(metadata.count_projects("main")) == 3
    assert run(metadata.count_projects("other")) == 0
    run(metadata.delete_files("main", ["q-1.0.tar.gz"], actor))
    assert run(metadata.count_projects("main")) == len(run(metadata.list_projects("main"))) == 2


def test_cached_pages_and_files(metadata: MetadataStore) -> None:
    """Proxy caches round-trip, are not changes (no serial), and list what is known."""
    when = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    page = CachedPage("upstream", "demo", 200, when, '{"files": []}', "t1", '"etag"', "Tue, 1 Jan")
    missing = CachedPage("upstream", "ghost", 404, when, "{}", "t0")
    serial = run(metadata.last_serial())
    run(metadata.put_cached_page(page))
    run(metadata.put_cached_page(missing))
    assert run(metadata.get_cached_page("upstream", "demo")) == page
    assert run(metadata.get_cached_page("other", "demo")) is None
    assert run(metadata.list_cached_projects("upstream")) == ["demo"]
    newer = replace(page, fetched=when + timedelta(minutes=5), token="t2")
    run(metadata.put_cached_page(newer))
    assert run(metadata.get_cached_page("upstream", "demo")) == newer
    entry = CachedFile("upstream", "demo-1.0.tar.gz", "a" * 64, 10, when, when)
    run(metadata.put_cached_file(entry))
    assert run(metadata.get_cached_file("upstream", "demo-1.0.tar.gz")) == entry
    later = when + timedelta(hours=1)
    run(metadata.touch_cached_file("upstream", "demo-1.0.tar.gz", later))
    assert run(metadata.list_cached_files()) == [replace(entry, last_access=later)]
    run(metadata.forget_cached_file("upstream", "demo-1.0.tar.gz"))
    assert run(metadata.get_cached_file("upstream", "demo-1.0.tar.gz")) is None
    assert run(metadata.last_serial()) == serial


def test_cached_files_list_least_recently_used_first_and_keep_the_mirror_mark(
    metadata: MetadataStore,
) -> None:
    """Eviction reads the cache oldest access first; a mirror's mark survives a touch;
    forgetting twice (two nodes evicting at once) is harmless."""
    when = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    old = CachedFile("upstream", "old-1.0.tar.gz", "a" * 64, 10, when, when)
    held = CachedFile("other", "held-1.0.tar.gz", "b" * 64, 20, when, when, mirrored=True)
    new = CachedFile("upstream", "new-1.0.tar.gz", "c" * 64, 30, when, when)
    for entry in (new, held, old):
        run(metadata.put_cached_file(entry))
    run(metadata.touch_cached_file("upstream", "new-1.0.tar.gz", when + timedelta(hours=2)))
    run(metadata.touch_cached_file("other", "held-1.0.tar.gz", when + timedelta(hours=1)))
    listed = run(metadata.list_cached_files())
    assert [e.filename for e in listed] == [old.filename, held.filename, new.filename]
    assert [e.mirrored for e in listed] == [False, True, False]
    run(metadata.forget_cached_file("upstream", "old-1.0.tar.gz"))
    run(metadata.forget_cached_file("upstream", "old-1.0.tar.gz"))
    assert [e.filename for e in run(metadata.list_cached_files())] == [
        held.filename,
        new.filename,
    ]


def test_blobs_in_use_are_those_any_record_names(metadata: MetadataStore) -> None:
    """A blob is in use while a hosted file of any index names it (as its distribution,
    metadata or provenance) or a cached file of any proxy index does."""
    hosted = replace(
        dist_file("demo-1.0-py3-none-any.whl"), metadata_sha256="d" * 64, provenance_sha256="e" * 64
    )
    for index in ("main", "team"):
        run(metadata.create_index(IndexConfig(index), Actor("alice")))
    elsewhere = replace(dist_file("tool-1.0.tar.gz", project="tool"), index="team")
    run(metadata.add_file(hosted, "demo", {}, Actor("alice")))
    run(metadata.add_file(elsewhere, "tool", {}, Actor("alice")))
    when = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    run(metadata.put_cached_file(CachedFile("upstream", "x-1.0.tar.gz", "f" * 64, 1, when, when)))
    asked = {hosted.sha256, "d" * 64, "e" * 64, elsewhere.sha256, "f" * 64, "0" * 64}
    assert run(metadata.blobs_in_use(asked)) == asked - {"0" * 64}
    assert run(metadata.blobs_in_use(set())) == set()
    run(metadata.forget_cached_file("upstream", "x-1.0.tar.gz"))
    assert run(metadata.blobs_in_use({"f" * 64, hosted.sha256})) == {hosted.sha256}


def test_pinned_files_keep_the_first_hash(metadata: MetadataStore) -> None:
    """The first sha256 of a filename stays pinned, per index and project; not a change."""
    serial = run(metadata.last_serial())
    first = {"demo-1.0.tar.gz": "a" * 64, "demo-1.1.tar.gz": "b" * 64}
    assert run(metadata.pin_files("upstream", "demo", first)) == first
    later = {"demo-1.0.tar.gz": "c" * 64, "demo-2.0.tar.gz": "d" * 64}
    assert run(metadata.pin_files("upstream", "demo", later)) == {
        "demo-1.0.tar.gz": "a" * 64,
        "demo-2.0.tar.gz": "d" * 64,
    }
    assert run(metadata.pin_files("other", "demo", later)) == later
    assert run(metadata.pin_files("upstream", "demo", {})) == {}
    assert run(metadata.last_serial()) == serial


def test_mirror_runs_keep_the_last_run_of_each_job(metadata: MetadataStore) -> None:
    """A job's run replaces its previous one; runs list by job name; none is a change."""
    when = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    serial = run(metadata.last_serial())
    assert run(metadata.list_mirror_runs()) == []
    first = MirrorRun("pypi-nightly", "upstream", when, when + timedelta(minutes=3), True,
                      files=12, bytes=34_567, message="12 files")  # fmt: skip
    other = MirrorRun("acme-hourly", "acme", when, when, False, failed=2, message="HTTP 503")
    run(metadata.put_mirror_run(first))
    run(metadata.put_mirror_run(other))
    assert run(metadata.list_mirror_runs()) == [other, first]
    later = replace(first, started=when + timedelta(days=1), finished=when + timedelta(days=1),
                    ok=False, files=0, bytes=0, failed=1, message="hash mismatch")  # fmt: skip
    run(metadata.put_mirror_run(later))
    assert run(metadata.list_mirror_runs()) == [other, later]
    assert run(metadata.last_serial()) == serial
    assert run(metadata.changes_since(0)) == []


def test_mirror_job_claims_are_leases(metadata: MetadataStore) -> None:
    """One claim at a time until its lease ends or it is released; jobs are independent."""
    start = datetime(2026, 3, 4, 5, 0, 0, tzinfo=UTC)
    until = start + timedelta(minutes=10)
    assert run(metadata.claim_mirror_job("nightly", start, until))
    assert not run(metadata.claim_mirror_job("nightly", start, until))
    assert not run(metadata.claim_mirror_job("nightly", until - timedelta(microseconds=1), until))
    assert run(metadata.claim_mirror_job("hourly", start, until))
    # A lease ends at its until: a claim at that instant or later takes over.
    assert run(metadata.claim_mirror_job("nightly", until, until + timedelta(minutes=10)))
    assert not run(metadata.claim_mirror_job("nightly", until, until + timedelta(minutes=20)))
    # The same instant in another timezone is the same instant.
    east = timezone(timedelta(hours=5))
    later = (until + timedelta(minutes=5)).astimezone(east)
    assert not run(metadata.claim_mirror_job("nightly", later, later + timedelta(hours=1)))
    run(metadata.release_mirror_job("nightly"))
    assert run(metadata.claim_mirror_job("nightly", later, later + timedelta(hours=1)))
    run(metadata.release_mirror_job("never-claimed"))
    assert run(metadata.last_serial()) == 0


_CLAIMER = """
import asyncio, datetime, pathlib, sys
from ministry.storage.redis import RedisMetadataStore
from ministry.storage.sqlite import SqliteMetadataStore

async def main(database, now):
    if database.startswith("redis://"):
        store = RedisMetadataStore(database)
    else:
        store = SqliteMetadataStore(pathlib.Path(database))
    await store.open()
    start = datetime.datetime.fromisoformat(now)
    won = await store.claim_mirror_job("nightly", start, start + datetime.timedelta(hours=1))
    await store.close()
    print(won)

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", sorted(METADATA_STORES))
def test_racing_processes_claim_a_job_once(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Processes claiming one job at the same instant: exactly one runs it."""
    if backend == "sqlite":
        database = str(tmp_path / "ministry.sqlite3")
        store = SqliteMetadataStore(Path(database))
        run(store.open())
        run(store.close())
    else:
        database = f"{request.getfixturevalue('redis_url')}?prefix=claim{secrets.token_hex(6)}"
    start = datetime(2026, 3, 4, 5, 0, 0, tzinfo=UTC).isoformat()
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _CLAIMER, database, start],
            stdout=subprocess.PIPE,
            text=True,
            env=_racer_environment(),
        )
        for _ in range(6)
    ]
    outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in racers)
    assert outcomes == ["False"] * 5 + ["True"]


def _racer_environment() -> dict[str, str]:
    """The test support modules importable, and ministry from wherever this run takes it."""
    paths = [str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


_RACER = """
import asyncio, pathlib, sys
from ministry.core.models import Actor
from ministry.storage.sqlite import SqliteMetadataStore
from support.records import dist_file

async def main(database, content):
    store = SqliteMetadataStore(pathlib.Path(database))
    await store.open()
    file = dist_file("race-1.0.tar.gz", project="race", sha=content)
    result = await store.add_file(file, "race", {}, Actor(content))
    await store.close()
    print(result.outcome.name)

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.mark.slow
def test_racing_processes_have_one_winner(tmp_path: Path) -> None:
    """docs/security.md, "Hostile uploads": processes publishing one filename with other bytes:
    exactly one wins."""
    database = tmp_path / "ministry.sqlite3"
    store = SqliteMetadataStore(database)
    run(store.open())
    run(store.close())
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(database), f"bytes-{n}"],
            stdout=subprocess.PIPE,
            text=True,
            env=_racer_environment(),
        )
        for n in range(6)
    ]
    outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in racers)
    assert outcomes == ["ADDED"] + ["FILENAME_TAKEN"] * 5


def test_racing_redis_clients(redis_url: str) -> None:
    """Writers with connections of their own (as on several nodes): exactly one wins a
    filename, no upload of another file of the same project is lost, serials never repeat."""
    url = f"{redis_url}?prefix=race{secrets.token_hex(6)}"
    stores = [RedisMetadataStore(url) for _ in range(8)]

    async def race() -> tuple[list[AddFileOutcome], list[int]]:
        same = await asyncio.gather(
            *(
                store.add_file(
                    dist_file("race-1.0.tar.gz", project="race", sha=f"b{n}"),
                    "race",
                    {},
                    Actor(f"n{n}"),
                )
                for n, store in enumerate(stores)
            )
        )
        different = await asyncio.gather(
            *(
                store.add_file(
                    dist_file(f"race-2.0-{n}-py3-none-any.whl", project="race", version="2.0"),
                    "race", {}, Actor(f"n{n}"),
                )
                for n, store in enumerate(stores)
            )
        )  # fmt: skip
        return [r.outcome for r in same], [r.file.serial for r in different]

    try:
        outcomes, serials = run(race())
        files = run(stores[0].list_files("main", NormalizedName("race")))
        project = run(stores[0].get_project("main", NormalizedName("race")))
    finally:
        for store in stores:
            run(store.close())
    assert sorted(o.name for o in outcomes) == ["ADDED"] + ["FILENAME_TAKEN"] * 7
    assert len(files) == 1 + 8
    assert len(set(serials)) == 8
    assert project is not None and project.last_serial == max(serials)


def test_a_redis_change_overtaken_after_its_reads_starts_again_from_them(redis_url: str) -> None:
    """A change's reads are made in one round trip after the WATCH, on another connection
    (``Transaction.snapshot``); another node committing between them and the EXEC must
    make the change start again from fresh reads, or its write would be based on a value
    that is no longer there (a lost update)."""
    url = f"{redis_url}?prefix=overtaken{secrets.token_hex(6)}"
    first, second = RedisMetadataStore(url), RedisMetadataStore(url)
    counter = first.key("counter")
    seen: list[str | None] = []

    def increment(store: RedisMetadataStore) -> Callable[[Any], Awaitable[None]]:
        """Add one to the counter, in a change that reads it first."""

        async def work(tx: Any) -> None:
            if store is first:
                seen.append(tx.read[0])
                if len(seen) == 1:  # the other node commits between these reads and EXEC
                    await second.change(increment(second), reads=lambda p: p.get(counter))
            value = int(tx.read[0] or 0) + 1
            tx.log(Actor("counter"), "count", "main", detail=str(value))
            tx.write(lambda p: p.set(counter, value))

        return work

    try:
        run(first.change(increment(first), reads=lambda p: p.get(counter)))
        total = run(first.redis.get(counter))
        changes = run(first.changes_since(0))
    finally:
        run(first.close())
        run(second.close())
    assert seen == [None, "1"]  # the first attempt's read was overtaken, the second saw it
    assert total == "2"
    assert [c.detail for c in changes] == ["1", "2"]


def test_a_burst_of_redis_changes_on_one_node_waits_its_turns_past_the_deadline(
    redis_url: str,
) -> None:
    """A node's changes take turns; the wait for a turn is not an attempt's deadline, so
    changes queued behind a turn held longer than ``redis_timeout`` all land while Redis
    answers. The turn is held by the test rather than by a slow burst, so the wait is
    certain to outlast the deadline while each attempt keeps ample time of its own on a
    busy machine."""
    timeout = 0.5
    url = f"{redis_url}?prefix=burst{secrets.token_hex(6)}"
    store = RedisMetadataStore(url, RedisOptions(timeout=timeout))

    async def burst() -> list[AddFileResult]:
        await store.open()
        await store._turns.acquire()  # another change of this node, slow to finish
        queued = [
            asyncio.ensure_future(
                store.add_file(
                    dist_file(f"burst-1.0-{n}-py3-none-any.whl", project="burst"),
                    "burst", {}, Actor("alice"),
                )
            )
            for n in range(100)
        ]  # fmt: skip
        await asyncio.sleep(timeout * 2)
        assert not any(change.done() for change in queued)
        store._turns.release()
        return await asyncio.gather(*queued)

    try:
        results = run(burst())
        files = run(store.list_files("main", NormalizedName("burst")))
    finally:
        run(store.close())
    assert {r.outcome for r in results} == {AddFileOutcome.ADDED}
    assert len(files) == 100


def test_redis_url_keeps_the_client_options_beside_the_prefix(redis_url: str) -> None:
    """``prefix`` is ours; every other query parameter reaches redis-py unchanged."""
    prefix = f"opt{secrets.token_hex(6)}"
    store = RedisMetadataStore(f"{redis_url}?socket_timeout=7&prefix={prefix}")

    async def use() -> list[str]:
        await store.open()
        await store.add_file(dist_file("opt-1.0.tar.gz", project="opt"), "opt", {}, Actor("a"))
        return list(await store.redis.keys(f"{prefix}:*"))

    try:
        keys = run(use())
        assert store.redis.connection_pool.connection_kwargs["socket_timeout"] == 7.0
    finally:
        run(store.close())
    assert keys


_POPULATED = datetime(2026, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)


async def _populate(store: MetadataStore) -> None:
    """A little of everything a store holds."""
    when = _POPULATED
    await store.create_index(IndexConfig("main", uploaders=("@all",)), Actor("cli"))
    await store.create_index(
        IndexConfig("team/dev", bases=("main",), private=True, readers=("@qa",),
                    routes=(Route("acme-*", "main"),)),
        Actor("cli"),
    )  # fmt: skip
    await store.create_index(
        IndexConfig("upstream", kind="proxy", upstreams=(Upstream("http://127.0.0.1:9/simple/"),)),
        Actor("cli"),
    )
    await store.add_user(User("alice", "$argon2id$h", when, is_admin=True), Actor("cli"))
    await store.add_user(User("bob", "$argon2id$i", when, disabled=True), Actor("cli"))
    await store.create_group("qa", Actor("cli"))
    await store.set_group_members("qa", ["alice", "bob"], [], Actor("cli"))
    token = Token("00000000000000cc", "alice", "h", when, "ci", when + timedelta(days=3), None,
                  False, "team/dev", ("demo",))  # fmt: skip
    await store.add_token(token, Actor("alice", "10.1.2.3"))
    await store.touch_token(token.token_id, when + timedelta(hours=1))
    for name, version in (("demo-1.0.tar.gz", "1.0"), ("demo-1.1.tar.gz", "1.1")):
        file = replace(
            dist_file(name, version=version), metadata_sha256="d" * 64, provenance_sha256="c" * 64
        )
        await store.add_file(file, "Demo", {"summary": version}, Actor("alice"))
    await store.add_file(replace(dist_file("demo-2.0.tar.gz", version="2.0"), index="team/dev"),
                         "Demo", {}, Actor("bob"))  # fmt: skip
    await store.add_file(
        dist_file("tool-1.0.tar.gz", project="tool"), "tool", {}, Actor("alice"),
        publisher=Publisher("alice", frozenset({"alice"})),
    )  # fmt: skip
    await store.add_role(
        ProjectRole("main", NormalizedName("tool"), "@qa", "maintainer"), Actor("alice")
    )
    await store.set_yanked("main", ["demo-1.1.tar.gz"], "broken", Actor("alice"))
    await store.delete_files("main", ["demo-1.0.tar.gz"], Actor("alice"))
    await store.put_cached_page(CachedPage("upstream", "six", 200, when, "{}", "t", '"e"', "x"))
    await store.put_cached_file(CachedFile("upstream", "six-1.whl", "e" * 64, 9, when, when))
    await store.pin_files("upstream", "six", {"six-1.whl": "e" * 64, "six-2.whl": "f" * 64})
    await store.put_mirror_run(
        MirrorRun("nightly", "upstream", when, when + timedelta(seconds=5), True, 1, 9, 0, "ok")
    )
    await store.claim_mirror_job("nightly", when, when + timedelta(hours=1))
    await store.add_publisher(_trusted("p-main", environment="pypi"), Actor("alice"))
    await store.add_publisher(_trusted("p-dev", "tool", "team/dev", provider="gitlab",
                                       issuer="https://gitlab.example", owner=None),
                              Actor("alice"))  # fmt: skip
    await store.pin_publisher("p-main", (("repository_id", "7"), ("repository_owner_id", "8")))
    await store.add_publish_token(_minted("00000000000000dd", "p-main"), Actor("github:x"))
    await store.use_jti(_ISSUER, "jti-populated", datetime.now(UTC) + timedelta(minutes=5))


async def _exported(store: MetadataStore) -> list[str]:
    return sorted(
        [
            json.dumps([kind, record], sort_keys=True)
            async for kind, record in store.export_records()
        ]
    )


@pytest.mark.slow
@pytest.mark.parametrize("order", [("sqlite", "redis"), ("redis", "sqlite")])
def test_export_and_import_move_everything(
    order: tuple[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """``ministry migrate`` moves every value with its serial, either way, and back again."""
    first, second = order
    source = METADATA_STORES[first](tmp_path / "a", request)
    target = METADATA_STORES[second](tmp_path / "b", request)
    back = METADATA_STORES[first](tmp_path / "c", request)
    for store in (source, target, back):
        run(store.open())
    try:
        run(_populate(source))
        records = run(_exported(source))
        assert len(records) > 20
        assert sum(r.startswith('["role"') for r in records) == 2
        assert sum(r.startswith('["publisher"') for r in records) == 2
        assert not run(source.claim_mirror_job("nightly", _POPULATED, _POPULATED))
        run(target.import_records(source.export_records()))
        run(back.import_records(target.export_records()))
        assert run(_exported(target)) == records
        assert run(_exported(back)) == records
        for store in (target, back):
            assert run(store.last_serial()) == run(source.last_serial())
            token = run(store.get_token("00000000000000cc"))
            assert token is not None and token.last_used is not None
            # The last run travels; the claim, a running process's lease, does not.
            assert [r.job for r in run(store.list_mirror_runs())] == ["nightly"]
            assert run(store.claim_mirror_job("nightly", _POPULATED, _POPULATED))
            pinned = run(store.get_publisher("p-main"))
            assert pinned is not None and dict(pinned.pinned)["repository_id"] == "7"
            # Minted tokens and the ids of exchanged identity tokens live minutes: they stay.
            assert run(store.get_publish_token("00000000000000dd")) is None
            expires = datetime.now(UTC) + timedelta(minutes=5)
            assert run(store.use_jti(_ISSUER, "jti-populated", expires))
            file = run(
                store.add_file(dist_file("demo-1.0.tar.gz", sha="other"), "demo", {}, Actor("x"))
            )
            assert file.outcome is AddFileOutcome.FILENAME_RETIRED
    finally:
        for store in (source, target, back):
            run(store.close())


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


def test_sweeping_removes_orphaned_temporary_directories(tmp_path: Path) -> None:
    """A bundle import killed midway leaves a directory; only a dead owner's goes."""
    live = create_temporary_directory(tmp_path, "bundle")
    (live / "acme-1.0.tar.gz").write_bytes(b"being imported")
    orphan = tmp_path / "bundle-999999999.1-orphan"
    orphan.mkdir()
    (orphan / "acme-0.9.tar.gz").write_bytes(b"left by a crash")
    assert sweep_orphans(tmp_path, "bundle") == 1
    assert (live / "acme-1.0.tar.gz").exists()
    assert not orphan.exists()


@pytest.mark.slow
def test_a_forked_process_tags_its_temporary_files_with_its_own_pid(tmp_path: Path) -> None:
    """The owner tag is computed once per process (``--processes N`` forks after the
    parent wrote temporary files): a child's files name the child, so once it is dead
    they are orphans, while the living parent's stay."""
    descriptor, parents = create_temporary(tmp_path, "upload")
    os.close(descriptor)
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        descriptor, name = create_temporary(tmp_path, "upload")
        os.write(writer, str(name).encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        childs = Path(pipe.read().decode())
    os.waitpid(child, 0)
    assert f"-{child}." in childs.name
    assert sweep_orphans(tmp_path, "upload") == 1
    assert parents.exists()
    assert not childs.exists()


def test_healthy_stores_pass_their_checks(metadata: MetadataStore, blobs: BlobStore) -> None:
    """``check`` (what ``/-/ready`` asks) passes on stores that answer and take writes."""
    run(metadata.check())
    run(blobs.check())


def test_an_unreachable_redis_is_unavailable() -> None:
    """Nothing listening: a 503-class error for reads and checks, naming no host or port."""
    (port,) = free_ports(1)
    store = RedisMetadataStore(f"redis://127.0.0.1:{port}/0")
    for operation in (store.last_serial, store.check, lambda: store.list_projects("main")):
        with pytest.raises(StorageUnavailable) as caught:
            run(operation())
        assert str(port) not in caught.value.message
        assert isinstance(caught.value.__cause__, Exception)  # the cause, for the log
    run(store.close())


# -- project roles (docs/security.md, "Project ownership") ---------------------------------

_DEMO = NormalizedName("demo")


def _publisher(user: str, *groups: str) -> Publisher:
    return Publisher(user, frozenset({user, "@all", *(f"@{g}" for g in groups)}))


def _roles(store: MetadataStore, project: NormalizedName = _DEMO) -> list[tuple[str, str]]:
    return [(r.principal, r.role) for r in run(store.list_roles("main", project))]


def test_the_first_publisher_owns_a_project(metadata: MetadataStore) -> None:
    """The owner row comes with the first file; others are refused until made maintainers."""
    first = run(metadata.add_file(dist_file("demo-1.0.tar.gz"), "demo", {}, Actor("alice"),
                                  publisher=_publisher("alice")))  # fmt: skip
    assert first.outcome is AddFileOutcome.ADDED
    assert _roles(metadata) == [("alice", "owner")]
    serial = run(metadata.last_serial())
    wheel = dist_file("demo-1.0-py3-none-any.whl")
    refused = run(metadata.add_file(wheel, "demo", {}, Actor("bob"), publisher=_publisher("bob")))
    assert refused.outcome is AddFileOutcome.NOT_PERMITTED
    assert run(metadata.get_file("main", wheel.filename)) is None
    assert run(metadata.last_serial()) == serial
    role = ProjectRole("main", _DEMO, "@team", "maintainer")
    assert run(metadata.add_role(role, Actor("alice")))
    assert not run(metadata.add_role(role, Actor("alice")))
    added = run(metadata.add_file(wheel, "demo", {}, Actor("bob"),
                                  publisher=_publisher("bob", "team")))  # fmt: skip
    assert added.outcome is AddFileOutcome.ADDED
    assert _roles(metadata) == [("alice", "owner"), ("@team", "maintainer")]
    changes = run(metadata.changes_since(0))
    assert [(c.action, c.actor, c.detail) for c in changes if "-" in c.action][:3] == [
        ("add-owner", "alice", "alice"), ("add-file", "alice", None),
        ("add-maintainer", "alice", "@team"),
    ]  # fmt: skip


def test_the_last_owner_stays(metadata: MetadataStore) -> None:
    """An owner is removed or demoted only while another owner remains."""
    run(metadata.add_file(dist_file("demo-1.0.tar.gz"), "demo", {}, Actor("alice"),
                          publisher=_publisher("alice")))  # fmt: skip
    alice = ProjectRole("main", _DEMO, "alice", "owner")
    with pytest.raises(Conflict, match="'alice' is the last owner"):
        run(metadata.remove_role(alice, Actor("alice")))
    with pytest.raises(Conflict, match="last owner"):
        run(metadata.add_role(replace(alice, role="maintainer"), Actor("alice")))
    with pytest.raises(NotFound, match="'carol' is no owner"):
        run(metadata.remove_role(replace(alice, principal="carol"), Actor("alice")))
    run(metadata.add_role(replace(alice, principal="carol"), Actor("alice")))
    run(metadata.add_role(replace(alice, role="maintainer"), Actor("carol")))
    assert _roles(metadata) == [("carol", "owner"), ("alice", "maintainer")]
    run(metadata.remove_role(replace(alice, role="maintainer"), Actor("carol")))
    assert _roles(metadata) == [("carol", "owner")]
    assert [c.action for c in run(metadata.changes_since(0))][-3:] == [
        "add-owner",
        "add-maintainer",
        "remove-maintainer",
    ]


def test_roles_outlive_the_files_and_die_with_the_index(metadata: MetadataStore) -> None:
    """Deleting every file keeps the name its owners'; deleting the index frees it."""
    run(metadata.create_index(IndexConfig("main"), Actor("cli")))
    run(metadata.add_file(dist_file("demo-1.0.tar.gz"), "demo", {}, Actor("alice"),
                          publisher=_publisher("alice")))  # fmt: skip
    run(metadata.delete_files("main", ["demo-1.0.tar.gz"], Actor("alice")))
    assert run(metadata.get_project("main", _DEMO)) is None
    again = dist_file("demo-2.0.tar.gz", version="2.0")
    refused = run(metadata.add_file(again, "demo", {}, Actor("bob"), publisher=_publisher("bob")))
    assert refused.outcome is AddFileOutcome.NOT_PERMITTED
    run(metadata.delete_index("main", Actor("cli")))
    assert _roles(metadata) == []


def test_who_owns_a_new_project(metadata: MetadataStore) -> None:
    """An import (no owner) leaves it to the admins; a refused first file makes no owner."""
    run(metadata.add_file(dist_file("demo-1.0.tar.gz"), "demo", {}, Actor("cli:root"),
                          publisher=Publisher(None, None)))  # fmt: skip
    assert _roles(metadata) == []
    wheel = dist_file("demo-1.0-py3-none-any.whl")
    refused = run(metadata.add_file(wheel, "demo", {}, Actor("bob"), publisher=_publisher("bob")))
    assert refused.outcome is AddFileOutcome.NOT_PERMITTED
    admin = run(
        metadata.add_file(wheel, "demo", {}, Actor("root"), publisher=Publisher("root", None))
    )
    assert admin.outcome is AddFileOutcome.ADDED and _roles(metadata) == []
    # The same bytes under another project's name: refused, and the project gets no owner.
    copy = dist_file("other-1.0.tar.gz", project="other", sha="demo-1.0.tar.gz")
    taken = run(metadata.add_file(copy, "other", {}, Actor("bob"), publisher=_publisher("bob")))
    assert taken.outcome is AddFileOutcome.CONTENT_TAKEN
    assert _roles(metadata, NormalizedName("other")) == []


_OWNER_RACER = """
import asyncio, pathlib, sys
from ministry.core.models import Actor, Publisher
from ministry.storage.sqlite import SqliteMetadataStore
from support.records import dist_file

async def main(database, user):
    store = SqliteMetadataStore(pathlib.Path(database))
    await store.open()
    file = dist_file(f"race-1.0-{user}-py3-none-any.whl", project="race")
    publisher = Publisher(user, frozenset({user, "@all"}))
    result = await store.add_file(file, "race", {}, Actor(user), publisher=publisher)
    await store.close()
    print(result.outcome.name)

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.mark.slow
def test_racing_processes_make_one_owner(tmp_path: Path) -> None:
    """Users in separate processes creating one project with their own files: one owns it."""
    database = tmp_path / "ministry.sqlite3"
    store = SqliteMetadataStore(database)
    run(store.open())
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _OWNER_RACER, str(database), f"user{n}"],
            stdout=subprocess.PIPE, text=True, env=_racer_environment(),
        )
        for n in range(6)
    ]  # fmt: skip
    outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in racers)
    try:
        assert outcomes == ["ADDED"] + ["NOT_PERMITTED"] * 5
        roles = run(store.list_roles("main", NormalizedName("race")))
        files = run(store.list_files("main", NormalizedName("race")))
    finally:
        run(store.close())
    assert len(roles) == 1 and roles[0].role == "owner"
    assert [f.filename for f in files] == [f"race-1.0-{roles[0].principal}-py3-none-any.whl"]


def test_racing_redis_clients_make_one_owner(redis_url: str) -> None:
    """The same race between Redis clients with connections of their own (several nodes)."""
    url = f"{redis_url}?prefix=owners{secrets.token_hex(6)}"
    stores = [RedisMetadataStore(url) for _ in range(6)]

    async def race(project: str, users: list[str]) -> list[AddFileOutcome]:
        results = await asyncio.gather(
            *(
                store.add_file(
                    dist_file(f"{project}-1.0-n{n}-py3-none-any.whl", project=project), project,
                    {}, Actor(user), publisher=_publisher(user),
                )
                for n, (store, user) in enumerate(zip(stores, users, strict=True))
            )
        )  # fmt: skip
        return [r.outcome for r in results]

    try:
        # One user creating a project through every node at once is never refused in it.
        alone = run(race("solo", ["solo"] * 6))
        assert alone == [AddFileOutcome.ADDED] * 6
        assert _roles(stores[0], NormalizedName("solo")) == [("solo", "owner")]
        outcomes = run(race("race", [f"u{n}" for n in range(6)]))
        roles = run(stores[0].list_roles("main", NormalizedName("race")))
        files = run(stores[0].list_files("main", NormalizedName("race")))
    finally:
        for store in stores:
            run(store.close())
    assert sorted(o.name for o in outcomes) == ["ADDED"] + ["NOT_PERMITTED"] * 5
    assert len(roles) == 1 and roles[0].role == "owner"
    assert [f.filename for f in files] == [f"race-1.0-n{roles[0].principal[1:]}-py3-none-any.whl"]


# The ``files`` columns of schema 5 (schema 7 added ``provenance_sha256``).
_SCHEMA_5_FILE_COLUMNS = (
    "index_name, filename, project, version, packagetype, python_version, requires_python, "
    "size, sha256, md5, blake2b_256, upload_time, uploader, metadata_sha256, yanked, serial"
)


def test_sqlite_upgrade_gives_projects_their_first_uploader(tmp_path: Path) -> None:
    """Schema 6: the first add-file's user owns a project, else its oldest file's uploader;
    imports (cli:…) and names with no account leave it to the index's admins."""
    database = tmp_path / "ministry.sqlite3"
    with sqlite3.connect(database) as connection:
        for statements in _MIGRATIONS[:5]:
            for statement in statements:
                connection.execute(statement)
        connection.execute("PRAGMA user_version = 5")
        for user in ("alice", "bob"):
            connection.execute(
                "INSERT INTO users (name, password_hash, created) VALUES (?, 'h', 't')", (user,)
            )
        uploads = [  # project, actor in the log (None: no entry), the file's uploader, time
            ("mine", "bob", "alice", "2026-01-01"), ("mine", "alice", "alice", "2026-01-02"),
            ("relic", "cli:root", "cli:root", "2026-01-01"),
            ("unlogged", None, "alice", "2026-01-02"), ("unlogged", None, "bob", "2026-01-01"),
            ("orphan", None, "gone", "2026-01-01"),
        ]  # fmt: skip
        for number, (project, actor, uploader, when) in enumerate(uploads):
            filename = f"{project}-{number}.tar.gz"
            connection.execute("INSERT OR IGNORE INTO projects VALUES ('main', ?, ?, ?, 1)",
                               (project, project, when))  # fmt: skip
            connection.execute(
                f"INSERT INTO files ({_SCHEMA_5_FILE_COLUMNS}) VALUES (?, ?, ?, '1', 'sdist',"  # noqa: S608
                " 'source', NULL, 1, ?, 'm', 'b', ?, ?, NULL, NULL, 1)",
                ("main", filename, project, filename, when, uploader),
            )
            if actor is not None:
                connection.execute(
                    "INSERT INTO changelog (time, actor, action, index_name, project, filename)"
                    " VALUES (?, ?, 'add-file', 'main', ?, ?)", (when, actor, project, filename),
                )  # fmt: skip
    store = SqliteMetadataStore(database)
    run(store.open())
    try:
        owners = {
            p: _roles(store, NormalizedName(p)) for p in ("mine", "relic", "unlogged", "orphan")
        }
    finally:
        run(store.close())
    assert owners == {
        "mine": [("bob", "owner")], "relic": [], "unlogged": [("bob", "owner")], "orphan": [],
    }  # fmt: skip


def test_redis_layout_1_gives_projects_their_first_uploader(redis_url: str) -> None:
    """Layout 1 (no roles) becomes 2 on open: the first add-file's user owns each project."""
    url = f"{redis_url}?prefix=layout{secrets.token_hex(6)}"
    old = RedisMetadataStore(url)
    try:
        run(old.open())
        run(old.create_index(IndexConfig("main"), Actor("cli")))
        run(old.add_user(User("alice", "h", _POPULATED), Actor("cli")))
        for project, actor in (("mine", "alice"), ("relic", "cli:root"), ("mine", "bob")):
            file = dist_file(f"{project}-{actor}.tar.gz", project=project, version=actor[-1])
            run(old.add_file(file, project, {}, Actor(actor)))
        run(old.redis.set(old.key("layout"), 1))
    finally:
        run(old.close())
    stores = [RedisMetadataStore(url) for _ in range(3)]
    try:

        async def open_all() -> None:
            await asyncio.gather(*(store.open() for store in stores))

        run(open_all())
        assert run(stores[0].redis.get(stores[0].key("layout"))) == str(LAYOUT)
        assert _roles(stores[0], NormalizedName("mine")) == [("alice", "owner")]
        assert _roles(stores[0], NormalizedName("relic")) == []
    finally:
        for store in stores:
            run(store.close())


# -- trusted publishers ---------------------------------------------------------------------

_ISSUER = "https://issuer.example"


def _trusted(
    publisher_id: str, project: str = "demo", index: str = "main", **changes: Any
) -> TrustedPublisher:
    publisher = TrustedPublisher(
        publisher_id, index, NormalizedName(project), "github", "Octo/Demo", "release.yml",
        None, _ISSUER, "alice", "alice", _POPULATED,
    )  # fmt: skip
    return replace(publisher, **changes)


def _minted(
    token_id: str, *publishers: str, expires: timedelta = timedelta(minutes=15)
) -> PublishToken:
    return PublishToken(
        token_id, "hash-" + token_id, publishers, "github:Octo/Demo", datetime.now(UTC),
        datetime.now(UTC) + expires, claims=(("ref", "refs/tags/v1"), ("run_id", "42")),
    )  # fmt: skip


def _last_change(store: MetadataStore) -> tuple[int, str, str, str | None, str | None]:
    change = run(store.changes_since(run(store.last_serial()) - 1))[-1]
    return change.serial, change.action, change.index, change.project, change.detail


def test_trusted_publishers_are_added_listed_and_removed(metadata: MetadataStore) -> None:
    """Each addition and removal is a change with its id and workflow in the audit log."""
    # Oldest first, which is not the order of their ids.
    first = _trusted("p-first", environment="pypi")
    others = [
        _trusted("p-second-of-demo", workflow="other.yml", created=_POPULATED + timedelta(1)),
        _trusted("p-tool", "tool", created=_POPULATED + timedelta(2)),
        _trusted("p-elsewhere-x", index="team/dev", created=_POPULATED + timedelta(3)),
    ]
    for publisher in [first, *others]:
        run(metadata.add_publisher(publisher, Actor("alice", "10.0.0.1")))
    serial, action, index, project, detail = _last_change(metadata)
    assert (serial, action, index, project) == (4, "add-publisher", "team/dev", "demo")
    assert detail == "p-elsewhere-x github:Octo/Demo release.yml"
    changes = run(metadata.changes_since(0))
    assert changes[0].detail == "p-first github:Octo/Demo release.yml environment pypi"
    assert (changes[0].actor, changes[0].address) == ("alice", "10.0.0.1")

    assert run(metadata.list_publishers()) == [first, *others]
    assert run(metadata.list_publishers("main")) == [first, *others[:2]]
    assert run(metadata.list_publishers("main", _DEMO)) == [first, others[0]]
    assert run(metadata.list_publishers("main", NormalizedName("none"))) == []
    assert run(metadata.get_publisher("p-tool")) == others[1]
    assert run(metadata.get_publisher("p-none")) is None

    run(metadata.remove_publisher("p-first", Actor("bob")))
    assert _last_change(metadata) == (
        5, "remove-publisher", "main", "demo",
        "p-first github:Octo/Demo release.yml environment pypi",
    )  # fmt: skip
    assert run(metadata.get_publisher("p-first")) is None
    assert run(metadata.list_publishers("main", _DEMO)) == [others[0]]
    with pytest.raises(NotFound):
        run(metadata.remove_publisher("p-first", Actor("bob")))
    assert run(metadata.last_serial()) == 5


def test_a_second_publisher_for_the_same_workflow_is_refused(metadata: MetadataStore) -> None:
    """Repository, workflow and environment are compared as the claims are, regardless of case."""
    run(metadata.add_publisher(_trusted("p-one", environment="pypi"), Actor("alice")))
    serial = run(metadata.last_serial())
    for same in (
        _trusted("p-two", environment="pypi"),
        _trusted("p-two", repository="octo/DEMO", workflow="Release.yml", environment="PyPI"),
    ):
        with pytest.raises(Conflict, match="p-one"):
            run(metadata.add_publisher(same, Actor("alice")))
    assert run(metadata.last_serial()) == serial
    assert run(metadata.get_publisher("p-two")) is None
    for publisher_id, other in (
        ("p-no-environment", {}),
        ("p-test-environment", {"environment": "test"}),
        ("p-other-workflow", {"workflow": "other.yml", "environment": "pypi"}),
        ("p-other-repository", {"repository": "octo/fork", "environment": "pypi"}),
        ("p-other-issuer", {"issuer": "https://ghe.example", "environment": "pypi"}),
        ("p-other-provider", {"provider": "gitlab", "environment": "pypi"}),
        ("p-other-project", {"project": NormalizedName("tool"), "environment": "pypi"}),
        ("p-other-index", {"index": "team/dev", "environment": "pypi"}),
    ):
        run(metadata.add_publisher(_trusted(publisher_id, **other), Actor("alice")))
    assert len(run(metadata.list_publishers())) == 9


def test_a_publisher_is_pinned_once(metadata: MetadataStore) -> None:
    """The ids its first exchange saw stay; pinning is bookkeeping, not a change."""
    run(metadata.add_publisher(_trusted("p-pin"), Actor("alice")))
    serial = run(metadata.last_serial())
    ids = (("repository_id", "1296269"), ("repository_owner_id", "583231"))
    run(metadata.pin_publisher("p-pin", ids))
    run(metadata.pin_publisher("p-pin", (("repository_id", "666"),)))
    run(metadata.pin_publisher("p-none", ids))
    assert run(metadata.get_publisher("p-pin")) == _trusted("p-pin", pinned=ids)
    assert run(metadata.list_publishers()) == [_trusted("p-pin", pinned=ids)]
    assert run(metadata.get_publisher("p-none")) is None
    assert run(metadata.last_serial()) == serial


def test_an_identity_token_is_exchanged_once(metadata: MetadataStore) -> None:
    """An id is recorded once per issuer; recording it is not a change."""
    expires = datetime.now(UTC) + timedelta(minutes=5)
    assert run(metadata.use_jti(_ISSUER, "jti-1", expires)) is True
    assert run(metadata.use_jti(_ISSUER, "jti-1", expires)) is False
    assert run(metadata.use_jti(_ISSUER, "jti-1", expires + timedelta(hours=1))) is False
    assert run(metadata.use_jti("https://gitlab.example", "jti-1", expires)) is True
    assert run(metadata.use_jti(_ISSUER, "jti-2", expires)) is True
    # Issuers and ids with colons cannot be taken for one another.
    assert run(metadata.use_jti("https://issuer.example:1", "b", expires)) is True
    assert run(metadata.use_jti("https://issuer.example", "1:b", expires)) is True
    assert run(metadata.last_serial()) == 0


def test_racing_exchanges_of_one_identity_token_have_one_winner(metadata: MetadataStore) -> None:
    """A replay sent at the same moment as the original gets False."""
    expires = datetime.now(UTC) + timedelta(minutes=5)

    async def race() -> list[bool]:
        return list(await asyncio.gather(
            *(metadata.use_jti(_ISSUER, "jti-race", expires) for _ in range(8))
        ))  # fmt: skip

    assert sorted(run(race())) == [False] * 7 + [True]


def test_expired_identity_token_ids_are_forgotten_in_sqlite(tmp_path: Path) -> None:
    """The table of used ids does not grow with every exchange ever made."""
    database = tmp_path / "ministry.sqlite3"
    store = SqliteMetadataStore(database)
    run(store.open())

    def used() -> list[str]:
        with sqlite3.connect(database) as connection:
            return [jti for (jti,) in connection.execute("SELECT jti FROM used_jtis")]

    try:
        past = datetime.now(UTC) - timedelta(seconds=1)
        assert run(store.use_jti(_ISSUER, "old", past))
        assert run(store.use_jti(_ISSUER, "new", past + timedelta(minutes=10)))
        assert used() == ["new"]
        assert run(store.use_jti(_ISSUER, "old", past))  # the verifier refuses it anyway
    finally:
        run(store.close())


def test_redis_forgets_an_identity_token_id_when_the_token_expires(redis_url: str) -> None:
    """Each id is a key that expires with its token, a second at least."""
    store = RedisMetadataStore(f"{redis_url}?prefix=jti{secrets.token_hex(6)}")
    run(store.open())
    try:
        now = datetime.now(UTC)
        assert run(store.use_jti(_ISSUER, "soon", now + timedelta(minutes=10)))
        assert run(store.use_jti(_ISSUER, "past", now - timedelta(minutes=10)))
        ttls = {}
        for jti in ("soon", "past"):
            (key,) = run(store.redis.keys(store.key("jti", "*" + jti + "*")))
            ttls[jti] = run(store.redis.ttl(key))
        assert 590 <= ttls["soon"] <= 600
        assert ttls["past"] == 1
    finally:
        run(store.close())


def test_publish_tokens_are_minted_and_burnt(metadata: MetadataStore) -> None:
    """Minting and revoking are changes audited under the first publisher's index."""
    run(metadata.add_publisher(_trusted("p-dev", index="team/dev"), Actor("alice")))
    token = _minted("0123456789abcdef", "p-dev", "p-gone")
    run(metadata.add_publish_token(token, Actor("github:Octo/Demo", "10.0.0.9")))
    assert _last_change(metadata) == (
        2, "mint-token", "team/dev", None,
        "github:Octo/Demo 0123456789abcdef ref=refs/tags/v1 run_id=42",
    )  # fmt: skip
    assert run(metadata.get_publish_token(token.token_id)) == token
    assert run(metadata.get_publish_token("fedcba9876543210")) is None

    run(metadata.revoke_publish_token(token.token_id, Actor("alice")))
    assert _last_change(metadata) == (
        3,
        "burn-token",
        "team/dev",
        None,
        "github:Octo/Demo 0123456789abcdef",
    )
    assert run(metadata.get_publish_token(token.token_id)) == replace(token, revoked=True)
    with pytest.raises(NotFound):
        run(metadata.revoke_publish_token("fedcba9876543210", Actor("alice")))

    orphan = replace(_minted("00000000000000ff", "p-gone"), claims=())
    run(metadata.add_publish_token(orphan, Actor("github:Octo/Demo")))
    minted = (4, "mint-token", "", None, "github:Octo/Demo 00000000000000ff")
    assert _last_change(metadata) == minted
    assert run(metadata.get_publish_token(orphan.token_id)) == orphan


def test_a_publish_token_is_forgotten_a_day_after_it_expired(metadata: MetadataStore) -> None:
    """Every run mints a token; the store does not keep them all."""
    old = _minted("00000000000000aa", expires=-KEPT_AFTER_EXPIRY - timedelta(seconds=5))
    recent = _minted("00000000000000bb", expires=-KEPT_AFTER_EXPIRY + timedelta(minutes=5))
    for token in (old, recent, _minted("00000000000000cc")):
        run(metadata.add_publish_token(token, Actor("github:Octo/Demo")))
    assert run(metadata.get_publish_token(old.token_id)) is None
    assert run(metadata.get_publish_token(recent.token_id)) == recent


def test_deleting_an_index_removes_its_publishers(metadata: MetadataStore) -> None:
    """A publisher left pending would create its project in an index made again by that name."""
    for index in ("main", "team/dev"):
        run(metadata.create_index(IndexConfig(index), Actor("cli")))
        run(metadata.add_publisher(_trusted(f"p-{index}", index=index), Actor("alice")))
    run(metadata.delete_index("main", Actor("cli")))
    assert [p.publisher_id for p in run(metadata.list_publishers())] == ["p-team/dev"]
