"""Deleting one file of a release (the release page's file form, ``ministry delete
--file``): the owners' right, as for a release, and journalled like one.

Real services on a SQLite file and a blob directory; "the store came back older" is
a copy of the database from before the deletion put back.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ministry.core.models import IndexConfig
from ministry.core.permissions import Identity
from ministry.errors import InvalidUpload, PermissionDenied
from ministry.services.rebuild import rebuild
from ministry.wiring import Services
from support.distributions import make_sdist, make_wheel
from support.services import ADMIN, in_event_loop, project, started_services

ALICE = Identity("alice")
BOB = Identity("bob")
DEMO = project("file-delete-demo")
TEAM = IndexConfig("team", uploaders=("@all",), allow_delete=True)


class Quiet:
    """A rebuild listener that hears nothing it needs to say."""

    def read(self, kind: str) -> None: ...

    def planned(self, files: int) -> None: ...

    def file_done(self) -> None: ...


async def filenames(services: Services) -> set[str]:
    return {f.filename for f in await services.metadata.list_files("team", DEMO)}


@in_event_loop
async def test_one_file_goes_for_good_and_stays_gone_after_a_rebuild(tmp_path: Path) -> None:
    data = tmp_path / "data"
    snapshot = tmp_path / "snapshot.sqlite3"
    wheel = make_wheel(tmp_path, DEMO, "1.0")
    sdist = make_sdist(tmp_path, DEMO, "1.0")
    async with started_services(data) as services:
        await services.indexes.create(ADMIN, TEAM)
        for path in (wheel, sdist):
            await services.uploads.import_file("team", ALICE, path)
        with (
            sqlite3.connect(data / "ministry.sqlite3") as origin,
            sqlite3.connect(snapshot) as copy,
        ):
            origin.backup(copy)
        with pytest.raises(PermissionDenied):  # an uploader who is no owner
            await services.maintenance.delete(BOB, "team", DEMO, version="1.0", filename=wheel.name)
        deleted = await services.maintenance.delete(
            ALICE, "team", DEMO, version="1.0", filename=wheel.name
        )
        assert [f.filename for f in deleted] == [wheel.name]
        assert await filenames(services) == {sdist.name}
    with sqlite3.connect(snapshot) as copy, sqlite3.connect(data / "ministry.sqlite3") as target:
        copy.backup(target)
    async with started_services(data) as services:
        assert await filenames(services) == {wheel.name, sdist.name}  # the older store
        report = await rebuild(services.bare_metadata, services.blobs, Quiet())
        assert report.ok, report.problems
        assert await filenames(services) == {sdist.name}
        with pytest.raises(InvalidUpload, match="since been deleted"):
            other = tmp_path / "other"
            other.mkdir()
            await services.uploads.import_file(
                "team", ALICE, make_wheel(other, DEMO, "1.0", summary="Other")
            )
