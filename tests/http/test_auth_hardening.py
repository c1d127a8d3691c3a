"""Secrets at rest, failures that tell nothing, and the session cookie
(docs/security.md, "Credentials").

Passwords are stored as Argon2id hashes and tokens as sha256 hashes of their
secrets (services/auth.py compares them with argon2's verify and
hmac.compare_digest); here the stores themselves are read to see that no secret
is in them, on SQLite and on Redis.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from conftest import ALICE, add_user
from support.distributions import make_wheel
from support.inprocess import InProcessServer
from support.logins import form_login, without_xsrf_token
from support.server import Server
from support.uploads import post_upload

PASSWORD = "a-password-nobody-guesses"


@pytest.fixture(scope="module")
def hardened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with alice (an administrator) and a private index ``team/private``."""
    server = InProcessServer(tmp_path_factory.mktemp("hardened") / "data").start()
    for arguments in (
        ("user", "add", ALICE[0], "--admin", "--password-stdin"),
        ("index", "create", "team/private", "--private", "--readers", "alice"),
    ):
        result = server.cli(*arguments, stdin=ALICE[1] + "\n")
        assert result.returncode == 0, result.stderr
    yield server
    server.stop()


def make_secrets(server: Server, user: str) -> list[str]:
    """A user with PASSWORD, an API token and a browser session; returns every secret."""
    add_user(server, user, PASSWORD)
    with server.client() as client:
        token = client.post(f"/-/api/users/{user}/tokens", json={}, auth=(user, PASSWORD))
        assert token.status_code == 201, token.text
        assert form_login(client, user, PASSWORD).status_code == 303
        session = client.cookies["ministry_session"]
    return [PASSWORD, token.json()["token"], session]


def assert_hashed_only(stored: bytes, found: list[str]) -> None:
    """No secret, nor the random part of a token, is stored; their hashes are."""
    assert b"$argon2id$" in stored
    for secret in found:
        assert secret.encode() not in stored
        token = re.fullmatch(r"mop_s?[0-9a-f]{16}_(.+)", secret)
        if token is not None:
            assert token[1].encode() not in stored
            assert hashlib.sha256(token[1].encode()).hexdigest().encode() in stored


def test_sqlite_keeps_only_hashes(fresh_server: Server) -> None:
    """The database file, its write-ahead log and the server log hold no password or token."""
    found = make_secrets(fresh_server, "carol")
    stored = b"".join(p.read_bytes() for p in fresh_server.data.glob("ministry.sqlite3*"))
    assert_hashed_only(stored, found)
    log = fresh_server.log()
    assert not [secret for secret in found if secret in log]


def test_redis_keeps_only_hashes(tmp_path: Path, redis_url: str) -> None:
    """Every key of the deployment, whatever its type, holds no password or token."""
    prefix = "t" + secrets.token_hex(6)
    server = InProcessServer(
        tmp_path / "data", environment={"MINISTRY_DB": f"{redis_url}?prefix={prefix}"}
    ).start()
    try:
        found = make_secrets(server, "carol")
    finally:
        server.stop()
    stored = b"\n".join(redis_values(redis_url, prefix))
    assert b"carol" in stored
    assert_hashed_only(stored, found)


def redis_values(url: str, prefix: str) -> Iterator[bytes]:
    """Every key under ``prefix`` and everything in it, as bytes."""
    connection = redis.Redis.from_url(url)
    try:
        for key in connection.scan_iter(match=f"{prefix}:*"):
            yield key
            kind = connection.type(key).decode()
            if kind == "string":
                yield connection.get(key) or b""
            elif kind == "hash":
                for field, value in connection.hgetall(key).items():
                    yield field + b"=" + value
            elif kind == "set":
                yield from connection.smembers(key)
            elif kind == "zset":
                yield from connection.zrange(key, 0, -1)
            elif kind == "list":
                yield from connection.lrange(key, 0, -1)
            elif kind == "stream":
                for _, entry in connection.xrange(key):
                    yield from (k + b"=" + v for k, v in entry.items())
            else:
                raise AssertionError(f"unexpected Redis type {kind} of {key!r}")
    finally:
        connection.close()


def _comparable(response: httpx.Response) -> tuple[int, str, dict[str, str]]:
    # A request id differs on every response by design (it names that one request).
    varying = ("date", "set-cookie", "x-request-id")
    headers = {k: v for k, v in response.headers.items() if k not in varying}
    return response.status_code, without_xsrf_token(response.text), headers


@pytest.mark.parametrize(
    ("method", "path", "accept"),
    [
        ("GET", "/-/api/whoami", "*/*"),
        ("GET", "/-/api/whoami", "application/json"),
        ("GET", "/team/private/simple/", "text/html"),
        ("GET", "/team/private/pypi/anything/json", "*/*"),
        ("GET", "/search", "text/html"),
        ("POST", "/legacy/", "*/*"),
    ],
)
def test_unknown_user_and_wrong_password_read_the_same(
    hardened: Server, tmp_path: Path, method: str, path: str, accept: str
) -> None:
    """docs/security.md, "Credentials": byte for byte the same answer, so nobody learns which names
    exist."""
    answers = []
    for auth in (("alice", "not-the-password"), ("no-such-user", "not-the-password")):
        with hardened.client() as client:
            if method == "POST":
                wheel = make_wheel(tmp_path, "any-project", "1.0")
                response = post_upload(client, wheel, auth=auth, url=path)
            else:
                response = client.get(path, auth=auth, headers={"Accept": accept})
        assert response.status_code == 401, response.text
        answers.append(_comparable(response))
    assert answers[0] == answers[1]


def test_the_login_form_reads_the_same_for_unknown_users(hardened: Server) -> None:
    """The form's answer differs only by its freshly masked XSRF token and the name it
    keeps in its field (what the user typed, so that they can correct the password)."""
    answers = []
    for user in ("alice", "no-such-user"):
        with hardened.client() as client:
            response = form_login(client, user, "not-the-password")
        assert response.status_code == 401
        assert "Invalid or non-existent authentication information." in response.text
        assert "ministry_session" not in response.headers.get("Set-Cookie", "")
        assert f'value="{user}"' in response.text
        status, text, headers = _comparable(response)
        del headers["content-length"]
        answers.append((status, text.replace(f'value="{user}"', 'value="NAME"'), headers))
    assert answers[0] == answers[1]


def session_cookie(response: httpx.Response) -> list[str]:
    """The attributes of the session's Set-Cookie header, lower-cased."""
    (header,) = [
        h for h in response.headers.get_list("Set-Cookie") if h.startswith("ministry_session=")
    ]
    return [part.strip().lower() for part in header.split(";")]


def test_the_session_cookie_is_httponly_samesite_and_secure_behind_tls(
    hardened: Server,
) -> None:
    """docs/security.md, "Credentials": scripts never read it, other sites never send it; Secure
    when TLS ended in front.

    The server speaks plain HTTP; a TLS proxy in front says ``X-Forwarded-Proto: https``.
    """
    with hardened.client() as client:
        plain = session_cookie(form_login(client, *ALICE))
    with hardened.client() as client:
        behind_tls = session_cookie(form_login(client, *ALICE, {"X-Forwarded-Proto": "https"}))
    for attributes in (plain, behind_tls):
        assert "httponly" in attributes
        assert "samesite=lax" in attributes
        assert "path=/" in attributes
    assert "secure" not in plain
    assert "secure" in behind_tls
