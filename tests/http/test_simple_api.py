"""The simple repository API against a real server: docs/protocol.md, "The simple API", field by
field."""

from __future__ import annotations

import gzip
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pypi_simple import ACCEPT_HTML_ONLY, ACCEPT_JSON_ONLY, PyPISimple

from conftest import ALICE
from support.distributions import make_sdist, make_wheel
from support.server import Server
from support.uploads import post_upload

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"
UPLOAD_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

# The exact Accept headers real clients send (docs/protocol.md, "Client behaviours").
PIP = f"{JSON}, {HTML}; q=0.1, text/html; q=0.01"
UV = f"{JSON}, {HTML};q=0.2, text/html;q=0.01"
POETRY = f"{JSON}, */*;q=0.1"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


class Anchors(HTMLParser):
    """Collects the anchors of a page with their attributes and text."""

    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self.meta: dict[str, str | None] = {}
        self._open: dict[str, str | None] | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open, self._text = dict(attrs), ""
        if tag == "meta":
            values = dict(attrs)
            self.meta[values.get("name") or ""] = values.get("content")

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.anchors.append((self._open, self._text))
            self._open = None


def anchors_of(body: str) -> Anchors:
    parser = Anchors()
    parser.feed(body)
    return parser


@pytest.fixture(scope="module")
def published(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A project with a wheel (requires-python >=3.8) and an sdist, uploaded once."""
    directory = tmp_path_factory.mktemp("simple")
    wheel = make_wheel(directory, "Simple.Demo", "1.0", requires_python=">=3.8", summary="A demo")
    sdist = make_sdist(directory, "Simple.Demo", "1.0", requires_python=">=3.8")
    with server.client() as client:
        for path in (wheel, sdist):
            response = post_upload(client, path, auth=ALICE)
            assert response.status_code == 200, response.text
    return {"wheel": wheel, "sdist": sdist}


def test_json_project_page_has_every_field(server: Server, published: dict[str, Path]) -> None:
    """docs/protocol.md, "JSON pages": pip's Accept gets PEP 691 JSON with every field clients
    read."""
    with server.client() as client:
        response = client.get("/simple/simple-demo/", headers={"Accept": PIP})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == JSON
    assert "Accept" in response.headers["Vary"]
    document = response.json()
    assert document["meta"]["api-version"] == "1.4"
    assert document["name"] == "simple-demo"
    assert document["versions"] == ["1.0"]
    assert "dist-info-metadata" not in response.text.replace("data-dist-info-metadata", "")
    by_name = {f["filename"]: f for f in document["files"]}
    assert set(by_name) == {published["wheel"].name, published["sdist"].name}
    for kind, path in published.items():
        entry = by_name[path.name]
        data = path.read_bytes()
        assert entry["hashes"] == {"sha256": hashlib.sha256(data).hexdigest()}
        assert entry["size"] == len(data)
        assert entry["requires-python"] == ">=3.8"
        assert entry["yanked"] is False
        assert UPLOAD_TIME.match(entry["upload-time"]), entry["upload-time"]
        assert entry["url"] == f"/packages/simple-demo/{path.name}"
        if kind == "wheel":
            assert set(entry["core-metadata"]) == {"sha256"}
            assert entry["data-dist-info-metadata"] == entry["core-metadata"]
        else:
            assert entry["core-metadata"] is False


def test_html_project_page(server: Server, published: dict[str, Path]) -> None:
    """docs/protocol.md, "HTML pages": the HTML form for clients that send no Accept."""
    with server.client() as client:
        response = client.get("/simple/simple-demo/")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")
    assert 'data-core-metadata="false"' not in response.text
    assert 'data-requires-python="&gt;=3.8"' in response.text
    page = anchors_of(response.text)
    assert page.meta["pypi:repository-version"] == "1.4"
    assert len(page.anchors) == 2
    for attributes, text in page.anchors:
        href = attributes["href"] or ""
        url, _, fragment = href.partition("#")
        assert text == urlsplit(url).path.rsplit("/", 1)[-1]
        digest = hashlib.sha256(next(p for p in published.values() if p.name == text).read_bytes())
        assert fragment == f"sha256={digest.hexdigest()}"
        assert "data-yanked" not in attributes
        assert attributes["data-requires-python"] == ">=3.8"
        if text.endswith(".whl"):
            assert (attributes["data-core-metadata"] or "").startswith("sha256=")
            assert attributes["data-dist-info-metadata"] == attributes["data-core-metadata"]
        else:
            assert "data-core-metadata" not in attributes


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (PIP, JSON),
        (UV, JSON),
        (POETRY, JSON),
        (None, "text/html"),
        ("*/*", "text/html"),
        (BROWSER, "text/html"),
        ("text/html", "text/html"),
        (HTML, HTML),
        ("application/vnd.pypi.simple.latest+json", JSON),
        ("application/vnd.pypi.simple.latest+html", HTML),
        (f"{JSON};q=0, text/html", "text/html"),
        (f"text/html;q=0.5, {HTML};q=0.9", HTML),
    ],
)
def test_content_negotiation(
    server: Server, published: dict[str, Path], accept: str | None, expected: str
) -> None:
    """docs/protocol.md, "Content negotiation": q-values decide, ties prefer JSON, no Accept means
    HTML."""
    headers = {"Accept": accept} if accept is not None else {}
    with server.client() as client:
        for path in ("/simple/simple-demo/", "/simple/"):
            response = client.get(path, headers=headers)
            assert response.status_code == 200
            assert response.headers["Content-Type"].split(";")[0] == expected


@pytest.mark.parametrize("accept", ["application/json", "application/vnd.pypi.simple.v2+json"])
def test_unacceptable_type_is_406(server: Server, published: dict[str, Path], accept: str) -> None:
    """docs/protocol.md, "Content negotiation": nothing acceptable is 406 (never 300), with a
    message saying what is served."""
    with server.client() as client:
        response = client.get("/simple/simple-demo/", headers={"Accept": accept})
    assert response.status_code == 406
    assert "application/vnd.pypi.simple.v1+json" in response.text


def test_format_query_overrides_accept(server: Server, published: dict[str, Path]) -> None:
    """PEP 691 allows ``?format=`` for people; it wins over the header."""
    with server.client() as client:
        response = client.get(
            f"/simple/simple-demo/?format={JSON}", headers={"Accept": "text/html"}
        )
    assert response.headers["Content-Type"] == JSON


def test_unknown_project_is_404_in_both_forms(server: Server) -> None:
    """docs/protocol.md, "Page URLs": an unknown project is 404, never an empty 200 (uv depends on
    it)."""
    with server.client() as client:
        for accept in (PIP, "text/html"):
            response = client.get("/simple/no-such-project-here/", headers={"Accept": accept})
            assert response.status_code == 404


def test_non_normalized_names_redirect(server: Server, published: dict[str, Path]) -> None:
    """docs/protocol.md, "Page URLs": 301 to the normalized URL with the query kept; slashes
    added."""
    with server.client() as client:
        response = client.get("/simple/Simple_Demo/?x=1")
        assert response.status_code == 301
        assert response.headers["Location"] == "/simple/simple-demo/?x=1"
        response = client.get("/simple/simple-demo")
        assert response.status_code == 301
        assert response.headers["Location"] == "/simple/simple-demo/"
        response = client.get("/simple")
        assert response.status_code == 301
        assert response.headers["Location"] == "/simple/"
        followed = client.get("/simple/SIMPLE.demo/", follow_redirects=True)
        assert followed.status_code == 200
        assert "simple_demo-1.0.tar.gz" in followed.text


def test_crlf_in_project_name_is_not_reflected(server: Server) -> None:
    """docs/security.md, "HTTP abuse": a CRLF in the path never becomes a header."""
    with server.client() as client:
        response = client.get("/simple/%0d%0aSet-Cookie:x=1/")
    assert response.status_code == 404
    assert "set-cookie" not in response.headers


def test_root_form_serves_the_project_page(server: Server, published: dict[str, Path]) -> None:
    """``pip install -i http://ministry.example:PORT pkg`` asks for ``/<project>/``: the
    same page answers."""
    with server.client() as client:
        root = client.get("/simple-demo/", headers={"Accept": UV})
        simple = client.get("/simple/simple-demo/", headers={"Accept": UV})
        assert root.status_code == 200
        assert root.json() == simple.json()
        assert client.get("/Simple.Demo/").headers["Location"] == "/simple-demo/"


def test_project_list(server: Server, published: dict[str, Path]) -> None:
    """docs/protocol.md, "Project list": one entry per project, display name as text, normalized
    href."""
    with server.client() as client:
        as_json = client.get("/simple/", headers={"Accept": PIP})
        as_html = client.get("/simple/")
    assert as_json.json()["meta"]["api-version"] == "1.4"
    names = [p["name"] for p in as_json.json()["projects"]]
    assert "Simple.Demo" in names
    links = {text: attrs["href"] for attrs, text in anchors_of(as_html.text).anchors}
    assert links["Simple.Demo"] == "simple-demo/"


def test_metadata_file_matches_advertised_hash(server: Server, published: dict[str, Path]) -> None:
    """docs/protocol.md, "Metadata files": ``<file>.metadata`` is the wheel's METADATA byte for
    byte."""
    import zipfile

    with server.client() as client:
        entry = next(
            f
            for f in client.get("/simple/simple-demo/", headers={"Accept": PIP}).json()["files"]
            if f["filename"].endswith(".whl")
        )
        response = client.get(entry["url"] + ".metadata")
        head = client.head(entry["url"] + ".metadata")
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == entry["core-metadata"]["sha256"]
    with zipfile.ZipFile(published["wheel"]) as archive:
        assert response.content == archive.read("simple_demo-1.0.dist-info/METADATA")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(response.content))
    assert head.content == b""


def test_etag_and_not_modified(server: Server, tmp_path: Path, unique: str) -> None:
    """docs/protocol.md, "Revalidation": ETag and 304 while unchanged; a new upload changes page and
    ETag."""
    with server.client() as client:
        first = make_wheel(tmp_path, unique, "1.0")
        assert post_upload(client, first, auth=ALICE).status_code == 200
        page = client.get(f"/simple/{unique}/", headers={"Accept": PIP})
        etag = page.headers["ETag"]
        serial = int(page.headers["X-PyPI-Last-Serial"])
        again = client.get(f"/simple/{unique}/", headers={"Accept": PIP, "If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        second = make_wheel(tmp_path, unique, "2.0")
        assert post_upload(client, second, auth=ALICE).status_code == 200
        changed = client.get(f"/simple/{unique}/", headers={"Accept": PIP, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert int(changed.headers["X-PyPI-Last-Serial"]) > serial
    assert changed.json()["versions"] == ["1.0", "2.0"]


def test_gzip_only_when_asked(server: Server, published: dict[str, Path]) -> None:
    """docs/protocol.md, "Response headers": pages are compressed only for clients that accept
    gzip."""
    with server.client() as client:
        plain = client.get("/simple/simple-demo/", headers={"Accept-Encoding": "identity"})
        request = client.build_request(
            "GET", "/simple/simple-demo/", headers={"Accept-Encoding": "gzip"}
        )
        compressed = client.send(request, stream=True)
        raw = b"".join(compressed.iter_raw())
    assert "Content-Encoding" not in plain.headers
    assert compressed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in compressed.headers["Vary"]
    assert gzip.decompress(raw) == plain.content
    assert compressed.headers["ETag"] != plain.headers["ETag"]


def test_head_matches_get(server: Server, published: dict[str, Path]) -> None:
    """docs/protocol.md, "HEAD requests": HEAD has GET's status and headers, and no body."""
    with server.client() as client:
        get = client.get("/simple/simple-demo/", headers={"Accept": PIP})
        head = client.head("/simple/simple-demo/", headers={"Accept": PIP})
    assert head.status_code == 200
    assert head.content == b""
    for name in ("Content-Type", "ETag", "Content-Length", "X-PyPI-Last-Serial"):
        assert head.headers[name] == get.headers[name]


def test_post_to_simple_is_405(server: Server) -> None:
    """docs/protocol.md, "Upload URLs": uv turns a 405 into "that's most likely the simple index
    URL"."""
    with server.client() as client:
        assert client.post("/simple/", content=b"x").status_code == 405


@pytest.mark.parametrize("accept", [ACCEPT_JSON_ONLY, ACCEPT_HTML_ONLY])
def test_pypi_simple_client_reads_both_forms(
    server: Server, published: dict[str, Path], accept: str
) -> None:
    """The ``pypi-simple`` client library parses our pages in both serializations."""
    with PyPISimple(endpoint=f"{server.url}/simple/", accept=accept) as client:
        page = client.get_project_page("simple-demo")
        index = client.get_index_page()
    assert "Simple.Demo" in index.projects or "simple-demo" in index.projects
    packages = {p.filename: p for p in page.packages}
    wheel = packages[published["wheel"].name]
    sdist = packages[published["sdist"].name]
    assert wheel.digests["sha256"] == hashlib.sha256(published["wheel"].read_bytes()).hexdigest()
    assert wheel.requires_python == ">=3.8"
    assert wheel.has_metadata is True
    assert sdist.has_metadata in (False, None)
    assert wheel.is_yanked is False
    assert wheel.version == "1.0"
    assert sdist.package_type == "sdist"
    if accept == ACCEPT_JSON_ONLY:
        assert wheel.size == published["wheel"].stat().st_size
        assert wheel.upload_time is not None
