"""The search follows the store: an upload with a new summary, a release deleted, a project
deleted are found (or no longer found) by the next search, before and after the changes are
frozen into the compact words, and in a process that built its words before the changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from ministry.core.models import IndexConfig
from ministry.core.permissions import Identity
from ministry.services import search
from ministry.wiring import Services
from support.distributions import make_wheel
from support.services import ADMIN, in_event_loop, project, started_services

ALICE = Identity("alice")


async def upload(
    services: Services, directory: Path, name: str, version: str, summary: str
) -> None:
    place = directory / f"{name}-{version}"
    place.mkdir(parents=True)
    await services.uploads.import_file(
        "main", ALICE, make_wheel(place, name, version, summary=summary)
    )


async def found(services: Services, query: str) -> dict[str, tuple[str, str]]:
    """Name -> (summary, version) of every hit."""
    access = await services.indexes.read_access("main", None)
    hits = await services.search.search([access], query)
    return {hit.project.name: (hit.summary, hit.version) for hit in hits}


@pytest.mark.parametrize("refreeze_after", [1, 10_000])
@in_event_loop
async def test_search_follows_uploads_deletions_and_new_summaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refreeze_after: int
) -> None:
    # 1: every change is frozen into the base at once; 10,000: they stay in the overlay.
    monkeypatch.setattr(search, "_REFREEZE_AFTER", refreeze_after)
    async with started_services(tmp_path / "data") as services:
        await services.indexes.update(ADMIN, "main", {"allow_delete": True})
        for i in range(12):
            await upload(services, tmp_path, f"kettle-{i}", "1.0", f"Boils water number {i}")
        await upload(services, tmp_path, "teapot", "1.0", "Steeps leaves")
        assert set(await found(services, "kettle")) == {f"kettle-{i}" for i in range(12)}
        assert await found(services, "steeps") == {"teapot": ("Steeps leaves", "1.0")}

        # A newer release with another summary: found by the new words, not the old.
        await upload(services, tmp_path, "teapot", "2.0", "Pours tea gracefully")
        assert await found(services, "steeps") == {}
        assert await found(services, "grace") == {"teapot": ("Pours tea gracefully", "2.0")}
        # Deleting that release brings the older summary back.
        await services.maintenance.delete(ADMIN, "main", project("teapot"), version="2.0")
        assert await found(services, "steeps") == {"teapot": ("Steeps leaves", "1.0")}
        assert await found(services, "grace") == {}

        # A project deleted is no longer found; a new one is.
        await services.maintenance.delete(ADMIN, "main", project("kettle-3"))
        await upload(services, tmp_path, "kettle-new", "0.1", "Boils water faster")
        kettles = await found(services, "kettle boils")
        assert set(kettles) == {f"kettle-{i}" for i in range(12) if i != 3} | {"kettle-new"}
        assert kettles["kettle-new"] == ("Boils water faster", "0.1")

        # Another process (a fresh search over the same store) agrees.
        fresh = search.SearchService(services.metadata, services.catalog)
        access = await services.indexes.read_access("main", None)
        again = await fresh.search([access], "kettle boils")
        assert {hit.project.name: (hit.summary, hit.version) for hit in again} == kettles


@in_event_loop
async def test_only_the_best_hits_are_returned_in_rank_order_each_project_once(
    tmp_path: Path,
) -> None:
    """Hits are kept best first as they come, ``limit`` at most: the same ones, in the
    same order, as ranking every match would give, and a project that two of the
    searched indexes show (one inherits the other) is listed once."""
    async with started_services(tmp_path / "data") as services:
        await services.indexes.create(ADMIN, IndexConfig("team", uploaders=("alice",)))
        await services.indexes.create(ADMIN, IndexConfig("child", bases=("main",)))
        names = ["brew", "brew-tools", "cold-brew", "tea-brewer", "brewery", "home-brew-kit"]
        for name in reversed(names):
            await upload(services, tmp_path, name, "1.0", "Brews things")
        team = tmp_path / "team"
        team.mkdir()
        wheel = make_wheel(team, "brew-team", "1.0", summary="Brews for teams")
        await services.uploads.import_file("team", ALICE, wheel)
        accesses = [
            await services.indexes.read_access(index, None) for index in ("main", "child", "team")
        ]
        everything = await services.search.search(accesses, "brew")
        ranked = [hit.project.name for hit in everything]
        # The exact name, then names that start with it, then names with a word that does.
        assert ranked == [
            "brew", "brew-team", "brew-tools", "brewery", "cold-brew", "home-brew-kit",
            "tea-brewer",
        ]  # fmt: skip
        for limit in (1, 3, 6):
            best = await services.search.search(accesses, "brew", limit=limit)
            assert [hit.project.name for hit in best] == ranked[:limit]
        assert await services.search.search(accesses, "brew", limit=0) == []
