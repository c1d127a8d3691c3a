"""Promotion against a real server: ``ministry promote``, the JSON API, the release page's
form, and pip installing what was promoted (docs/indexes.md, docs/api.md).

One server for the module. ``staging`` is private (alice reads and uploads there),
``main`` takes everyone's uploads. Each test names its project after ``unique``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.clients import new_venv, pip_install, run
from support.distributions import make_sdist, make_wheel
from support.inprocess import InProcessServer
from support.logins import form_login
from support.server import Server
from support.uploads import post_upload

ALICE = ("alice", "alice-password-1111")
BOB = ("bob", "bob-password-2222")
_FORM_XSRF = re.compile(r'name="_xsrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def promote_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of this module's own, with alice and bob and a private ``staging``."""
    instance = InProcessServer(tmp_path_factory.mktemp("promote") / "data").start()
    for name, password in (ALICE, BOB):
        result = instance.cli("user", "add", name, "--password-stdin", stdin=password + "\n")
        assert result.returncode == 0, result.stderr
    result = instance.cli(
        "index", "create", "staging", "--private", "--readers", "alice", "--uploaders", "alice"
    )
    assert result.returncode == 0, result.stderr
    yield instance
    instance.stop()


@pytest.fixture
def client(promote_server: Server) -> Iterator[httpx.Client]:
    """An HTTP client for the module's server."""
    with promote_server.client() as instance:
        yield instance


def _stage(client: httpx.Client, tmp_path: Path, project: str, version: str = "1.0") -> None:
    """A wheel and an sdist of ``project`` uploaded by alice to ``staging``."""
    for path in (make_wheel(tmp_path, project, version), make_sdist(tmp_path, project, version)):
        response = post_upload(client, path, auth=ALICE, url="/staging/")
        assert response.status_code == 200, response.text


def _hashes(client: httpx.Client, index: str, project: str) -> dict[str, str]:
    """filename -> sha256 of a project's files, from the index's simple API (JSON)."""
    response = client.get(
        f"/{index}/simple/{project}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        auth=ALICE,
    )
    if response.status_code == 404:
        return {}
    assert response.status_code == 200, response.text
    return {f["filename"]: f["hashes"]["sha256"] for f in response.json()["files"]}


def _promote_url(project: str, version: str = "1.0", source: str = "staging") -> str:
    return f"/-/api/indexes/{source}/projects/{project}/releases/{version}/promote"


def _promote(client: httpx.Client, project: str, auth: Any = ALICE, **body: Any) -> Any:
    return client.post(_promote_url(project), json=body or {"to": "main"}, auth=auth)


def test_the_api_promotes_the_same_files_once(
    client: httpx.Client, tmp_path: Path, promote_server: Server, unique: str
) -> None:
    """200 with each file; main then serves staging's hashes and metadata files; the log
    names alice; again: nothing created."""
    _stage(client, tmp_path, unique)
    response = _promote(client, unique)
    assert response.status_code == 200, response.text
    document = response.json()
    assert (document["from"], document["to"], document["version"]) == ("staging", "main", "1.0")
    assert [f["created"] for f in document["files"]] == [True, True]
    staged = _hashes(client, "staging", unique)
    assert len(staged) == 2 and _hashes(client, "main", unique) == staged
    assert {f["filename"]: f["sha256"] for f in document["files"]} == staged
    metadata = next(name for name in staged if name.endswith(".whl")) + ".metadata"
    served = [
        client.get(f"/{index}/packages/{unique}/{metadata}", auth=ALICE)
        for index in ("staging", "main")
    ]
    assert served[0].status_code == served[1].status_code == 200
    assert served[0].content == served[1].content
    again = _promote(client, unique)
    assert again.status_code == 200, again.text
    assert [f["created"] for f in again.json()["files"]] == [False, False]
    log = promote_server.cli("log", "--index", "main", "--limit", "1000").stdout
    for filename in staged:
        assert re.search(rf"alice .* add-file .* main .* {re.escape(filename)}", log), log


def test_the_api_refuses_conflicts_strangers_and_other_sites(
    client: httpx.Client, tmp_path: Path, unique: str
) -> None:
    """409 for other bytes under a filename, 404 for a source bob cannot read, 400 without
    a target, 403 for a post another site's page sent; main unchanged by any of them."""
    _stage(client, tmp_path, unique)
    other = tmp_path / "other"
    other.mkdir()
    sdist = make_sdist(other, unique, "1.0", summary="other bytes")
    assert post_upload(client, sdist, auth=ALICE).status_code == 200
    before = _hashes(client, "main", unique)

    conflict = _promote(client, unique)
    assert conflict.status_code == 409, conflict.text
    assert "with other bytes" in conflict.json()["message"]
    assert "Nothing was promoted" in conflict.json()["message"]
    hidden = _promote(client, unique, auth=BOB)
    assert hidden.status_code == 404, hidden.text
    assert _promote(client, unique, to=7).status_code == 400
    assert client.post(_promote_url(unique), auth=ALICE).status_code == 400
    anonymous = client.post(_promote_url(unique), json={"to": "main"})
    assert anonymous.status_code == 401
    foreign = client.post(
        _promote_url(unique),
        json={"to": "main"},
        auth=ALICE,
        headers={"Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert foreign.status_code == 403, foreign.text
    form = client.post(_promote_url(unique), data={"to": "main"}, auth=ALICE)
    assert form.status_code == 415, form.text
    assert _hashes(client, "main", unique) == before


def test_the_command_promotes_and_says_what_it_did(
    client: httpx.Client, tmp_path: Path, promote_server: Server, unique: str
) -> None:
    _stage(client, tmp_path, unique, "2.0")
    result = promote_server.cli("promote", unique, "2.0", "--from", "staging", "--to", "main")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("promoted: ") for line in lines)
    assert _hashes(client, "main", unique) == _hashes(client, "staging", unique)
    again = promote_server.cli("promote", unique, "2.0", "--from", "staging", "--to", "main")
    assert again.returncode == 0 and again.stdout.count("already there: ") == 2
    missing = promote_server.cli("promote", unique, "3.0", "--from", "staging", "--to", "main")
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "no files of" in missing.stderr
    assert "Traceback" not in missing.stderr


def _xsrf(page: str) -> str:
    found = _FORM_XSRF.search(page)
    assert found is not None, page
    return found.group(1)


def test_the_release_page_offers_promotion_to_its_owner(
    client: httpx.Client, tmp_path: Path, promote_server: Server, unique: str
) -> None:
    """alice sees the form and promotes with it (the XSRF token and her own site's page
    required); bob, who cannot read staging, is refused by the same post."""
    _stage(client, tmp_path, unique)
    page_url = f"/staging/project/{unique}/1.0/"
    with promote_server.client() as alice:
        assert form_login(alice, *ALICE).status_code in (200, 302, 303)
        page = alice.get(page_url)
        assert page.status_code == 200, page.text
        assert 'action="/-/promote"' in page.text and '<option value="main">' in page.text
        fields = {"index": "staging", "project": unique, "version": "1.0", "to": "main"}
        assert alice.post("/-/promote", data=fields).status_code == 403  # no XSRF token
        foreign = alice.post(
            "/-/promote",
            data={**fields, "_xsrf": _xsrf(page.text)},
            headers={"Origin": "http://attacker.example"},
        )
        assert foreign.status_code == 403 and "another site" in foreign.text
        assert _hashes(client, "main", unique) == {}
        with promote_server.client() as bob:
            assert form_login(bob, *BOB).status_code in (200, 302, 303)
            refused = bob.post("/-/promote", data={**fields, "_xsrf": bob.cookies["_xsrf"]})
            assert refused.status_code == 404, refused.text
        done = alice.post("/-/promote", data={**fields, "_xsrf": _xsrf(page.text)})
        assert done.status_code == 303, done.text
        assert done.headers["Location"] == f"/project/{unique}/1.0/"
    assert _hashes(client, "main", unique) == _hashes(client, "staging", unique)
    # Anonymous readers of main's copy get no form: promoting needs a signed-in owner.
    assert 'action="/-/promote"' not in client.get(f"/project/{unique}/1.0/").text


@pytest.mark.slow
def test_pip_installs_the_promoted_release_from_the_target(
    client: httpx.Client, tmp_path: Path, home: Path, promote_server: Server, unique: str
) -> None:
    """main serves the promoted wheel (with its hash) to pip, which never saw staging."""
    _stage(client, tmp_path, unique)
    assert _promote(client, unique).status_code == 200
    python = new_venv(tmp_path / "venv")
    index_url = f"{promote_server.url}/main/simple/"
    result = pip_install(python, home, "--index-url", index_url, f"{unique}==1.0")
    assert result.returncode == 0, result.stdout + result.stderr
    module = unique.replace("-", "_")
    imported = run([str(python), "-c", f"import {module}"], home)
    assert imported.returncode == 0, imported.stderr
