"""The listings that grow with the store: ``/packages/`` written in chunks (its rows kept
deflated), ``/simple/`` kept only gzipped, and the home page's count, which the store
gives without a project list.

Each listing must stay complete and exact, for a private index as for the default one,
and follow uploads and deletions (docs/benchmarks.md, "Large store").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ALICE, BOB, add_user
from support.distributions import make_wheel
from support.inprocess import InProcessServer
from support.server import Server
from support.uploads import post_upload

PRIVATE = "team/vault"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
_ROW = re.compile(r'<tr><td><a href="([^"]+)/">([^<]*)</a></td><td class="num">(\d+)</td></tr>')


def _ok(server: Server, *arguments: str) -> None:
    result = server.cli(*arguments)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A private index that bob reads and uploads to; main, where alice uploads and
    files may be deleted."""
    server = InProcessServer(tmp_path_factory.mktemp("streams") / "data").start()
    for user in (ALICE, BOB):
        add_user(server, *user)
    _ok(server, "index", "create", PRIVATE, "--private", "--readers", "bob", "--uploaders", "bob")
    _ok(server, "index", "update", "main", "--allow-delete")
    yield server
    server.stop()


def _upload(site: Server, tmp: Path, name: str, index: str, auth: tuple[str, str]) -> None:
    with site.client() as client:
        url = "/" if index == "main" else f"/{index}/"
        response = post_upload(client, make_wheel(tmp, name, "1.0"), auth=auth, url=url)
        assert response.status_code == 200, response.text


def _simple_rows(site: Server, index: str, auth: tuple[str, str] | None) -> list[tuple[str, int]]:
    """(name, last serial) of every project, from the index's PEP 691 list."""
    with site.client() as client:
        response = client.get(f"/{index}/simple/", headers={"Accept": SIMPLE_JSON}, auth=auth)
    assert response.status_code == 200
    return [(p["name"], p["_last-serial"]) for p in response.json()["projects"]]


def test_packages_page_is_streamed_whole_for_a_private_index(site: Server, tmp_path: Path) -> None:
    """Every project once, in order, inside a complete page; its ETag answers 304 until an
    upload changes the list, and then names the new page."""
    for name in ("Vault-Beta", "vault-alpha", "Vault_Gamma"):
        _upload(site, tmp_path, name, PRIVATE, BOB)
    path = f"/{PRIVATE}/packages/"
    with site.client() as client:
        page = client.get(path, auth=BOB)
        # Made from the project list the first time, from the kept deflated rows after.
        kept = client.get(path, auth=BOB)
        stranger = client.get(path)
        again = client.get(path, auth=BOB, headers={"If-None-Match": page.headers["ETag"]})
        head = client.head(path, auth=BOB)
    assert page.status_code == kept.status_code == 200
    assert kept.content == page.content
    text = page.text
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    rows = _ROW.findall(text)
    assert [(href, display) for href, display, _ in rows] == [
        ("vault-alpha", "vault-alpha"),
        ("vault-beta", "Vault-Beta"),
        ("vault-gamma", "Vault_Gamma"),
    ]
    listed = [(display, int(serial)) for _, display, serial in rows]
    assert listed == _simple_rows(site, PRIVATE, BOB)
    assert stranger.status_code == 401 and "vault-alpha" not in stranger.text
    assert again.status_code == 304 and again.content == b""
    assert head.status_code == 200 and head.content == b""
    assert head.headers["ETag"] == page.headers["ETag"]

    _upload(site, tmp_path, "vault-delta", PRIVATE, BOB)
    with site.client() as client:
        changed = client.get(path, auth=BOB, headers={"If-None-Match": page.headers["ETag"]})
    assert changed.status_code == 200
    with site.client() as client:
        assert client.get(path, auth=BOB).content == changed.content
    assert changed.headers["ETag"] != page.headers["ETag"]
    assert [href for href, _, _ in _ROW.findall(changed.text)] == [
        "vault-alpha",
        "vault-beta",
        "vault-delta",
        "vault-gamma",
    ]


def test_root_list_kept_gzipped_is_sent_plain_to_clients_without_gzip(
    site: Server, tmp_path: Path
) -> None:
    """The plain form, made from the kept gzip form as it is sent, is the same page; either
    form's ETag makes the other's request a 304."""
    _upload(site, tmp_path, "plain-reader", "main", ALICE)
    for accept in (SIMPLE_JSON, "text/html"):
        with site.client() as client:
            zipped = client.get("/simple/", headers={"Accept": accept, "Accept-Encoding": "gzip"})
            plain = client.get(
                "/simple/", headers={"Accept": accept, "Accept-Encoding": "identity"}
            )
            crossed = client.get(
                "/simple/",
                headers={
                    "Accept": accept,
                    "Accept-Encoding": "identity",
                    "If-None-Match": zipped.headers["ETag"],
                },
            )
        assert zipped.headers["Content-Encoding"] == "gzip"
        assert "Content-Encoding" not in plain.headers
        # httpx undoes the gzip; the raw bytes are checked through the ETag pair.
        assert plain.content == zipped.content
        assert zipped.headers["ETag"] == plain.headers["ETag"][:-1] + '-gzip"'
        assert crossed.status_code == 304
        assert "plain-reader" in plain.text
        if accept == SIMPLE_JSON:
            assert {"name": "plain-reader"} in [
                {"name": p["name"]} for p in json.loads(plain.content)["projects"]
            ]


def test_home_page_counts_follow_uploads_and_deletions(site: Server, tmp_path: Path) -> None:
    """The count comes from the store, not from a project list: one more after an upload,
    one fewer after a deletion; a private index's projects are not counted."""

    def count() -> int:
        with site.client() as client:
            page = client.get("/")
        assert page.status_code == 200
        found = re.search(r"A Python package index with (\d+) projects?\.", page.text)
        assert found is not None, page.text
        return int(found[1])

    shown = len(_simple_rows(site, "main", None))
    assert count() == shown
    _upload(site, tmp_path, "counted-one", "main", ALICE)
    _upload(site, tmp_path, "counted-two", "main", ALICE)
    assert count() == shown + 2 == len(_simple_rows(site, "main", None))
    _ok(site, "delete", "counted-one", "--index", "main")
    assert count() == shown + 1 == len(_simple_rows(site, "main", None))
    with site.client() as client:
        home = client.get("/").text
    assert "counted-two 1.0" in home and "counted-one" not in home
