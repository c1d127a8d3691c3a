"""Upload outcomes: what each clash with a published file answers, and who wins a race.

The store's commit decides races (services/uploads.py). To race for certain, the
racing uploads go through an ``UploadService`` whose store holds every ``add_file``
until all the racers have reached it: each has passed every check before any of
them commits, the moment two HTTP uploads can meet at.
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ministry.core.models import DistFile
from ministry.core.permissions import Identity
from ministry.errors import FileExists, InvalidUpload, PermissionDenied, StorageUnavailable
from ministry.services.uploads import PublishResult, UploadService
from ministry.storage.protocols import BlobStore
from ministry.wiring import Services
from support.distributions import make_sdist, make_wheel
from support.services import ADMIN, in_event_loop, project, started_services

ALICE = Identity("alice")
BOB = Identity("bob")
NAME = project("upload-demo")
WHEEL = "upload_demo-1.0-py3-none-any.whl"


class _GatedStore:
    """The server's metadata store; ``add_file`` waits until ``racers`` calls have reached it."""

    def __init__(self, store: Any, racers: int) -> None:
        self._store = store
        self._racers = racers
        self.arrived = 0
        self._all_here = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def add_file(self, *args: Any, **kwargs: Any) -> Any:
        self.arrived += 1
        if self.arrived == self._racers:
            self._all_here.set()
        try:
            # Only a guard against a hang should an upload never reach its commit.
            await asyncio.wait_for(self._all_here.wait(), 30)
        except TimeoutError:
            raise AssertionError(
                f"only {self.arrived} of {self._racers} reached the commit"
            ) from None
        return await self._store.add_file(*args, **kwargs)


def racing(services: Services, racers: int = 2) -> tuple[UploadService, _GatedStore]:
    """An upload service like the server's, on its stores, whose commits meet at a gate."""
    gate = _GatedStore(services.metadata, racers)
    settings = services.settings
    uploads = UploadService(
        gate, services.blobs, services.indexes, services.scratch, settings.max_upload_size
    )
    return uploads, gate


def wheel(directory: Path, version: str = "1.0", *, body: str = "", **options: Any) -> Path:
    """A wheel of upload-demo; ``body`` changes its bytes, not its name."""
    place = directory / f"w{len(list(directory.glob('w*')))}"
    place.mkdir(parents=True)
    files = {"upload_demo/__init__.py": f"VERSION = {version!r}  # {body}\n".encode()}
    return make_wheel(place, "upload-demo", version, files=files, **options)


async def published(services: Services) -> dict[str, str]:
    """The published files of upload-demo in ``main``: filename -> sha256."""
    files = await services.metadata.list_files("main", NAME)
    return {f.filename: f.sha256 for f in files}


def no_spools_left(services: Services) -> bool:
    return not any(services.settings.spool_directory.iterdir())


# -- one upload after another ----------------------------------------------------------


@in_event_loop
async def test_uploading_the_same_file_again_is_accepted_and_changes_nothing(
    tmp_path: Path,
) -> None:
    async with started_services(tmp_path / "data") as services:
        path = wheel(tmp_path)
        first = await services.uploads.import_file("main", ALICE, path)
        serial = await services.metadata.last_serial()
        again = await services.uploads.import_file("main", ALICE, path)
        assert first.created and not again.created
        assert again.file.sha256 == first.file.sha256
        assert await services.metadata.last_serial() == serial
        assert await published(services) == {WHEEL: first.file.sha256}


@in_event_loop
async def test_other_bytes_under_a_published_filename_are_refused(tmp_path: Path) -> None:
    async with started_services(tmp_path / "data") as services:
        first = await services.uploads.import_file("main", ALICE, wheel(tmp_path))
        with pytest.raises(FileExists, match="File already exists"):
            await services.uploads.import_file("main", ALICE, wheel(tmp_path, body="changed"))
        assert await published(services) == {WHEEL: first.file.sha256}
        assert no_spools_left(services)


@in_event_loop
async def test_an_index_that_allows_overwriting_replaces_the_file(tmp_path: Path) -> None:
    async with started_services(tmp_path / "data") as services:
        await services.indexes.update(ADMIN, "main", {"allow_overwrite": True})
        await services.uploads.import_file("main", ALICE, wheel(tmp_path))
        second = await services.uploads.import_file("main", ALICE, wheel(tmp_path, body="new"))
        assert second.created
        assert await published(services) == {WHEEL: second.file.sha256}


@in_event_loop
async def test_a_second_wheel_for_the_same_tags_of_a_release_is_refused(tmp_path: Path) -> None:
    """1.0 and 1.0.0 are one release (PEP 440): its py3-none-any wheel is taken."""
    async with started_services(tmp_path / "data") as services:
        await services.uploads.import_file("main", ALICE, wheel(tmp_path, "1.0"))
        with pytest.raises(InvalidUpload, match="already has a wheel for these tags") as refused:
            await services.uploads.import_file("main", ALICE, wheel(tmp_path, "1.0.0"))
        assert refused.value.field == "content"
        # Other tags of the same release are another wheel.
        await services.uploads.import_file(
            "main", ALICE, wheel(tmp_path, "1.0.0", tag="py2-none-any")
        )
        assert set(await published(services)) == {WHEEL, "upload_demo-1.0.0-py2-none-any.whl"}


@in_event_loop
async def test_a_second_sdist_of_a_release_is_refused(tmp_path: Path) -> None:
    async with started_services(tmp_path / "data") as services:
        await services.uploads.import_file(
            "main", ALICE, make_sdist(tmp_path, "upload-demo", "1.0")
        )
        with pytest.raises(InvalidUpload, match="Only one sdist may be uploaded per release"):
            await services.uploads.import_file(
                "main", ALICE, make_sdist(tmp_path, "upload-demo", "1.0.0")
            )


@in_event_loop
async def test_the_same_bytes_under_another_filename_are_refused(tmp_path: Path) -> None:
    async with started_services(tmp_path / "data") as services:
        original = wheel(tmp_path, tag="py3-none-any")
        await services.uploads.import_file("main", ALICE, original)
        copy = tmp_path / "upload_demo-1.0-py2.py3-none-any.whl"
        shutil.copyfile(original, copy)
        with pytest.raises(FileExists, match="the same content is published as"):
            await services.uploads.import_file("main", ALICE, copy)
        assert set(await published(services)) == {WHEEL}


@in_event_loop
async def test_a_deleted_filename_takes_back_only_its_own_bytes(tmp_path: Path) -> None:
    async with started_services(tmp_path / "data") as services:
        await services.indexes.update(ADMIN, "main", {"allow_delete": True})
        path = wheel(tmp_path)
        await services.uploads.import_file("main", ALICE, path)
        await services.maintenance.delete(ALICE, "main", NAME, filename=WHEEL)
        with pytest.raises(InvalidUpload, match="previously used by a file that has since been"):
            await services.uploads.import_file("main", ALICE, wheel(tmp_path, body="other"))
        assert await published(services) == {}
        restored = await services.uploads.import_file("main", ALICE, path)
        assert restored.created
        assert set(await published(services)) == {WHEEL}


# -- races -------------------------------------------------------------------------------


async def race(services: Services, *entrants: tuple[Identity, Path]) -> list[Any]:
    """Publish every file at once, each passing every check before any commits; each
    upload's result or the exception it raised."""
    uploads, gate = racing(services, len(entrants))
    results = await asyncio.gather(
        *(uploads.import_file("main", who, path) for who, path in entrants),
        return_exceptions=True,
    )
    assert gate.arrived == len(entrants)
    return results


def one_winner(results: list[Any]) -> tuple[PublishResult, BaseException]:
    """The one upload that was published, and the error of the one that was not."""
    won = [r for r in results if isinstance(r, PublishResult)]
    lost = [r for r in results if not isinstance(r, PublishResult)]
    assert len(won) == 1 and len(lost) == 1, results
    return won[0], lost[0]


@in_event_loop
async def test_two_racing_uploads_of_one_filename_with_other_bytes_have_one_winner(
    tmp_path: Path,
) -> None:
    async with started_services(tmp_path / "data") as services:
        first, second = wheel(tmp_path, body="one"), wheel(tmp_path, body="two")
        won, lost = one_winner(await race(services, (ALICE, first), (ALICE, second)))
        assert won.created
        assert isinstance(lost, FileExists), lost
        assert "File already exists" in str(lost)
        assert await published(services) == {WHEEL: won.file.sha256}
        assert no_spools_left(services)


@in_event_loop
async def test_two_racing_uploads_of_the_same_file_both_succeed(tmp_path: Path) -> None:
    async with started_services(tmp_path / "data") as services:
        path = wheel(tmp_path)
        results = await race(services, (ALICE, path), (ALICE, path))
        assert all(isinstance(r, PublishResult) for r in results), results
        assert sorted(r.created for r in results) == [False, True]
        assert await published(services) == {WHEEL: results[0].file.sha256}


@in_event_loop
async def test_two_racing_wheels_for_the_same_tags_of_a_release_have_one_winner(
    tmp_path: Path,
) -> None:
    async with started_services(tmp_path / "data") as services:
        one, other = wheel(tmp_path, "1.0"), wheel(tmp_path, "1.0.0")
        won, lost = one_winner(await race(services, (ALICE, one), (ALICE, other)))
        assert isinstance(lost, InvalidUpload), lost
        assert "already has a wheel for these tags" in str(lost)
        assert set(await published(services)) == {won.file.filename}


@in_event_loop
async def test_two_users_racing_to_create_a_project_leave_one_owner(tmp_path: Path) -> None:
    """Each passes the role check (the project does not exist yet); the commit gives the
    project to the first and refuses the other's file."""
    async with started_services(tmp_path / "data") as services:
        alices, bobs = wheel(tmp_path, "1.0"), wheel(tmp_path, "2.0")
        won, lost = one_winner(await race(services, (ALICE, alices), (BOB, bobs)))
        assert isinstance(lost, PermissionDenied), lost
        winner = won.file.uploader
        assert winner in ("alice", "bob")
        roles = await services.ownership.roles("main", NAME)
        assert [(r.principal, r.role) for r in roles] == [(winner, "owner")]
        assert set(await published(services)) == {won.file.filename}

        # The loser is now refused at the first check, as anyone not holding a role.
        loser = BOB if winner == "alice" else ALICE
        with pytest.raises(PermissionDenied):
            await services.uploads.import_file("main", loser, wheel(tmp_path, "3.0"))


# -- an eviction of the same bytes between the put and the commit ------------------------


class _EvictedBeforeTheCommit:
    """The server's metadata store; just before ``add_file`` commits, an eviction of a
    cached file with the same bytes sets the upload's blob aside, and (``dropped``) a
    pass a grace period later deletes the set-aside copy."""

    def __init__(self, store: Any, blobs: BlobStore, *, dropped: bool) -> None:
        self._store = store
        self._blobs = blobs
        self._dropped = dropped

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def add_file(self, file: DistFile, *args: Any, **kwargs: Any) -> Any:
        assert await self._blobs.set_aside(file.sha256, datetime.now(UTC) + timedelta(seconds=5))
        if self._dropped:
            await self._blobs.drop_aside(file.sha256)
        return await self._store.add_file(file, *args, **kwargs)


@in_event_loop
async def test_an_upload_whose_blob_an_eviction_took_puts_it_back_or_is_refused(
    tmp_path: Path,
) -> None:
    """The upload checks its blob after its commit: set aside, it is put back and the
    upload succeeds; deleted already, the upload is refused (never acknowledged
    without its bytes), and sending it again stores them."""
    async with started_services(tmp_path / "data") as services:
        settings = services.settings

        def uploads(*, dropped: bool) -> UploadService:
            store = _EvictedBeforeTheCommit(services.metadata, services.blobs, dropped=dropped)
            return UploadService(
                store, services.blobs, services.indexes, services.scratch, settings.max_upload_size
            )

        async def readable(sha256: str) -> bool:
            return sha256 in {blob.sha256 async for blob in services.blobs.list_blobs()}

        kept = await uploads(dropped=False).import_file("main", ALICE, wheel(tmp_path))
        assert kept.created and await readable(kept.file.sha256)

        path = wheel(tmp_path, "2.0")
        with pytest.raises(StorageUnavailable, match="upload it again"):
            await uploads(dropped=True).import_file("main", ALICE, path)
        files = await services.metadata.list_files("main", NAME)
        (lost,) = [f for f in files if f.version == "2.0"]
        assert not await readable(lost.sha256)
        again = await services.uploads.import_file("main", ALICE, path)
        assert not again.created and again.file.sha256 == lost.sha256
        assert await readable(lost.sha256)
        assert no_spools_left(services)
