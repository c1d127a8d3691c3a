"""HTTP abuse against a real server, over raw sockets where a client library would tidy up.

Oversized heads, slow clients, many connections, Range and Accept floods, open
redirects, odd bytes in paths and queries, request smuggling and cookie floods
(docs/security.md, "HTTP abuse"). Nothing here times the server: each test asserts what it
answered, or that it closed the connection, and waits generously for either.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import html
import re
import resource
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from conftest import ALICE, add_user
from support.distributions import make_wheel
from support.inprocess import InProcessServer, call_cli
from support.server import MinistryServer, Server, wait_for
from support.uploads import post_upload

# Longer than any timeout of the server (75 s for a head, 60 s windows for a body).
_CLOSE_WAIT = 400.0
# The client timeout of the servers that slow clients meet here (--client-timeout): seconds
# to wait out where the default takes a minute (a head gets 15 s more).
_SHORT_TIMEOUT = 5
_HEALTH = b"GET /-/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"


class Answer(NamedTuple):
    """What the server sent on one connection before closing it."""

    status: int  # 0: closed without an answer
    headers: list[tuple[str, str]]
    body: bytes


def parse(raw: bytes) -> Answer:
    """The status line, headers and body of a raw HTTP/1.1 answer."""
    if not raw:
        return Answer(0, [], b"")
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = [
        (name.strip(), value.strip()) for name, _, value in (h.partition(":") for h in lines[1:])
    ]
    return Answer(status, headers, body)


def exchange(server: Server, request: bytes, timeout: float = 60.0) -> Answer:
    """Send raw bytes and read until the server closes the connection (a reset ends it too)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        # Closed while we were still sending: read what it answered, if anything.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        received = bytearray()
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
        except TimeoutError as exc:
            raise AssertionError(
                f"the server neither answered nor closed: {received[:200]!r}"
            ) from exc
    return parse(bytes(received))


def get(server: Server, target: bytes, extra: bytes = b"") -> Answer:
    """A raw GET of ``target`` (sent byte for byte), asking the server to close afterwards."""
    request = b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    return exchange(server, request + extra + b"\r\n")


def header(answer: Answer, name: str) -> str | None:
    """The first header ``name`` of an answer."""
    return next((v for n, v in answer.headers if n.lower() == name.lower()), None)


def assert_still_serving(server: Server) -> None:
    with server.client() as client:
        assert client.get("/-/health").status_code == 200


# -- oversized heads -----------------------------------------------------------------------

_HUGE_HEADS = {
    "64 KB request line": b"GET /" + b"a" * 65536 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "1 MB of headers": _HEALTH
    + b"".join(b"X-Filler-%d: %s\r\n" % (n, b"v" * 1000) for n in range(1024))
    + b"\r\n",
    "10,000 headers": _HEALTH + b"".join(b"X-%d: 1\r\n" % n for n in range(10_000)) + b"\r\n",
}


@pytest.mark.parametrize("request_bytes", _HUGE_HEADS.values(), ids=_HUGE_HEADS.keys())
def test_oversized_heads_are_refused(server: Server, request_bytes: bytes) -> None:
    """The connection is closed (or answered 400/431), and the server goes on."""
    answer = exchange(server, request_bytes)
    assert answer.status in (0, 400, 431)
    assert_still_serving(server)


def _resident_memory(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match is not None
    return int(match[1]) * 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_oversized_heads_hold_bounded_memory(fresh_process: MinistryServer) -> None:
    """64 clients holding 900 KB unfinished heads cost the server far less than
    their 56 MB: each connection is closed once its head passes the limit."""
    assert fresh_process.process is not None
    pid = fresh_process.process.pid
    before = _resident_memory(pid)
    unfinished = _HEALTH + b"X-Flood: " + b"v" * (900 * 1024)  # never ends with an empty line

    async def hold() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", fresh_process.port)
        try:
            writer.write(unfinished)
            await writer.drain()
            await reader.read()  # held open until the server closes it
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def flood() -> int:
        clients = [asyncio.ensure_future(hold()) for _ in range(64)]
        # Until every client is cut off, or the server holds what they sent.
        growth = 0
        while not all(client.done() for client in clients) and growth < 32 * 1024 * 1024:
            await asyncio.wait(clients, timeout=0.1)
            growth = _resident_memory(pid) - before
        return growth

    growth = asyncio.run(asyncio.wait_for(flood(), _CLOSE_WAIT))
    assert growth < 32 * 1024 * 1024
    assert_still_serving(fresh_process)


# -- slow clients ----------------------------------------------------------------------------


async def _read_until_closed(reader: asyncio.StreamReader) -> bytes:
    received = b""
    try:
        while chunk := await reader.read(65536):
            received += chunk
    except ConnectionError:
        pass
    return received


async def _trickle(port: int, head: bytes, started: asyncio.Future[None], *, pace: bool) -> bytes:
    """Send ``head``, then one byte a second (or nothing) until the server closes; its answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    reading = asyncio.ensure_future(_read_until_closed(reader))
    try:
        writer.write(head)
        await writer.drain()
        started.set_result(None)
        while pace and not reading.done():
            try:
                writer.write(b"a")
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.wait([reading], timeout=1.0)
        return await reading
    finally:
        writer.close()


#: What an upload the server accepts at its headers carries: credentials and a form type.
_UPLOAD_HEADERS = (
    f"Authorization: Basic {base64.b64encode(':'.join(ALICE).encode()).decode()}\r\n"
    "Content-Type: multipart/form-data; boundary=slowboundary\r\n"
).encode()


def _upload_head(body_size: int) -> bytes:
    return (
        "POST /legacy/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"{_UPLOAD_HEADERS.decode()}"
        f"Content-Length: {body_size}\r\n\r\n"
        "--slowboundary\r\n"
        'Content-Disposition: form-data; name="content"; filename="slow-1.0.tar.gz"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


_FORM_HEAD = (
    b"POST /-/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nusername="
)


def _server_with_client_timeout(data: Path, seconds: int | None) -> InProcessServer:
    """A server of the test's own, with user alice, and ``--client-timeout`` unless None."""
    arguments = [] if seconds is None else ["--client-timeout", str(seconds)]
    server = InProcessServer(data, arguments=arguments).start()
    add_user(server, *ALICE)
    return server


@pytest.fixture
def impatient_server(tmp_path: Path) -> Iterator[Server]:
    """A server of the test's own that cuts slow clients off after ``_SHORT_TIMEOUT``."""
    server = _server_with_client_timeout(tmp_path / "data", _SHORT_TIMEOUT)
    yield server
    server.stop()


@pytest.mark.timeout(_CLOSE_WAIT + 200)
def test_slow_clients_are_cut_off_while_others_are_served(impatient_server: Server) -> None:
    """Slowloris heads, a trickled or stalled upload and a trickled form body are
    all closed by the server, and other clients are answered meanwhile.

    The server's client timeout is a few seconds instead of the default minute, which
    would be waited out the same way; test_the_client_timeout_is_the_servers_setting
    shows that the setting is what cuts these clients off.
    """
    port = impatient_server.port
    spools = impatient_server.data / "tmp"

    async def scenario() -> list[bytes]:
        loop = asyncio.get_running_loop()
        slow: list[tuple[bytes, bool]] = [(_HEALTH + b"X-Slow: ", True)] * 20
        slow += [
            (_upload_head(10_000_000), True),
            (_upload_head(10_000_000) + b"x" * 100, False),
            (_FORM_HEAD, True),
        ]
        started = [loop.create_future() for _ in slow]
        clients = [
            asyncio.ensure_future(_trickle(port, head, ready, pace=pace))
            for (head, pace), ready in zip(slow, started, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*started), 60)
        async with httpx.AsyncClient(base_url=impatient_server.url, trust_env=False) as client:
            for path in ["/-/health", "/simple/", "/"] * 5:
                assert (await client.get(path, timeout=60)).status_code == 200
        # The uploads are being received into spool files while they last.
        await asyncio.to_thread(wait_for, lambda: len(_files(spools)) == 2, 60, "two spools")
        return await asyncio.wait_for(asyncio.gather(*clients), _CLOSE_WAIT)

    answers = asyncio.run(scenario())
    assert all(not answer.startswith(b"HTTP/1.1 2") for answer in answers)
    wait_for(lambda: not _files(spools), 30, "the stalled uploads' spools to go")
    assert_still_serving(impatient_server)


async def _connected_until(port: int, head: bytes, stop: asyncio.Event, *, pace: bool) -> bool:
    """Send ``head``, then one byte a second (or nothing) until ``stop`` is set; whether
    the server still held the connection open then."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    reading = asyncio.ensure_future(_read_until_closed(reader))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        writer.write(head)
        await writer.drain()
        while not (reading.done() or stopping.done()):
            if pace:
                with contextlib.suppress(ConnectionError):
                    writer.write(b"a")
                    await writer.drain()
            await asyncio.wait(
                [reading, stopping], timeout=1.0, return_when=asyncio.FIRST_COMPLETED
            )
        return not reading.done()
    finally:
        stopping.cancel()
        reading.cancel()
        writer.close()


@pytest.mark.timeout(_CLOSE_WAIT + 200)
def test_the_client_timeout_is_the_servers_setting(tmp_path: Path) -> None:
    """With ``--client-timeout 2`` a trickled head, a trickled form body and a stalled
    upload are cut off, while the same clients of a server left at the default (a
    minute, 75 s for the head) are all still connected once the last one is."""
    impatient = _server_with_client_timeout(tmp_path / "impatient", 2)
    patient = _server_with_client_timeout(tmp_path / "patient", None)
    slow = [
        (_HEALTH + b"X-Slow: ", True),
        (_FORM_HEAD, True),
        (_upload_head(10_000_000) + b"x" * 100, False),
    ]

    async def scenario() -> tuple[list[bytes], list[bool]]:
        loop = asyncio.get_running_loop()
        cut_off = asyncio.Event()
        held = [
            asyncio.ensure_future(_connected_until(patient.port, head, cut_off, pace=pace))
            for head, pace in slow
        ]
        started = [loop.create_future() for _ in slow]
        clients = [
            _trickle(impatient.port, head, ready, pace=pace)
            for (head, pace), ready in zip(slow, started, strict=True)
        ]
        answers = await asyncio.wait_for(asyncio.gather(*clients), _CLOSE_WAIT)
        cut_off.set()
        return answers, await asyncio.gather(*held)

    try:
        answers, still_connected = asyncio.run(scenario())
        assert all(not answer.startswith(b"HTTP/1.1 2") for answer in answers)
        assert still_connected == [True, True, True]
        # The upload's window is the setting's too.
        assert re.search(r"closing a stalled upload: \d+ bytes in the last 2 s", impatient.log())
        assert "closing a stalled upload" not in patient.log()
    finally:
        impatient.stop()
        patient.stop()


@pytest.mark.parametrize(
    ("value", "shown"), [("0", "0"), ("3601", "3601"), ("1.5", "'1.5'"), ("soon", "'soon'")]
)
def test_a_client_timeout_out_of_range_stops_the_start(
    tmp_path: Path, value: str, shown: str
) -> None:
    """Below a second, over an hour or not whole seconds: one line naming the flag, exit 2."""
    data = tmp_path / "data"
    refused = call_cli("serve", "--port", "0", "--data", str(data), "--client-timeout", value)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"ministry: --client-timeout: {shown} is not a number of seconds from 1 to 3600"
    ]
    assert not data.exists()


def _files(directory: Path) -> list[Path]:
    return list(directory.iterdir()) if directory.exists() else []


# -- many connections ------------------------------------------------------------------------


def _needs_descriptors(count: int) -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count + 256:
        pytest.skip(f"needs {count + 256} open files (ulimit -n is {soft})")


async def _connect_all(port: int, count: int, request: bytes | None) -> list[asyncio.StreamWriter]:
    """``count`` connections, each idle after answering ``request`` (or sending nothing)."""
    gate = asyncio.Semaphore(100)

    async def one() -> asyncio.StreamWriter:
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            if request is not None:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200"), head
                length = re.search(rb"Content-Length: (\d+)", head)
                assert length is not None
                await reader.readexactly(int(length[1]))
            return writer

    return list(await asyncio.wait_for(asyncio.gather(*(one() for _ in range(count))), 300))


def _close_all(writers: list[asyncio.StreamWriter]) -> None:
    for writer in writers:
        writer.close()


async def _health(port: int) -> Answer:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_HEALTH + b"Connection: close\r\n\r\n")
        return parse(await asyncio.wait_for(_read_until_closed(reader), 60))
    finally:
        writer.close()


def test_a_thousand_idle_keep_alive_connections_do_not_stop_the_server(
    server: Server,
) -> None:
    """With 1,000 idle keep-alive connections open, new and old clients are served."""
    _needs_descriptors(1000)

    async def scenario() -> None:
        idle = await _connect_all(server.port, 1000, _HEALTH + b"\r\n")
        try:
            assert (await _health(server.port)).status == 200
            async with httpx.AsyncClient(base_url=server.url, trust_env=False) as client:
                assert (await client.get("/simple/", timeout=60)).status_code == 200
        finally:
            _close_all(idle)

    asyncio.run(scenario())


@pytest.mark.slow
def test_connections_past_the_cap_get_a_503(tmp_path: Path) -> None:
    """Past its connection cap (here --max-connections) the server answers 503
    with Retry-After, and serves again as soon as a connection closes."""
    # A process of its own: the cap depends on the process's open-files limit.
    fresh_server = MinistryServer(tmp_path / "data", arguments=["--max-connections", "64"])
    fresh_server.start()
    match = re.search(r"at most (\d+) connections", fresh_server.log())
    assert match is not None, "the server logs its connection cap"
    cap = int(match[1])
    assert cap == 64
    _needs_descriptors(cap)

    async def scenario() -> tuple[Answer, Answer]:
        # Accepted in order: every one of these is counted before the next client comes.
        idle = await _connect_all(fresh_server.port, cap, None)
        try:
            refused = await _health(fresh_server.port)
            idle.pop().close()
            served = await _until(lambda: _health(fresh_server.port), lambda a: a.status == 200)
        finally:
            _close_all(idle)
        return refused, served

    try:
        refused, served = asyncio.run(scenario())
    finally:
        fresh_server.stop()
    assert refused.status == 503
    assert header(refused, "Retry-After") == "1"
    assert b"Too many connections" in refused.body
    assert served.status == 200


async def _until(
    attempt: Callable[[], Awaitable[Answer]], done: Callable[[Answer], bool]
) -> Answer:
    for _ in range(300):
        answer = await attempt()
        if done(answer):
            return answer
        await asyncio.sleep(0.1)
    raise AssertionError(f"never got the answer wanted; last: {answer}")


# -- Range abuse (the common cases are in test_files.py) ------------------------------------


@pytest.fixture(scope="module")
def wheel_url(server: Server, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, bytes]:
    """The download URL and the bytes of a wheel of a few kilobytes."""
    path = make_wheel(
        tmp_path_factory.mktemp("abuse"),
        "abuse-ranges",
        "1.0",
        files={"abuse/data.bin": b"z" * 9000},
    )
    with server.client() as client:
        assert post_upload(client, path, auth=ALICE).status_code == 200
    return f"/packages/abuse-ranges/{path.name}", path.read_bytes()


@pytest.mark.parametrize(
    "ranges",
    [
        "bytes=" + ",".join(["0-"] * 1000),
        "bytes=" + ",".join(f"{n}-{n + 5000}" for n in range(1000)),
        "bytes=" + ",".join(["-1"] * 1000),
    ],
    ids=["1000 whole-file ranges", "1000 overlapping ranges", "1000 suffix ranges"],
)
def test_many_ranges_are_never_amplified(
    wheel_url: tuple[str, bytes], server: Server, ranges: str
) -> None:
    """Many ranges get the file once (200), never a multipart of copies."""
    url, data = wheel_url
    with server.client() as client:
        response = client.get(url, headers={"Range": ranges})
    assert response.status_code == 200
    assert response.content == data


@pytest.mark.parametrize(
    ("ranges", "status", "start"),
    [
        ("bytes=" + "9" * 5000 + "-", 416, None),
        ("bytes=" + "1" * 5000 + "-" + "2" * 5000, 416, None),
        ("bytes=0-" + "9" * 5000, 206, 0),
        ("bytes=-" + "9" * 5000, 206, 0),
        ("bytes=" + "0" * 5000 + "7-", 206, 7),
    ],
    ids=["start of 5000 digits", "both ends of 5000 digits", "end of 5000 digits",
         "suffix of 5000 digits", "5000 leading zeros"],
)  # fmt: skip
def test_very_long_range_numbers(
    wheel_url: tuple[str, bytes],
    server: Server,
    ranges: str,
    status: int,
    start: int | None,
) -> None:
    """Positions too long for an integer are past the end (416), not a crash."""
    url, data = wheel_url
    with server.client() as client:
        response = client.get(url, headers={"Range": ranges})
    assert response.status_code == status
    if start is None:
        assert response.headers["Content-Range"] == f"bytes */{len(data)}"
    else:
        assert response.content == data[start:]


# -- Accept floods ----------------------------------------------------------------------------

_SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


@pytest.mark.parametrize(
    ("accept", "status", "content_type"),
    [
        (", ".join(f"text/x-{n};q=0.{n % 9 + 1}" for n in range(3000)), 406, None),
        (_SIMPLE_JSON + ", " + ", ".join(f"text/x-{n}" for n in range(4000)), 200, _SIMPLE_JSON),
        ("text/html" + ";q=0.5" * 10_000, 200, "text/html"),
        ("*/*;" + "a=b;" * 10_000, 200, "text/html"),
    ],
    ids=["3000 unserved types", "json then 4000 types", "10,000 q-values", "10,000 parameters"],
)  # fmt: skip
def test_huge_accept_headers_are_negotiated(
    server: Server, accept: str, status: int, content_type: str | None
) -> None:
    """A 60 KB Accept header gets the page or a 406 that says what is served."""
    assert 40_000 < len(accept) < 62_000
    with server.client() as client:
        response = client.get("/simple/", headers={"Accept": accept})
    assert response.status_code == status
    if content_type is None:
        assert _SIMPLE_JSON in response.text
    else:
        assert response.headers["Content-Type"].startswith(content_type)


# -- open redirects ---------------------------------------------------------------------------


def is_local(location: str) -> bool:
    """A path on this server: one "/" first, never "//" or "/\\" (a host), no controls or spaces."""
    return (
        location.startswith("/")
        and location[1:2] not in ("/", "\\")
        and not re.search(r"[\x00-\x20\x7f\\]", location)
    )


_REDIRECTS = {
    b"/simple": "/simple/",
    b"/packages": "/packages/",
    b"/simple/Foo_Bar/": "/simple/foo-bar/",
    b"/simple/Foo_Bar": "/simple/Foo_Bar/",
    b"/Foo_Bar/": "/foo-bar/",
    b"/project/Foo_Bar/": "/project/foo-bar/",
    b"/pypi/Foo_Bar/json": "/pypi/foo-bar/json",
}


@pytest.mark.parametrize(("target", "location"), _REDIRECTS.items(), ids=lambda v: str(v))
def test_redirects_stay_on_this_server(server: Server, target: bytes, location: str) -> None:
    """DESIGN: non-normalized and slash-less URLs redirect, to a path here."""
    answer = get(server, target)
    assert answer.status == 301
    assert header(answer, "Location") == location


_OFF_SITE = [
    b"//evil.example/",
    b"///evil.example/",
    b"//evil.example/simple",
    b"//evil.example/simple/",
    b"/\\evil.example/",
    b"/\\\\evil.example/",
    b"/%2F%2Fevil.example/",
    b"/%2f%2fevil.example/simple",
    b"/%5Cevil/",
    b"/%5C%5Cevil.example/",
    b"/simple//evil.example",
    b"/simple//evil.example/",
    b"/simple/%2F%2Fevil.example",
    b"/simple/%5Cevil.example",
    b"/simple/%5C%5Cevil.example/",
    b"/project/%2F%2Fevil.example",
    b"/packages/%2F%2Fevil.example/",
    b"/-/static//evil.example/",
    b"/-/static/%2F%2Fevil.example/",
    b"/%09/evil.example/",
    b"/simple/%09/evil.example",
    b"/-/tokens?next=//evil.example/",
]


@pytest.mark.parametrize("target", _OFF_SITE, ids=lambda v: v.decode())
def test_no_redirect_leads_off_site(server: Server, target: bytes) -> None:
    """Paths shaped like another host are never redirected to it."""
    answer = get(server, target)
    assert answer.status < 500
    location = header(answer, "Location")
    assert location is None or is_local(location), location


_NEXT = [
    "//evil.example/",
    "///evil.example/",
    "/\\evil.example",
    "\\\\evil.example",
    "/%2F%2Fevil.example",
    "/%5Cevil",
    "https://evil.example",
    "http:/evil.example",
    "javascript:alert(1)",
    "/\t/evil.example",
    "/\n/evil.example",
    " //evil.example",
    "/\r\nSet-Cookie: injected=1",
    "evil.example",
]


@pytest.mark.parametrize("target", _NEXT, ids=repr)
def test_login_goes_nowhere_but_this_server(server: Server, target: str) -> None:
    """``next`` leads to a path here, in the form and after logging in."""
    with server.client() as client:
        form = client.get("/-/login", params={"next": target})
        assert form.status_code == 200
        shown = re.search(r'name="next" value="([^"]*)"', form.text)
        assert shown is not None
        assert is_local(html.unescape(shown[1]))
        login = client.post(
            "/-/login",
            data={
                "username": ALICE[0],
                "password": ALICE[1],
                "next": target,
                "_xsrf": client.cookies["_xsrf"],
            },
        )
    assert login.status_code == 303
    assert is_local(login.headers["Location"])
    assert "injected" not in login.headers.get("Set-Cookie", "")


# -- odd bytes in paths and queries ----------------------------------------------------------

_ODD_TARGETS = [
    b"/simple/%ff/",
    b"/simple/%c0%af/",
    b"/%c0%ae%c0%ae/",
    b"/simple/\xff\xfe/",
    b"/\xc0\xaf/",
    b"/packages/%ff/x.whl",
    b"/packages/abuse-ranges/%ff.whl",
    b"/packages/abuse-ranges/..%2f..%2fetc%2fpasswd",
    b"/packages/abuse-ranges/%00.whl",
    b"/pypi/%ff/json",
    b"/project/%ff/",
    b"/simple/a%00b/",
    b"/search?q=%ff",
    b"/search?q=%00",
    b"/search?q=abc%00def",
    b"/simple/?format=%00",
    b"/simple/?\x00",
    b"/-/login?next=%00",
    b"/-/health?%00",
]


@pytest.mark.parametrize("target", _ODD_TARGETS, ids=repr)
def test_odd_bytes_in_paths_and_queries_are_client_errors(server: Server, target: bytes) -> None:
    """Non-UTF-8, overlong UTF-8 and NUL get a 400 or 404, never a 500."""
    answer = get(server, target)
    assert answer.status in (400, 404)
    if b"%00" in target.partition(b"?")[2]:
        assert b"NUL" in answer.body


@pytest.mark.parametrize(
    "target",
    [
        b"/simple/%0d%0aSet-Cookie:injected=1/",
        b"/simple/%0d%0aSet-Cookie:injected=1",
        b"/Foo_Bar/?x=%0d%0aSet-Cookie:injected=1",
        b"/simple/Foo_Bar/?%0d%0aSet-Cookie:injected=1",
        b"/pypi/%0d%0aSet-Cookie:injected=1/json",
        b"/%0d%0aSet-Cookie:injected=1/",
        b"/project/%0aSet-Cookie:injected=1/",
    ],
    ids=repr,
)
def test_crlf_in_a_reflected_path_injects_no_header(server: Server, target: bytes) -> None:
    """An encoded CRLF stays in the path; no header of the attacker's appears."""
    answer = get(server, target)
    assert 300 <= answer.status < 500
    assert not any(name.lower() == "set-cookie" for name, _ in answer.headers)
    assert all("\r" not in v and "\n" not in v for _, v in answer.headers)


# -- request smuggling ------------------------------------------------------------------------

_FRAMING = {
    "Content-Length and Transfer-Encoding": b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    "two different Content-Lengths": b"Content-Length: 5\r\nContent-Length: 6\r\n",
    "a list of Content-Lengths": b"Content-Length: 5, 6\r\n",
    "two Transfer-Encodings": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    "an unknown Transfer-Encoding": b"Transfer-Encoding: xchunked\r\n",
    "chunked after another coding": b"Transfer-Encoding: gzip, chunked\r\n",
    "odd-case Transfer-Encoding with Content-Length": (
        b"tRANSFER-ENCODING: chunked\r\nContent-Length: 5\r\n"
    ),
    "a tab after chunked, with Content-Length": (
        b"Transfer-Encoding: chunked\t\r\nContent-Length: 5\r\n"
    ),
    "a signed Content-Length": b"Content-Length: +5\r\n",
    "a Content-Length of 5000 digits": b"Content-Length: " + b"9" * 5000 + b"\r\n",
}


@pytest.mark.parametrize("framing", _FRAMING.values(), ids=_FRAMING.keys())
@pytest.mark.parametrize("path", [b"/-/login", b"/legacy/"])
def test_ambiguous_body_framing_is_refused_and_the_connection_closed(
    server: Server, framing: bytes, path: bytes
) -> None:
    """400 (413 for an absurd upload size), then the server closes the connection."""
    # An upload without credentials would be refused at its headers, before its framing.
    extra = _UPLOAD_HEADERS if path == b"/legacy/" else b""
    request = (
        b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + framing + b"\r\n0\r\n\r\n"
    )
    # No "Connection: close": only the server's own close ends the exchange.
    answer = exchange(server, request)
    assert answer.status in (400, 413)


# -- cookie floods ----------------------------------------------------------------------------

_COOKIES = {
    "escaped quotes": 'a="' + '\\"' * 25_000 + '"',
    "6,000 cookies": "; ".join(f"c{n}=1" for n in range(6_000)),
    "60,000 separators": ";" * 60_000,
    "one long value": "ministry_session=" + "a" * 60_000,
    "quotes and escapes": 'a="' + "\\\\\\042" * 8000 + '"',
}


@pytest.mark.parametrize("cookie", _COOKIES.values(), ids=_COOKIES.keys())
@pytest.mark.parametrize("target", [b"/", b"/-/indexes", b"/simple/"])
def test_huge_cookie_headers_are_answered(server: Server, cookie: str, target: bytes) -> None:
    """A 60 KB Cookie header is parsed (in linear time) or ignored, never a 500."""
    assert 40_000 < len(cookie) < 62_000
    answer = get(server, target, b"Cookie: " + cookie.encode() + b"\r\n")
    assert answer.status == 200
