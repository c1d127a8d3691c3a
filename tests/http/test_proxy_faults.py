"""The caching proxy over HTTP: upstream faults, single flight, freshness, metadata, min-age.

Every upstream is a real server on loopback (issue 4): the static PEP 503 tree of
``support.upstreams`` with its fault switches, pypiserver, and another
``ministry serve``. Each test starts a proxy of its own (``ministry serve
--upstream``) and counts on the upstream side what the proxy asked for. Nothing
here waits a fixed time: the hang fault outlasts ``--upstream-timeout 1``, and
whatever happens after a response (temporary files going away) is polled for.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import signal
import time
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from conftest import ALICE
from support.distributions import make_wheel
from support.inprocess import InProcessServer
from support.server import Server, wait_for
from support.uploads import post_upload
from support.upstreams import (
    PypiServerUpstream,
    StaticUpstream,
    Upstream,
    publish_to_ministry,
)

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
SIMPLE_HTML = "application/vnd.pypi.simple.v1+html"
# The proxy must reach its loopback upstreams directly, whatever this machine's proxy settings.
HELD_BACK = "held back by the minimum-age rule"


# -- helpers ------------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wheel_name(name: str, version: str) -> str:
    return f"{name.replace('-', '_')}-{version}-py3-none-any.whl"


def big_wheel(directory: Path, name: str, version: str = "1.0", size: int = 300_000) -> Path:
    """A wheel of about ``size`` incompressible bytes, so that a download takes many chunks."""
    directory.mkdir(parents=True, exist_ok=True)
    module = name.replace("-", "_")
    payload = random.Random(f"{name}-{version}").randbytes(size)
    return make_wheel(
        directory,
        name,
        version,
        files={f"{module}/__init__.py": b"", f"{module}/data.bin": payload},
    )


def start_proxy(data: Path, upstream: str, *options: str) -> Server:
    """``ministry serve --upstream <upstream> <options>`` on a data directory."""
    arguments = ["--upstream", upstream, *options]
    return InProcessServer(data, arguments=arguments).start()


def json_page(client: httpx.Client, path: str) -> httpx.Response:
    return client.get(path, headers={"Accept": SIMPLE_JSON})


def files_of(response: httpx.Response) -> dict[str, dict[str, object]]:
    """The file entries of a PEP 691 project page, by filename."""
    assert response.status_code == 200, response.text
    return {f["filename"]: f for f in response.json()["files"]}


def temp_files(server: Server) -> list[Path]:
    """What is left in the server's spool directory."""
    spool = server.data / "tmp"
    return sorted(spool.iterdir()) if spool.exists() else []


def blob_path(server: Server, digest: str) -> Path:
    return server.data / "blobs" / "sha256" / digest[:2] / digest[2:4] / digest


def assert_blobs_sound(server: Server) -> None:
    """Every blob in the store holds exactly the bytes its name promises."""
    for path in (server.data / "blobs" / "sha256").rglob("*"):
        if path.is_file():
            assert sha256(path.read_bytes()) == path.name, f"{path} holds other bytes"


def metrics(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``/-/metrics`` as {(name, labels): value}."""
    with server.client() as client:
        text = client.get("/-/metrics").text
    values = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if match and not line.startswith("#"):
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match[2] or ""))
            values[(match[1], labels)] = float(match[3])
    return values


def metric(
    values: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return values.get((name, frozenset(labels.items())), 0.0)


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: dict[str, dict[str, str | None]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            attributes = dict(attrs)
            href = attributes.get("href") or ""
            self.anchors[href.split("#")[0].rsplit("/", 1)[-1]] = attributes


def html_anchors(body: str) -> dict[str, dict[str, str | None]]:
    """The anchors of a PEP 503 page, by the filename they link to."""
    parser = _Anchors()
    parser.feed(body)
    return parser.anchors


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def static() -> Iterator[StaticUpstream]:
    with StaticUpstream() as upstream:
        yield upstream


@pytest.fixture
def proxies(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Starts proxies (``--upstream URL`` plus options); stops them after the test."""
    started: list[Server] = []

    def start(upstream: str, *options: str, data: Path | None = None) -> Server:
        server = start_proxy(data or tmp_path / "proxy", upstream, *options)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.running:
            server.stop()


@pytest.fixture(scope="module")
def ministry_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Another Ministry (PEP 691 JSON, upload times, PEP 658 metadata) shared by the module."""
    server = InProcessServer(tmp_path_factory.mktemp("ministry-upstream") / "data").start()
    result = server.cli("user", "add", ALICE[0], "--password-stdin", stdin=ALICE[1] + "\n")
    assert result.returncode == 0, result.stderr
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pypiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PypiServerUpstream]:
    with PypiServerUpstream(tmp_path_factory.mktemp("pypiserver")) as upstream:
        yield upstream


@pytest.fixture(params=["static", pytest.param("pypiserver", marks=pytest.mark.slow), "ministry"])
def any_upstream(request: pytest.FixtureRequest) -> Upstream:
    """Each of the three kinds of upstream in turn."""
    if request.param == "static":
        return Upstream.of_static(request.getfixturevalue("static"))
    if request.param == "pypiserver":
        return Upstream.of_pypiserver(request.getfixturevalue("pypiserver"))
    return Upstream.of_ministry(request.getfixturevalue("ministry_upstream"), ALICE)


# -- single flight ------------------------------------------------------------------------


async def _install_like(base_url: str, project: str, clients: int) -> list[tuple[int, bytes]]:
    """``clients`` concurrent readers, each reading the project page and then its file."""
    limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
    async with httpx.AsyncClient(
        base_url=base_url, trust_env=False, timeout=60.0, limits=limits
    ) as client:

        async def one() -> tuple[int, bytes]:
            page = await client.get(f"/simple/{project}/", headers={"Accept": SIMPLE_JSON})
            assert page.status_code == 200, page.text
            (file,) = page.json()["files"]
            response = await client.get(file["url"])
            return response.status_code, response.content

        return await asyncio.gather(*(one() for _ in range(clients)))


def test_twenty_concurrent_readers_cause_one_page_request_and_one_download(
    any_upstream: Upstream, proxies: Callable[..., Server], tmp_path: Path, unique: str
) -> None:
    """Single flight: 20 clients at once for an uncached project, one upstream request each."""
    name = f"{unique}-{any_upstream.kind}-crowd"
    wheel = big_wheel(tmp_path / "wheels", name, size=2_000_000)
    any_upstream.publish(wheel)
    proxy = proxies(any_upstream.url)
    results = asyncio.run(_install_like(proxy.url, name, 20))
    assert [status for status, _ in results] == [200] * 20
    assert all(body == wheel.read_bytes() for _, body in results)
    assert any_upstream.page_requests(name) == 1
    assert any_upstream.file_requests(wheel.name) == 1


def test_twenty_concurrent_readers_share_a_slow_upstream(
    static: StaticUpstream, proxies: Callable[..., Server], tmp_path: Path, unique: str
) -> None:
    """With an upstream slow to answer, all 20 readers really wait on the same requests."""
    name = f"{unique}-slow"
    wheel = big_wheel(tmp_path / "wheels", name, size=1_000_000)
    static.add(wheel)
    static.hang(0.5)  # every upstream request waits: all 20 readers arrive while it is in flight
    proxy = proxies(static.url)
    results = asyncio.run(_install_like(proxy.url, name, 20))
    assert [status for status, _ in results] == [200] * 20
    assert all(body == wheel.read_bytes() for _, body in results)
    assert static.count(static.page_path(name)) == 1
    assert static.count(static.file_path(wheel.name)) == 1


# -- upstream faults on files ------------------------------------------------------------

FILE_FAULTS: dict[str, Callable[[StaticUpstream], None]] = {
    "500": lambda upstream: upstream.fail_with(500),
    "hang": lambda upstream: upstream.hang(60),
    # Cut before the proxy has passed on any byte: the client can still get an error status.
    "cut-early": lambda upstream: upstream.truncate_files(1000),
    # Cut after the first 256 KiB went out to the client: only cutting its connection is left.
    "cut-late": lambda upstream: upstream.truncate_files(290_000),
    "corrupt": lambda upstream: upstream.corrupt_files(True),
}


def _download(client: httpx.Client, url: str) -> tuple[int | None, bytes, Exception | None]:
    """Status, the bytes received, and the transport error that ended it (if one did)."""
    received = bytearray()
    status = None
    try:
        with client.stream("GET", url) as response:
            status = response.status_code
            for chunk in response.iter_raw():
                received += chunk
    except httpx.TransportError as exc:
        return status, bytes(received), exc
    return status, bytes(received), None


@pytest.mark.parametrize("fault", list(FILE_FAULTS))
def test_file_fault_is_a_clear_error_and_nothing_is_cached(
    fault: str,
    static: StaticUpstream,
    proxies: Callable[..., Server],
    tmp_path: Path,
    unique: str,
) -> None:
    """500, a hang past the timeout, a cut connection or altered bytes: the client fails, and
    nothing is kept; once the upstream heals, the file downloads whole and is cached."""
    name = f"{unique}-file"
    wheel = big_wheel(tmp_path / "wheels", name)
    data = wheel.read_bytes()
    static.add(wheel)
    proxy = proxies(static.url, "--upstream-timeout", "1")
    with proxy.client() as client:
        (url,) = [str(f["url"]) for f in files_of(json_page(client, f"/simple/{name}/")).values()]
        FILE_FAULTS[fault](static)
        started = time.time()
        status, received, error = _download(client, url)
        elapsed = time.time() - started
        if fault in ("500", "hang", "cut-early"):
            # Nothing was sent yet: a plain 502; the reason is for the log, not the client.
            assert status == 502, (status, received[:200])
            message = received.decode(errors="replace")
            assert "The upstream index failed to answer" in message
            reason = {"500": "answered 500", "hang": "timed out", "cut-early": "/files/"}[fault]
            assert reason not in message
            assert reason in proxy.log()
            if fault == "hang":
                assert elapsed < 15
        else:
            # Part of the body went out: the connection is cut, never ended cleanly.
            assert status == 200
            assert error is not None, "a broken file must never look complete"
            assert len(received) < len(data)
            assert received == data[: len(received)] or fault == "corrupt"
        assert static.count(static.file_path(wheel.name)) == 1

        # Nothing bad is kept: no temporary file outlives the request, no blob, no cache record.
        wait_for(
            lambda: not temp_files(proxy), 10, f"no temporary files (left: {temp_files(proxy)})"
        )
        assert not blob_path(proxy, sha256(data)).exists()
        assert_blobs_sound(proxy)

        static.heal()
        healed = client.get(url)
        assert healed.status_code == 200
        assert healed.content == data
        assert sha256(healed.content) == static.files[wheel.name].sha256
        assert static.count(static.file_path(wheel.name)) == 2
        # Now it is kept: served from the cache, with ranges, with no upstream request.
        again = client.get(url, headers={"Range": "bytes=0-9"})
        assert again.status_code == 206
        assert again.content == data[:10]
        assert static.count(static.file_path(wheel.name)) == 2
    assert blob_path(proxy, sha256(data)).exists()
    assert_blobs_sound(proxy)
    assert not temp_files(proxy)
    if error is not None:
        # A clean shutdown after a cut connection is test_a_cut_download_does_not_delay_shutdown's.
        proxy.stop(signal.SIGKILL)


@pytest.mark.parametrize("fault", ["corrupt", "cut-late"])
def test_a_range_of_an_uncached_file_comes_only_from_the_checked_file(
    fault: str, static: StaticUpstream, proxies: Callable[..., Server], tmp_path: Path, unique: str
) -> None:
    """A byte range of a file not cached yet (uv reads a wheel's tail first) waits for the
    whole file and its hash: bad bytes give an error, never a 206; good ones a 206 of the
    checked file, fetched from upstream once, after which the whole file is a cache hit."""
    name = f"{unique}-range"
    wheel = big_wheel(tmp_path / "wheels", name)
    data = wheel.read_bytes()
    static.add(wheel)
    proxy = proxies(static.url)
    tail = {"Range": "bytes=-100"}
    with proxy.client() as client:
        (url,) = [str(f["url"]) for f in files_of(json_page(client, f"/simple/{name}/")).values()]

        FILE_FAULTS[fault](static)
        refused = client.get(url, headers=tail)
        assert refused.status_code == 502, refused.status_code
        assert data[-100:] not in refused.content
        assert not blob_path(proxy, sha256(data)).exists()

        static.heal()
        ranged = client.get(url, headers=tail)
        assert ranged.status_code == 206
        assert ranged.content == data[-100:]
        assert (
            ranged.headers["Content-Range"]
            == f"bytes {len(data) - 100}-{len(data) - 1}/{len(data)}"
        )
        assert static.count(static.file_path(wheel.name)) == 2
        whole = client.get(url)
        assert whole.content == data
        assert static.count(static.file_path(wheel.name)) == 2


def test_an_uncached_file_of_known_size_offers_ranges_and_head_does_not_fetch_it(
    ministry_upstream: Server, proxies: Callable[..., Server], tmp_path: Path, unique: str
) -> None:
    """An upstream page with sizes (PEP 700): HEAD of a file not cached yet gives its length
    and offers ranges without fetching it, so uv reads a wheel's tail, not all of it."""
    name = f"{unique}-sized"
    wheel = big_wheel(tmp_path / "wheels", name)
    data = wheel.read_bytes()
    publish_to_ministry(ministry_upstream, wheel, ALICE)
    proxy = proxies(ministry_upstream.url + "/simple/")
    with proxy.client() as client:
        (url,) = [str(f["url"]) for f in files_of(json_page(client, f"/simple/{name}/")).values()]
        head = client.head(url)
        assert head.headers["Accept-Ranges"] == "bytes"
        assert head.headers["Content-Length"] == str(len(data))
        assert not blob_path(proxy, sha256(data)).exists()
        ranged = client.get(url, headers={"Range": f"bytes={len(data) - 22}-"})
        assert ranged.status_code == 206
        assert ranged.content == data[-22:]


def test_head_of_an_uncached_file_without_a_size_on_its_page_starts_its_download(
    static: StaticUpstream, proxies: Callable[..., Server], tmp_path: Path, unique: str
) -> None:
    """A page without sizes (PEP 503 HTML): HEAD starts the one download and answers with
    the upstream's length and byte ranges, so uv asks for a wheel's tail instead of
    streaming all of it; the range and the download after it ask the upstream nothing more."""
    name = f"{unique}-unsized"
    wheel = big_wheel(tmp_path / "wheels", name)
    data = wheel.read_bytes()
    static.add(wheel)
    proxy = proxies(static.url)
    with proxy.client() as client:
        (url,) = [str(f["url"]) for f in files_of(json_page(client, f"/simple/{name}/")).values()]
        head = client.head(url)
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(len(data))
        assert head.headers["Accept-Ranges"] == "bytes"
        ranged = client.get(url, headers={"Range": f"bytes={len(data) - 22}-"})
        assert (ranged.status_code, ranged.content) == (206, data[-22:])
        assert client.get(url).content == data
    assert static.count(static.file_path(wheel.name)) == 1


def test_a_cache_that_cannot_keep_a_file_cuts_its_clients_off_and_keeps_nothing(
    static: StaticUpstream, proxies: Callable[..., Server], tmp_path: Path, unique: str
) -> None:
    """The last byte, and a byte range, go out once the file is checked and kept: a cache
    that fails to keep it (here a plain file stands where the blob's directory goes) cuts
    the client off before the last byte, answers a range with an error, keeps nothing,
    and the next request fetches the file again."""
    name = f"{unique}-unkept"
    wheel = big_wheel(tmp_path / "wheels", name)
    data = wheel.read_bytes()
    static.add(wheel)
    proxy = proxies(static.url)
    blocked = blob_path(proxy, sha256(data)).parent
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_bytes(b"not a directory")
    with proxy.client() as client:
        (url,) = [str(f["url"]) for f in files_of(json_page(client, f"/simple/{name}/")).values()]
        status, received, error = _download(client, url)
        assert status == 200 and error is not None
        assert received != data and data.startswith(received)
        wait_for(lambda: not temp_files(proxy), 10, "no temporary file left")
        assert "Fetching failed: The server's storage failed" in proxy.log()
        ranged = client.get(url, headers={"Range": "bytes=-100"})
        assert ranged.status_code == 502 and data[-100:] not in ranged.content
        wait_for(lambda: not temp_files(proxy), 10, "no temporary file left")
        blocked.unlink()
        assert client.get(url).content == data
    assert static.count(static.file_path(wheel.name)) == 3
    assert blob_path(proxy, sha256(data)).exists()


def test_a_client_that_leaves_a_download_early_leaves_the_cache_filled(
    static: StaticUpstream, proxies: Callable[..., Server], tmp_path: Path, unique: str
) -> None:
    """uv reads a streamed wheel only up to its metadata and hangs up: the download goes on,
    the file is kept, and the server logs no error for it."""
    name = f"{unique}-leave"
    wheel = big_wheel(tmp_path / "wheels", name, size=2_000_000)
    data = wheel.read_bytes()
    static.add(wheel)
    proxy = proxies(static.url)
    with proxy.client() as client:
        (url,) = [str(f["url"]) for f in files_of(json_page(client, f"/simple/{name}/")).values()]
        # About a second for the whole file: the client is gone long before its end.
        static.pace_files(2_000_000)
        with client.stream("GET", url) as response:
            first = next(response.iter_raw())
        assert first == data[: len(first)]
        wait_for(lambda: blob_path(proxy, sha256(data)).exists(), 30, "the file kept")
        assert client.get(url).content == data
    assert static.count(static.file_path(wheel.name)) == 1
    assert "Uncaught exception" not in proxy.log()


def test_many_readers_of_a_corrupt_download_all_fail(
    static: StaticUpstream, proxies: Callable[..., Server], tmp_path: Path, unique: str
) -> None:
    """Readers that joined a download which proves corrupt are cut off too, none completes."""
    name = f"{unique}-corrupt-crowd"
    wheel = big_wheel(tmp_path / "wheels", name, size=1_000_000)
    static.add(wheel)
    proxy = proxies(static.url)
    with proxy.client() as client:
        files_of(json_page(client, f"/simple/{name}/"))
    static.corrupt_files(True)

    async def crowd() -> list[tuple[int | None, int, bool]]:
        async with httpx.AsyncClient(base_url=proxy.url, trust_env=False, timeout=60) as client:

            async def one() -> tuple[int | None, int, bool]:
                received, status = 0, None
                try:
                    async with client.stream("GET", f"/packages/{name}/{wheel.name}") as response:
                        status = response.status_code
                        async for chunk in response.aiter_raw():
                            received += len(chunk)
                except httpx.TransportError:
                    return status, received, True
                return status, received, False

            return await asyncio.gather(*(one() for _ in range(5)))

    for status, received, failed in asyncio.run(crowd()):
        assert failed, (status, received)
        assert received < wheel.stat().st_size
    assert static.count(static.file_path(wheel.name)) == 1
    wait_for(lambda: not temp_files(proxy), 10, "no temporary files")
    assert_blobs_sound(proxy)
    proxy.stop(signal.SIGKILL)  # see test_a_cut_download_does_not_delay_shutdown


def test_a_cut_download_does_not_delay_shutdown(
    static: StaticUpstream, proxies: Callable[..., Server], tmp_path: Path, unique: str
) -> None:
    """A request whose connection the proxy cut (a corrupt download) is over: stopping the
    server does not wait the shutdown grace period for it."""
    name = f"{unique}-cut"
    wheel = big_wheel(tmp_path / "wheels", name)
    static.add(wheel)
    static.corrupt_files(True)
    proxy = proxies(static.url)
    with proxy.client() as client:
        status, received, error = _download(client, f"/packages/{name}/{wheel.name}")
    assert (status, error is not None) == (200, True)
    assert len(received) < wheel.stat().st_size
    started = time.monotonic()
    assert proxy.stop() == 0
    assert time.monotonic() - started < 5
    assert "did not finish" not in proxy.log()


# -- upstream faults on pages -------------------------------------------------------------

PAGE_FAULTS: dict[str, Callable[[StaticUpstream], None]] = {
    "500": lambda upstream: upstream.fail_with(500),
    "hang": lambda upstream: upstream.hang(60),
    "down": lambda upstream: upstream.offline(),
}


@pytest.mark.parametrize("fault", list(PAGE_FAULTS))
def test_page_fault_serves_the_stale_page_and_502_for_uncached_projects(
    fault: str,
    static: StaticUpstream,
    proxies: Callable[..., Server],
    tmp_path: Path,
    unique: str,
) -> None:
    """Past its freshness, a page whose upstream fails is served stale and says so; a project
    never fetched is a 502 with the reason, never a 200 or a 404."""
    name, other = f"{unique}-page", f"{unique}-never-seen"
    wheel = big_wheel(tmp_path / "wheels", name, size=1000)
    static.add(wheel)
    static.add(big_wheel(tmp_path / "wheels", other, size=1000))
    proxy = proxies(static.url, "--upstream-ttl", "0", "--upstream-timeout", "1")
    with proxy.client() as client:
        fresh = json_page(client, f"/simple/{name}/")
        assert list(files_of(fresh)) == [wheel.name]
        assert "X-Ministry-Upstream" not in fresh.headers
        cached = client.get(f"/packages/{name}/{wheel.name}")
        assert cached.content == wheel.read_bytes()

        PAGE_FAULTS[fault](static)
        stale = json_page(client, f"/simple/{name}/")
        assert list(files_of(stale)) == [wheel.name]
        assert stale.headers["X-Ministry-Upstream"] == "stale"
        assert stale.headers["Warning"].startswith("110 ")
        html = client.get(f"/simple/{name}/", headers={"Accept": SIMPLE_HTML})
        assert html.status_code == 200
        assert html.headers["X-Ministry-Upstream"] == "stale"
        assert wheel.name in html.text
        # Cached files are served as usual.
        assert client.get(f"/packages/{name}/{wheel.name}").content == wheel.read_bytes()
        # Further attempts wait: the outage does not cost every request a timeout.
        asked = static.count(static.page_path(name))  # a hanging request counts on arrival
        assert json_page(client, f"/simple/{name}/").headers["X-Ministry-Upstream"] == "stale"
        assert static.count(static.page_path(name)) == asked

        missing = json_page(client, f"/simple/{other}/")
        assert missing.status_code == 502, missing.text
        assert "not cached" in missing.text
        assert "upstream" in missing.text.lower()
        assert client.get(f"/packages/{other}/{wheel_name(other, '1.0')}").status_code == 502
        if fault != "500":
            # An upstream that cannot be reached is not asked again for a while, about any
            # project: an install of many projects does not wait one timeout each.
            assert static.count(static.page_path(other)) == 0
    assert "serving the kept page (stale)" in proxy.log()


def test_login_page_from_upstream_keeps_the_good_page(
    static: StaticUpstream, proxies: Callable[..., Server], tmp_path: Path, unique: str
) -> None:
    """An upstream answering ``200 text/html`` with a login page (a captive portal) for a
    project page does not empty the project: the last good page is served, marked stale."""
    name = f"{unique}-portal"
    wheel = big_wheel(tmp_path / "wheels", name, size=1000)
    static.add(wheel)
    proxy = proxies(static.url, "--upstream-ttl", "0")
    with proxy.client() as client:
        assert list(files_of(json_page(client, f"/simple/{name}/"))) == [wheel.name]
        # Cached, so that an offline server (which offers only cached files) lists it below.
        assert client.get(f"/packages/{name}/{wheel.name}").status_code == 200
        static.serve_html_error_as_page(True)
        page = json_page(client, f"/simple/{name}/")
        assert static.received[-1].status == 200  # the portal was asked, and answered
        assert list(files_of(page)) == [wheel.name]
        assert page.headers.get("X-Ministry-Upstream") == "stale"
        static.heal()
    # The portal's answer was not kept either: a restart offline still has the project.
    proxy.stop()
    offline = InProcessServer(proxy.data, arguments=["--offline"]).start()
    try:
        with offline.client() as client:
            assert list(files_of(json_page(client, f"/simple/{name}/"))) == [wheel.name]
    finally:
        offline.stop()


def test_upstream_404_is_404_and_is_believed_briefly(
    static: StaticUpstream, proxies: Callable[..., Server], unique: str
) -> None:
    """A project the upstream does not have is 404 here, and is not asked for again at once."""
    name = f"{unique}-nowhere"
    proxy = proxies(static.url)
    with proxy.client() as client:
        assert json_page(client, f"/simple/{name}/").status_code == 404
        assert json_page(client, f"/simple/{name}/").status_code == 404
    assert static.count(static.page_path(name)) == 1


# -- freshness ----------------------------------------------------------------------------


def test_revalidation_is_conditional_and_a_304_keeps_the_page(
    static: StaticUpstream, proxies: Callable[..., Server], tmp_path: Path, unique: str
) -> None:
    """After the TTL the proxy asks with If-None-Match; the upstream's 304 keeps the page."""
    name = f"{unique}-etag"
    wheel = big_wheel(tmp_path / "wheels", name, size=1000)
    static.add(wheel)
    proxy = proxies(static.url, "--upstream-ttl", "0")
    with proxy.client() as client:
        first = json_page(client, f"/simple/{name}/")
        assert list(files_of(first)) == [wheel.name]
        (request,) = [r for r in static.received if r.path == static.page_path(name)]
        assert "if-none-match" not in request.headers
        assert request.status == 200
        second = json_page(client, f"/simple/{name}/")
    assert second.status_code == 200
    assert second.json() == first.json()
    assert "X-Ministry-Upstream" not in second.headers
    requests = [r for r in static.received if r.path == static.page_path(name)]
    assert len(requests) == 2
    etag = httpx.get(static.url + name + "/", trust_env=False).headers["ETag"]
    assert requests[1].headers.get("if-none-match") == etag
    assert requests[1].status == 304
    assert "json" in requests[0].headers["accept"]  # the proxy prefers PEP 691
    values = metrics(proxy)
    assert metric(values, "ministry_proxy_pages_total", index="upstream", result="miss") == 1
    assert metric(values, "ministry_proxy_pages_total", index="upstream", result="revalidated") == 1


def test_a_changed_upstream_page_is_refreshed_after_the_ttl(
    static: StaticUpstream, proxies: Callable[..., Server], tmp_path: Path, unique: str
) -> None:
    """A new upstream release shows after revalidation, but not while the page is fresh."""
    name = f"{unique}-grows"
    static.add(big_wheel(tmp_path / "wheels", name, "1.0", size=1000))
    fresh_for_long = proxies(static.url, data=tmp_path / "long")
    always_check = proxies(static.url, "--upstream-ttl", "0", data=tmp_path / "short")
    with fresh_for_long.client() as long, always_check.client() as short:
        assert len(files_of(json_page(long, f"/simple/{name}/"))) == 1
        assert len(files_of(json_page(short, f"/simple/{name}/"))) == 1
        static.add(big_wheel(tmp_path / "wheels", name, "2.0", size=1000))
        assert len(files_of(json_page(long, f"/simple/{name}/"))) == 1
        assert len(files_of(json_page(short, f"/simple/{name}/"))) == 2
    assert static.count(static.page_path(name)) == 3


def test_caches_survive_a_restart(
    static: StaticUpstream, proxies: Callable[..., Server], tmp_path: Path, unique: str
) -> None:
    """Pages and files are kept in the store: after a restart nothing is asked upstream again."""
    name = f"{unique}-kept"
    wheel = big_wheel(tmp_path / "wheels", name)
    static.add(wheel)
    first = proxies(static.url)
    with first.client() as client:
        assert list(files_of(json_page(client, f"/simple/{name}/"))) == [wheel.name]
        assert client.get(f"/packages/{name}/{wheel.name}").content == wheel.read_bytes()
    first.stop()
    static.clear_requests()
    second = proxies(static.url)
    with second.client() as client:
        assert list(files_of(json_page(client, f"/simple/{name}/"))) == [wheel.name]
        assert client.get(f"/packages/{name}/{wheel.name}").content == wheel.read_bytes()
        listing = client.get("/simple/", headers={"Accept": SIMPLE_JSON}).json()
        assert name in {p["name"] for p in listing["projects"]}
    assert static.requests == []
    values = metrics(second)
    assert metric(values, "ministry_proxy_files_total", index="upstream", result="hit") == 1
    assert metric(values, "ministry_proxy_files_total", index="upstream", result="miss") == 0


# -- metrics ------------------------------------------------------------------------------


def test_metrics_count_misses_hits_stale_and_upstream_time(
    static: StaticUpstream, proxies: Callable[..., Server], tmp_path: Path, unique: str
) -> None:
    """``/-/metrics`` counts page and file lookups by result and times upstream requests.

    ``upstream`` (from ``--upstream``) keeps pages fresh; ``always`` (made with
    ``ministry index create --upstream --page-ttl 0``) revalidates every time.
    """
    name = f"{unique}-counted"
    wheel = big_wheel(tmp_path / "wheels", name, size=1000)
    static.add(wheel)
    proxy = proxies(static.url)
    before = metrics(proxy)
    with proxy.client() as client:
        assert json_page(client, f"/simple/{name}/").status_code == 200  # page miss
        for _ in range(2):  # the view of the page is kept: file miss, then file hit
            assert client.get(f"/packages/{name}/{wheel.name}").content == wheel.read_bytes()
        # A change (any serial) makes the view be gathered again: the stored page is a hit.
        created = proxy.cli(
            "index", "create", "always", "--upstream", static.url, "--page-ttl", "0"
        )
        assert created.returncode == 0, created.stderr
        assert json_page(client, f"/simple/{name}/").status_code == 200  # page hit
        assert json_page(client, f"/always/simple/{name}/").status_code == 200  # miss
        assert json_page(client, f"/always/simple/{name}/").status_code == 200  # revalidated
        static.offline()
        stale = json_page(client, f"/always/simple/{name}/")
        assert stale.headers["X-Ministry-Upstream"] == "stale"
        assert json_page(client, f"/always/simple/{name}-gone/").status_code == 502  # error
    values = metrics(proxy)

    def delta(name: str, **labels: str) -> float:
        return metric(values, name, **labels) - metric(before, name, **labels)

    pages, files = "ministry_proxy_pages_total", "ministry_proxy_files_total"
    assert delta(pages, index="upstream", result="miss") == 1
    assert delta(pages, index="upstream", result="hit") == 1
    assert delta(pages, index="upstream", result="stale") == 0
    assert delta(files, index="upstream", result="miss") == 1
    assert delta(files, index="upstream", result="hit") == 1
    assert delta(pages, index="always", result="miss") == 1
    assert delta(pages, index="always", result="revalidated") == 1
    assert delta(pages, index="always", result="stale") == 1
    assert delta(pages, index="always", result="error") == 1
    seconds = "ministry_upstream_request_seconds_count"
    # Both misses, the 304 and the failed attempt; the never-seen project is answered at
    # once, without asking the upstream that was just found unreachable.
    assert delta(seconds, kind="page") == 4
    assert delta(seconds, kind="file") == 1


# -- what the upstream page says, passed through ------------------------------------------


def test_metadata_files_are_proxied_byte_exact_and_cached(
    ministry_upstream: Server,
    proxies: Callable[..., Server],
    tmp_path: Path,
    unique: str,
) -> None:
    """PEP 658: advertised with the upstream's hash, served as the upstream's bytes, fetched
    once, and without fetching the wheel."""
    name = f"{unique}-meta"
    wheel = make_wheel(tmp_path, name, "1.0", requires_dist=["packaging>=20"], summary="meta")
    publish_to_ministry(ministry_upstream, wheel, ALICE)
    with ministry_upstream.client() as client:
        (upstream_file,) = files_of(json_page(client, f"/simple/{name}/")).values()
        upstream_metadata = client.get(f"/packages/{name}/{wheel.name}.metadata").content
    digest = upstream_file["core-metadata"]["sha256"]  # type: ignore[index]
    assert sha256(upstream_metadata) == digest
    proxy = proxies(f"{ministry_upstream.url}/simple/")
    with proxy.client() as client:
        (entry,) = files_of(json_page(client, f"/simple/{name}/")).values()
        assert entry["core-metadata"] == {"sha256": digest}
        assert entry["hashes"] == {"sha256": sha256(wheel.read_bytes())}
        html = client.get(f"/simple/{name}/", headers={"Accept": SIMPLE_HTML}).text
        assert html_anchors(html)[wheel.name]["data-core-metadata"] == f"sha256={digest}"
        url = f"{entry['url']}.metadata"
        for _ in range(2):
            response = client.get(url)
            assert response.status_code == 200
            assert response.content == upstream_metadata
    metadata_path = f"/packages/{name}/{wheel.name}.metadata"
    assert ministry_upstream.served(metadata_path) == 2  # ours above, and the proxy's one
    assert ministry_upstream.served(f"/packages/{name}/{wheel.name}") == 0
    assert blob_path(proxy, digest).read_bytes() == upstream_metadata


def test_yanks_and_requires_python_pass_through(
    ministry_upstream: Server,
    proxies: Callable[..., Server],
    tmp_path: Path,
    unique: str,
) -> None:
    """Yank flags, yank reasons and requires-python are served as the upstream serves them,
    in PEP 691 JSON, PEP 503 HTML and the JSON API, including a yank made after caching."""
    name = f"{unique}-yanks"
    wheels = {
        version: make_wheel(tmp_path, name, version, requires_python=">=3.8")
        for version in ("1.0", "1.1", "2.0")
    }
    for wheel in wheels.values():
        publish_to_ministry(ministry_upstream, wheel, ALICE)
    proxy = proxies(f"{ministry_upstream.url}/simple/", "--upstream-ttl", "0")
    with proxy.client() as client:
        before = files_of(json_page(client, f"/simple/{name}/"))
        assert {f: e["yanked"] for f, e in before.items()} == dict.fromkeys(before, False)
    for version, reason in (("1.0", "broken build"), ("1.1", "")):
        result = ministry_upstream.cli("yank", name, version, "--reason", reason)
        assert result.returncode == 0, result.stderr
    with ministry_upstream.client() as client:
        upstream_json = files_of(json_page(client, f"/simple/{name}/"))
        upstream_html = html_anchors(
            client.get(f"/simple/{name}/", headers={"Accept": SIMPLE_HTML}).text
        )
    with proxy.client() as client:
        proxied_json = files_of(json_page(client, f"/simple/{name}/"))
        proxied_html = html_anchors(
            client.get(f"/simple/{name}/", headers={"Accept": SIMPLE_HTML}).text
        )
        document = client.get(f"/pypi/{name}/json").json()

    one, one_one, two = (wheels[v].name for v in ("1.0", "1.1", "2.0"))
    assert {f: e["yanked"] for f, e in proxied_json.items()} == {
        one: "broken build",
        one_one: True,
        two: False,
    }
    assert {f: e["requires-python"] for f, e in proxied_json.items()} == dict.fromkeys(
        proxied_json, ">=3.8"
    )
    for field in ("yanked", "requires-python", "hashes"):
        assert {f: e[field] for f, e in proxied_json.items()} == {
            f: e[field] for f, e in upstream_json.items()
        }
    assert proxied_html[one]["data-yanked"] == "broken build"
    assert "data-yanked" in proxied_html[one_one]
    assert "data-yanked" not in proxied_html[two]
    for filename, attributes in proxied_html.items():
        assert attributes["data-requires-python"] == ">=3.8"
        for key in ("data-yanked", "data-requires-python"):
            assert attributes.get(key) == upstream_html[filename].get(key)
    assert document["info"]["version"] == "2.0"
    releases = document["releases"]
    assert releases["1.0"][0]["yanked"] is True
    assert releases["1.0"][0]["yanked_reason"] == "broken build"
    assert releases["2.0"][0]["yanked"] is False
    assert releases["2.0"][0]["requires_python"] == ">=3.8"


# -- minimum age --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ministry", "static"])
def test_min_age_holds_back_young_files_until_exempted(
    kind: str,
    request: pytest.FixtureRequest,
    proxies: Callable[..., Server],
    tmp_path: Path,
    unique: str,
) -> None:
    """``--upstream-min-age 3d``: a just-published upstream file is not offered, is a 404 that
    says why, and is offered once the project is exempted. The age is the upstream's
    upload time (Ministry), or the first-seen time (an HTML tree gives none)."""
    if kind == "ministry":
        upstream = Upstream.of_ministry(request.getfixturevalue("ministry_upstream"), ALICE)
    else:
        upstream = Upstream.of_static(request.getfixturevalue("static"))
    name = f"{unique}-{kind}-young"
    wheel = big_wheel(tmp_path / "wheels", name, size=1000)
    upstream.publish(wheel)
    proxy = proxies(upstream.url, "--upstream-min-age", "3d")
    with proxy.client() as client:
        page = json_page(client, f"/simple/{name}/")
        assert files_of(page) == {}
        assert re.search(r"\b1\.0 until \d{4}-", page.headers["X-Ministry-Held-Back"])
        download = client.get(f"/packages/{name}/{wheel.name}")
        assert download.status_code == 404
        assert HELD_BACK in download.text
        version = client.get(f"/pypi/{name}/1.0/json")
        assert version.status_code == 404
        assert HELD_BACK in version.text
        assert upstream.file_requests(wheel.name) == 0

        exempted = proxy.cli("index", "update", "upstream", "--min-age-exempt", name)
        assert exempted.returncode == 0, exempted.stderr
        page = json_page(client, f"/simple/{name}/")
        assert list(files_of(page)) == [wheel.name]
        assert "X-Ministry-Held-Back" not in page.headers
        assert client.get(f"/packages/{name}/{wheel.name}").content == wheel.read_bytes()
    assert upstream.file_requests(wheel.name) == 1


# -- private names and indexes made with ``index create --upstream`` ---------------------


def test_private_name_in_a_hosted_index_hides_the_proxy_base(
    static: StaticUpstream, proxies: Callable[..., Server], tmp_path: Path, unique: str
) -> None:
    """``ministry index create mirror --upstream``, used as a base of a hosted index: a name
    uploaded to the hosted index is never taken from, nor asked of, the upstream."""
    private, public = f"{unique}-private", f"{unique}-public"
    static.add(big_wheel(tmp_path / "upstream", private, "9.0", size=1000))
    public_wheel = big_wheel(tmp_path / "upstream", public, "1.0", size=1000)
    static.add(public_wheel)
    proxy = proxies(static.url)
    for arguments in (
        ("user", "add", ALICE[0], "--password-stdin"),
        ("index", "create", "mirror", "--upstream", static.url, "--page-ttl", "0"),
        ("index", "create", "dev", "--bases", "mirror", "--uploaders", ALICE[0]),
    ):
        result = proxy.cli(*arguments, stdin=ALICE[1] + "\n")
        assert result.returncode == 0, (arguments, result.stderr)
    local = make_wheel(tmp_path, private, "1.0")
    with proxy.client() as client:
        assert post_upload(client, local, auth=ALICE, url="/dev/").status_code == 200
        assert list(files_of(json_page(client, f"/dev/simple/{private}/"))) == [local.name]
        assert client.get(f"/dev/pypi/{private}/json").json()["info"]["version"] == "1.0"
        assert json_page(client, f"/dev/simple/{private}/").json()["versions"] == ["1.0"]
        assert (
            client.get(f"/dev/packages/{private}/{wheel_name(private, '9.0')}").status_code == 404
        )
        # Other names still come through the proxy base.
        assert list(files_of(json_page(client, f"/dev/simple/{public}/"))) == [public_wheel.name]
    assert static.count(static.page_path(private)) == 0
    assert static.count(static.page_path(public)) == 1
