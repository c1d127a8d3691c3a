"""The management commands for indexes, groups, tokens, yanking, deleting, the log and import.

Each test runs ``ministry`` against the data directory of a running server, checks
the exit status and what was printed, and then checks over HTTP that the server
does what the command said. Refusals exit with status 2 and say why on stderr.
"""

from __future__ import annotations

import getpass
import json
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import ALICE, BOB
from support.distributions import make_sdist, make_wheel
from support.inprocess import InProcessServer, call_cli
from support.server import Server
from support.uploads import post_upload

ROOT = ("root", "root-password-1")
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
BAR = "\u2502"  # the column separator of rich's tables


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of this module's own, with an administrator (root) and users alice and bob."""
    instance = InProcessServer(tmp_path_factory.mktemp("index-commands") / "data").start()
    try:
        users = ((ROOT, ("--admin",)), (ALICE, ()), (BOB, ()))
        for (name, password), flags in users:
            result = instance.cli(
                "user", "add", name, *flags, "--password-stdin", stdin=password + "\n"
            )
            assert result.returncode == 0, result.stderr
        yield instance
    finally:
        instance.stop()


def ok(server: Server, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run a command that must succeed."""
    result = server.cli(*arguments)
    assert result.returncode == 0, (arguments, result.stdout + result.stderr)
    return result


def refused(server: Server, *arguments: str) -> str:
    """Run a command that must be refused with status 2 and nothing on stdout; its message."""
    result = server.cli(*arguments)
    assert result.returncode == 2, (arguments, result.stdout + result.stderr)
    assert result.stdout == "", (arguments, result.stdout)
    return result.stderr


def files_of(server: Server, index: str, project: str) -> dict[str, object]:
    """{filename: yanked} of a project's PEP 691 page in an index; {} when it is not there."""
    prefix = "" if index == "main" else f"/{index}"
    with server.client() as client:
        response = client.get(
            f"{prefix}/simple/{project}/", headers={"Accept": SIMPLE_JSON}, auth=ROOT
        )
    if response.status_code == 404:
        return {}
    assert response.status_code == 200, response.text
    return {f["filename"]: f["yanked"] for f in response.json()["files"]}


def upload(server: Server, index: str, path: Path, auth: tuple[str, str]) -> int:
    """POST one file to an index's upload URL; the status."""
    with server.client() as client:
        return post_upload(client, path, auth=auth, url=f"/{index}/").status_code


def rows(table: str) -> list[str]:
    """The rows of a ``ministry`` table, cells joined by single spaces (one line per row)."""
    found = []
    for line in table.splitlines():
        if BAR in line:
            cells = [" ".join(cell.split()) for cell in line.strip().strip(BAR).split(BAR)]
            if cells[0]:  # a continuation line of a wrapped cell starts empty
                found.append(" ".join(cell for cell in cells if cell))
    return found


def settings(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    document: dict[str, object] = json.loads(result.stdout)
    return document


# -- indexes --------------------------------------------------------------------------------


def test_index_create_show_list(server: Server, tmp_path: Path) -> None:
    """``index create`` prints the settings as JSON; the index answers at its own URLs."""
    created = ok(
        server, "index", "create", "ci/prod", "--uploaders", "alice",
        "--description", "release builds",
    )  # fmt: skip
    document = settings(created)
    assert document == {
        "name": "ci/prod",
        "kind": "hosted",
        "bases": [],
        "readers": [],
        "uploaders": ["alice"],
        "admins": [],
        "allow_inherit": [],
        "private": False,
        "allow_delete": False,
        "allow_overwrite": False,
        "routes": [],
        "description": "release builds",
        "upstream": None,
        "upstreams": [],
        "page_ttl": 300,
        "min_age": 0,
        "min_age_exempt": [],
        "max_cache_size": None,
    }
    assert settings(ok(server, "index", "show", "ci/prod")) == document
    listed = rows(ok(server, "index", "list").stdout)
    assert "ci/prod public alice" in listed
    assert "main public @all" in listed
    with server.client() as client:
        assert client.get("/-/api/indexes/ci/prod").json() == document
        page = client.get("/ci/prod/simple/", headers={"Accept": SIMPLE_JSON})
        assert page.status_code == 200
        assert page.json()["projects"] == []
    wheel = make_wheel(tmp_path, "ci-made", "1.0")
    assert upload(server, "ci/prod", wheel, BOB) == 403
    assert upload(server, "ci/prod", wheel, ALICE) == 200
    assert files_of(server, "ci/prod", "ci-made") == {wheel.name: False}
    assert files_of(server, "main", "ci-made") == {}
    again = refused(server, "index", "create", "ci/prod")
    assert "Index 'ci/prod' exists already" in again
    assert "No index 'nope'" in refused(server, "index", "show", "nope")


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("simple", "'simple' is a word the server's own URLs use"),
        ("team/simple", "'simple' is a word the server's own URLs use"),
        ("-", "use lower-case letters"),
        ("Team", "use lower-case letters"),
        ("a/b/c", "optionally two such parts joined by one '/'"),
        ("team/", "use lower-case letters"),
    ],
)
def test_index_create_refuses_bad_names(server: Server, name: str, why: str) -> None:
    """Names that are not URL-safe, or that would shadow the server's own paths, are refused."""
    message = refused(server, "index", "create", name)
    assert f"Invalid index name {name!r}" in message
    assert why in message
    with server.client() as client:
        names = [i["name"] for i in client.get("/-/api/indexes").json()["indexes"]]
        assert name not in names
        assert client.get("/simple/").status_code == 200


def test_index_create_refuses_unknown_bases_and_cycles(server: Server) -> None:
    """Bases and routing rules must name existing indexes, and inheritance cannot loop."""
    assert "cannot inherit from 'nope': no such index" in refused(
        server, "index", "create", "cy/one", "--bases", "main,nope"
    )
    assert "Routing rule 'x-*': no index 'nope'" in refused(
        server, "index", "create", "cy/one", "--route", "x-*=nope"
    )
    ok(server, "index", "create", "cy/one")
    ok(server, "index", "create", "cy/two", "--bases", "cy/one")
    assert "'cy/two' inherits from it" in refused(
        server, "index", "update", "cy/one", "--bases", "cy/two"
    )
    assert "'cy/one' cannot inherit from itself" in refused(
        server, "index", "update", "cy/one", "--bases", "cy/one"
    )
    assert settings(ok(server, "index", "show", "cy/one"))["bases"] == []
    assert "No index 'nope'" in refused(server, "index", "update", "nope", "--private")


def test_index_update_changes_who_may_read(server: Server) -> None:
    """``index update`` changes only the settings given; the server follows at once."""
    ok(server, "index", "create", "up/idx", "--uploaders", "alice", "--description", "kept")
    changed = settings(ok(server, "index", "update", "up/idx", "--private", "--readers", "bob"))
    assert (changed["private"], changed["readers"], changed["uploaders"]) == (
        True, ["bob"], ["alice"],
    )  # fmt: skip
    assert changed["description"] == "kept"
    with server.client() as client:
        assert client.get("/up/idx/simple/").status_code == 401
        assert client.get("/up/idx/simple/", auth=BOB).status_code == 200
        assert client.get("/up/idx/simple/", auth=ALICE).status_code == 200  # an uploader
    ok(server, "index", "update", "up/idx", "--readers", "", "--uploaders", "bob")
    with server.client() as client:
        assert client.get("/up/idx/simple/", auth=BOB).status_code == 200
        assert client.get("/up/idx/simple/", auth=ALICE).status_code == 404
    assert settings(ok(server, "index", "update", "up/idx", "--no-private"))["private"] is False
    with server.client() as client:
        assert client.get("/up/idx/simple/").status_code == 200


def test_index_delete(server: Server, tmp_path: Path) -> None:
    """An index another one inherits from (or routes to) stays; one with projects needs --force."""
    ok(server, "index", "create", "del/base", "--uploaders", "alice")
    ok(server, "index", "create", "del/child", "--bases", "del/base")
    ok(server, "index", "create", "del/router", "--route", "del-*=del/base")
    wheel = make_wheel(tmp_path, "del-lib", "1.0")
    assert upload(server, "del/base", wheel, ALICE) == 200
    assert "'del/child' inherits from 'del/base'" in refused(
        server, "index", "delete", "del/base", "--force"
    )
    assert ok(server, "index", "delete", "del/child").stdout == "Index 'del/child' deleted.\n"
    assert "'del/router' inherits from 'del/base'" in refused(server, "index", "delete", "del/base")
    ok(server, "index", "delete", "del/router")
    message = refused(server, "index", "delete", "del/base")
    assert "holds 1 projects" in message and "force" in message
    assert files_of(server, "del/base", "del-lib") == {wheel.name: False}
    ok(server, "index", "delete", "del/base", "--force")
    with server.client() as client:
        for path in ("/del/base/simple/", "/del/child/simple/", "/-/api/indexes/del/base"):
            assert client.get(path, auth=ROOT).status_code == 404, path
        # Anonymous: a missing index answers as a private one would.
        assert client.get(f"/del/base/packages/del-lib/{wheel.name}").status_code == 401
    assert "cannot be deleted" in refused(server, "index", "delete", "main")
    assert "No index 'nope'" in refused(server, "index", "delete", "nope")
    # A new index of the same name starts empty.
    ok(server, "index", "create", "del/base")
    assert files_of(server, "del/base", "del-lib") == {}


# -- groups ---------------------------------------------------------------------------------


def test_groups_grant_rights_by_membership(server: Server, tmp_path: Path) -> None:
    """``group create|add|remove|list|delete``; an index grants ``@group`` to its members."""
    assert ok(server, "group", "create", "qa").stdout == "Group 'qa': create done.\n"
    ok(server, "group", "add", "qa", "alice", "bob")
    assert "@qa alice, bob" in rows(ok(server, "group", "list").stdout)
    ok(server, "index", "create", "grp/idx", "--uploaders", "@qa")
    first, second = make_wheel(tmp_path, "grp-a", "1.0"), make_wheel(tmp_path, "grp-b", "1.0")
    assert upload(server, "grp/idx", first, BOB) == 200
    ok(server, "group", "remove", "qa", "bob")
    assert "@qa alice" in rows(ok(server, "group", "list").stdout)
    assert upload(server, "grp/idx", second, BOB) == 403
    assert upload(server, "grp/idx", second, ALICE) == 200
    ok(server, "group", "delete", "qa")
    assert not any(row.startswith("@qa") for row in rows(ok(server, "group", "list").stdout))
    assert upload(server, "grp/idx", make_wheel(tmp_path, "grp-c", "1.0"), ALICE) == 403
    ok(server, "group", "create", "ops")
    assert "Group 'ops' exists already" in refused(server, "group", "create", "ops")
    assert "Invalid name 'bad name'" in refused(server, "group", "create", "bad name")
    assert "No group 'nope'" in refused(server, "group", "add", "nope", "alice")
    assert "No user 'ghost'" in refused(server, "group", "add", "ops", "ghost")


# -- tokens ---------------------------------------------------------------------------------


def test_token_create_list_use_revoke(server: Server, tmp_path: Path) -> None:
    """A scoped, expiring token: printed once, listed without its secret, used, revoked."""
    ok(server, "index", "create", "tok/idx", "--uploaders", "alice")
    created = ok(
        server, "token", "create", "alice", "--index", "tok/idx", "--project", "tok-a",
        "--expires", "30d", "--description", "ci",
    )  # fmt: skip
    token = created.stdout.strip()
    assert re.fullmatch(r"mop_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", token), created.stdout
    assert "shown only once" in created.stderr
    token_id, secret = token.split("_")[1], token.split("_", 2)[2]
    expires = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d")
    (row,) = [r for r in rows(ok(server, "token", "list", "alice").stdout) if token_id in r]
    assert row.startswith(f"{token_id} ci tok/idx: tok-a ")
    assert row.endswith("live") and " never " in row and expires in row
    as_token = ("__token__", token)
    assert upload(server, "tok/idx", make_wheel(tmp_path, "tok-a", "1.0"), as_token) == 200
    other = make_wheel(tmp_path, "tok-b", "1.0")
    with server.client() as client:
        response = post_upload(client, other, auth=as_token, url="/tok/idx/")
        assert response.status_code == 403
        assert "not allowed to upload project 'tok-b'" in response.text
        assert post_upload(client, other, auth=as_token, url="/legacy/").status_code == 403
    listing = ok(server, "token", "list", "alice").stdout
    assert secret not in listing
    (row,) = [r for r in rows(listing) if token_id in r]
    assert " never " not in row  # last used is recorded
    revoked = ok(server, "token", "revoke", "alice", token_id)
    assert revoked.stdout == f"Token {token_id} of 'alice' revoked.\n"
    (row,) = [r for r in rows(ok(server, "token", "list", "alice").stdout) if token_id in r]
    assert row.endswith("revoked")
    assert upload(server, "tok/idx", make_wheel(tmp_path, "tok-a", "1.1"), as_token) == 401
    # Another user's token is not found through them.
    assert "has no token" in refused(server, "token", "revoke", "bob", token_id)


def test_token_create_refusals(server: Server) -> None:
    """Bad expiries, unknown indexes and users, and project limits without an index."""
    assert "Invalid expiry 'yesterday'" in refused(
        server, "token", "create", "alice", "--expires", "yesterday"
    )
    assert "must lie in the future" in refused(
        server, "token", "create", "alice", "--expires", "2000-01-01"
    )
    assert "No index 'nope'" in refused(server, "token", "create", "alice", "--index", "nope")
    assert "must also name its index" in refused(
        server, "token", "create", "alice", "--project", "x"
    )
    assert "No user 'ghost'" in refused(server, "token", "create", "ghost")
    assert "has no token" in refused(server, "token", "revoke", "alice", "0" * 16)


def test_token_expiring_in_minutes(server: Server) -> None:
    """``--expires 1m`` makes a token that works now and is listed with its expiry."""
    before = datetime.now(UTC)
    token = ok(server, "token", "create", "bob", "--expires", "1m").stdout.strip()
    with server.client() as client:
        tokens = client.get("/-/api/users/bob/tokens", auth=BOB).json()["tokens"]
        assert client.get("/-/api/whoami", auth=("__token__", token)).json()["user"] == "bob"
    (listed,) = [t for t in tokens if t["id"] == token.split("_")[1]]
    expires = datetime.fromisoformat(listed["expires"])
    assert before + timedelta(seconds=50) < expires < datetime.now(UTC) + timedelta(minutes=1)


# -- yank, unyank, delete -------------------------------------------------------------------


@pytest.fixture(scope="module")
def released(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``rel-pkg`` 1.0 (wheel and sdist) and 2.0 (wheel) in ``y/idx`` and ``d/idx``."""
    directory = tmp_path_factory.mktemp("released")
    files = {
        "wheel1": make_wheel(directory, "rel-pkg", "1.0"),
        "sdist1": make_sdist(directory, "rel-pkg", "1.0"),
        "wheel2": make_wheel(directory, "rel-pkg", "2.0"),
    }
    for index in ("y/idx", "d/idx"):
        ok(server, "index", "create", index, "--uploaders", "alice")
        for path in files.values():
            assert upload(server, index, path, ALICE) == 200
    return files


def test_yank_and_unyank(server: Server, released: dict[str, Path]) -> None:
    """Yank a release with a reason, unyank it, yank one file; the pages follow."""
    wheel1, sdist1, wheel2 = (released[k].name for k in ("wheel1", "sdist1", "wheel2"))
    result = ok(server, "yank", "Rel.Pkg", "1.0", "--index", "y/idx", "--reason", "bad build")
    assert sorted(result.stdout.splitlines()) == sorted([f"yank: {wheel1}", f"yank: {sdist1}"])
    assert files_of(server, "y/idx", "rel-pkg") == {
        wheel1: "bad build", sdist1: "bad build", wheel2: False,
    }  # fmt: skip
    with server.client() as client:
        info = client.get("/y/idx/pypi/rel-pkg/1.0/json").json()
        assert (info["info"]["yanked"], info["info"]["yanked_reason"]) == (True, "bad build")
        assert {f["yanked_reason"] for f in info["urls"]} == {"bad build"}
    assert ok(server, "unyank", "rel-pkg", "1.0", "--index", "y/idx").stdout.count("unyank:") == 2
    assert set(files_of(server, "y/idx", "rel-pkg").values()) == {False}
    result = ok(server, "yank", "rel-pkg", "--file", wheel2, "--index", "y/idx")
    assert result.stdout == f"yank: {wheel2}\n"
    assert files_of(server, "y/idx", "rel-pkg") == {wheel1: False, sdist1: False, wheel2: True}
    assert files_of(server, "d/idx", "rel-pkg")[wheel2] is False  # another index's copy


def test_yank_refusals(server: Server, released: dict[str, Path]) -> None:
    """A yank names a version or a file (status 2); unknown versions, files and indexes fail."""
    for action in ("yank", "unyank"):
        result = server.cli(action, "rel-pkg", "--index", "y/idx")
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"ministry: {action} needs a version or a --file" in result.stderr
    assert "has no version 3.0" in refused(server, "yank", "rel-pkg", "3.0", "--index", "y/idx")
    assert "has no nope.whl" in refused(
        server, "yank", "rel-pkg", "--file", "nope.whl", "--index", "y/idx"
    )
    assert "No index 'nope'" in refused(server, "yank", "rel-pkg", "1.0", "--index", "nope")
    # Without --index the default index is meant, which has no rel-pkg.
    assert "in index 'main'" in refused(server, "yank", "rel-pkg", "1.0")


def test_delete_needs_allow_delete(
    server: Server, released: dict[str, Path], tmp_path: Path
) -> None:
    """Deleting is refused until the index allows it; a deleted name is retired."""
    wheel1, sdist1, wheel2 = (released[k] for k in ("wheel1", "sdist1", "wheel2"))
    message = refused(server, "delete", "rel-pkg", "1.0", "--index", "d/idx")
    assert "--allow-delete" in message
    assert len(files_of(server, "d/idx", "rel-pkg")) == 3
    updated = settings(ok(server, "index", "update", "d/idx", "--allow-delete"))
    assert updated["allow_delete"] is True
    result = ok(server, "delete", "rel-pkg", "--file", wheel1.name, "--index", "d/idx")
    assert result.stdout == f"delete: {wheel1.name}\n"
    assert files_of(server, "d/idx", "rel-pkg") == {sdist1.name: False, wheel2.name: False}
    with server.client() as client:
        assert client.get(f"/d/idx/packages/rel-pkg/{wheel1.name}").status_code == 404
        # The same file in another index is untouched.
        assert client.get(f"/y/idx/packages/rel-pkg/{wheel1.name}").content == wheel1.read_bytes()
    # Other bytes under the deleted name are refused; the very same bytes may come back.
    other = make_wheel(tmp_path, "rel-pkg", "1.0", requires_dist=["something-else"])
    assert other.name == wheel1.name
    with server.client() as client:
        response = post_upload(client, other, auth=ALICE, url="/d/idx/")
        assert response.status_code == 400
        assert "has since been deleted" in response.text
    assert upload(server, "d/idx", wheel1, ALICE) == 200
    result = ok(server, "delete", "rel-pkg", "1.0", "--index", "d/idx")
    assert sorted(result.stdout.splitlines()) == sorted(
        [f"delete: {wheel1.name}", f"delete: {sdist1.name}"]
    )
    ok(server, "delete", "rel-pkg", "--index", "d/idx")
    assert files_of(server, "d/idx", "rel-pkg") == {}
    assert "has no files" in refused(server, "delete", "rel-pkg", "--index", "d/idx")


# -- the audit log --------------------------------------------------------------------------


def test_log_shows_changes(server: Server, tmp_path: Path) -> None:
    """``ministry log`` lists changes, newest first, with who, where from, what; --index,
    --since, and --limit the newest N."""
    ok(server, "index", "create", "log/idx", "--uploaders", "alice")
    wheel = make_wheel(tmp_path, "log-pkg", "1.0")
    assert upload(server, "log/idx", wheel, ALICE) == 200
    ok(server, "yank", "log-pkg", "1.0", "--index", "log/idx", "--reason", "oops")
    me = f"cli:{getpass.getuser()}"
    shown = rows(ok(server, "log", "--index", "log/idx").stdout)
    body = [re.sub(r"^\d+ \S+ \S+ ", "", row) for row in shown]  # without serial and time
    assert [row.split()[:4] for row in body] == [
        [me, "local", "yank", "log/idx"],
        ["alice", "127.0.0.1", "add-file", "log/idx"],
        ["alice", "127.0.0.1", "add-owner", "log/idx"],  # the first upload makes her owner
        [me, "local", "add-index", "log/idx"],
    ]
    assert body[2].endswith("log-pkg: alice")
    assert body[1].endswith(wheel.name)
    with server.client() as client:
        changes = client.get("/-/api/log", params={"index": "log/idx"}, auth=ROOT).json()
    serials = [c["serial"] for c in changes["changes"]]  # the API's are oldest first
    assert [int(row.split()[0]) for row in shown] == serials[::-1]
    since = rows(ok(server, "log", "--index", "log/idx", "--since", str(serials[0])).stdout)
    assert [int(row.split()[0]) for row in since] == serials[:0:-1]
    limited = rows(ok(server, "log", "--limit", "1").stdout)
    assert [row.split()[0] for row in limited] == [str(serials[-1])]  # the newest, the yank
    two = rows(ok(server, "log", "--index", "log/idx", "--limit", "2").stdout)
    assert [int(row.split()[0]) for row in two] == serials[:-3:-1]
    unknown = server.cli("log", "--index", "log/nosuch")
    assert unknown.returncode == 2
    assert unknown.stderr == "ministry: No index 'log/nosuch'.\n"
    assert unknown.stdout == ""


# -- import ---------------------------------------------------------------------------------


def test_import_into_a_named_index(server: Server, tmp_path: Path) -> None:
    """``import DIR --index team/prod`` publishes into that index only; a re-run skips."""
    ok(server, "index", "create", "team/prod")
    source = tmp_path / "store"
    source.mkdir()
    paths = [make_wheel(source, "imp-pkg", "1.0"), make_sdist(source, "imp-pkg", "1.0")]
    first = ok(server, "import", str(source), "--index", "team/prod")
    assert "2 published; 0 refused" in first.stderr
    assert files_of(server, "team/prod", "imp-pkg") == {p.name: False for p in paths}
    assert files_of(server, "main", "imp-pkg") == {}
    with server.client() as client:
        for path in paths:
            served = client.get(f"/team/prod/packages/imp-pkg/{path.name}")
            assert served.content == path.read_bytes()
        log = client.get("/-/api/log", params={"index": "team/prod"}, auth=ROOT).json()
    added = [c for c in log["changes"] if c["action"] == "add-file"]
    assert {(c["actor"], c["address"], c["filename"]) for c in added} == {
        (f"cli:{getpass.getuser()}", "local", p.name) for p in paths
    }
    again = ok(server, "import", str(source), "--index", "team/prod")
    assert "2 already present; 0 refused" in again.stderr
    unknown = server.cli("import", str(source), "--index", "nope")
    assert unknown.returncode == 2  # stopped before any file
    assert "No index 'nope'" in unknown.stderr
    assert files_of(server, "main", "imp-pkg") == {}


def test_index_create_upstream_makes_only_that_proxy_index(tmp_path: Path) -> None:
    """``index create NAME --upstream URL`` is the index's setting, not the server's
    ``--upstream``: no 'upstream' index appears and main does not start proxying."""
    data = tmp_path / "data"
    assert call_cli("init", "--data", str(data)).returncode == 0
    created = call_cli(
        "index", "create", "mirror/public", "--upstream", "https://mirror.example.test/simple/",
        "--data", str(data),
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    listed = call_cli("index", "list", "--data", str(data))
    assert listed.returncode == 0, listed.stderr
    rows = [line.split(BAR)[1].strip() for line in listed.stdout.splitlines() if BAR in line]
    assert rows == ["main", "mirror/public"]
    main = json.loads(call_cli("index", "show", "main", "--data", str(data)).stdout)
    assert main["bases"] == []
