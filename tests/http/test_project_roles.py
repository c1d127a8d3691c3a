"""Project owners and maintainers against a real server (docs/indexes.md, docs/api.md).

One server for the module. ``main`` lets every user upload and delete; dana is its
index admin, root a server admin, alice, bob and carol plain users. Each test
names its projects after ``unique``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.clients import twine_upload
from support.distributions import make_sdist, make_wheel
from support.inprocess import InProcessServer
from support.logins import form_login
from support.server import Server
from support.uploads import post_upload

ROOT = ("root", "root-password-0000")
ALICE = ("alice", "alice-password-1111")
BOB = ("bob", "bob-password-2222")
CAROL = ("carol", "carol-password-3333")
DANA = ("dana", "dana-password-4444")
Auth = tuple[str, str]
_FORM_XSRF = re.compile(r'name="_xsrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def roles_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of this module's own, with its users and a group ``release`` (carol)."""
    instance = InProcessServer(tmp_path_factory.mktemp("roles") / "data").start()
    for name, password in (ROOT, ALICE, BOB, CAROL, DANA):
        admin = ["--admin"] if name == "root" else []
        result = instance.cli(
            "user", "add", name, *admin, "--password-stdin", stdin=password + "\n"
        )
        assert result.returncode == 0, result.stderr
    for command in (
        ("index", "update", "main", "--allow-delete", "--admins", "dana"),
        ("group", "create", "release"),
        ("group", "add", "release", "carol"),
    ):
        result = instance.cli(*command)
        assert result.returncode == 0, result.stderr
    yield instance
    instance.stop()


@pytest.fixture
def client(roles_server: Server) -> Iterator[httpx.Client]:
    """An HTTP client for the module's server."""
    with roles_server.client() as instance:
        yield instance


def _upload(client: httpx.Client, tmp_path: Path, project: str, version: str, auth: Auth) -> Any:
    wheel = make_wheel(tmp_path, project, version)
    return post_upload(client, wheel, auth=auth)


def _roles_url(project: str, kind: str = "roles", principal: str = "") -> str:
    tail = f"/{kind}/{principal}" if principal else f"/{kind}"
    return f"/-/api/indexes/main/projects/{project}{tail}"


def _roles(client: httpx.Client, project: str) -> dict[str, Any]:
    response = client.get(_roles_url(project))
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


@pytest.mark.slow
def test_another_uploader_is_refused_until_made_a_maintainer(
    client: httpx.Client, tmp_path: Path, home: Path, roles_server: Server, unique: str
) -> None:
    """bob may upload to main, but alice's project is hers: 403 naming her, with plain
    HTTP and with twine; once a maintainer, bob publishes with both."""
    assert _upload(client, tmp_path, unique, "1.0", ALICE).status_code == 200
    refused = _upload(client, tmp_path, unique, "1.1", BOB)
    assert refused.status_code == 403, refused.text
    message = refused.text
    assert f"'bob' may not upload to project '{unique}'" in message
    assert "its owners (alice)" in message
    assert _roles(client, unique) == {
        "index": "main", "project": unique, "owners": ["alice"], "maintainers": [],
    }  # fmt: skip
    sdist = make_sdist(tmp_path, unique, "1.2")
    twine = twine_upload(home, f"{roles_server.url}/legacy/", *BOB, sdist)
    assert twine.returncode != 0
    assert "403" in twine.stdout + twine.stderr
    assert client.get(f"/simple/{unique}/").text.count(".whl</a>") == 1

    added = client.put(_roles_url(unique, "maintainers", "bob"), auth=ALICE)
    assert added.status_code == 200, added.text
    assert added.json()["maintainers"] == ["bob"]
    assert _upload(client, tmp_path, unique, "1.1", BOB).status_code == 200
    twine = twine_upload(home, f"{roles_server.url}/legacy/", *BOB, sdist)
    assert twine.returncode == 0, twine.stdout + twine.stderr
    assert client.get(f"/simple/{unique}/").text.count("</a>") == 3


def test_maintainers_do_not_manage_and_tokens_never_do(
    client: httpx.Client, tmp_path: Path, roles_server: Server, unique: str
) -> None:
    """A maintainer cannot add owners or maintainers; an owner's token cannot either."""
    assert _upload(client, tmp_path, unique, "1.0", ALICE).status_code == 200
    assert client.put(_roles_url(unique, "maintainers", "@release"), auth=ALICE).status_code == 200
    for kind in ("owners", "maintainers"):
        response = client.put(_roles_url(unique, kind, "bob"), auth=CAROL)
        assert response.status_code == 403, response.text
        assert "may not change who maintains" in response.json()["message"]
    token = roles_server.cli("token", "create", "alice").stdout.strip()
    response = client.put(_roles_url(unique, "owners", "bob"), auth=("__token__", token))
    assert response.status_code == 403
    assert "API tokens only read and upload" in response.json()["message"]
    assert _roles(client, unique)["owners"] == ["alice"]


def test_owners_add_owners_and_the_last_one_stays(
    client: httpx.Client, tmp_path: Path, unique: str
) -> None:
    """The last owner cannot go (409); unknown users and groups are 404."""
    assert _upload(client, tmp_path, unique, "1.0", ALICE).status_code == 200
    last = client.delete(_roles_url(unique, "owners", "alice"), auth=ALICE)
    assert last.status_code == 409, last.text
    assert "'alice' is the last owner" in last.json()["message"]
    assert client.put(_roles_url(unique, "owners", "bobby"), auth=ALICE).status_code == 404
    assert client.put(_roles_url(unique, "owners", "@nogroup"), auth=ALICE).status_code == 404
    everyone = client.put(_roles_url(unique, "maintainers", "@all"), auth=ALICE)
    assert everyone.status_code == 400, everyone.text
    assert "not @all" in everyone.json()["message"]
    assert client.get(_roles_url(unique + "-none")).status_code == 404
    assert client.put(_roles_url(unique, "owners", "bob"), auth=ALICE).status_code == 200
    gone = client.delete(_roles_url(unique, "owners", "alice"), auth=BOB)
    assert gone.status_code == 200, gone.text
    assert gone.json()["owners"] == ["bob"]
    assert _upload(client, tmp_path, unique, "1.1", ALICE).status_code == 403


def test_yank_and_delete_belong_to_the_project(
    client: httpx.Client, tmp_path: Path, unique: str
) -> None:
    """Other uploaders neither yank nor delete; maintainers yank; owners and index admins
    delete."""
    assert _upload(client, tmp_path, unique, "1.0", ALICE).status_code == 200
    assert _upload(client, tmp_path, unique, "2.0", ALICE).status_code == 200
    assert client.put(_roles_url(unique, "maintainers", "bob"), auth=ALICE).status_code == 200
    release = f"/-/api/indexes/main/projects/{unique}/releases"
    yank = client.post(f"{release}/1.0/yank", json={"reason": "x"}, auth=CAROL)
    assert yank.status_code == 403, yank.text
    message = yank.json()["message"]
    assert "only its owners (alice), its maintainers and the admins of index 'main' may" in message
    delete = client.delete(f"{release}/1.0", auth=CAROL)
    assert delete.status_code == 403, delete.text
    assert client.post(f"{release}/1.0/yank", json={}, auth=BOB).status_code == 200
    assert client.delete(f"{release}/1.0", auth=BOB).status_code == 403
    assert client.delete(f"{release}/1.0", auth=ALICE).status_code == 200
    assert client.delete(f"{release}/2.0", auth=DANA).status_code == 200
    # The name stays alice's after its last file went.
    assert _roles(client, unique)["owners"] == ["alice"]
    assert _upload(client, tmp_path, unique, "3.0", CAROL).status_code == 403


def test_admins_publish_anywhere_and_imports_belong_to_them(
    client: httpx.Client, tmp_path: Path, roles_server: Server, unique: str
) -> None:
    """Index and server admins publish in alice's project without becoming owners; a
    project put in with ``ministry import`` has no owner, so only admins publish in it."""
    assert _upload(client, tmp_path, unique, "1.0", ALICE).status_code == 200
    assert _upload(client, tmp_path, unique, "1.1", DANA).status_code == 200
    assert _upload(client, tmp_path, unique, "1.2", ROOT).status_code == 200
    assert _roles(client, unique)["owners"] == ["alice"]
    imports = tmp_path / "imports"
    imports.mkdir()
    make_wheel(imports, f"{unique}-imported", "1.0")
    result = roles_server.cli("import", str(imports))
    assert result.returncode == 0, result.stderr
    imported = f"{unique}-imported"
    assert _roles(client, imported)["owners"] == []
    refused = _upload(client, tmp_path, imported, "1.1", ALICE)
    assert refused.status_code == 403
    assert "the admins of index 'main'" in refused.text
    assert _upload(client, tmp_path, imported, "1.1", DANA).status_code == 200
    assert _roles(client, imported)["owners"] == []


def test_the_command_line_lists_and_changes_roles(
    client: httpx.Client, tmp_path: Path, roles_server: Server, unique: str
) -> None:
    """``ministry project …``: roles change, mistakes are one line and exit status 2."""
    assert _upload(client, tmp_path, unique, "1.0", ALICE).status_code == 200
    for command in (
        ("add-maintainer", unique, "bob"),
        ("add-maintainer", unique, "@release"),
        ("add-owner", unique, "carol"),
        ("remove-owner", unique, "alice"),
        ("remove-maintainer", unique, "bob"),
    ):
        result = roles_server.cli("project", *command, "--index", "main")
        assert result.returncode == 0, result.stderr
    listed = roles_server.cli("project", "owners", unique)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == ["owners: carol", "maintainers: @release"]
    for mistake, words in (
        (("add-maintainer", unique, "nobody"), "No user 'nobody'"),
        (("add-owner", unique, "@nogroup"), "No group 'nogroup'"),
        (("add-owner", unique + "-none", "bob"), f"No project '{unique}-none'"),
        (("remove-owner", unique, "carol"), "last owner"),
        (("owners", unique, "--index", "nowhere"), "No index 'nowhere'"),
    ):
        result = roles_server.cli("project", *mistake)
        assert result.returncode == 2, result.stdout
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert words in result.stderr
    log = roles_server.cli("log", "--index", "main", "--limit", "1000")
    assert f"{unique}: carol" in log.stdout
    changes = client.get("/-/api/log", params={"limit": "1000"}, auth=ROOT).json()["changes"]
    mine = [(c["action"], c["actor"], c["detail"]) for c in changes if c["project"] == unique]
    assert ("add-owner", "alice", "alice") in mine
    assert [a for a, _, _ in mine if a != "add-file"][-4:] == [
        "add-maintainer",
        "add-owner",
        "remove-owner",
        "remove-maintainer",
    ]


def _xsrf(page: str) -> str:
    match = _FORM_XSRF.search(page)
    assert match is not None, page
    return match[1]


def test_the_project_page_shows_and_changes_roles(
    client: httpx.Client, tmp_path: Path, roles_server: Server, unique: str
) -> None:
    """Owners see the forms and add a maintainer through them (with the XSRF token);
    others see the roles only; a post without the token or by a stranger changes nothing."""
    assert _upload(client, tmp_path, unique, "1.0", ALICE).status_code == 200
    page_url = f"/project/{unique}/"
    anonymous = client.get(page_url, headers={"Accept": "text/html"})
    assert "Owners" in anonymous.text and "alice" in anonymous.text
    assert 'action="/-/roles"' not in anonymous.text

    with roles_server.client() as bob:
        assert form_login(bob, *BOB).status_code in (200, 302, 303)
        page = bob.get(page_url)
        assert 'action="/-/roles"' not in page.text
        fields = {"index": "main", "project": unique, "principal": "bob", "role": "owner",
                  "action": "add", "_xsrf": _xsrf(page.text)}  # fmt: skip
        assert bob.post("/-/roles", data=fields).status_code == 403

    with roles_server.client() as alice:
        assert form_login(alice, *ALICE).status_code in (200, 302, 303)
        page = alice.get(page_url)
        assert page.status_code == 200
        assert 'action="/-/roles"' in page.text
        assert "<script>" not in page.text and "style=" not in page.text
        fields = {"index": "main", "project": unique, "principal": "bob",
                  "role": "maintainer", "action": "add"}  # fmt: skip
        assert alice.post("/-/roles", data=fields).status_code == 403  # no XSRF token
        assert _roles(client, unique)["maintainers"] == []
        added = alice.post("/-/roles", data={**fields, "_xsrf": _xsrf(page.text)})
        assert added.status_code == 303, added.text
        assert added.headers["Location"] == page_url
        assert _roles(client, unique)["maintainers"] == ["bob"]
        page = alice.get(page_url)
        assert 'name="principal" value="bob"' in page.text
        removed = alice.post(
            "/-/roles", data={**fields, "action": "remove", "_xsrf": _xsrf(page.text)}
        )
        assert removed.status_code == 303, removed.text
    assert _roles(client, unique)["maintainers"] == []
