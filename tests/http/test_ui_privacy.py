"""The browser pages never show what the reader may not read (HOSTILE: private names)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ALICE, add_user
from support.distributions import make_wheel
from support.server import MinistryServer
from support.uploads import post_upload

SECRET = "secret-project-name"


@pytest.fixture
def inheriting(tmp_path: Path) -> Iterator[MinistryServer]:
    """``main`` inherits a private index that holds SECRET; alice may read it."""
    server = MinistryServer(tmp_path / "data").start()
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


def test_search_home_and_project_pages_hide_private_names(inheriting: MinistryServer) -> None:
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
