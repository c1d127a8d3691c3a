"""The browser pages never show what the reader may not read
(docs/security.md, "Private indexes")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ALICE, BOB, add_user
from support.distributions import make_wheel
from support.inprocess import InProcessServer
from support.logins import without_xsrf_token
from support.server import Server
from support.uploads import post_upload

SECRET = "secret-project-name"


@pytest.fixture
def inheriting(tmp_path: Path) -> Iterator[Server]:
    """``main`` inherits a private index that holds SECRET; alice may read it."""
    server = InProcessServer(tmp_path / "data").start()
    add_user(server, *ALICE)
    for arguments in (
        ("index", "create", "team/private", "--private", "--readers", "alice",
         "--uploaders", "alice"),
        ("index", "update", "main", "--bases", "team/private"),
    ):  # fmt: skip
        result = server.cli(*arguments)
        assert result.returncode == 0, result.stderr
    wheel = make_wheel(tmp_path, SECRET, "1.0", summary="Nobody may see this")
    with server.client() as client:
        response = post_upload(client, wheel, auth=ALICE, url="/team/private/legacy/")
        assert response.status_code == 200, response.text
    yield server
    server.stop()


def test_search_home_and_project_pages_hide_private_names(inheriting: Server) -> None:
    with inheriting.client() as anonymous:
        assert SECRET not in anonymous.get("/search", params={"q": "secret"}).text
        assert SECRET not in anonymous.get("/search", params={"q": "nobody"}).text
        assert SECRET not in anonymous.get("/").text
        assert (
            anonymous.get(f"/project/{SECRET}/", headers={"Accept": "text/html"}).status_code == 404
        )
    with inheriting.client(auth=ALICE) as alice:
        assert SECRET in alice.get("/search", params={"q": "nobody"}).text
        assert SECRET in alice.get("/").text
        assert alice.get(f"/project/{SECRET}/").status_code == 200


UNKNOWN = "no-such-project"
# Every page that names one project, through main (which inherits the private index)
# and in the private index itself; {} is the project, {file} one of its wheels.
PROJECT_PATHS = [
    f"{prefix}{path}"
    for prefix in ("", "/team/private")
    for path in (
        "/project/{}/",
        "/project/{}/1.0/",
        "/project/{}/9.9/",
        "/pypi/{}/json",
        "/pypi/{}/1.0/json",
        "/simple/{}/",
        "/packages/{}/",
        "/packages/{}/{file}",
    )
] + ["/{}/", "/search?q={}"]


def answer(server: Server, path: str, name: str, **options: object) -> tuple[object, ...]:
    """What a fresh client is told about ``name``, with ``name`` itself spelt as SECRET."""
    wheel = f"{name.replace('-', '_')}-1.0-py3-none-any.whl"
    with server.client(**options) as client:
        response = client.get(path.format(name, file=wheel), headers={"Accept": "text/html"})
    spelt = response.text.replace(name, SECRET).replace(
        name.replace("-", "_"), "secret_project_name"
    )
    # A signed-in page masks its logout form's XSRF token afresh each time, and sets the
    # cookie; an ETag is a hash of the body, which spells the name asked for.
    varying = ("date", "content-length", "set-cookie", "etag", "x-request-id")
    headers = {k: v for k, v in response.headers.items() if k not in varying}
    return response.status_code, without_xsrf_token(spelt), headers


def test_a_private_name_answers_as_an_unknown_one(inheriting: Server) -> None:
    """docs/security.md, "Private indexes": pages, JSON API, listings and files answer for SECRET as
    for no project.

    The same for strangers (401 in the private index, 404 through main) and for a user
    who may not read it (404): the status, the error page and every header.
    """
    add_user(inheriting, *BOB)
    for auth in (None, BOB):
        for path in PROJECT_PATHS:
            secret = answer(inheriting, path, SECRET, auth=auth)
            unknown = answer(inheriting, path, UNKNOWN, auth=auth)
            assert secret == unknown, (path, auth)
            assert secret[0] in (200, 401, 403, 404), (path, auth, secret[0])
            assert "Nobody may see this" not in str(secret[1])
    assert answer(inheriting, "/team/private/project/{}/", SECRET, auth=ALICE)[0] == 200


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/", "text/html"),
        ("/search?q=nobody", "text/html"),
        ("/packages/", "text/html"),
        ("/simple/", "text/html"),
        ("/simple/", "application/vnd.pypi.simple.v1+json"),
        ("/-/indexes", "text/html"),
    ],
)
def test_listings_leave_private_names_out(inheriting: Server, path: str, accept: str) -> None:
    """Lists of projects show strangers nothing of the private index, not even its files."""
    with inheriting.client() as anonymous:
        response = anonymous.get(path, headers={"Accept": accept})
    assert response.status_code == 200, response.text
    for word in (SECRET, "secret_project_name", "Nobody may see this"):
        assert word not in response.text
