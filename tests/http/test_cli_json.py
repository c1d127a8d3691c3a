"""``--json`` on the commands that list things: one JSON document on stdout, the keys of
the management API, times in ISO 8601, never a secret or a password hash
(docs/operations.md, "The command line: which store, failures, exit statuses")."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from datetime import datetime
from typing import Any

import pytest

from ministry.cli.main import build_parser
from support.commands import commands
from support.distributions import make_wheel
from support.inprocess import call_cli

PROJECT = "acme-json"
UPSTREAM_PASSWORD = "upstream-secret-9"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A store with users, a token, a group, indexes, a project with an owner and a
    publisher, and a yank in the log; what the test needs to look for."""
    data = tmp_path_factory.mktemp("json") / "data"
    wheels = tmp_path_factory.mktemp("wheels")
    make_wheel(wheels, PROJECT, "1.0")

    def run(*arguments: str, stdin: str | None = None) -> str:
        result = call_cli(*arguments, "--data", str(data), stdin=stdin)
        assert result.returncode == 0, result.stderr
        return result.stdout

    run("init")
    run("user", "add", "alice", "--admin", "--password-stdin", stdin="alice-password-1\n")
    run("user", "add", "bob", "--password-stdin", stdin="bob-password-22\n")
    secret = run(
        "token", "create", "alice", "--description", "CI", "--index", "main",
        "--project", PROJECT, "--expires", "30d",
    ).strip()  # fmt: skip
    run("group", "create", "team")
    run("group", "add", "team", "alice", "bob")
    run("index", "create", "team/dev", "--bases", "main", "--uploaders", "@team")
    run(
        "index", "create", "mirror",
        "--upstream", f"https://reader:{UPSTREAM_PASSWORD}@mirror.example.test/simple/",
    )  # fmt: skip
    run("import", str(wheels))
    run("project", "add-owner", PROJECT, "alice")
    run("project", "add-maintainer", PROJECT, "@team")
    run("publisher", "add", PROJECT, "--github", "acme/acme-json", "--workflow", "release.yml")
    run("yank", PROJECT, "1.0", "--reason", "broken")
    with sqlite3.connect(data / "ministry.sqlite3") as db:
        hashes = [row[0] for row in db.execute("SELECT password_hash FROM users")]
    return {"data": data, "secret": secret, "hashes": hashes}


def listed(store: dict[str, Any], *arguments: str) -> Any:
    """The document a command prints with ``--json``, checked to be the whole output and
    free of every secret the store holds."""
    result: subprocess.CompletedProcess[str] = call_cli(
        *arguments, "--json", "--data", str(store["data"])
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    for secret in [store["secret"], *store["hashes"], UPSTREAM_PASSWORD]:
        assert secret not in result.stdout
    return json.loads(result.stdout)


def is_time(value: str) -> bool:
    """ISO 8601 with an offset: a moment, not a local time of an unknown zone."""
    return datetime.fromisoformat(value).utcoffset() is not None


def test_user_list(store: dict[str, Any]) -> None:
    users = listed(store, "user", "list")
    assert [u["name"] for u in users] == ["alice", "bob"]
    assert all(set(u) == {"name", "admin", "disabled", "created"} for u in users)
    assert [u["admin"] for u in users] == [True, False]
    assert all(is_time(u["created"]) for u in users)


def test_token_list(store: dict[str, Any]) -> None:
    (token,) = listed(store, "token", "list", "alice")
    assert set(token) == {
        "id", "user", "description", "index", "projects", "created", "expires",
        "last_used", "revoked",
    }  # fmt: skip
    assert store["secret"].startswith(f"mop_{token['id']}_")
    assert (token["user"], token["description"], token["index"]) == ("alice", "CI", "main")
    assert (token["projects"], token["last_used"], token["revoked"]) == ([PROJECT], None, False)
    assert is_time(token["created"]) and is_time(token["expires"])


def test_group_list(store: dict[str, Any]) -> None:
    assert listed(store, "group", "list") == [{"name": "team", "members": ["alice", "bob"]}]


def test_index_list(store: dict[str, Any]) -> None:
    indexes = listed(store, "index", "list")
    assert [i["name"] for i in indexes] == ["main", "mirror", "team/dev"]
    by_name = {i["name"]: i for i in indexes}
    assert by_name["team/dev"]["bases"] == ["main"]
    assert by_name["team/dev"]["uploaders"] == ["@team"]
    assert by_name["mirror"]["upstream"].endswith("@mirror.example.test/simple/")
    shown = json.loads(call_cli("index", "show", "team/dev", "--data", str(store["data"])).stdout)
    assert by_name["team/dev"] == shown  # the document `index show` prints


def test_publisher_list(store: dict[str, Any]) -> None:
    (publisher,) = listed(store, "publisher", "list")
    assert publisher["project"] == PROJECT
    assert (publisher["provider"], publisher["repository"]) == ("github", "acme/acme-json")
    assert publisher["workflow"] == "release.yml"
    assert is_time(publisher["created"])
    assert listed(store, "publisher", "list", "nothing-here") == []


def test_project_owners(store: dict[str, Any]) -> None:
    assert listed(store, "project", "owners", PROJECT) == {
        "index": "main",
        "project": PROJECT,
        "owners": ["alice"],
        "maintainers": ["@team"],
    }


def test_log_newest_first(store: dict[str, Any]) -> None:
    changes = listed(store, "log")
    serials = [c["serial"] for c in changes]
    assert serials == sorted(serials, reverse=True)
    assert changes[0]["action"] == "yank"
    assert (changes[0]["project"], changes[0]["detail"]) == (PROJECT, "broken")
    assert all(is_time(c["time"]) for c in changes)
    assert listed(store, "log", "--limit", "2") == changes[:2]
    only = listed(store, "log", "--index", "team/dev")
    assert [c["action"] for c in only] == ["add-index"]


def test_every_listing_takes_json() -> None:
    """Each ``… list`` command, ``log``, ``project owners`` and ``cache stats`` has
    ``--json``; so does no command that changes things (its output is a report for
    people)."""
    found = list(commands(build_parser()))
    listings = {
        path for path, _parser, _line in found
        if path[-1] == "list" or path in {("log",), ("project", "owners"), ("cache", "stats")}
    }  # fmt: skip
    with_json = {
        path for path, parser, _line in found
        if any("--json" in action.option_strings for action in parser._actions)
    }  # fmt: skip
    assert len(listings) >= 6
    assert with_json == listings


def test_the_log_masks_an_upstream_password(store: dict[str, Any]) -> None:
    """An index's settings in the log name its upstream; its password shows as ``***``,
    in the JSON and in the table (the log itself keeps the settings as they were)."""
    (created,) = [c for c in listed(store, "log") if c["index"] == "mirror"]
    assert created["action"] == "add-index"
    assert "reader:***@mirror.example.test" in created["detail"]
    table = call_cli("log", "--data", str(store["data"]))
    assert table.returncode == 0, table.stderr
    assert UPSTREAM_PASSWORD not in table.stdout
