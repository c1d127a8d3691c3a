"""Behind a reverse proxy: forwarded headers are believed from trusted proxies only
(docs/security.md, "HTTP abuse").

Real servers, started with and without ``--trusted-proxies 127.0.0.1`` and with
``--public-url``. The test client plays the proxy: it connects from 127.0.0.1,
or from 127.0.0.2 (also this machine, but not a trusted address) to play a
client that reaches the server directly. What is checked is what users see:
the file URLs of the JSON API, the addresses on the help page, and the client
address in the access log, the audit log and the login limits.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ALICE, add_user
from support.distributions import make_wheel
from support.inprocess import InProcessServer
from support.server import Server
from support.uploads import post_upload

PROJECT = "forwarded-demo"
CLIENT = "203.0.113.7"
PUBLIC_URL = "https://pypi.example.test"
# What a proxy that ends TLS for pypi.example.test:8443 sends along.
FORWARDED = {
    "X-Forwarded-For": CLIENT,
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "pypi.example.test:8443",
}
FORWARDED_BASE = "https://pypi.example.test:8443"
# A loopback address that is not 127.0.0.1: a peer outside the trusted list.
UNTRUSTED_PEER = "127.0.0.2"


def start(directory: Path, *arguments: str) -> Server:
    """A server logging JSON, with alice and one project with a wheel."""
    server = InProcessServer(directory / "data", arguments=["--log-format", "json", *arguments])
    server.start()
    add_user(server, *ALICE)
    with server.client() as client:
        response = post_upload(client, make_wheel(directory, PROJECT, "1.0"), auth=ALICE)
    assert response.status_code == 200, response.text
    return server


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that trusts no proxy (the default)."""
    server = start(tmp_path_factory.mktemp("plain"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that believes the proxy on 127.0.0.1."""
    server = start(tmp_path_factory.mktemp("proxied"), "--trusted-proxies", "127.0.0.1")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with a public URL, behind the proxy on 127.0.0.1."""
    server = start(
        tmp_path_factory.mktemp("public"),
        "--trusted-proxies",
        "127.0.0.1",
        "--public-url",
        PUBLIC_URL,
    )
    yield server
    server.stop()


def client_of(server: Server, source: str = "127.0.0.1") -> httpx.Client:
    """A client of ``server`` whose connections come from ``source``."""
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=server.url, trust_env=False, timeout=30, transport=transport)


def access_address(server: Server, request_id: str) -> str:
    """The client address the access log gives for the request with this id."""
    records: list[dict[str, Any]] = []
    for line in server.log().splitlines():
        record = json.loads(line)
        if record.get("request_id") == request_id and "address" in record:
            records.append(record)
    assert len(records) == 1, records
    address: str = records[0]["address"]
    return address


def seen(server: Server, headers: dict[str, str], source: str = "127.0.0.1") -> tuple[str, str]:
    """(the URL the JSON API gives for the wheel, the address the access log gives)."""
    request_id = secrets.token_hex(8)
    with client_of(server, source) as client:
        response = client.get(
            f"/pypi/{PROJECT}/json", headers={**headers, "X-Request-ID": request_id}
        )
    assert response.status_code == 200, response.text
    (url,) = (file["url"] for file in response.json()["urls"])
    return url, access_address(server, request_id)


def help_page(server: Server, headers: dict[str, str], source: str = "127.0.0.1") -> str:
    with client_of(server, source) as client:
        response = client.get("/-/help", headers=headers)
    assert response.status_code == 200, response.text
    return response.text


def file_url(base: str) -> str:
    return f"{base}/packages/{PROJECT}/forwarded_demo-1.0-py3-none-any.whl"


def test_forwarded_headers_from_a_server_that_trusts_no_proxy_change_nothing(
    plain: Server,
) -> None:
    assert seen(plain, FORWARDED) == (file_url(plain.url), "127.0.0.1")
    page = help_page(plain, FORWARDED)
    assert f"{plain.url}/simple/" in page
    assert "pypi.example.test" not in page


def test_forwarded_headers_from_a_peer_that_is_no_trusted_proxy_change_nothing(
    proxied: Server,
) -> None:
    assert seen(proxied, FORWARDED, UNTRUSTED_PEER) == (file_url(proxied.url), UNTRUSTED_PEER)
    page = help_page(proxied, FORWARDED, UNTRUSTED_PEER)
    assert f"{proxied.url}/simple/" in page
    assert "pypi.example.test" not in page


def test_a_trusted_proxy_says_who_the_client_is_and_what_it_asked_for(
    proxied: Server,
) -> None:
    assert seen(proxied, FORWARDED) == (file_url(FORWARDED_BASE), CLIENT)
    page = help_page(proxied, FORWARDED)
    assert f"{FORWARDED_BASE}/simple/" in page
    assert f"{FORWARDED_BASE}/legacy/" in page
    # Without the headers, the same proxy's requests are its own.
    assert seen(proxied, {}) == (file_url(proxied.url), "127.0.0.1")


def test_redirects_stay_on_the_address_the_client_used(proxied: Server) -> None:
    with client_of(proxied) as client:
        response = client.get("/pypi/Forwarded_Demo/json", headers=FORWARDED)
    assert response.status_code == 301
    assert response.headers["Location"] == f"/pypi/{PROJECT}/json"


@pytest.mark.parametrize(
    ("headers", "base", "address"),
    [
        ({"X-Forwarded-For": f"{CLIENT}, not-an-address"}, None, "127.0.0.1"),
        ({"X-Forwarded-For": f"{CLIENT}:4711"}, None, "127.0.0.1"),
        ({"X-Forwarded-For": ""}, None, "127.0.0.1"),
        ({"X-Forwarded-Proto": "javascript"}, None, "127.0.0.1"),
        ({"X-Forwarded-Proto": "https, ftp"}, None, "127.0.0.1"),
        ({"X-Forwarded-Host": "evil.example.test/path?"}, None, "127.0.0.1"),
        ({"X-Forwarded-Host": "user@evil.example.test"}, None, "127.0.0.1"),
        ({"X-Forwarded-Host": "evil.example.test:99999"}, None, "127.0.0.1"),
        ({"X-Forwarded-Host": "evil example.test"}, None, "127.0.0.1"),
        # One bad value spoils only itself.
        ({**FORWARDED, "X-Forwarded-Host": "evil.example.test/x"}, "https://{own}", CLIENT),
        ({**FORWARDED, "X-Forwarded-For": "bad, 127.0.0.1"}, FORWARDED_BASE, "127.0.0.1"),
    ],
)
def test_forwarded_values_that_are_not_plain_are_ignored(
    proxied: Server, headers: dict[str, str], base: str | None, address: str
) -> None:
    own = proxied.url.removeprefix("http://")
    expected = proxied.url if base is None else base.format(own=own)
    assert seen(proxied, headers) == (file_url(expected), address)


def test_the_public_url_wins_over_every_header(public: Server) -> None:
    spoofed = {**FORWARDED, "Host": "evil.example.test"}
    assert seen(public, spoofed) == (file_url(PUBLIC_URL), CLIENT)
    assert seen(public, {"Host": "evil.example.test"}, UNTRUSTED_PEER) == (
        file_url(PUBLIC_URL),
        UNTRUSTED_PEER,
    )
    page = help_page(public, spoofed)
    assert f"{PUBLIC_URL}/simple/" in page
    assert "evil.example.test" not in page
    with client_of(public) as client:
        home = client.get("/", headers=spoofed)
    assert f"pip install --index-url {PUBLIC_URL}/simple/ PROJECT" in home.text


def test_an_upload_through_the_proxy_is_logged_and_audited_with_the_client(
    proxied: Server, tmp_path: Path
) -> None:
    """The upload handler streams its body; the client is known before it arrives."""
    request_id = secrets.token_hex(8)
    wheel = make_wheel(tmp_path, PROJECT, "2.0")
    with client_of(proxied) as client:
        response = post_upload(
            client, wheel, auth=ALICE, headers={**FORWARDED, "X-Request-ID": request_id}
        )
    assert response.status_code == 200, response.text
    assert access_address(proxied, request_id) == CLIENT
    audit = proxied.cli("log")
    assert audit.returncode == 0, audit.stderr
    (line,) = (line for line in audit.stdout.splitlines() if wheel.name in line)
    assert CLIENT in line


def test_failed_logins_are_counted_per_forwarded_client(tmp_path: Path) -> None:
    """Behind a trusted proxy one client's guessing does not lock out the others."""
    server = InProcessServer(
        tmp_path / "data", arguments=["--trusted-proxies", "127.0.0.1", "--login-failures", "2"]
    ).start()
    try:
        add_user(server, *ALICE)
        wrong = ("alice", "not-the-password")
        guesser = {"X-Forwarded-For": "203.0.113.1"}
        with client_of(server) as client:
            for _ in range(2):
                assert client.get("/-/api/whoami", auth=wrong, headers=guesser).status_code == 401
            assert client.get("/-/api/whoami", auth=ALICE, headers=guesser).status_code == 429
            other = {"X-Forwarded-For": "203.0.113.2"}
            assert client.get("/-/api/whoami", auth=ALICE, headers=other).status_code == 200
    finally:
        server.stop()


def test_static_files_are_logged_with_the_forwarded_client(proxied: Server) -> None:
    """The CSS and scripts come from Tornado's file handler; their log lines name the client
    too, or a log shows nginx's address for every page view's second request."""
    probe = secrets.token_hex(8)
    with client_of(proxied) as client:
        response = client.get(f"/-/static/ministry.css?probe={probe}", headers=FORWARDED)
    assert response.status_code == 200
    records = [json.loads(line) for line in proxied.log().splitlines() if probe in line]
    assert [record["address"] for record in records] == [CLIENT]
