"""The metadata put back from the manifests in the blob store (``services.rebuild``).

Real services on a SQLite file and a blob directory. "Lost" is a real loss: the
database files are deleted (the store came back empty), or an older copy of the
database is put back (the store came back older). The rebuild must bring back every
acknowledged change the manifests name, with the checks a change passes when it is
made, and hand out no serial twice.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

from ministry.core.manifests import KINDS
from ministry.core.models import IndexConfig
from ministry.core.negotiation import SIMPLE_JSON
from ministry.core.permissions import Identity
from ministry.errors import InvalidUpload, StorageError
from ministry.services.rebuild import RebuildReport, rebuild
from ministry.wiring import Services
from support.distributions import make_sdist, make_wheel
from support.inprocess import call_cli
from support.services import ADMIN, in_event_loop, project, started_services

ALICE = Identity("alice")
BOB = Identity("bob")
DEMO = project("rebuild-demo")
TEAM = IndexConfig("team", uploaders=("@all",), allow_delete=True, description="the team's")


class Quiet:
    """A listener that checks the kinds it hears of and counts the files."""

    def __init__(self) -> None:
        self.planned_files = 0
        self.files = 0

    def read(self, kind: str) -> None:
        assert kind in KINDS

    def planned(self, files: int) -> None:
        self.planned_files = files

    def file_done(self) -> None:
        self.files += 1


def dist(directory: Path, version: str, *, sdist: bool = False) -> Path:
    place = directory / f"{version}-{'sdist' if sdist else 'wheel'}"
    place.mkdir(parents=True)
    return (make_sdist if sdist else make_wheel)(place, DEMO, version)


def lose_everything(data: Path) -> None:
    """The metadata store comes back empty: its files are gone."""
    for path in data.glob("ministry.sqlite3*"):
        path.unlink()


def copy_database(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as origin, sqlite3.connect(target) as destination:
        origin.backup(destination)


async def state(services: Services, index: str = "team") -> dict[str, object]:
    """What readers see: the project page's files (with yanks), its roles, the index."""
    access = await services.indexes.read_access(index, None)
    page = json.loads((await services.catalog.project_page(access, DEMO, SIMPLE_JSON)).body)
    files = {f["filename"]: f.get("yanked", False) for f in page["files"]}
    roles = sorted((r.principal, r.role) for r in await services.metadata.list_roles(index, DEMO))
    return {"files": files, "roles": roles, "config": await services.indexes.get(index)}


async def history(services: Services, tmp_path: Path) -> None:
    """Changes of every kind the manifests must carry."""
    await services.indexes.create(ADMIN, TEAM)
    await services.accounts.create_user(ADMIN, "alice", "a long enough password")
    await services.accounts.create_user(ADMIN, "bob", "another long password")
    await services.accounts.create_group(ADMIN, "devs")
    await services.accounts.change_members(ADMIN, "devs", add=["alice", "bob"], remove=[])
    await services.accounts.create_token(ALICE, "alice", description="ci")
    await services.uploads.import_file("team", ALICE, dist(tmp_path, "1.0"))
    await services.uploads.import_file("team", ALICE, dist(tmp_path, "1.0", sdist=True))
    await services.uploads.import_file("team", ALICE, dist(tmp_path, "2.0"))
    await services.uploads.import_file("team", ALICE, dist(tmp_path, "3.0"))
    await services.maintenance.yank(ADMIN, "team", DEMO, version="2.0", reason="broken")
    await services.maintenance.delete(ADMIN, "team", DEMO, version="3.0")
    await services.ownership.add(ADMIN, "team", DEMO, "@devs", "maintainer")


async def rebuilt(services: Services, **options: bool) -> RebuildReport:
    listener = Quiet()
    report = await rebuild(services.bare_metadata, services.blobs, listener, **options)
    assert listener.files == listener.planned_files  # the progress reached its end
    return report


@in_event_loop
async def test_an_empty_store_gets_everything_back(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with started_services(data) as services:
        await history(services, tmp_path)
        before = await state(services)
        highest = await services.metadata.last_serial()
        tokens = await services.metadata.list_tokens("alice")
    lose_everything(data)

    async with started_services(data) as services:
        assert await services.metadata.list_users() == []
        # A node had noticed the loss and raised the serial above every manifest's.
        await services.metadata.raise_serial(highest + 100)
        generation = await services.metadata.generation()
        report = await rebuilt(services)
        # The rebuild starts a new generation all the same: nodes notice it, and drop what
        # they judged against the store while users and tokens were missing.
        assert await services.metadata.generation() != generation
        assert report.ok, report.problems
        assert report.changed["file"] == 3 and report.changed["file deleted"] == 1
        assert report.changed["yank"] == 1 and report.changed["user"] == 2
        assert await state(services) == before
        assert before["files"] == {
            "rebuild_demo-1.0-py3-none-any.whl": False,
            "rebuild_demo-1.0.tar.gz": False,
            "rebuild_demo-2.0-py3-none-any.whl": "broken",
        }
        assert before["roles"] == [("@devs", "maintainer"), ("alice", "owner")]
        assert await services.metadata.list_tokens("alice") == tokens
        groups = {g.name: g.members for g in await services.metadata.list_groups()}
        assert groups == {"devs": ("alice", "bob")}
        # No serial is handed out twice: the next change's is above every one seen.
        await services.uploads.import_file("team", ALICE, dist(tmp_path, "4.0"))
        assert await services.metadata.get_file("team", "rebuild_demo-4.0-py3-none-any.whl")
        assert await services.metadata.last_serial() > highest
        # The deleted filename stays retired for other bytes.
        (tmp_path / "other").mkdir()
        other = make_wheel(tmp_path / "other", DEMO, "3.0", files={"other.py": b"other bytes"})
        try:
            await services.uploads.import_file("team", ALICE, other)
        except InvalidUpload as refused:
            assert "previously used" in str(refused)
        else:
            raise AssertionError("a deleted filename took other bytes after the rebuild")
        # A second run finds nothing to do.
        again = await rebuilt(services)
        assert again.ok and not again.changed


@in_event_loop
async def test_an_older_store_gets_what_came_after_and_keeps_what_it_has(tmp_path: Path) -> None:
    data = tmp_path / "data"
    snapshot = tmp_path / "snapshot.sqlite3"
    async with started_services(data) as services:
        await services.indexes.create(ADMIN, TEAM)
        await services.accounts.create_user(ADMIN, "alice", "a long enough password")
        await services.uploads.import_file("team", ALICE, dist(tmp_path, "1.0"))
        await services.uploads.import_file("team", ALICE, dist(tmp_path, "2.0"))
        copy_database(data / "ministry.sqlite3", snapshot)
        # After the snapshot: an upload, a yank, a deletion, a settings change.
        await services.uploads.import_file("team", ALICE, dist(tmp_path, "3.0"))
        await services.maintenance.yank(ADMIN, "team", DEMO, version="1.0")
        await services.maintenance.delete(ADMIN, "team", DEMO, version="2.0")
        await services.indexes.update(ADMIN, "team", {"description": "changed"})
        before = await state(services)
    copy_database(snapshot, data / "ministry.sqlite3")

    async with started_services(data) as services:
        assert await state(services) != before
        dry = await rebuilt(services, dry_run=True)
        assert dry.changed["file"] == 1 and dry.changed["yank"] == 1
        assert await state(services) != before  # a dry run changes nothing
        report = await rebuilt(services)
        assert report.ok, report.problems
        assert dict(report.changed) == {
            "file": 1, "yank": 1, "file deleted": 1, "index": 1,
        }  # fmt: skip
        assert await state(services) == before


@in_event_loop
async def test_a_removed_user_stays_removed(tmp_path: Path) -> None:
    """A store that came back older than a removal loses the user again, tokens and
    memberships too; one that came back empty does not get them back."""
    data = tmp_path / "data"
    snapshot = tmp_path / "snapshot.sqlite3"
    async with started_services(data) as services:
        await services.accounts.create_user(ADMIN, "alice", "a long enough password")
        await services.accounts.create_user(ADMIN, "bob", "another long password")
        await services.accounts.create_group(ADMIN, "devs")
        await services.accounts.change_members(ADMIN, "devs", add=["alice", "bob"], remove=[])
        await services.accounts.create_token(BOB, "bob", description="ci")
        copy_database(data / "ministry.sqlite3", snapshot)
        await services.accounts.remove_user(ADMIN, "bob")
    copy_database(snapshot, data / "ministry.sqlite3")
    async with started_services(data) as services:
        assert await services.metadata.get_user("bob") is not None
        report = await rebuilt(services)
        assert report.ok, report.problems
        assert report.changed["user removed"] == 1
        assert await services.metadata.get_user("bob") is None
        assert await services.metadata.list_tokens("bob") == []
        groups = await services.metadata.list_groups()
        assert [g.members for g in groups] == [("alice",)]
    lose_everything(data)
    async with started_services(data) as services:
        report = await rebuilt(services)
        assert report.ok, report.problems
        assert [u.name for u in await services.metadata.list_users()] == ["alice"]
        assert await services.metadata.list_tokens("bob") == []


@in_event_loop
async def test_a_file_whose_blob_is_gone_is_reported_not_registered(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with started_services(data) as services:
        await services.indexes.create(ADMIN, TEAM)
        result = await services.uploads.import_file("team", ALICE, dist(tmp_path, "1.0"))
        await services.uploads.import_file("team", ALICE, dist(tmp_path, "2.0"))
        await services.blobs.quarantine(result.file.sha256)
    lose_everything(data)

    async with started_services(data) as services:
        report = await rebuilt(services)
        assert not report.ok
        (problem,) = report.problems
        assert result.file.filename in problem and "missing" in problem
        files = await services.metadata.list_files("team", DEMO)
        assert [f.filename for f in files] == ["rebuild_demo-2.0-py3-none-any.whl"]


@in_event_loop
async def test_the_server_setting_up_the_default_index_keeps_its_manifest(tmp_path: Path) -> None:
    """A server started on an empty store makes ``main`` anew at start; that must not
    replace the settings the rebuild puts back."""
    data = tmp_path / "data"
    async with started_services(data) as services:
        await services.indexes.update(ADMIN, "main", {"description": "ours", "private": True})
        wanted = await services.indexes.get("main")
    lose_everything(data)

    async with started_services(data) as services:  # starts, making a default `main`
        assert (await services.indexes.get("main")) != wanted
        report = await rebuilt(services)
        assert report.changed["index"] == 1
        assert (await services.indexes.get("main")) == wanted


@in_event_loop
async def test_a_damaged_manifest_is_counted_and_the_rest_rebuilt(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with started_services(data) as services:
        await services.indexes.create(ADMIN, TEAM)
        await services.uploads.import_file("team", ALICE, dist(tmp_path, "1.0"))
    damaged = sorted((data / "blobs" / "manifests" / "file").glob("*/*.json"))
    damaged[0].write_bytes(b'{"format": 1, "file": ')
    lose_everything(data)

    async with started_services(data) as services:
        report = await rebuilt(services)
        assert report.problems == ["1 file manifest(s) could not be read"]
        assert "team" in await services.indexes.configs()
        assert await services.metadata.list_files("team", DEMO) == []


@in_event_loop
async def test_an_upload_sent_again_writes_the_manifest_its_first_answer_lacked(
    tmp_path: Path,
) -> None:
    """The first answer failed after the commit (its manifest could not be written);
    the client sends the same bytes again and gets a success, which must not come
    before the manifest is there."""
    data = tmp_path / "data"
    wheel = dist(tmp_path, "1.0")
    async with started_services(data) as services:
        await services.indexes.create(ADMIN, TEAM)
        blocked = data / "blobs" / "manifests" / "file"
        blocked.parent.mkdir(parents=True, exist_ok=True)
        blocked.write_bytes(b"not a directory")  # the manifest cannot be written
        try:
            await services.uploads.import_file("team", ALICE, wheel)
        except StorageError:
            pass
        else:
            raise AssertionError("an upload was answered without its manifest")
        assert await services.metadata.get_file("team", wheel.name) is not None
        blocked.unlink()
        again = await services.uploads.import_file("team", ALICE, wheel)
        assert not again.created
    lose_everything(data)

    async with started_services(data) as services:
        report = await rebuilt(services)
        assert report.changed["file"] == 1
        assert await services.metadata.get_file("team", wheel.name) is not None


class Unheard:
    """A verify listener that ignores the progress."""

    def planned(self, blobs: int, size: int) -> None: ...
    def hashed(self, size: int) -> None: ...
    def checked(self) -> None: ...
    def listed(self, blobs: int) -> None: ...


@in_event_loop
async def test_verify_keeps_the_blobs_of_lost_files_and_writes_missing_manifests(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    async with started_services(data) as services:
        await services.indexes.create(ADMIN, TEAM)
        await services.accounts.create_user(ADMIN, "alice", "a long enough password")
        result = await services.uploads.import_file("team", ALICE, dist(tmp_path, "1.0"))
    lose_everything(data)

    async with started_services(data) as services:
        lost = await services.verifier.run(ADMIN, Unheard(), grace=timedelta(0))
        unregistered = {f.sha256: f for f in lost.findings if f.problem == "unregistered"}
        assert set(unregistered) == {result.file.sha256, result.file.metadata_sha256}
        assert "team/rebuild_demo-1.0-py3-none-any.whl" in unregistered[result.file.sha256].subject
        assert not [f for f in lost.findings if f.problem == "orphan"]
        assert (await rebuilt(services)).ok  # the blobs were kept: everything comes back
        assert (await services.verifier.run(ADMIN, Unheard(), grace=timedelta(0))).ok

        # A user's manifest goes missing (as for data older than manifests).
        (user,) = (data / "blobs" / "manifests" / "user").glob("*/*.json")
        user.unlink()
        missing = await services.verifier.run(ADMIN, Unheard(), grace=timedelta(0))
        (finding,) = missing.findings
        assert (finding.problem, finding.subject) == ("unjournalled", "user alice has no manifest")
        repaired = await services.verifier.run(ADMIN, Unheard(), repair=True, grace=timedelta(0))
        assert [f.action for f in repaired.findings] == ["manifest written"]
        assert user.exists()
        assert (await services.verifier.run(ADMIN, Unheard(), grace=timedelta(0))).ok


def test_the_command_puts_a_lost_store_back(tmp_path: Path) -> None:
    """``ministry rebuild --from-storage``: a dry run first, then the rebuild, then a
    run that finds nothing to do; the store it writes into may be gone entirely."""

    async def fill(data: Path) -> None:
        async with started_services(data) as services:
            await services.indexes.create(ADMIN, TEAM)
            await services.uploads.import_file("team", ALICE, dist(tmp_path, "1.0"))

    data = tmp_path / "data"
    asyncio.run(fill(data))
    lose_everything(data)

    dry = call_cli("rebuild", "--from-storage", "--dry-run", "--data", str(data))
    assert dry.returncode == 0, dry.stderr
    assert "would put back: 1 file, 1 index" in dry.stdout
    done = call_cli("rebuild", "--from-storage", "--data", str(data))
    assert done.returncode == 0, done.stderr
    assert "put back: 1 file, 1 index" in done.stdout
    assert "new serials start above" in done.stdout
    again = call_cli("rebuild", "--from-storage", "--data", str(data))
    assert "the store already holds everything the manifests name" in again.stdout
    listed = call_cli("log", "--data", str(data), "--limit", "1")
    assert "rebuild" in listed.stdout
    missing = call_cli("rebuild", "--data", str(data))
    assert missing.returncode == 2 and "--from-storage" in missing.stderr
