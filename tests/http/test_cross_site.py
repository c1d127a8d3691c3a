"""Writes another site's page could make a browser send, uploads refused at the headers, and
the Content-Security-Policy of the pages (docs/security.md, "Cross-site requests",
"Uploads refused at the headers", "Content-Security-Policy").

One server for the module, with a public URL, so that "this server's own origin"
is the configured address and not what a request says.
"""

from __future__ import annotations

import base64
import json
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import ALICE, BOB, add_user
from support.clients import twine_upload, uv
from support.distributions import make_wheel
from support.inprocess import InProcessServer
from support.server import Server
from support.uploads import post_upload

PUBLIC_URL = "http://pkgs.example.test:8443"
JSON = {"Content-Type": "application/json"}
CSP_DIRECTIVES = {
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
}
README = """\
# Tracked

![Build status](https://tracker.example.test/badge.svg)
<img src="https://tracker.example.test/p.gif" alt="pixel">
<img src="//tracker.example.test/q.gif" alt="no scheme">
![diagram](docs/diagram.png)
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """alice is a server admin and uploads to ``team/locked``; bob may not upload there."""
    data = tmp_path_factory.mktemp("cross-site") / "data"
    instance = InProcessServer(data, arguments=["--public-url", PUBLIC_URL]).start()
    result = instance.cli(
        "user", "add", ALICE[0], "--admin", "--password-stdin", stdin=ALICE[1] + "\n"
    )
    assert result.returncode == 0, result.stderr
    add_user(instance, *BOB)
    created = instance.cli("index", "create", "team/locked", "--uploaders", "alice")
    assert created.returncode == 0, created.stderr
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def published(site: Server, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A project with releases 1.0 and 2.0 in main, its README full of tracking images."""
    directory = tmp_path_factory.mktemp("published")
    with site.client() as client:
        for version in ("1.0", "2.0"):
            wheel = make_wheel(
                directory, "crossed", version, description=README,
                extra_headers=[("Description-Content-Type", "text/markdown")],
            )  # fmt: skip
            assert post_upload(client, wheel, auth=ALICE).status_code == 200
    return "crossed"


def yanked(client: httpx.Client, project: str, version: str) -> bool:
    document = client.get(f"/pypi/{project}/{version}/json").json()
    return bool(document["info"]["yanked"])


def user_exists(client: httpx.Client, name: str) -> bool:
    return client.get(f"/-/api/users/{name}", auth=ALICE).status_code == 200


# -- the management API takes JSON declared as JSON only ------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "text/plain; charset=utf-8", None],
)
def test_api_body_not_declared_json_is_415_and_changes_nothing(
    site: Server, published: str, content_type: str | None, unique: str
) -> None:
    """An HTML form on another site can post JSON as text/plain, with cached Basic credentials."""
    body = json.dumps({"name": unique, "password": "a-long-password-1"}).encode()
    headers = {} if content_type is None else {"Content-Type": content_type}
    with site.client() as client:
        if content_type is None:  # httpx would add none; make sure no default is sent
            client.headers.pop("Content-Type", None)
        response = client.post("/-/api/users", content=body, headers=headers, auth=ALICE)
        assert response.status_code == 415, response.text
        assert "Content-Type: application/json" in response.json()["message"]
        assert not user_exists(client, unique)
        # An empty form yanks nothing either.
        url = f"/-/api/indexes/main/projects/{published}/releases/1.0/yank"
        form = {"Content-Type": content_type or "text/plain"}
        empty = client.post(url, content=b"", headers=form, auth=ALICE)
        assert empty.status_code == 415, empty.text
        assert not yanked(client, published, "1.0")
        # Declared JSON, with a charset, still works.
        made = client.post(
            "/-/api/users",
            content=body,
            headers={"Content-Type": "application/json; charset=utf-8"},
            auth=ALICE,
        )
        assert made.status_code == 201, made.text


# -- writes a page of another site sent are refused -----------------------------------------

FOREIGN = [
    {"Origin": "http://evil.example.test"},
    {"Origin": "null"},
    {"Origin": "https://pkgs.example.test:8443"},  # another scheme
    {"Origin": "http://pkgs.example.test:8444"},  # another port
    {"Origin": "http://sub.pkgs.example.test:8443"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "Origin": PUBLIC_URL},
]


def refused_as_foreign(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert "another site" in response.text


@pytest.mark.parametrize(
    "foreign", FOREIGN, ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items())
)
def test_writes_from_another_site_are_refused_whatever_the_credentials(
    site: Server, published: str, foreign: dict[str, str], tmp_path: Path, unique: str
) -> None:
    with site.client() as client:
        # The request's own address is not the server's origin when a public URL is set.
        own = {"Origin": site.url}
        for headers in (foreign, own):
            refused_as_foreign(client.post(
                "/-/api/users", json={"name": unique, "password": "a-long-password-1"},
                headers=headers, auth=ALICE,
            ))  # fmt: skip
            refused_as_foreign(client.delete("/-/api/indexes/team/locked", headers=headers,
                                             auth=ALICE))  # fmt: skip
        assert not user_exists(client, unique)
        assert client.get("/-/api/indexes/team/locked", auth=ALICE).status_code == 200

        login = client.post("/-/login", data={"username": ALICE[0], "password": ALICE[1]},
                            headers=foreign)  # fmt: skip
        refused_as_foreign(login)
        assert "ministry_session" not in login.headers.get("Set-Cookie", "")
        refused_as_foreign(client.post("/-/logout", headers=foreign, auth=ALICE))
        tokens = client.post("/-/tokens", data={"description": unique}, headers=foreign,
                             auth=ALICE)  # fmt: skip
        refused_as_foreign(tokens)
        listed = client.get("/-/api/users/alice/tokens", auth=ALICE).json()
        assert unique not in json.dumps(listed)

        release = {"index": "main", "project": published, "version": "2.0"}
        yank = client.post("/-/yank", data={**release, "action": "yank"}, headers=foreign,
                           auth=ALICE)  # fmt: skip
        refused_as_foreign(yank)
        assert not yanked(client, published, "2.0")
        delete = client.post("/-/delete", data={**release, "confirm": "yes"}, headers=foreign,
                             auth=ALICE)  # fmt: skip
        refused_as_foreign(delete)
        assert client.get(f"/pypi/{published}/2.0/json").status_code == 200

        wheel = make_wheel(tmp_path, unique, "1.0")
        refused_as_foreign(post_upload(client, wheel, auth=ALICE, headers=foreign))
        assert client.get(f"/simple/{unique}/").status_code == 404
        # A link followed from another site still reads.
        assert client.get(f"/project/{published}/", headers=foreign).status_code == 200


def test_same_origin_and_tool_writes_work(site: Server, tmp_path: Path, unique: str) -> None:
    """The server's own pages (by its public URL) and tools that send no Origin may write."""
    same = [
        {"Origin": PUBLIC_URL, "Sec-Fetch-Site": "same-origin"},
        {"Origin": "HTTP://PKGS.example.test:8443"},
        {"Sec-Fetch-Site": "none"},  # typed into the address bar
        {},  # pip, uv, twine, curl
    ]
    with site.client() as client:
        for number, headers in enumerate(same):
            made = client.post(
                "/-/api/users", json={"name": f"{unique}-{number}", "password": "long-password-1"},
                headers=headers, auth=ALICE,
            )  # fmt: skip
            assert made.status_code == 201, made.text
            wheel = make_wheel(tmp_path, unique, f"1.{number}")
            uploaded = post_upload(client, wheel, auth=ALICE, headers=headers)
            assert uploaded.status_code == 200, uploaded.text


# -- an upload refused at the headers --------------------------------------------------------


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def answer_to_head(server: Server, head: bytes) -> tuple[int, str]:
    """Send only the head of a request and read one whole answer; the body is never sent."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=120) as sock:
        sock.sendall(head)
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(65536) or b""
        header, _, body = received.partition(b"\r\n\r\n")
        lines = header.decode("latin-1").split("\r\n")
        length = next(
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length:")
        )
        while len(body) < length:
            chunk = sock.recv(65536)
            assert chunk, "the server closed before its answer was complete"
            body += chunk
    return int(lines[0].split(" ")[1]), body.decode()


@pytest.mark.parametrize(
    ("authorization", "url", "status", "words"),
    [
        (None, "/legacy/", 401, "Authentication required"),
        (_basic(ALICE[0], "wrong-password"), "/legacy/", 401, "Invalid or non-existent"),
        (_basic(*BOB), "/team/locked/legacy/", 403, ""),
    ],
    ids=["anonymous", "wrong-password", "no-upload-right"],
)
@pytest.mark.parametrize("expect", [False, True], ids=["plain", "expect-100"])
def test_refused_upload_is_answered_without_its_body(
    site: Server, authorization: str | None, url: str, status: int, words: str,
    expect: bool,
) -> None:  # fmt: skip
    """100 MiB announced, not one byte sent: the refusal comes all the same, never a 100."""
    head = (
        f"POST {url} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {100 * 1024 * 1024}\r\n"
        + (f"Authorization: {authorization}\r\n" if authorization else "")
        + ("Expect: 100-continue\r\n" if expect else "")
        + "\r\n"
    ).encode()
    answered, body = answer_to_head(site, head)
    assert answered == status, body
    assert words in body


# -- Content-Security-Policy ------------------------------------------------------------------


def test_every_page_kind_carries_the_policy(site: Server, published: str) -> None:
    pages = [
        "/", "/search?q=crossed", "/-/login", "/-/help", "/-/indexes", "/-/indexes/main/",
        f"/project/{published}/", f"/project/{published}/1.0/", "/project/no-such-one/",
        "/simple/", f"/simple/{published}/", "/packages/", f"/packages/{published}/",
        "/-/tokens", "/-/user", "/-/audit", "/legacy/",
    ]  # fmt: skip
    with site.client() as client:
        for path in pages:
            for auth in (None, ALICE):
                response = client.get(path, headers={"Accept": "text/html"}, auth=auth)
                policy = response.headers.get("Content-Security-Policy", "")
                assert {part.strip() for part in policy.split(";")} == CSP_DIRECTIVES, path
                assert response.headers["X-Frame-Options"] == "DENY"
                assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_readme_images_from_other_hosts_are_not_loaded(site: Server, published: str) -> None:
    with site.client() as client:
        page = client.get(f"/project/{published}/").text
    assert "tracker.example.test" not in page
    for alt in ("Build status", "pixel", "no scheme"):
        assert f'<img alt="{alt}">' in page
    assert '<img src="docs/diagram.png" alt="diagram">' in page


@pytest.fixture(scope="module")
def big_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32 MiB wheel: far more than the server drains and than the socket buffers hold."""
    noise = random.Random(0).randbytes(32 * 1024 * 1024)  # incompressible
    directory = tmp_path_factory.mktemp("big")
    return make_wheel(directory, "bigone", "1.0", files={"bigone/blob.bin": noise})


@pytest.mark.slow
@pytest.mark.parametrize(
    ("user", "password", "url", "message"),
    [
        (ALICE[0], "wrong-password", "/legacy/", "401 Invalid or non-existent authentication"),
        (*BOB, "/team/locked/legacy/", "User 'bob' may not upload to index 'team/locked'"),
    ],
    ids=["wrong-password", "no-upload-right"],
)
def test_twine_and_uv_show_a_refusal_given_at_the_headers(
    site: Server, big_wheel: Path, home: Path,
    user: str, password: str, url: str, message: str,
) -> None:  # fmt: skip
    """The server stops reading the body, and the tools still print its message."""
    twine = twine_upload(home, site.url + url, user, password, big_wheel)
    assert twine.returncode != 0
    # twine wraps its lines to the terminal's width.
    assert message.removeprefix("401 ") in " ".join((twine.stdout + twine.stderr).split())
    published = uv(
        home, "publish", "--publish-url", site.url + url,
        "--username", user, "--password", password, str(big_wheel),
    )  # fmt: skip
    assert published.returncode != 0
    # So does uv, by the length of what it prints before the message.
    assert message in " ".join(published.stderr.split()), published.stderr
    with site.client() as client:
        assert client.get("/simple/bigone/").status_code == 404
