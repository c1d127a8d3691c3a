"""``ministry migrate``: SQLite and files to Redis and S3 and back, losing nothing.

The servers here run in the test process: what is under test is the command and the
stores, not a server process (the worker's environment names its S3 server, as a
process's would).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from conftest import ALICE, BOB, add_user
from support.distributions import make_sdist, make_wheel
from support.inprocess import InProcessServer
from support.uploads import post_upload

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


@pytest.fixture
def source(tmp_path: Path) -> Iterator[InProcessServer]:
    """A server on SQLite and files, with user alice: what a migration starts from."""
    instance = InProcessServer(tmp_path / "data").start()
    add_user(instance, *ALICE)
    yield instance
    instance.stop()


def snapshot(server: InProcessServer, projects: list[str]) -> dict[str, Any]:
    """Everything a client or an administrator can see, to compare across stores."""
    seen: dict[str, Any] = {}
    with server.client() as client:
        root = client.get("/simple/", headers=JSON)
        seen["serial"] = root.headers["X-PyPI-Last-Serial"]
        seen["projects"] = sorted(p["name"] for p in root.json()["projects"])
        for index in ("", "/team/dev"):
            for project in projects:
                response = client.get(f"{index}/simple/{project}/", headers=JSON)
                files = response.json()["files"] if response.status_code == 200 else []
                seen[f"{index}/{project}"] = (
                    response.status_code,
                    response.headers.get("ETag"),
                    files,
                )
                for entry in files:
                    data = client.get(urljoin(str(response.url), entry["url"])).content
                    seen[entry["filename"]] = hashlib.sha256(data).hexdigest()
        first, second = projects
        for index, project in (("main", first), ("team/dev", second)):
            roles = client.get(f"/-/api/indexes/{index}/projects/{project}/roles")
            seen[f"roles {index} {project}"] = roles.json()
    for command in (("log", "--limit", "1000"), ("user", "list"), ("group", "list"),
                    ("index", "list"), ("token", "list", "alice")):  # fmt: skip
        result = server.cli(*command)
        assert result.returncode == 0, result.stderr
        seen[" ".join(command)] = result.stdout
    return seen


def populate(server: InProcessServer, tmp_path: Path, unique: str) -> tuple[list[str], str]:
    """Projects, files, a yank, a deletion, an index, a group, users and a token."""
    for command, stdin in (
        (("user", "add", BOB[0], "--password-stdin"), BOB[1] + "\n"),
        (("group", "create", "devs"), None),
        (("group", "add", "devs", "alice", "bob"), None),
        (("index", "create", "team/dev", "--bases", "main", "--uploaders", "@devs",
          "--allow-delete"), None),
    ):  # fmt: skip
        result = server.cli(*command, stdin=stdin)
        assert result.returncode == 0, result.stderr
    token = server.cli("token", "create", "alice", "--description", "ci").stdout.strip()
    first, second = f"{unique}-a", f"{unique}-b"
    uploads = [
        ("/legacy/", make_wheel(tmp_path, first, "1.0")),
        ("/legacy/", make_sdist(tmp_path, first, "1.0")),
        ("/legacy/", make_wheel(tmp_path, first, "2.0")),
        ("/team/dev/legacy/", make_wheel(tmp_path, second, "0.1")),
        ("/team/dev/legacy/", make_wheel(tmp_path, second, "0.2")),
    ]
    with server.client() as client:
        for url, path in uploads:
            response = post_upload(client, path, auth=("__token__", token), url=url)
            assert response.status_code == 200, response.text
    for command in (
        ("yank", first, "2.0", "--reason", "broken build"),
        ("delete", second, "0.1", "--index", "team/dev"),
        ("project", "add-maintainer", second, "@devs", "--index", "team/dev"),
    ):
        result = server.cli(*command)
        assert result.returncode == 0, result.stderr
    return [first, second], token


def migrate(source: InProcessServer, to_db: str, to_storage: str) -> str:
    result = source.cli("migrate", "--to-db", to_db, "--to-storage", to_storage)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stderr


def test_round_trip_through_redis_and_s3_keeps_everything(
    source: InProcessServer,
    shared_stores: Callable[[], dict[str, str]],
    tmp_path: Path,
    unique: str,
) -> None:
    projects, token = populate(source, tmp_path, unique)
    original = snapshot(source, projects)
    source.stop()

    shared = shared_stores()
    report = migrate(source, shared["MINISTRY_DB"], shared["MINISTRY_STORAGE"])
    assert "hashes checked" in report

    on_redis = InProcessServer(tmp_path / "redis-node", environment=shared).start()
    try:
        assert snapshot(on_redis, projects) == original
        check_secrets_and_rules(on_redis, token, tmp_path, projects)
        after_redis = snapshot(on_redis, projects)
    finally:
        on_redis.stop()

    back = tmp_path / "back"
    migrate(
        InProcessServer(tmp_path / "redis-node", environment=shared),
        f"sqlite:///{back}/ministry.sqlite3",
        f"file:///{back}/blobs",
    )
    on_sqlite = InProcessServer(back).start()
    try:
        assert snapshot(on_sqlite, projects) == after_redis
    finally:
        on_sqlite.stop()


def check_secrets_and_rules(
    server: InProcessServer, token: str, tmp_path: Path, projects: list[str]
) -> None:
    """Passwords, tokens, group grants, project roles and retired filenames survived the move."""
    first, second = projects
    again = tmp_path / "again"
    again.mkdir()
    dev = "/team/dev/legacy/"
    with server.client() as client:
        response = post_upload(client, make_wheel(again, first, "3.0"), auth=ALICE)
        assert response.status_code == 200, response.text
        response = post_upload(client, make_wheel(again, first, "3.1"), auth=("alice", "wrong"))
        assert response.status_code == 401, response.text
        response = post_upload(
            client, make_wheel(again, second, "0.3"), auth=("__token__", token), url=dev
        )
        assert response.status_code == 200, response.text
        response = post_upload(client, make_wheel(again, second, "0.4"), auth=BOB, url=dev)
        assert response.status_code == 200, response.text  # bob: one of @devs, maintainers
        response = post_upload(client, make_wheel(again, second, "0.1"), auth=BOB, url=dev)
        assert response.status_code == 400, response.text  # a deleted file's name is retired


def test_migrating_into_stores_in_use_is_refused(
    source: InProcessServer,
    shared_stores: Callable[[], dict[str, str]],
    tmp_path: Path,
    unique: str,
) -> None:
    """A second migration into the same target changes nothing and says why."""
    projects, _ = populate(source, tmp_path, unique)
    shared = shared_stores()
    migrate(source, shared["MINISTRY_DB"], shared["MINISTRY_STORAGE"])
    target = InProcessServer(tmp_path / "target", environment=shared).start()
    try:
        before = snapshot(target, projects)
        result = source.cli(
            "migrate", "--to-db", shared["MINISTRY_DB"], "--to-storage", shared["MINISTRY_STORAGE"]
        )
        assert result.returncode != 0
        assert "empty" in result.stderr
        assert "Traceback" not in result.stderr
        assert snapshot(target, projects) == before
    finally:
        target.stop()
