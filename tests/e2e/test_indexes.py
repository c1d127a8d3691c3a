"""Named indexes end to end: inheritance, private indexes, tokens, yanking, deleting, the log.

One server for the module, set up the way an administrator would with the CLI:

- ``team/prod`` - uploads by the group ``@release`` (alice);
- ``team/dev`` - bases ``team/prod`` then ``main``; uploads by alice and bob; it lets
  ``acme-shared`` still come from its bases; files may be deleted there (admin alice);
- ``team/private`` - private, read and written by alice only;
- ``main`` - the default index, where every user (carol too) may upload.

``acme-lib`` lives in ``team/prod``; carol puts a higher ``acme-lib`` on ``main``
(the dependency-confusion attack), which ``team/dev`` must never take, because the
first base that has the name owns it. Real clients (pip, uv, twine) do the
installing and the publishing, isolated from this machine's configuration, and
the access log shows that the files came from our server.
"""

from __future__ import annotations

import getpass
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from conftest import ALICE, BOB
from support.clients import new_venv, pip_install, run, tool, twine_upload, uv
from support.distributions import make_wheel
from support.server import MinistryServer, wait_for
from support.uploads import post_upload

ROOT = ("root", "root-password-1")
CAROL = ("carol", "carol-password-3")
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
BAR = "\u2502"  # the column separator of rich's tables
YANK_REASON = "breaks-the-build"


def wheel_name(name: str, version: str) -> str:
    return f"{name.replace('-', '_')}-{version}-py3-none-any.whl"


@dataclass
class Site:
    """The module's server and what was put on it."""

    server: MinistryServer
    wheels: Path
    home: Path
    files: dict[str, Path]

    def url(self, index: str, *, user: tuple[str, str] | None = None) -> str:
        """The simple API of an index, with credentials in it when given."""
        host = self.server.url.removeprefix("http://")
        credentials = f"{user[0]}:{user[1]}@" if user else ""
        return f"http://{credentials}{host}/{index}/simple/"

    def cli(self, *arguments: str, stdin: str | None = None) -> str:
        """Run a ``ministry`` command that must succeed; returns what it printed."""
        result = self.server.cli(*arguments, stdin=stdin)
        assert result.returncode == 0, (arguments, result.stdout + result.stderr)
        return result.stdout

    def client(self) -> httpx.Client:
        return self.server.client()

    def page(self, index: str, project: str) -> dict[str, str | bool]:
        """The files of a project's simple page (PEP 691) as {filename: yanked}, read as root."""
        with self.client() as client:
            response = client.get(
                f"/{index}/simple/{project}/", headers={"Accept": SIMPLE_JSON}, auth=ROOT
            )
        assert response.status_code == 200, response.text
        return {f["filename"]: f["yanked"] for f in response.json()["files"]}


def cli_actor() -> str:
    """How the audit log names whoever runs ``ministry`` on the server's machine."""
    return f"cli:{getpass.getuser()}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The server with its users, group and indexes, and the projects uploaded with twine."""
    root = tmp_path_factory.mktemp("indexes")
    server = MinistryServer(root / "data").start()
    site = Site(server, root / "wheels", root / "home", {})
    site.wheels.mkdir()
    try:
        site.cli("user", "add", ROOT[0], "--admin", "--password-stdin", stdin=ROOT[1] + "\n")
        for name, password in (ALICE, BOB, CAROL):
            site.cli("user", "add", name, "--password-stdin", stdin=password + "\n")
        site.cli("group", "create", "release")
        site.cli("group", "add", "release", "alice")
        site.cli("index", "create", "team/prod", "--uploaders", "@release")
        site.cli(
            "index", "create", "team/dev", "--bases", "team/prod,main",
            "--uploaders", "alice,bob", "--admins", "alice", "--allow-delete",
            "--allow-inherit", "acme-shared",
        )  # fmt: skip
        site.cli(
            "index", "create", "team/private", "--private",
            "--readers", "alice", "--uploaders", "alice",
        )  # fmt: skip

        def wheels(*specs: tuple[str, str] | tuple[str, str, list[str]]) -> list[Path]:
            made = [
                make_wheel(site.wheels, spec[0], spec[1], requires_dist=spec[2] if spec[2:] else [])
                for spec in specs
            ]
            site.files.update((path.name, path) for path in made)
            return made

        uploads = [
            # (index URL path, user, files)
            ("/team/prod/", ALICE, wheels(
                ("acme-lib", "1.0"), ("acme-shadow", "2.0"), ("acme-shared", "2.0"),
                ("acme-yank", "1.0"), ("acme-yank", "2.0"),
            )),
            ("/team/dev/legacy/", BOB, wheels(
                ("acme-app", "1.0", ["acme-lib>=1.0"]), ("acme-shadow", "1.0"),
                ("acme-shared", "1.0"), ("acme-gone", "1.0"),
            )),
            ("/legacy/", CAROL, wheels(("acme-lib", "9.0"), ("acme-shadow", "9.0"))),
            ("/team/private/", ALICE, wheels(("acme-secret", "1.0"))),
        ]  # fmt: skip
        for path, (user, password), files in uploads:
            result = twine_upload(site.home, server.url + path, user, password, *files)
            assert result.returncode == 0, result.stdout + result.stderr
        yield site
    finally:
        server.stop()


def installed(python: Path, *modules: str) -> list[str]:
    """The ``VERSION`` of each module as the venv of ``python`` imports it."""
    code = (
        "import importlib, sys; print(*(importlib.import_module(m).VERSION for m in sys.argv[1:]))"
    )
    result = subprocess.run(
        [str(python), "-c", code, *modules], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def uv_venv(home: Path, path: Path) -> Path:
    result = uv(home, "venv", "--python", sys.executable, str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    return path / "bin" / "python"


def uv_install(
    home: Path, python: Path, index_url: str, *requirements: str, netrc: Path | None = None
) -> subprocess.CompletedProcess[str]:
    command = [
        tool("uv"), "pip", "install", "--python", str(python), "--no-cache",
        "--index-url", index_url, *requirements,
    ]  # fmt: skip
    return run(command, home, extra_environment={"NETRC": str(netrc)} if netrc else None)


# -- inheritance ----------------------------------------------------------------------------


def test_pip_resolves_across_indexes(site: Site, tmp_path: Path, home: Path) -> None:
    """pip installs acme-app from team/dev and its dependency acme-lib from team/prod.

    The lib comes from team/prod (1.0), not from carol's 9.0 on main: team/prod is
    the first base that has the name, so it owns it. The file is served under
    team/dev's own URL.
    """
    server = site.server
    lib = f"/team/dev/packages/acme-lib/{wheel_name('acme-lib', '1.0')}"
    before = server.served(lib)
    python = new_venv(tmp_path / "venv")
    result = pip_install(python, home, "--index-url", site.url("team/dev"), "acme-app")
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed(python, "acme_app", "acme_lib") == ["1.0", "1.0"]
    assert server.served(lib) == before + 1
    assert server.served("/team/dev/simple/acme-lib/") >= 1
    assert server.served(f"/packages/acme-lib/{wheel_name('acme-lib', '9.0')}") == 0


def test_uv_resolves_across_indexes(site: Site, tmp_path: Path, home: Path) -> None:
    """uv does the same through team/dev, reading the PEP 658 metadata under team/dev's URL."""
    server = site.server
    lib = f"/team/dev/packages/acme-lib/{wheel_name('acme-lib', '1.0')}"
    before = server.served(lib + ".metadata"), server.served(lib)
    python = uv_venv(home, tmp_path / "venv")
    result = uv_install(home, python, site.url("team/dev"), "acme-app")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "acme-lib==1.0" in result.stderr
    assert installed(python, "acme_app", "acme_lib") == ["1.0", "1.0"]
    assert server.served(lib + ".metadata") == before[0] + 1
    assert server.served(lib) == before[1] + 1


def test_shadowed_name_is_not_taken_from_a_base(site: Site, tmp_path: Path, home: Path) -> None:
    """team/dev has acme-shadow 1.0 itself: the 2.0 of team/prod and 9.0 of main stay hidden."""
    assert site.page("team/dev", "acme-shadow") == {wheel_name("acme-shadow", "1.0"): False}
    assert set(site.page("team/prod", "acme-shadow")) == {wheel_name("acme-shadow", "2.0")}
    python = uv_venv(home, tmp_path / "venv")
    result = uv_install(home, python, site.url("team/dev"), "acme-shadow")
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed(python, "acme_shadow") == ["1.0"]
    for pinned in ("acme-shadow==2.0", "acme-lib==9.0"):
        refused = uv_install(home, python, site.url("team/dev"), pinned)
        assert refused.returncode != 0, (pinned, refused.stdout + refused.stderr)
        assert f"no version of {pinned}" in refused.stderr, refused.stderr
    assert installed(python, "acme_shadow") == ["1.0"]


def test_allowed_name_is_taken_from_the_base(site: Site, tmp_path: Path, home: Path) -> None:
    """acme-shared is listed in team/dev's allow_inherit: team/prod's 2.0 is offered too."""
    assert site.page("team/dev", "acme-shared") == {
        wheel_name("acme-shared", "1.0"): False,
        wheel_name("acme-shared", "2.0"): False,
    }
    served = f"/team/dev/packages/acme-shared/{wheel_name('acme-shared', '2.0')}"
    before = site.server.served(served)
    python = uv_venv(home, tmp_path / "venv")
    result = uv_install(home, python, site.url("team/dev"), "acme-shared")
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed(python, "acme_shared") == ["2.0"]
    assert site.server.served(served) == before + 1


# -- private indexes ------------------------------------------------------------------------


def test_private_index_refuses_strangers(site: Site) -> None:
    """Anonymous readers get 401 with a Basic challenge; a user without rights gets 404."""
    secret = wheel_name("acme-secret", "1.0")
    paths = [
        "/team/private/simple/",
        "/team/private/simple/acme-secret/",
        f"/team/private/packages/acme-secret/{secret}",
        "/team/private/pypi/acme-secret/json",
    ]
    with site.client() as client:
        for path in paths:
            anonymous = client.get(path)
            assert anonymous.status_code == 401, (path, anonymous.text)
            assert anonymous.headers["WWW-Authenticate"].startswith("Basic ")
            assert client.get(path, auth=CAROL).status_code == 404, path
            assert client.get(path, auth=BOB).status_code == 404, path
            assert client.get(path, auth=("alice", "wrong-password")).status_code == 401, path
            assert client.get(path, auth=ALICE).status_code == 200, path
        # Nor does the private project show through the public indexes.
        assert client.get("/simple/acme-secret/").status_code == 404
        assert client.get("/team/dev/simple/acme-secret/").status_code == 404


def test_pip_installs_from_private_index_with_credentials_in_url(
    site: Site, tmp_path: Path, home: Path
) -> None:
    """pip reads the private index with alice's password in the index URL."""
    path = f"/team/private/packages/acme-secret/{wheel_name('acme-secret', '1.0')}"
    before = site.server.served(path)
    python = new_venv(tmp_path / "venv")
    url = site.url("team/private", user=ALICE)
    result = pip_install(python, home, "--index-url", url, "acme-secret")
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed(python, "acme_secret") == ["1.0"]
    assert site.server.served(path) == before + 1


def test_uv_installs_from_private_index_with_netrc(site: Site, tmp_path: Path, home: Path) -> None:
    """uv reads the private index with credentials from a netrc file, and fails without it."""
    python = uv_venv(home, tmp_path / "venv")
    without = uv_install(home, python, site.url("team/private"), "acme-secret")
    assert without.returncode != 0, without.stdout + without.stderr
    assert "401 Unauthorized" in without.stderr, without.stderr
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1\nlogin {ALICE[0]}\npassword {ALICE[1]}\n")
    netrc.chmod(0o600)
    path = f"/team/private/packages/acme-secret/{wheel_name('acme-secret', '1.0')}"
    before = site.server.served(path)
    result = uv_install(home, python, site.url("team/private"), "acme-secret", netrc=netrc)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed(python, "acme_secret") == ["1.0"]
    assert site.server.served(path) == before + 1


# -- tokens ---------------------------------------------------------------------------------


def _create_token(site: Site, *arguments: str) -> str:
    token = site.cli("token", "create", "alice", *arguments).strip()
    assert token.startswith("mop_"), token
    return token


def _token_id(token: str) -> str:
    return token.split("_")[1]


def test_token_scoped_to_one_index(site: Site, tmp_path: Path, home: Path) -> None:
    """A token for team/dev uploads there, but cannot upload to team/prod or read team/private.

    alice herself may do both with her password, so the refusals come from the
    token's scope alone.
    """
    token = _create_token(site, "--index", "team/dev", "--description", "dev CI")
    wheel = make_wheel(tmp_path, "acme-scoped", "1.0")
    published = twine_upload(home, f"{site.server.url}/team/dev/", "__token__", token, wheel)
    assert published.returncode == 0, published.stdout + published.stderr
    assert wheel.name in site.page("team/dev", "acme-scoped")
    as_token = ("__token__", token)
    with site.client() as client:
        assert client.get("/team/dev/simple/acme-scoped/", auth=as_token).status_code == 200
        refused = post_upload(client, wheel, auth=as_token, url="/team/prod/")
        assert refused.status_code == 403, refused.text
        assert "team/dev" in refused.text
        read = client.get("/team/private/simple/", auth=as_token)
        assert read.status_code == 404, read.text
        file = f"/team/private/packages/acme-secret/{wheel_name('acme-secret', '1.0')}"
        assert client.get(file, auth=as_token).status_code == 404
        # alice's password may do what her token may not.
        assert client.get("/team/private/simple/", auth=ALICE).status_code == 200
        assert post_upload(client, wheel, auth=ALICE, url="/team/prod/").status_code == 200


@pytest.fixture(scope="module")
def revoked(site: Site) -> str:
    """A token of alice, used once, then revoked by alice over the API with her password."""
    token = _create_token(site, "--description", "revoked later")
    with site.client() as client:
        assert client.get("/team/private/simple/", auth=("__token__", token)).status_code == 200
        response = client.delete(f"/-/api/users/alice/tokens/{_token_id(token)}", auth=ALICE)
        assert response.status_code == 204, response.text
    return token


def test_revoked_token_fails(site: Site, revoked: str) -> None:
    """After revoking, the token neither reads nor uploads, and the list says so."""
    as_token = ("__token__", revoked)
    with site.client() as client:
        assert client.get("/team/private/simple/", auth=as_token).status_code == 401
        assert client.get("/team/dev/simple/", auth=as_token).status_code == 401
        lib = site.files[wheel_name("acme-lib", "1.0")]
        upload = post_upload(client, lib, auth=as_token, url="/team/prod/")
        assert upload.status_code == 401, upload.text
        tokens = client.get("/-/api/users/alice/tokens", auth=ALICE).json()["tokens"]
    (listed,) = [t for t in tokens if t["id"] == _token_id(revoked)]
    assert listed["revoked"] is True
    assert listed["last_used"] is not None
    # mop_<hex id>_<secret>: the secret may hold "_" itself.
    assert revoked.split("_", 2)[2] not in json.dumps(tokens)


def test_expired_token_fails(site: Site) -> None:
    """A token whose expiry has passed is refused (401), for reading and for uploading.

    The token is made over the API to expire two seconds after it is created; it
    works before, and the test waits until the expiry is past by the clock the
    server shares with it.
    """
    expires = datetime.fromtimestamp(time.time() + 2, UTC).isoformat()
    with site.client() as client:
        created = client.post(
            "/-/api/users/alice/tokens",
            json={"index": "team/private", "expires": expires, "description": "short"},
            auth=ALICE,
        )
        assert created.status_code == 201, created.text
        as_token = ("__token__", created.json()["token"])
        assert client.get("/team/private/simple/", auth=as_token).status_code == 200
        deadline = datetime.fromisoformat(created.json()["expires"])
        wait_for(lambda: datetime.now(UTC) > deadline, 10, "the token to expire")
        assert client.get("/team/private/simple/", auth=as_token).status_code == 401
        wheel = site.files[wheel_name("acme-secret", "1.0")]
        upload = post_upload(client, wheel, auth=as_token, url="/team/private/")
        assert upload.status_code == 401, upload.text


# -- yanking and deleting -------------------------------------------------------------------


@pytest.fixture(scope="module")
def yanked(site: Site) -> None:
    """acme-yank 2.0 in team/prod, yanked by alice (of @release) over the API."""
    with site.client() as client:
        response = client.post(
            "/-/api/indexes/team/prod/projects/acme-yank/releases/2.0/yank",
            json={"reason": YANK_REASON},
            auth=ALICE,
        )
    assert response.status_code == 200, response.text
    assert response.json()["files"] == [
        {"filename": wheel_name("acme-yank", "2.0"), "yanked": YANK_REASON}
    ]


def test_pip_skips_a_yanked_release_unless_pinned(
    site: Site, yanked: None, tmp_path: Path, home: Path
) -> None:
    """PEP 592: ``pip install acme-yank`` gets 1.0; ``acme-yank==2.0`` still gets 2.0."""
    assert site.page("team/prod", "acme-yank") == {
        wheel_name("acme-yank", "1.0"): False,
        wheel_name("acme-yank", "2.0"): YANK_REASON,
    }
    python = new_venv(tmp_path / "venv")
    index = site.url("team/prod")
    result = pip_install(python, home, "--index-url", index, "acme-yank")
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed(python, "acme_yank") == ["1.0"]
    pinned = pip_install(python, home, "--index-url", index, "acme-yank==2.0")
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    assert installed(python, "acme_yank") == ["2.0"]
    assert "yanked" in pinned.stderr and YANK_REASON in pinned.stderr, pinned.stderr


@pytest.fixture(scope="module")
def deleted(site: Site) -> Path:
    """acme-gone 1.0 in team/dev, deleted by alice (its admin) over the API; returns the file."""
    original = site.files[wheel_name("acme-gone", "1.0")]
    with site.client() as client:
        response = client.delete(
            f"/-/api/indexes/team/dev/projects/acme-gone/files/{original.name}", auth=ALICE
        )
    assert response.status_code == 200, response.text
    return original


def test_deleted_filename_cannot_come_back_with_other_bytes(
    site: Site, deleted: Path, tmp_path: Path, home: Path
) -> None:
    """After a delete, twine cannot upload the same filename with other bytes."""
    with site.client() as client:
        path = f"/team/dev/packages/acme-gone/{deleted.name}"
        assert client.get(path).status_code == 404
        assert client.get("/team/dev/simple/acme-gone/").status_code == 404
    other = make_wheel(tmp_path, "acme-gone", "1.0", requires_dist=["acme-lib"])
    assert other.name == deleted.name
    assert other.read_bytes() != deleted.read_bytes()
    result = twine_upload(home, f"{site.server.url}/team/dev/", *ALICE, other)
    assert result.returncode != 0, result.stdout + result.stderr
    output = " ".join((result.stdout + result.stderr).split())
    assert "400 Bad Request" in output, output
    assert (
        f"This filename ('{other.name}') was previously used by a file that has since been deleted"
        in output
    ), output
    with site.client() as client:
        assert client.get(path).status_code == 404
        assert client.get("/team/dev/simple/acme-gone/").status_code == 404


# -- the audit log --------------------------------------------------------------------------


def test_audit_log_names_who_did_each_change(
    site: Site, yanked: None, deleted: Path, revoked: str
) -> None:
    """``GET /-/api/log`` and ``ministry log`` hold every change above with its user."""
    with site.client() as client:
        assert client.get("/-/api/log").status_code == 401
        assert client.get("/-/api/log", auth=ALICE).status_code == 403
        response = client.get("/-/api/log", params={"limit": "1000"}, auth=ROOT)
        assert response.status_code == 200, response.text
        changes = response.json()["changes"]
        dev_only = client.get("/-/api/log", params={"index": "team/dev"}, auth=ROOT).json()
    assert {c["index"] for c in dev_only["changes"]} == {"team/dev"}

    def entries(action: str, **fields: str | None) -> list[tuple[str, str]]:
        return [
            (c["actor"], c["address"])
            for c in changes
            if c["action"] == action and all(c[k] == v for k, v in fields.items())
        ]

    web, local = "127.0.0.1", "local"
    me = cli_actor()
    assert entries("add-index", index="team/prod") == [(me, local)]
    assert entries("add-index", index="team/dev") == [(me, local)]
    assert entries("add-member", detail="release alice") == [(me, local)]
    uploads = {
        ("team/prod", "acme-lib", "1.0"): "alice",
        ("team/dev", "acme-app", "1.0"): "bob",
        ("team/dev", "acme-gone", "1.0"): "bob",
        ("main", "acme-lib", "9.0"): "carol",
        ("team/private", "acme-secret", "1.0"): "alice",
    }
    for (index, project, version), user in uploads.items():
        filename = wheel_name(project, version)
        assert entries("add-file", index=index, filename=filename) == [(user, web)], filename
    assert entries(
        "yank", index="team/prod", filename=wheel_name("acme-yank", "2.0"), detail=YANK_REASON
    ) == [("alice", web)]
    assert entries("delete-file", index="team/dev", filename=deleted.name) == [("alice", web)]
    token_id = _token_id(revoked)
    assert entries("add-token", detail=f"alice {token_id}") == [(me, local)]
    assert entries("revoke-token", detail=f"alice {token_id}") == [("alice", web)]
    # Nothing was logged for the refused re-upload of the deleted filename.
    assert len(entries("add-file", index="team/dev", filename=deleted.name)) == 1

    dev_rows = _rows(site.cli("log", "--index", "team/dev", "--limit", "1000"))
    assert f"alice 127.0.0.1 delete-file team/dev {deleted.name}" in dev_rows
    assert f"bob 127.0.0.1 add-file team/dev {wheel_name('acme-app', '1.0')}" in dev_rows
    assert {row.split()[3] for row in dev_rows} == {"team/dev"}
    all_rows = _rows(site.cli("log", "--limit", "1000"))
    yank = wheel_name("acme-yank", "2.0")
    assert f"alice 127.0.0.1 yank team/prod {yank}" in all_rows
    assert f"carol 127.0.0.1 add-file main {wheel_name('acme-lib', '9.0')}" in all_rows
    assert f"alice 127.0.0.1 revoke-token alice {token_id}" in all_rows
    assert f"{me} local add-token alice {token_id}" in all_rows


def _rows(table: str) -> list[str]:
    """The rows of ``ministry log``'s table without serial and time, cells joined by spaces."""
    rows = []
    for line in table.splitlines():
        cells = " ".join(line.replace(BAR, " ").split())
        match = re.match(r"\d+ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d (.+)", cells)
        if match:
            rows.append(match[1])
    assert rows, table
    return rows
