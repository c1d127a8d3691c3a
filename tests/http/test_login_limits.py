"""Failed logins are limited per user and address, on every way in
(docs/security.md, "Credentials"; docs/indexes.md).

Each test has a server of its own: the counts are per process and every test
client is 127.0.0.1, so tests sharing a server would spend each other's budget.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import ALICE, BOB, add_user
from support.distributions import make_wheel
from support.inprocess import InProcessServer, call_cli
from support.logins import form_login
from support.server import Server
from support.uploads import post_upload

FAILURES = 10
ADDRESS_FAILURES = 50
LOCKED_USER = re.compile(
    r"Too many failed logins for this user from your address; try again in (\d+) seconds\."
)
LOCKED_ADDRESS = re.compile(
    r"Too many failed logins from your address; try again in (\d+) seconds\."
)


@pytest.fixture
def client(fresh_server: Server) -> Iterator[httpx.Client]:
    """A client of a server with alice and bob, whose counts start at nothing."""
    add_user(fresh_server, *BOB)
    with fresh_server.client() as instance:
        yield instance


def whoami(client: httpx.Client, auth: tuple[str, str]) -> httpx.Response:
    return client.get("/-/api/whoami", auth=auth)


def fail(client: httpx.Client, auth: tuple[str, str], times: int = FAILURES) -> None:
    """Send wrong credentials ``times`` times; each is an ordinary 401."""
    for _ in range(times):
        response = whoami(client, auth)
        assert response.status_code == 401, response.text


def locked(response: httpx.Response, pattern: re.Pattern[str] = LOCKED_USER) -> int:
    """Assert a 429 with Retry-After and the message; return the seconds it asks to wait."""
    assert response.status_code == 429, response.text
    seconds = int(response.headers["Retry-After"])
    assert 0 < seconds <= 600
    match = pattern.search(response.text)
    assert match, response.text
    assert abs(int(match[1]) - seconds) <= 1
    return seconds


def test_wrong_passwords_lock_out_even_the_right_one(
    client: httpx.Client, tmp_path: Path, unique: str
) -> None:
    """Ten wrong passwords: then every way in answers 429 without looking at the password."""
    fail(client, ("alice", "not-the-password"))
    locked(whoami(client, ("alice", "not-the-password")))
    locked(whoami(client, ALICE))
    document = client.get(
        "/-/api/whoami", auth=ALICE, headers={"Accept": "application/json"}
    ).json()
    assert LOCKED_USER.match(document["message"])
    assert document["code"].startswith("429 Too many failed logins")
    upload = post_upload(client, make_wheel(tmp_path, unique, "1.0"), auth=ALICE)
    locked(upload)
    assert LOCKED_USER.match(upload.reason_phrase)  # twine prints only this
    locked(client.get("/simple/", auth=ALICE))
    page = client.get("/search", auth=ALICE, headers={"Accept": "text/html"})
    locked(page)
    assert "<html" in page.text
    locked(form_login(client, *ALICE))
    # Others keep their budget: bob, from the same address, is not locked out.
    assert whoami(client, BOB).json()["user"] == "bob"


def test_unknown_users_are_counted_and_refused_alike(client: httpx.Client) -> None:
    """A name that does not exist fails and locks exactly as alice's does."""
    for _ in range(FAILURES):
        known = whoami(client, ("alice", "not-the-password"))
        unknown = whoami(client, ("nobody", "not-the-password"))
        assert (unknown.status_code, unknown.text) == (known.status_code, known.text)
    known, unknown = whoami(client, ALICE), whoami(client, ("nobody", "not-the-password"))
    locked(known)
    locked(unknown)
    assert LOCKED_USER.sub("", known.text) == LOCKED_USER.sub("", unknown.text)


def test_a_success_starts_the_count_again(client: httpx.Client) -> None:
    """Nine typos and a right password: the next nine typos are still only 401."""
    for _ in range(3):
        fail(client, ("alice", "not-the-password"), FAILURES - 1)
        assert whoami(client, ALICE).json()["user"] == "alice"


def test_many_user_names_from_one_address_spend_its_budget(client: httpx.Client) -> None:
    """One guess each for fifty names: the address itself must wait, for every user."""
    for n in range(ADDRESS_FAILURES):
        assert whoami(client, (f"user{n}", "a-common-password")).status_code == 401
    for auth in (ALICE, BOB, ("user0", "a-common-password")):
        response = whoami(client, auth)
        locked(response, LOCKED_ADDRESS)
        assert "for this user" not in response.text


def test_the_login_form_counts_with_basic_credentials(client: httpx.Client) -> None:
    """Form and Basic failures add up; the locked form says why and starts no session."""
    for n in range(FAILURES):
        if n % 2:
            assert form_login(client, "alice", "not-the-password").status_code == 401
        else:
            assert whoami(client, ("alice", "not-the-password")).status_code == 401
    page = form_login(client, *ALICE)
    seconds = locked(page)
    assert '<form class="stacked" action="/-/login"' in page.text
    assert f"try again in {seconds} seconds" in page.text
    assert "ministry_session" not in page.headers.get("Set-Cookie", "")
    locked(whoami(client, ALICE))


def test_guessing_a_tokens_secret_locks_that_token(
    fresh_server: Server, client: httpx.Client
) -> None:
    """Wrong secrets for one token id: that token waits; alice's other token and password work."""
    tokens = [fresh_server.cli("token", "create", "alice").stdout.strip() for _ in range(2)]
    target, other = tokens
    guess = target[:-6] + ("AAAAAA" if not target.endswith("AAAAAA") else "BBBBBB")
    fail(client, ("__token__", guess))
    locked(whoami(client, ("__token__", guess)))
    locked(whoami(client, ("__token__", target)))
    assert whoami(client, ("__token__", other)).json()["user"] == "alice"
    assert whoami(client, ALICE).json()["user"] == "alice"


def test_the_limit_is_a_setting(tmp_path: Path) -> None:
    """``--login-failures N`` sets the budget; 0 removes it; a wrong value stops the start."""
    strict = InProcessServer(tmp_path / "strict", arguments=["--login-failures", "2"]).start()
    unlimited = InProcessServer(
        tmp_path / "unlimited", environment={"MINISTRY_LOGIN_FAILURES": "0"}
    ).start()
    try:
        for server in (strict, unlimited):
            add_user(server, *ALICE)
        with strict.client() as client:
            fail(client, ("alice", "not-the-password"), 2)
            locked(whoami(client, ALICE))
        with unlimited.client() as client:
            fail(client, ("alice", "not-the-password"), FAILURES + 2)
            assert whoami(client, ALICE).json()["user"] == "alice"
    finally:
        strict.stop()
        unlimited.stop()
    refused = call_cli(
        "serve", "--port", "0", "--data", str(tmp_path / "x"), "--login-failures", "some"
    )
    assert refused.returncode == 2
    assert "--login-failures: 'some' is not a number (0 or more)" in refused.stderr
