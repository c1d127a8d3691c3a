"""One release however its files spell the version (docs/security.md, "Release identity").

``2.0`` and ``2.0.0`` are one release: a second wheel for the same tags or a second
sdist is refused, other wheels join it, the APIs and pages show it once, and a
yank of the release covers files uploaded into it later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ALICE
from support.clients import twine_upload
from support.distributions import make_sdist, make_wheel
from support.server import Server
from support.uploads import post_upload

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture(params=["sqlite+file", pytest.param("redis+s3", marks=pytest.mark.slow)])
def any_server(request: pytest.FixtureRequest, server: Server) -> Server:
    """The local stores, then the shared ones (Redis and S3)."""
    if request.param == "sqlite+file":
        return server
    shared: Server = request.getfixturevalue("shared_server")
    return shared


def _refused(response: httpx.Response, *words: str) -> None:
    """400, with the words in the reason phrase (what twine shows) and in the body."""
    assert response.status_code == 400, response.text
    for word in words:
        assert word in response.reason_phrase
        assert word in response.text


def _release_files(client: httpx.Client, project: str, version: str) -> dict[str, Any]:
    document = client.get(f"/pypi/{project}/{version}/json").json()
    return {f["filename"]: f["yanked_reason"] if f["yanked"] else None for f in document["urls"]}


def test_another_spelling_is_the_same_release(
    any_server: Server, tmp_path: Path, unique: str
) -> None:
    """A second wheel for the same tags or a second sdist under ``2.0.0`` is refused naming
    the file of ``2.0``; a wheel for other tags joins the release, shown once everywhere."""
    server = any_server
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    wheel, sdist = make_wheel(first, unique, "2.0"), make_sdist(first, unique, "2.0")
    with server.client() as client:
        for path in (wheel, sdist):
            assert post_upload(client, path, auth=ALICE).status_code == 200
        same_tags = make_wheel(second, unique, "2.0.0")
        _refused(post_upload(client, same_tags, auth=ALICE), wheel.name, "already has a wheel")
        again = make_sdist(second, unique, "2.0.0")
        _refused(post_upload(client, again, auth=ALICE), sdist.name, "Only one sdist")
        other_tags = make_wheel(second, unique, "2.0.0", tag="py2-none-any")
        assert post_upload(client, other_tags, auth=ALICE).status_code == 200

        files = {wheel.name: None, sdist.name: None, other_tags.name: None}
        document = client.get(f"/pypi/{unique}/json").json()
        assert document["info"]["version"] == "2.0"
        assert list(document["releases"]) == ["2.0"]
        assert {f["filename"] for f in document["releases"]["2.0"]} == set(files)
        for spelling in ("2.0", "2.0.0", "02.0", "2"):
            assert _release_files(client, unique, spelling) == files
        simple = client.get(f"/simple/{unique}/", headers={"Accept": SIMPLE_JSON}).json()
        assert simple["versions"] == ["2.0"]
        assert {f["filename"] for f in simple["files"]} == set(files)
        page = client.get(f"/project/{unique}/2.0.0/")
        assert page.status_code == 200
        assert all(name in page.text for name in files)


def test_a_yank_belongs_to_the_release(any_server: Server, tmp_path: Path, unique: str) -> None:
    """Yanking by one spelling yanks every file; a file uploaded later joins yanked, with
    the release's reason; unyanking by yet another spelling takes the yank back."""
    server = any_server
    first = make_wheel(tmp_path, unique, "3.0")
    with server.client() as client:
        assert post_upload(client, first, auth=ALICE).status_code == 200
        yank = server.cli("yank", unique, "3.0.0", "--reason", "broken on arm")
        assert yank.returncode == 0, yank.stderr
        late = make_wheel(tmp_path, unique, "3.0.0", tag="py2-none-any")
        assert post_upload(client, late, auth=ALICE).status_code == 200
        yanked = {first.name: "broken on arm", late.name: "broken on arm"}
        assert _release_files(client, unique, "3.0") == yanked
        info = client.get(f"/pypi/{unique}/json").json()["info"]
        assert (info["yanked"], info["yanked_reason"]) == (True, "broken on arm")
        simple = client.get(f"/simple/{unique}/", headers={"Accept": SIMPLE_JSON}).json()
        assert [f["yanked"] for f in simple["files"]] == ["broken on arm"] * 2
        unyank = server.cli("unyank", unique, "3")
        assert unyank.returncode == 0, unyank.stderr
        assert _release_files(client, unique, "3.0.0") == {first.name: None, late.name: None}


@pytest.mark.slow
def test_twine_is_told_which_file_holds_the_tags(
    server: Server, tmp_path: Path, home: Path, unique: str
) -> None:
    """A real twine upload of ``2.0.0`` after ``2.0`` fails with the existing file's name."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    wheel = make_wheel(first, unique, "2.0")
    uploaded = twine_upload(home, f"{server.url}/legacy/", *ALICE, wheel)
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    same_tags = make_wheel(second, unique, "2.0.0")
    refused = twine_upload(home, f"{server.url}/legacy/", *ALICE, same_tags)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert "400" in output
    assert wheel.name in output
