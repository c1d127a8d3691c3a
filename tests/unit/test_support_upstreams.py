"""Self-checks of the loopback upstreams the proxy tests rely on (tests/support/upstreams.py).

A fault switch that silently does nothing would let a proxy test pass without
testing anything, so each one is shown to have its effect here, with a plain
HTTP client and no Ministry involved.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pypi_simple import IndexPage, ProjectPage

from support.distributions import make_sdist, make_wheel
from support.upstreams import PypiServerUpstream, StaticUpstream, free_port

JSON_FIRST = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"


@pytest.fixture
def static() -> Iterator[StaticUpstream]:
    """A static upstream of its own, stopped after the test."""
    with StaticUpstream() as upstream:
        yield upstream


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """A client that ignores this machine's proxy settings."""
    with httpx.Client(trust_env=False, timeout=10.0) as instance:
        yield instance


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    """A wheel big enough that a cut in the middle of it is visible."""
    payload = bytes(range(256)) * 64  # stored compressed, but still several KiB
    return make_wheel(
        tmp_path,
        "Up.Stream_Demo",
        "1.0",
        files={"up_stream_demo/__init__.py": b"", "up_stream_demo/data.bin": payload},
    )


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def test_static_tree_lists_projects_and_files_with_hashes(
    static: StaticUpstream, client: httpx.Client, wheel: Path, tmp_path: Path
) -> None:
    """Pages are PEP 503 HTML that an independent parser reads; files download byte-exact."""
    sdist = make_sdist(tmp_path, "up-stream-demo", "1.1")
    other = make_wheel(tmp_path, "other", "2.0")
    static.add(wheel, requires_python=">=3.8")
    static.add(sdist)
    static.add(other)

    index = client.get(static.url)
    assert index.status_code == 200
    assert index.headers["content-type"] == "text/html"
    assert sorted(IndexPage.from_html(index.text).projects) == [
        "other",
        "up-stream-demo",
    ]

    page_url = f"{static.url}up-stream-demo/"
    page = client.get(page_url, headers={"Accept": JSON_FIRST})  # a static tree has no JSON
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html"
    assert 'href="../../files/' in page.text
    assert 'data-requires-python="&gt;=3.8"' in page.text
    packages = ProjectPage.from_html("up-stream-demo", page.text, base_url=page_url).packages
    assert {package.filename for package in packages} == {wheel.name, sdist.name}
    for package in packages:
        local = wheel if package.filename == wheel.name else sdist
        assert package.url.startswith(f"{static.base}/files/")
        assert package.digests == {"sha256": sha256(local.read_bytes())}
        assert package.has_metadata is None
        download = client.get(package.url)
        assert download.status_code == 200
        assert download.content == local.read_bytes()
    assert next(p for p in packages if p.filename == wheel.name).requires_python == ">=3.8"

    assert client.get(f"{static.base}/files/{wheel.name}.metadata").status_code == 404
    assert client.get(f"{static.url}Up.Stream_Demo/").status_code == 404  # static: normalized only
    assert client.get(f"{static.url}missing/").status_code == 404
    redirect = client.get(f"{static.url}up-stream-demo")
    assert (redirect.status_code, redirect.headers["location"]) == (301, "/simple/up-stream-demo/")


def test_static_pages_carry_an_etag_that_revalidates(
    static: StaticUpstream, client: httpx.Client, wheel: Path, tmp_path: Path
) -> None:
    """A conditional request gets 304 until the page changes, as from a real file server."""
    static.add(wheel)
    first = client.get(f"{static.base}{static.page_path('up-stream-demo')}")
    etag = first.headers["etag"]
    again = client.get(first.url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    static.add(make_sdist(tmp_path, "up-stream-demo", "1.1"))
    changed = client.get(first.url, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert [request.status for request in static.received[-2:]] == [304, 200]
    assert static.received[-1].headers["if-none-match"] == etag


def test_static_counts_requests(static: StaticUpstream, client: httpx.Client, wheel: Path) -> None:
    """Every request is recorded on arrival, so tests can count upstream traffic."""
    static.add(wheel)
    for _ in range(3):
        client.get(f"{static.base}{static.page_path('up-stream-demo')}")
    client.get(f"{static.base}{static.file_path(wheel.name)}")
    client.head(f"{static.base}{static.file_path(wheel.name)}")
    assert static.count(static.page_path("up-stream-demo")) == 3
    assert static.count("/files/") == 2
    assert static.count("/files/", method="HEAD") == 1
    assert static.requests[-1] == ("HEAD", static.file_path(wheel.name))
    static.clear_requests()
    assert static.count("/") == 0


def test_fail_with_answers_every_request_with_the_status(
    static: StaticUpstream, client: httpx.Client, wheel: Path
) -> None:
    """fail_with(500) turns pages and files into 500s; None heals."""
    static.add(wheel)
    static.fail_with(500)
    assert client.get(static.url).status_code == 500
    assert client.get(f"{static.base}{static.file_path(wheel.name)}").status_code == 500
    static.fail_with(None)
    assert client.get(static.url).status_code == 200
    with pytest.raises(ValueError, match="error status"):
        static.fail_with(200)


def test_hang_times_out_the_client_and_stop_stays_quick(wheel: Path) -> None:
    """A hanging upstream makes a client time out; stop() does not wait for the hang."""
    upstream = StaticUpstream().start()
    try:
        upstream.add(wheel)
        upstream.hang(30)
        started = time.monotonic()
        with (
            httpx.Client(trust_env=False, timeout=0.5) as short,
            pytest.raises(httpx.ReadTimeout),
        ):
            short.get(upstream.url)
        assert time.monotonic() - started < 5
        assert upstream.count("/simple/") == 1  # it arrived, it just was not answered
    finally:
        started = time.monotonic()
        upstream.stop()
        assert time.monotonic() - started < 2.0


def test_hang_holds_up_only_the_hanging_request(
    static: StaticUpstream, client: httpx.Client, wheel: Path
) -> None:
    """Requests are served in threads: a hung one does not block later ones once healed."""
    static.add(wheel)
    static.hang(30)
    with (
        httpx.Client(trust_env=False, timeout=0.3) as short,
        pytest.raises(httpx.ReadTimeout),
    ):
        short.get(static.url)  # its thread now waits out the 30 seconds
    static.hang(None)
    assert client.get(static.url).status_code == 200


def test_truncated_file_breaks_off_after_the_given_bytes(
    static: StaticUpstream, client: httpx.Client, wheel: Path
) -> None:
    """The full Content-Length is announced, then the connection closes early."""
    static.add(wheel)
    static.truncate_files(100)
    received = bytearray()
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("GET", f"{static.base}{static.file_path(wheel.name)}") as response,
    ):
        assert response.status_code == 200
        assert int(response.headers["content-length"]) == wheel.stat().st_size
        for chunk in response.iter_raw():
            received += chunk
    assert bytes(received) == wheel.read_bytes()[:100]
    assert client.get(static.url).status_code == 200  # pages are untouched
    static.truncate_files(None)
    assert client.get(f"{static.base}{static.file_path(wheel.name)}").content == wheel.read_bytes()


def test_corrupt_file_has_the_right_length_and_the_wrong_hash(
    static: StaticUpstream, client: httpx.Client, wheel: Path
) -> None:
    """Exactly one byte differs; the page still advertises the true hash."""
    hosted = static.add(wheel)
    static.corrupt_files(True)
    served = client.get(f"{static.base}{static.file_path(wheel.name)}").content
    original = wheel.read_bytes()
    assert len(served) == len(original)
    assert sum(a != b for a, b in zip(served, original, strict=True)) == 1
    assert sha256(served) != hosted.sha256
    page = client.get(f"{static.base}{static.page_path('up-stream-demo')}").text
    assert f"#sha256={sha256(original)}" in page
    static.corrupt_files(False)
    assert client.get(f"{static.base}{static.file_path(wheel.name)}").content == original


def test_login_page_instead_of_project_page(
    static: StaticUpstream, client: httpx.Client, wheel: Path
) -> None:
    """A captive portal answers 200 text/html with no links at all."""
    static.add(wheel)
    static.serve_html_error_as_page(True)
    page = client.get(f"{static.base}{static.page_path('up-stream-demo')}")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html"
    assert "Please log in" in page.text
    assert "<a " not in page.text
    static.heal()
    assert wheel.name in client.get(page.url).text


def test_offline_refuses_then_online_serves_on_the_same_port(
    static: StaticUpstream, client: httpx.Client, wheel: Path
) -> None:
    """offline() refuses new connections and cuts pooled ones; online() reuses the port."""
    static.add(wheel)
    port, url = static.port, static.url
    assert client.get(url).status_code == 200  # leaves a keep-alive connection in the pool
    static.offline()
    assert not static.is_online
    with pytest.raises(httpx.TransportError):
        client.get(url)  # the pooled connection was cut, and a new one is refused
    with httpx.Client(trust_env=False) as fresh, pytest.raises(httpx.ConnectError):
        fresh.get(url)
    static.online()
    assert static.port == port
    assert client.get(url).status_code == 200


def test_offline_drops_hanging_requests_at_once(static: StaticUpstream, wheel: Path) -> None:
    """A request hanging when the upstream goes away sees the connection close, not a wait."""
    static.add(wheel)
    static.hang(30)
    started = time.monotonic()
    with httpx.Client(trust_env=False, timeout=10) as client:
        failure: list[BaseException] = []

        def fetch() -> None:
            try:
                client.get(static.url)
            except httpx.TransportError as error:
                failure.append(error)

        thread = threading.Thread(target=fetch)
        thread.start()
        deadline = time.monotonic() + 5
        while static.count("/simple/") == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        static.offline()
        thread.join(5)
    assert failure, "the hanging request should have failed when the upstream went away"
    assert time.monotonic() - started < 5


def test_free_port_is_bindable() -> None:
    """free_port() names a loopback port nothing listens on."""
    port = free_port()
    with pytest.raises(httpx.ConnectError), httpx.Client(trust_env=False) as client:
        client.get(f"http://127.0.0.1:{port}/")


@pytest.mark.slow
def test_pypiserver_serves_a_copied_wheel_and_counts_requests(
    tmp_path: Path, client: httpx.Client, wheel: Path
) -> None:
    """The real pypiserver lists a file added by copy, with its hash, and logs each request."""
    with PypiServerUpstream(tmp_path / "pypiserver") as upstream:
        assert upstream.url == f"http://127.0.0.1:{upstream.port}/simple/"
        assert client.get(f"{upstream.url}up-stream-demo/").status_code == 404  # no fallback
        upstream.add(wheel)
        page_url = f"{upstream.url}up-stream-demo/"
        page = client.get(page_url)
        assert page.status_code == 200
        packages = ProjectPage.from_html("up-stream-demo", page.text, base_url=page_url).packages
        assert [package.filename for package in packages] == [wheel.name]
        assert packages[0].digests == {"sha256": sha256(wheel.read_bytes())}
        assert packages[0].url.startswith(f"{upstream.base}{upstream.file_path(wheel.name)}")
        assert client.get(packages[0].url).content == wheel.read_bytes()
        assert "up-stream-demo" in client.get(upstream.url).text

        assert upstream.count(upstream.page_path("up-stream-demo")) == 2
        assert upstream.count(upstream.file_path(wheel.name), method="GET") == 1
        assert upstream.requests[-1] == ("GET", "/simple/")
        assert ("GET", "/simple/up-stream-demo/", 404) in upstream.access_log()
    assert upstream.process is not None
    assert upstream.process.returncode is not None
    assert "GET /simple/ HTTP/1.1" in upstream.log_path.read_text()
