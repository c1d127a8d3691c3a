"""The JSON API (``/pypi/<project>/json``): the shape tools expect from the public index
(docs/protocol.md, "JSON API keys")."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from conftest import ALICE
from support.distributions import make_sdist, make_wheel
from support.server import Server
from support.uploads import post_upload

INFO_KEYS = {
    "author", "author_email", "bugtrack_url", "classifiers", "description",
    "description_content_type", "docs_url", "download_url", "downloads", "dynamic",
    "home_page", "keywords", "license", "license_expression", "license_files", "maintainer",
    "maintainer_email", "name", "package_url", "platform", "project_url", "project_urls",
    "provides_extra", "release_url", "requires_dist", "requires_python", "summary", "version",
    "yanked", "yanked_reason",
}  # fmt: skip
FILE_KEYS = {
    "comment_text", "core-metadata", "digests", "downloads", "filename", "has_sig",
    "md5_digest", "packagetype", "python_version", "requires_python", "size", "upload_time",
    "upload_time_iso_8601", "url", "yanked", "yanked_reason",
}  # fmt: skip


@pytest.fixture(scope="module")
def released(server: Server, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Project Json.Demo: 1.0.0 (wheel + sdist), 2.0rc1 (a pre-release) and 1.5."""
    directory = tmp_path_factory.mktemp("json")
    extra = [
        ("Classifier", "Programming Language :: Python :: 3"),
        ("Keywords", "alpha,beta"),
        ("Project-URL", "Source, https://example.invalid/src"),
        ("Author", "Ada"),
    ]
    paths = [
        make_wheel(
            directory, "Json.Demo", "1.0.0", summary="JSON demo", requires_python=">=3.9",
            requires_dist=["requests>=2"], extra_headers=extra, description="Long text\n",
        ),
        make_sdist(directory, "Json.Demo", "1.0.0", summary="JSON demo"),
        make_wheel(directory, "Json.Demo", "2.0rc1", summary="next"),
        make_wheel(directory, "Json.Demo", "1.5", summary="one and a half"),
    ]  # fmt: skip
    with server.client() as client:
        for path in paths:
            assert post_upload(client, path, auth=ALICE).status_code == 200
    return paths


def test_project_document(server: Server, released: list[Path]) -> None:
    """docs/protocol.md, "Latest release", "JSON API keys": every key; latest is the newest final
    release, not the pre-release."""
    with server.client() as client:
        response = client.get("/pypi/json-demo/json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    document = response.json()
    assert int(response.headers["X-PyPI-Last-Serial"]) == document["last_serial"]
    assert set(document) == {
        "info",
        "last_serial",
        "ownership",
        "releases",
        "urls",
        "vulnerabilities",
    }
    info = document["info"]
    assert set(info) == INFO_KEYS
    assert info["version"] == "1.5"
    assert info["name"] == "Json.Demo"
    assert info["summary"] == "one and a half"
    assert set(document["releases"]) == {"1.0.0", "1.5", "2.0rc1"}
    assert [f["filename"] for f in document["urls"]] == ["json_demo-1.5-py3-none-any.whl"]
    assert document["vulnerabilities"] == []


def test_version_document_and_files(server: Server, released: list[Path]) -> None:
    """docs/protocol.md, "JSON API URLs", "JSON API keys": ``1.0`` finds ``1.0.0``; no ``releases``;
    full file dicts."""
    with server.client() as client:
        response = client.get("/pypi/json-demo/1.0/json")
    assert response.status_code == 200
    document = response.json()
    assert "releases" not in document
    info = document["info"]
    assert info["version"] == "1.0.0"
    assert info["requires_python"] == ">=3.9"
    assert info["requires_dist"] == ["requests>=2"]
    assert info["classifiers"] == ["Programming Language :: Python :: 3"]
    assert info["keywords"] == "alpha,beta"
    assert info["project_urls"] == {"Source": "https://example.invalid/src"}
    assert info["author"] == "Ada"
    assert info["description"] == "Long text\n"
    assert info["yanked"] is False
    files = {f["filename"]: f for f in document["urls"]}
    assert set(files) == {"json_demo-1.0.0-py3-none-any.whl", "json_demo-1.0.0.tar.gz"}
    for path in released[:2]:
        entry = files[path.name]
        data = path.read_bytes()
        assert set(entry) == FILE_KEYS
        assert entry["digests"] == {
            "md5": hashlib.md5(data).hexdigest(),
            "sha256": hashlib.sha256(data).hexdigest(),
            "blake2b_256": hashlib.blake2b(data, digest_size=32).hexdigest(),
        }
        assert entry["size"] == len(data)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", entry["upload_time"])
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", entry["upload_time_iso_8601"]
        )
        assert entry["url"].endswith(f"/packages/json-demo/{path.name}")
        assert entry["url"].startswith(server.url)
        assert entry["yanked"] is False
    assert files["json_demo-1.0.0.tar.gz"]["packagetype"] == "sdist"
    assert files["json_demo-1.0.0.tar.gz"]["python_version"] == "source"
    assert files["json_demo-1.0.0-py3-none-any.whl"]["python_version"] == "py3"


def test_file_urls_download(server: Server, released: list[Path]) -> None:
    """The absolute ``url`` of a file downloads exactly that file."""
    with server.client() as client:
        entry = client.get("/pypi/json-demo/1.5/json").json()["urls"][0]
        assert client.get(entry["url"]).content == released[3].read_bytes()


def test_redirects_and_not_found(server: Server, released: list[Path]) -> None:
    """docs/protocol.md, "JSON API URLs": non-normalized names 301; unknown projects and versions
    404; slash form."""
    with server.client() as client:
        moved = client.get("/pypi/Json.Demo/json")
        assert moved.status_code == 301
        assert moved.headers["Location"] == "/pypi/json-demo/json"
        moved = client.get("/pypi/JSON_demo/1.5/json")
        assert moved.headers["Location"] == "/pypi/json-demo/1.5/json"
        assert client.get("/pypi/json-demo/json/").status_code == 200
        assert client.get("/pypi/json-demo/9.9/json").status_code == 404
        assert client.get("/pypi/no-such-project/json").status_code == 404


def test_documents_follow_uploads_and_yanks(server: Server, tmp_path: Path) -> None:
    """The encoded document is kept per project view: a change must show at once."""
    name = "json-follows"
    with server.client() as client:
        first = make_wheel(tmp_path, name, "1.0")
        assert post_upload(client, first, auth=ALICE).status_code == 200
        before = client.get(f"/pypi/{name}/json").json()
        assert before["info"]["version"] == "1.0"
        assert client.get(f"/pypi/{name}/json").json() == before
        assert post_upload(client, make_wheel(tmp_path, name, "2.0"), auth=ALICE).status_code == 200
        after = client.get(f"/pypi/{name}/json")
        assert after.json()["info"]["version"] == "2.0"
        assert int(after.headers["X-PyPI-Last-Serial"]) > before["last_serial"]
        assert server.cli("yank", name, "2.0").returncode == 0
        assert client.get(f"/pypi/{name}/2.0/json").json()["info"]["yanked"] is True
        assert client.get(f"/pypi/{name}/json").json()["info"]["version"] == "1.0"


def test_links_lead_to_the_pages_of_the_index_read(server: Server, tmp_path: Path) -> None:
    """docs/protocol.md, "JSON API keys": ``project_url``, ``package_url`` and
    ``release_url`` name the pages of the index the document was read through (the
    default index at the root, another under its name, also for a project it
    inherits); each of them is a page."""
    name = "json-linked"
    for arguments in (("json-team/apps", "--uploaders", "alice"), ("json-heir", "--bases", "main")):
        made = server.cli("index", "create", *arguments)
        assert made.returncode == 0, made.stderr
    with server.client() as client:
        for url in ("/legacy/", "/json-team/apps/legacy/"):
            wheel = make_wheel(tmp_path, name, "1.0")
            assert post_upload(client, wheel, auth=ALICE, url=url).status_code == 200
        for prefix in ("", "/json-team/apps", "/json-heir"):
            for document_path in (f"/pypi/{name}/json", f"/pypi/{name}/1.0/json"):
                info = client.get(prefix + document_path).json()["info"]
                pages = f"{server.url}{prefix}/project/{name}/"
                assert info["project_url"] == info["package_url"] == pages, document_path
                assert info["release_url"] == f"{pages}1.0/"
            for link in (info["project_url"], info["release_url"]):
                page = client.get(link, headers={"Accept": "text/html"})
                assert page.status_code == 200, link
                assert f'href="{prefix}/simple/{name}/"' in page.text  # names the index
