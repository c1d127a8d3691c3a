"""A metadata store that goes back in time under running services (``services.rollback``).

The "older snapshot" is a real copy of the SQLite file, taken with SQLite's backup
API, and put back the same way under the running services, as an operator's restore
of a copy would: the serial goes back, while the caches hold pages of the lost
state. Two nodes share the file: the first to look raises the serial back to where
it was, so the second finds its serial unchanged and must notice by the generation.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ministry.core.negotiation import SIMPLE_JSON
from ministry.core.permissions import Identity
from ministry.errors import AuthenticationFailed, TooManyAttempts
from ministry.services.metrics import Metrics
from ministry.services.rollback import RollbackWatch
from ministry.wiring import Services
from support.distributions import make_wheel
from support.services import ADMIN, in_event_loop, project, started_services

T = TypeVar("T")
ALICE = Identity("alice")
DEMO = project("rollback-demo")


def wheel(directory: Path, version: str) -> Path:
    place = directory / version
    place.mkdir(parents=True)
    return make_wheel(place, DEMO, version)


def copy_database(source: Path, target: Path) -> None:
    """Copy one SQLite database over another through SQLite (consistent, and seen at once
    by every connection open on the target)."""
    with sqlite3.connect(source) as origin, sqlite3.connect(target) as destination:
        origin.backup(destination)


async def versions(services: Services) -> list[str]:
    """The versions the project page shows, read as a request reads it."""
    access = await services.indexes.read_access("main", None)
    page = await services.catalog.project_page(access, DEMO, SIMPLE_JSON)
    return sorted(json.loads(page.body)["versions"])


def rollbacks(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("ministry_metadata_rollbacks_total")


@in_event_loop
async def test_a_restored_older_copy_is_noticed_and_serials_go_on_above_the_highest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    database = data / "ministry.sqlite3"
    snapshot = tmp_path / "snapshot.sqlite3"
    first_metrics, second_metrics = Metrics(), Metrics()
    async with (
        started_services(data, first_metrics) as first,
        started_services(data, second_metrics) as second,
    ):
        await first.uploads.import_file("main", ALICE, wheel(tmp_path, "1.0"))
        copy_database(database, snapshot)
        await first.uploads.import_file("main", ALICE, wheel(tmp_path, "1.1"))
        highest = await first.metadata.last_serial()
        assert await versions(first) == await versions(second) == ["1.0", "1.1"]
        assert rollbacks(first_metrics) == 0

        copy_database(snapshot, database)  # the older snapshot, back under both nodes
        assert await first.metadata.last_serial() < highest
        with caplog.at_level(logging.ERROR, logger="ministry.services.rollback"):
            assert await versions(first) == ["1.0"]  # not the page kept from before
        assert rollbacks(first_metrics) == 1
        (rollback,) = first.rollback.rollbacks
        assert rollback.seen_serial == highest > rollback.found_serial
        assert f"had seen serial {highest}" in caplog.text
        assert rollback.seen_generation in caplog.text
        # The serial is back where this node had seen it, but under a new generation.
        assert await first.metadata.last_serial() == highest
        assert await first.metadata.generation() != rollback.seen_generation

        # The second node's serial did not go back: it notices the new generation.
        assert await versions(second) == ["1.0"]
        assert rollbacks(second_metrics) == 1
        assert second.rollback.rollbacks[0].found_serial == highest

        added = await first.uploads.import_file("main", ALICE, wheel(tmp_path, "1.2"))
        assert added.file.serial > highest
        assert await versions(first) == await versions(second) == ["1.0", "1.2"]
        assert rollbacks(first_metrics) == rollbacks(second_metrics) == 1


@in_event_loop
async def test_a_rollback_forgets_the_logins_judged_against_the_old_store(tmp_path: Path) -> None:
    """While the store had lost a user, their logins failed and counted against them;
    once a rollback is noticed (as after a rebuild puts the user back), those failures
    no longer lock them out."""
    data = tmp_path / "data"
    snapshot = tmp_path / "snapshot.sqlite3"
    async with started_services(data, Metrics(), login_failures=3) as services:
        await services.uploads.import_file("main", ALICE, wheel(tmp_path, "1.0"))
        copy_database(data / "ministry.sqlite3", snapshot)
        await services.accounts.create_user(ADMIN, "carol", "a long enough password")
        await services.uploads.import_file("main", ALICE, wheel(tmp_path, "1.1"))
        copy_database(snapshot, data / "ministry.sqlite3")  # carol is lost with 1.1
        for _ in range(3):
            with pytest.raises(AuthenticationFailed):
                await services.auth.authenticate("carol", "a long enough password", "192.0.2.7")
        with pytest.raises(TooManyAttempts):
            await services.auth.authenticate("carol", "a long enough password", "192.0.2.7")
        assert await versions(services) == ["1.0"]  # the rollback is noticed
        await services.accounts.create_user(ADMIN, "carol", "a long enough password")
        carol = await services.auth.authenticate("carol", "a long enough password", "192.0.2.7")
        assert carol.user == "carol"


class Overtaken:
    """The store, but the first look at the serial and generation is overtaken: before
    its answer comes back, another request observes a serial committed after it."""

    def __init__(self, store: Any, overtake: Callable[[], Awaitable[None]]) -> None:
        self._store = store
        self._overtake: Callable[[], Awaitable[None]] | None = overtake

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def _then_overtaken(self, found: T) -> T:
        overtake, self._overtake = self._overtake, None
        if overtake is not None:
            await overtake()
        return found

    async def position(self) -> tuple[int, str]:
        return await self._then_overtaken(await self._store.position())

    async def last_serial(self) -> int:
        return await self._then_overtaken(await self._store.last_serial())


@in_event_loop
async def test_a_serial_overtaken_by_a_newer_one_observed_meanwhile_is_no_rollback(
    tmp_path: Path,
) -> None:
    """Under a stream of uploads, a request's serial may be read before another request's
    newer one and observed after it; the watch looks again, and that look may itself be
    overtaken. Only a serial below what was seen before the look began is a rollback."""
    noticed: list[None] = []
    async with started_services(tmp_path / "data", Metrics()) as services:
        await services.uploads.import_file("main", ALICE, wheel(tmp_path, "1.0"))
        stale, generation = await services.metadata.position()
        await services.uploads.import_file("main", ALICE, wheel(tmp_path, "1.1"))

        async def overtake() -> None:
            await services.uploads.import_file("main", ALICE, wheel(tmp_path, "1.2"))
            assert await watch.observe(*await services.metadata.position()) > stale + 1

        store = Overtaken(services.metadata, overtake)
        watch = RollbackWatch(store, lambda: noticed.append(None), lambda: [])
        await watch.observe(*await services.metadata.position())
        assert await watch.observe(stale, generation) == stale + 1  # what the second look read
        assert await watch.observe(*await services.metadata.position()) == stale + 2
    assert noticed == []
    assert watch.rollbacks == []
