"""Promotion (services/promote.py): a release of one hosted index published in another.

``staging`` is open to alice's uploads only and ``main`` to everyone's; each test
publishes promo-demo in staging and promotes it, checking what the target holds,
what it refused, and that a refusal changed nothing.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ministry.core.models import Actor, DistFile, IndexConfig, Upstream
from ministry.core.permissions import Identity
from ministry.errors import Conflict, InvalidRequest, NotFound, PermissionDenied, StorageError
from ministry.wiring import Services
from support.distributions import make_sdist, make_wheel
from support.services import ADMIN, in_event_loop, project, started_services

ALICE = Identity("alice")
BOB = Identity("bob")
NAME = project("promo-demo")
WHEEL = "promo_demo-1.0-py3-none-any.whl"
SDIST = "promo_demo-1.0.tar.gz"
#: What a promoted file keeps of its original.
_SAME = ("sha256", "md5", "blake2b_256", "size", "metadata_sha256", "provenance_sha256",
         "requires_python", "packagetype", "python_version", "version")  # fmt: skip


async def staged(services: Services, tmp_path: Path, *, private: bool = False) -> list[DistFile]:
    """promo-demo 1.0 (a wheel and an sdist) published by alice in ``staging``."""
    config = IndexConfig("staging", uploaders=("alice",), private=private)
    await services.indexes.create(ADMIN, config)
    wheel = make_wheel(tmp_path, "promo-demo", "1.0")
    sdist = make_sdist(tmp_path, "promo-demo", "1.0")
    for path in (wheel, sdist):
        await services.uploads.import_file("staging", ALICE, path)
    return await services.metadata.list_files("staging", NAME)


async def held(services: Services, index: str = "main") -> dict[str, DistFile]:
    """The files of promo-demo in an index, by filename."""
    return {f.filename: f for f in await services.metadata.list_files(index, NAME)}


async def blob_count(services: Services) -> int:
    return len([blob async for blob in services.blobs.list_blobs()])


@in_event_loop
async def test_a_promoted_release_is_the_same_files_and_no_new_bytes(tmp_path: Path) -> None:
    """Same hashes, metadata file, provenance and release metadata; no blob written;
    the change log names alice; a yank in the source is not carried."""
    async with started_services(tmp_path / "data") as services:
        source = await staged(services, tmp_path)
        # A provenance document for the wheel, as an upload with attestations leaves one.
        provenance = await services.blobs.put_bytes(b'{"attestation_bundles": []}\n')
        wheel = next(f for f in source if f.filename == WHEEL)
        await services.metadata.delete_files("staging", [WHEEL], Actor("root"))
        with_provenance = replace(wheel, provenance_sha256=provenance)
        await services.metadata.add_file(with_provenance, "Promo-Demo", {}, Actor("alice"))
        await services.maintenance.yank(ALICE, "staging", NAME, version="1.0", reason="old")
        source = await services.metadata.list_files("staging", NAME)
        blobs, serial = await blob_count(services), await services.metadata.last_serial()

        results = await services.promote.promote(ALICE, "staging", NAME, "1.0", "main")

        assert [r.created for r in results] == [True, True]
        assert await blob_count(services) == blobs
        target = await held(services)
        assert set(target) == {WHEEL, SDIST}
        for original in source:
            copy = target[original.filename]
            for field in _SAME:
                assert getattr(copy, field) == getattr(original, field), field
            assert original.is_yanked and not copy.is_yanked
            assert copy.uploader == "alice" and copy.upload_time >= original.upload_time
        assert target[WHEEL].provenance_sha256 == provenance
        releases = {r.index: r.metadata for idx in ("staging", "main")
                    for r in await services.metadata.list_releases(idx, NAME)}  # fmt: skip
        assert releases["main"] == releases["staging"] and releases["main"]["name"]
        changes = await services.metadata.changes_since(serial)
        assert {(c.action, c.index, c.actor, c.filename) for c in changes} == {
            ("add-file", "main", "alice", WHEEL), ("add-file", "main", "alice", SDIST),
            ("add-owner", "main", "alice", None),
        }  # fmt: skip
        # The promoter owns the project it created in the target, as an uploader would.
        roles = await services.metadata.list_roles("main", NAME)
        assert [(r.principal, r.role) for r in roles] == [("alice", "owner")]


@in_event_loop
async def test_promoting_again_changes_nothing(tmp_path: Path) -> None:
    async with started_services(tmp_path / "data") as services:
        await staged(services, tmp_path)
        first = await services.promote.promote(ALICE, "staging", NAME, "1.0", "main")
        serial = await services.metadata.last_serial()
        again = await services.promote.promote(ALICE, "staging", NAME, "1.0.0", "main")
        assert [r.created for r in again] == [False, False]
        assert [r.file for r in again] == [r.file for r in first]
        assert await services.metadata.last_serial() == serial


@in_event_loop
async def test_other_bytes_under_a_filename_in_the_target_stop_it_all(tmp_path: Path) -> None:
    """The wheel would go in first, but main has the sdist's name with other bytes: 409
    before anything is added, even though main allows overwriting."""
    async with started_services(tmp_path / "data") as services:
        await staged(services, tmp_path)
        await services.indexes.update(ADMIN, "main", {"allow_overwrite": True})
        other = tmp_path / "other"
        other.mkdir()
        sdist = make_sdist(other, "promo-demo", "1.0", summary="Other bytes")
        await services.uploads.import_file("main", ALICE, sdist)
        before, serial = await held(services), await services.metadata.last_serial()
        with pytest.raises(Conflict, match=r"already has 'promo_demo-1\.0\.tar\.gz' with other"):
            await services.promote.promote(ALICE, "staging", NAME, "1.0", "main")
        assert await held(services) == before
        assert await services.metadata.last_serial() == serial


@in_event_loop
async def test_a_filename_retired_in_the_target_is_found_as_it_commits(tmp_path: Path) -> None:
    """Only the store knows a retired filename: the wheel (first by name) is promoted, the
    sdist refused, and the refusal names what went in before it."""
    async with started_services(tmp_path / "data") as services:
        await staged(services, tmp_path)
        await services.metadata.retire_filename("main", SDIST, "0" * 64)
        with pytest.raises(Conflict, match="retired the filename") as refused:
            await services.promote.promote(ALICE, "staging", NAME, "1.0", "main")
        assert f"Promoted before this: {WHEEL}." in str(refused.value)
        assert set(await held(services)) == {WHEEL}


@in_event_loop
async def test_both_sides_are_judged(tmp_path: Path) -> None:
    """A source bob may not read, a target he may not upload to, a target project that is
    alice's: each refused, nothing added."""
    async with started_services(tmp_path / "data") as services:
        await staged(services, tmp_path, private=True)
        with pytest.raises(NotFound, match="No index 'staging'"):
            await services.promote.promote(BOB, "staging", NAME, "1.0", "main")
        await services.indexes.update(ADMIN, "staging", {"readers": ("bob",)})
        await services.indexes.create(ADMIN, IndexConfig("closed", uploaders=("carol",)))
        with pytest.raises(PermissionDenied, match="may not upload to index 'closed'"):
            await services.promote.promote(BOB, "staging", NAME, "1.0", "closed")
        await services.uploads.import_file("main", ALICE, make_wheel(tmp_path, "promo-demo", "0.9"))
        with pytest.raises(PermissionDenied, match="its owners \\(alice\\)"):
            await services.promote.promote(BOB, "staging", NAME, "1.0", "main")
        token = Identity("alice", token_id="t1", token_projects=("something-else",))
        with pytest.raises(PermissionDenied, match="not allowed to upload project"):
            await services.promote.promote(token, "staging", NAME, "1.0", "main")
        assert set(await held(services)) == {"promo_demo-0.9-py3-none-any.whl"}
        assert await held(services, "closed") == {}


@in_event_loop
async def test_what_cannot_be_promoted_is_named(tmp_path: Path) -> None:
    async with started_services(tmp_path / "data") as services:
        await staged(services, tmp_path)
        await services.indexes.create(
            ADMIN,
            IndexConfig("proxy", kind="proxy", upstreams=(Upstream("http://up.example/simple/"),)),
        )
        with pytest.raises(InvalidRequest, match="the same"):
            await services.promote.promote(ALICE, "staging", NAME, "1.0", "staging")
        with pytest.raises(NotFound, match=r"no files of promo-demo 2\.0"):
            await services.promote.promote(ALICE, "staging", NAME, "2.0", "main")
        with pytest.raises(InvalidRequest, match="is a proxy: promote from a hosted index"):
            await services.promote.promote(ADMIN, "proxy", NAME, "1.0", "main")
        with pytest.raises(PermissionDenied, match="promote to a hosted index"):
            await services.promote.promote(ADMIN, "staging", NAME, "1.0", "proxy")
        assert await held(services) == {}


@in_event_loop
async def test_a_file_whose_bytes_are_missing_is_not_promoted(tmp_path: Path) -> None:
    """A record naming a missing blob would be a broken file in the target too."""
    async with started_services(tmp_path / "data") as services:
        source = await staged(services, tmp_path)
        sdist = next(f for f in source if f.filename == SDIST)
        assert await services.blobs.quarantine(sdist.sha256) is not None
        with pytest.raises(StorageError, match="missing from the blob store"):
            await services.promote.promote(ALICE, "staging", NAME, "1.0", "main")
        assert await held(services) == {}
