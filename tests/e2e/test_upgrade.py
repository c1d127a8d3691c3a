"""Upgrading: today's server started on a data directory that an older release wrote.

The migrations in ``ministry.storage.sqlite.schema`` run when a store is opened.
A hand-made database only shows that they run on what we think an old database
looks like; these tests start today's ``ministry serve`` on data that the older
release's own code wrote (tests/fixtures/data-schema-N, made by
tests/fixtures/make_previous_data.py), and check that a user keeps everything:
installs, sign-ins, tokens, yanks, private indexes and the audit log.

Every fixture directory kept in the repository is upgraded, so an upgrade
straight from any older release stays tested; a guard makes sure the schema just
before the newest migration always has one.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ministry.storage.sqlite.schema import _MIGRATIONS
from support.clients import new_venv, pip_install
from support.distributions import make_wheel
from support.inprocess import InProcessServer
from support.server import MinistryServer, Server
from support.uploads import post_upload

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
_DIRECTORY = re.compile(r"data-schema-(\d+)\Z")
_PRAGMA = re.compile(r"PRAGMA user_version = (\d+);\n")
_JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
_REMAKE = (
    "Make one from the commit just before your new migration: see "
    "tests/fixtures/data-schema-*/README.md, or run tests/fixtures/make_previous_data.py "
    "with the `ministry` of a checkout of that commit installed in a venv of its own."
)


def _fixture_directories() -> dict[int, Path]:
    return {
        int(match[1]): path
        for path in sorted(FIXTURES.iterdir())
        if path.is_dir() and (match := _DIRECTORY.match(path.name))
    }


@dataclass(frozen=True)
class Upgraded:
    """A running server of today on a copy of an older data directory."""

    server: Server
    facts: dict[str, Any]
    #: The audit log as the older release left it, read before the upgrade.
    old_changes: list[dict[str, Any]]

    @property
    def admin(self) -> tuple[str, str]:
        name, password = self.facts["admin"]
        return name, password

    @property
    def reader(self) -> tuple[str, str]:
        name, password = self.facts["reader"]
        return name, password


def _rebuild_database(fixture: Path, database: Path) -> None:
    """``ministry.sqlite3`` from the SQL text, ``PRAGMA user_version`` included.

    The older server left its database in WAL mode, which a dump does not keep.
    """
    connection = sqlite3.connect(database)
    try:
        connection.executescript((fixture / "metadata.sql").read_text())
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


def _changes(database: Path) -> list[dict[str, Any]]:
    connection = sqlite3.connect(database)
    try:
        rows = connection.execute(
            "SELECT serial, actor, action, index_name, project, version, filename, detail"
            " FROM changelog ORDER BY serial"
        ).fetchall()
    finally:
        connection.close()
    keys = ("serial", "actor", "action", "index", "project", "version", "filename", "detail")
    return [{**dict(zip(keys, row, strict=True)), "index": row[3] or None} for row in rows]


def _upgrade(number: int, data: Path, kind: type[Server]) -> Iterator[Upgraded]:
    fixture = _fixture_directories()[number]
    shutil.copytree(fixture / "blobs", data / "blobs")
    database = data / "ministry.sqlite3"
    _rebuild_database(fixture, database)
    old_changes = _changes(database)
    facts = json.loads((fixture / "fixture.json").read_text())
    server = kind(data).start()
    try:
        yield Upgraded(server, facts, old_changes)
    finally:
        status = server.stop()
    assert status == 0, server.log()
    assert "Traceback" not in server.log(), server.log()


_SCHEMAS = {"params": sorted(_fixture_directories()), "ids": lambda n: f"schema-{n}"}


@pytest.fixture(**_SCHEMAS)
def upgraded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Upgraded]:
    """Today's server on a fresh copy of one fixture; every test may change what it likes.

    In the test process: the stores and the migrations are under test, not a process.
    """
    yield from _upgrade(request.param, tmp_path / "data", InProcessServer)


@pytest.fixture(**_SCHEMAS)
def upgraded_process(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Upgraded]:
    """The same as a ``ministry serve`` process, for the real installers."""
    yield from _upgrade(request.param, tmp_path / "data", MinistryServer)


def _user_version(database: Path) -> int:
    connection = sqlite3.connect(database)
    try:
        (version,) = connection.execute("PRAGMA user_version").fetchone()
    finally:
        connection.close()
    return int(version)


def test_a_fixture_exists_for_the_schema_before_the_newest_migration() -> None:
    """A new migration needs data written by the release before it, or upgrades go untested."""
    previous = len(_MIGRATIONS) - 1
    assert previous in _fixture_directories(), (
        f"No tests/fixtures/data-schema-{previous}: the newest migration has no data directory "
        f"of the schema before it (user_version {previous}) to upgrade. {_REMAKE}"
    )


@pytest.mark.parametrize("number", sorted(_fixture_directories()))
def test_fixture_directories_are_named_after_their_schema(number: int) -> None:
    """The directory name, the SQL and the facts agree, so the right migrations are tested."""
    fixture = _fixture_directories()[number]
    match = _PRAGMA.match((fixture / "metadata.sql").read_text())
    assert match is not None, f"{fixture}/metadata.sql must start with its PRAGMA user_version"
    assert int(match[1]) == number, f"{fixture} holds schema {match[1]}, not {number}. {_REMAKE}"
    assert number < len(_MIGRATIONS)
    facts = json.loads((fixture / "fixture.json").read_text())
    for kind in ("wheel", "sdist"):
        sha256 = facts[kind]["sha256"]
        blob = fixture / "blobs" / "sha256" / sha256[:2] / sha256[2:4] / sha256
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == sha256


def test_the_schema_is_brought_up_to_date(upgraded: Upgraded) -> None:
    """Opening the store applies the missing migrations, and keeps every old row."""
    database = upgraded.server.data / "ministry.sqlite3"
    assert _user_version(database) == len(_MIGRATIONS)
    connection = sqlite3.connect(database)
    try:
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master")}
        (files,) = connection.execute("SELECT count(*) FROM files").fetchone()
    finally:
        connection.close()
    new_tables = {"mirror_runs", "mirror_claims", "project_roles", "publishers", "used_jtis",
                  "publish_tokens", "generation"}  # fmt: skip
    assert new_tables <= tables
    assert files == 2 + ("imported_project" in upgraded.facts)
    assert _changes(database) == upgraded.old_changes


def test_what_only_the_new_schema_has_works(upgraded: Upgraded) -> None:
    """Pages that read the mirror runs (new tables) answer on upgraded data."""
    with upgraded.server.client() as client:
        assert client.get("/-/metrics").status_code == 200
        index = upgraded.facts["private_index"]
        page = client.get(f"/-/indexes/{index}/", auth=upgraded.reader)
        assert page.status_code == 200
        assert upgraded.facts["project"] in page.text


def test_verify_finds_every_old_blob_in_place(upgraded: Upgraded) -> None:
    """``ministry verify`` (newer than the data) takes every older blob as named and sound,
    and finds that the older data has no manifests; ``--repair`` writes them (the step
    docs/operations.md asks for after an upgrade), and then all is consistent.

    Nothing uploads meanwhile, so no grace is needed: a blob it did not recognise,
    such as a metadata file stored the older way, would be quarantined at once. Data
    of a release that wrote manifests already (schema 7 on) is consistent as it is.
    """
    result = upgraded.server.cli("verify", "--grace", "0")
    if (upgraded.server.data / "blobs" / "manifests").exists():
        assert result.returncode == 0, result.stdout + result.stderr
        assert not (upgraded.server.data / "blobs" / "quarantine").exists()
        return
    assert result.returncode == 1, result.stdout + result.stderr
    *findings, summary = result.stdout.splitlines()
    assert {line.partition(":")[0] for line in findings} == {"unjournalled"}, result.stdout
    assert summary.endswith(f"{len(findings)} problems ({len(findings)} unjournalled)")
    assert f"{upgraded.facts['wheel']['filename']} has no manifest" in result.stdout
    assert upgraded.server.cli("verify", "--grace", "0", "--repair").returncode == 1
    result = upgraded.server.cli("verify", "--grace", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (upgraded.server.data / "blobs" / "quarantine").exists()


def test_pip_installs_an_old_upload(upgraded_process: Upgraded, tmp_path: Path, home: Path) -> None:
    """pip gets the wheel the older release stored, byte for byte (pip checks the hash)."""
    server, project = upgraded_process.server, upgraded_process.facts["project"]
    wheel = upgraded_process.facts["wheel"]["filename"]
    python = new_venv(tmp_path / "venv")
    result = pip_install(python, home, "--index-url", f"{server.url}/simple/", project)
    assert result.returncode == 0, result.stdout + result.stderr
    check = subprocess.run(
        [str(python), "-c", f"import {project}; print({project}.VERSION)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert check.stdout.strip() == "1.0"
    assert server.served(f"/packages/{project}/{wheel}") == 1
    assert server.served(f"/simple/{project}/") >= 1


def test_old_files_and_their_metadata_are_served(upgraded: Upgraded) -> None:
    """Both blobs and the wheel's PEP 658 metadata come out of the old blob layout."""
    project, facts = upgraded.facts["project"], upgraded.facts
    with upgraded.server.client() as client:
        page = client.get(f"/simple/{project}/", headers=_JSON).json()
        files = {f["filename"]: f for f in page["files"]}
        for kind in ("wheel", "sdist"):
            filename, sha256 = facts[kind]["filename"], facts[kind]["sha256"]
            assert files[filename]["hashes"] == {"sha256": sha256}
            body = client.get(f"/packages/{project}/{filename}").content
            assert hashlib.sha256(body).hexdigest() == sha256
        wheel = facts["wheel"]["filename"]
        metadata = client.get(f"/packages/{project}/{wheel}.metadata")
        assert metadata.status_code == 200
        assert files[wheel]["core-metadata"] == {
            "sha256": hashlib.sha256(metadata.content).hexdigest()
        }
        assert f"Name: {project}".encode() in metadata.content


def test_the_yanked_file_stays_yanked(upgraded: Upgraded) -> None:
    """A yank and its reason survive the upgrade (PEP 592 on the JSON page)."""
    project, facts = upgraded.facts["project"], upgraded.facts
    with upgraded.server.client() as client:
        page = client.get(f"/simple/{project}/", headers=_JSON).json()
    yanked = {f["filename"]: f["yanked"] for f in page["files"]}
    assert yanked == {
        facts["sdist"]["filename"]: facts["yank_reason"],
        facts["wheel"]["filename"]: False,
    }


def test_the_old_password_still_signs_in(upgraded: Upgraded) -> None:
    """Password hashes written by the older release still verify; a wrong password does not."""
    name, password = upgraded.admin
    with upgraded.server.client() as client:
        whoami = client.get("/-/api/whoami", auth=(name, password))
        assert whoami.status_code == 200, whoami.text
        assert whoami.json()["user"] == name
        assert whoami.json()["admin"] is True
        assert client.get("/-/api/whoami", auth=(name, password + "x")).status_code == 401


def test_the_old_token_still_uploads(upgraded: Upgraded, tmp_path: Path) -> None:
    """A token made by the older release uploads, and the new file gets a newer serial."""
    project = upgraded.facts["project"]
    wheel = make_wheel(tmp_path, project, "1.1")
    with upgraded.server.client() as client:
        response = post_upload(client, wheel, auth=("__token__", upgraded.facts["token"]))
        assert response.status_code == 200, response.text
        page = client.get(f"/simple/{project}/", headers=_JSON).json()
        log = client.get("/-/api/log", auth=upgraded.admin).json()["changes"]
    assert wheel.name in {f["filename"] for f in page["files"]}
    added = [c for c in log if c["filename"] == wheel.name]
    assert len(added) == 1
    assert added[0]["actor"] == upgraded.admin[0]
    assert added[0]["serial"] > max(c["serial"] for c in upgraded.old_changes)


def test_the_private_index_still_keeps_strangers_out(upgraded: Upgraded) -> None:
    """The inheriting private index: 401 anonymously, its reader sees the inherited project."""
    index, project = upgraded.facts["private_index"], upgraded.facts["project"]
    with upgraded.server.client() as client:
        anonymous = client.get(f"/{index}/simple/{project}/")
        assert anonymous.status_code == 401
        page = client.get(f"/{index}/simple/{project}/", headers=_JSON, auth=upgraded.reader)
        assert page.status_code == 200, page.text
    assert {f["filename"] for f in page.json()["files"]} == {
        upgraded.facts["wheel"]["filename"],
        upgraded.facts["sdist"]["filename"],
    }


def test_projects_are_owned_by_their_first_uploader(upgraded: Upgraded, tmp_path: Path) -> None:
    """Schema 6: the old project is alice's (she uploaded its first file), so bob, who may
    upload to main, is refused in it; an imported project is left to the index's admins."""
    project = upgraded.facts["project"]
    roles = f"/-/api/indexes/main/projects/{project}/roles"
    with upgraded.server.client() as client:
        assert client.get(roles).json()["owners"] == [upgraded.admin[0]]
        wheel = make_wheel(tmp_path, project, "1.2")
        refused = post_upload(client, wheel, auth=upgraded.reader)
        assert refused.status_code == 403, refused.text
        assert f"its owners ({upgraded.admin[0]})" in refused.text
        imported = upgraded.facts.get("imported_project")
        if imported is not None:
            document = client.get(f"/-/api/indexes/main/projects/{imported}/roles").json()
            assert document == {
                "index": "main", "project": imported, "owners": [], "maintainers": []
            }  # fmt: skip
            other = make_wheel(tmp_path, imported, "1.1")
            assert post_upload(client, other, auth=upgraded.reader).status_code == 403
            assert post_upload(client, other, auth=upgraded.admin).status_code == 200


def test_the_audit_log_keeps_the_old_entries(upgraded: Upgraded) -> None:
    """Every change the older release logged is still in the audit log, unchanged."""
    with upgraded.server.client() as client:
        response = client.get("/-/api/log", params={"limit": "1000"}, auth=upgraded.admin)
    assert response.status_code == 200, response.text
    keys = ("serial", "actor", "action", "index", "project", "version", "filename", "detail")
    logged = [{key: c[key] for key in keys} for c in response.json()["changes"]]
    assert logged[: len(upgraded.old_changes)] == upgraded.old_changes
    actions = {c["action"] for c in upgraded.old_changes}
    assert {"add-user", "add-token", "add-index", "add-file", "yank"} <= actions
