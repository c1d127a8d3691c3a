"""File downloads: exact bytes, caching headers, HEAD, conditional and range requests
(docs/protocol.md, "Files")."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from conftest import ALICE
from support.distributions import make_sdist, make_wheel
from support.server import Server
from support.uploads import post_upload


@pytest.fixture(scope="module")
def wheel(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of a few kilobytes (random-ish content so ranges are meaningful)."""
    directory = tmp_path_factory.mktemp("files")
    payload = hashlib.sha256(b"seed").digest() * 400
    path = make_wheel(directory, "files-demo", "1.0", files={"files_demo/data.bin": payload})
    with server.client() as client:
        assert post_upload(client, path, auth=ALICE).status_code == 200
    return path


def url_of(path: Path) -> str:
    return f"/packages/files-demo/{path.name}"


def test_download_is_exact_with_headers(server: Server, wheel: Path) -> None:
    """docs/protocol.md, "Downloads": exact bytes, length, no encoding, strong ETag, immutable."""
    data = wheel.read_bytes()
    with server.client() as client:
        response = client.get(url_of(wheel), headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.content == data
    headers = response.headers
    assert headers["Content-Length"] == str(len(data))
    assert "Content-Encoding" not in headers
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert headers["Accept-Ranges"] == "bytes"
    assert "immutable" in headers["Cache-Control"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Disposition"].startswith("attachment")
    assert "Last-Modified" in headers


def test_head_has_get_headers_and_no_body(server: Server, wheel: Path) -> None:
    """docs/protocol.md, "HEAD requests": uv and lazy-wheel readers send HEAD first."""
    with server.client() as client:
        head = client.head(url_of(wheel))
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["Content-Length"] == str(wheel.stat().st_size)
    assert head.headers["Accept-Ranges"] == "bytes"


def test_conditional_requests(server: Server, wheel: Path) -> None:
    """docs/protocol.md, "Downloads": If-None-Match and If-Modified-Since give 304; junk is
    ignored."""
    with server.client() as client:
        first = client.get(url_of(wheel))
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        assert client.get(url_of(wheel), headers={"If-None-Match": etag}).status_code == 304
        assert client.get(url_of(wheel), headers={"If-None-Match": "*"}).status_code == 304
        assert client.get(url_of(wheel), headers={"If-Modified-Since": modified}).status_code == 304
        assert client.get(url_of(wheel), headers={"If-None-Match": '"other"'}).status_code == 200
        junk = client.get(url_of(wheel), headers={"If-Modified-Since": "yesterday-ish"})
        assert junk.status_code == 200


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=100-199", 100, 199),
        ("bytes=-22", None, 22),
        ("bytes=500-", 500, None),
        ("bytes=-99999999", 0, None),
        ("bytes=10-99999999", 10, None),
    ],
)
def test_ranges(
    server: Server, wheel: Path, header: str, start: int | None, end: int | None
) -> None:
    """docs/protocol.md, "Byte ranges": 206 with the right bytes and Content-Range."""
    data = wheel.read_bytes()
    size = len(data)
    if start is None:  # suffix
        first, last = size - end, size - 1  # type: ignore[operator]
    else:
        first, last = start, size - 1 if end is None else end
    with server.client() as client:
        response = client.get(url_of(wheel), headers={"Range": header})
    assert response.status_code == 206
    assert response.content == data[first : last + 1]
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
    assert response.headers["Content-Length"] == str(last - first + 1)


def test_unsatisfiable_range_is_416(server: Server, wheel: Path) -> None:
    """docs/protocol.md, "Byte ranges": 416 with ``Content-Range: bytes */size``."""
    size = wheel.stat().st_size
    with server.client() as client:
        for header in (f"bytes={size}-", "bytes=-0"):
            response = client.get(url_of(wheel), headers={"Range": header})
            assert response.status_code == 416
            assert response.headers["Content-Range"] == f"bytes */{size}"


def test_if_range_and_multi_range_fall_back_to_the_whole_file(server: Server, wheel: Path) -> None:
    """docs/protocol.md, "Byte ranges": If-Range mismatch and multiple ranges answer 200 in full."""
    data = wheel.read_bytes()
    with server.client() as client:
        etag = client.head(url_of(wheel)).headers["ETag"]
        matching = client.get(url_of(wheel), headers={"Range": "bytes=0-3", "If-Range": etag})
        stale = client.get(url_of(wheel), headers={"Range": "bytes=0-3", "If-Range": '"old"'})
        multi = client.get(url_of(wheel), headers={"Range": "bytes=0-3,10-20"})
    assert matching.status_code == 206
    assert matching.content == data[:4]
    assert stale.status_code == 200
    assert stale.content == data
    assert multi.status_code == 200
    assert multi.content == data


def test_sdist_has_no_metadata_file(server: Server, tmp_path: Path) -> None:
    """docs/protocol.md, "Metadata files": only wheels get a ``.metadata`` file."""
    sdist = make_sdist(tmp_path, "files-demo", "1.0")
    with server.client() as client:
        assert post_upload(client, sdist, auth=ALICE).status_code == 200
        assert client.get(f"/packages/files-demo/{sdist.name}").content == sdist.read_bytes()
        assert client.get(f"/packages/files-demo/{sdist.name}.metadata").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/packages/files-demo/..%2f..%2f..%2fetc%2fpasswd",
        "/packages/files-demo/%2e%2e%2f%2e%2e%2fministry.sqlite3",
        "/packages/files-demo/%252e%252e%252fetc%252fpasswd",
        "/packages/files-demo/..%5c..%5cetc%5cpasswd",
        "/packages/files-demo/x%00.whl",
        "/packages/other-project/files_demo-1.0-py3-none-any.whl",
        "/packages/files-demo/files_demo-9.9-py3-none-any.whl",
        "/packages/..%2f..%2fetc/passwd",
    ],
)
def test_no_traversal_and_no_cross_project_reads(server: Server, wheel: Path, path: str) -> None:
    """docs/security.md, "HTTP abuse": odd paths are 404 (or 400), never a file from elsewhere."""
    with server.client() as client:
        response = client.get(path)
    assert response.status_code in (400, 404)
    assert b"root:" not in response.content


def test_non_normalized_project_in_file_url_redirects(server: Server, wheel: Path) -> None:
    """A file URL with a non-normalized project redirects to the canonical one."""
    with server.client() as client:
        response = client.get(f"/packages/Files_Demo/{wheel.name}")
    assert response.status_code == 301
    assert response.headers["Location"] == url_of(wheel)
