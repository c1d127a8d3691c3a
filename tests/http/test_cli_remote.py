"""The admin commands with ``--url``: the same work and the same output as on the server's
machine, through the management API (docs/operations.md, "Administering a server from
another machine"; docs/security.md, "Remote administration")."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from support.distributions import make_wheel
from support.inprocess import InProcessServer, call_cli

PROJECT = "acme-remote"
ALICE = "alice-password-1"
BOB = "bob-password-22"


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A store with an admin (alice), a user (bob), a token, a group, an index and a yanked
    release, served in-process."""
    data = tmp_path_factory.mktemp("remote") / "data"
    wheels = tmp_path_factory.mktemp("wheels")
    make_wheel(wheels, PROJECT, "1.0")
    make_wheel(wheels, PROJECT, "2.0")

    def run(*arguments: str, stdin: str | None = None) -> str:
        result = call_cli(*arguments, "--data", str(data), stdin=stdin)
        assert result.returncode == 0, result.stderr
        return result.stdout

    run("init")
    run("user", "add", "alice", "--admin", "--password-stdin", stdin=ALICE + "\n")
    run("user", "add", "bob", "--password-stdin", stdin=BOB + "\n")
    secret = run("token", "create", "alice", "--description", "CI").strip()
    run("group", "create", "team")
    run("group", "add", "team", "alice", "bob")
    run("index", "create", "team/dev", "--bases", "main", "--uploaders", "@team")
    run("index", "create", "prod")
    run("import", str(wheels))
    run("yank", PROJECT, "1.0", "--reason", "broken")
    server = InProcessServer(data).start()
    yield {"data": data, "server": server, "secret": secret}
    server.stop()


def local(rig: dict[str, Any], *arguments: str) -> subprocess.CompletedProcess[str]:
    """The command on the server's machine."""
    return call_cli(*arguments, "--data", str(rig["data"]))


def remote(
    rig: dict[str, Any], *arguments: str, stdin: str | None = None, **environment: str
) -> subprocess.CompletedProcess[str]:
    """The command from another machine: ``MINISTRY_URL`` and alice's password, unless
    ``environment`` says otherwise; never a data directory."""
    given = {
        "MINISTRY_URL": rig["server"].url,
        "MINISTRY_USER": "alice",
        "MINISTRY_PASSWORD": ALICE,
        "MINISTRY_DATA": "/nonexistent/remote-admin",  # a local store would be refused
        **environment,
    }
    result = call_cli(*arguments, stdin=stdin, environment=given)
    for secret in (ALICE, BOB, rig["secret"]):
        assert secret not in result.stdout + result.stderr
    return result


def failed(result: subprocess.CompletedProcess[str]) -> str:
    """The one line of a failure with exit status 2."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "command",
    [
        ["user", "list"],
        ["user", "list", "--json"],
        ["token", "list", "alice"],
        ["token", "list", "alice", "--json"],
        ["group", "list"],
        ["group", "list", "--json"],
        ["index", "list"],
        ["index", "list", "--json"],
        ["index", "show", "team/dev"],
        ["log"],
        ["log", "--json", "--limit", "3"],
        ["log", "--index", "team/dev"],
    ],
    ids=" ".join,
)
def test_lists_match_the_local_output(rig: dict[str, Any], command: list[str]) -> None:
    here = local(rig, *command)
    assert here.returncode == 0, here.stderr
    there = remote(rig, *command)
    assert there.returncode == 0, there.stderr
    assert there.stdout == here.stdout
    assert there.stderr == ""


def test_url_flag_and_netrc(rig: dict[str, Any], tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login alice password {ALICE}\n")
    netrc.chmod(0o600)
    there = remote(
        rig, "user", "list", "--json", "--url", rig["server"].url,
        MINISTRY_URL="", MINISTRY_USER="", MINISTRY_PASSWORD="", NETRC=str(netrc),
    )  # fmt: skip
    assert there.returncode == 0, there.stderr
    assert there.stdout == local(rig, "user", "list", "--json").stdout


def test_users_and_tokens(rig: dict[str, Any]) -> None:
    added = remote(rig, "user", "add", "carol", "--password-stdin", stdin="carol-password-3\n")
    assert added.stdout == "User 'carol' created.\n", added.stderr
    assert remote(rig, "user", "disable", "carol").stdout == "User 'carol' updated (disabled).\n"
    assert '"disabled": true' in local(rig, "user", "list", "--json").stdout
    assert remote(rig, "user", "enable", "carol").stdout == "User 'carol' updated (user).\n"
    made = remote(rig, "token", "create", "carol", "--description", "laptop")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("pypi-") or len(secret) > 20
    listed = local(rig, "token", "list", "carol", "--json").stdout
    token_id = listed.split('"id": "')[1].split('"')[0]
    revoked = remote(rig, "token", "revoke", "carol", token_id)
    assert revoked.stdout == f"Token {token_id} of 'carol' revoked.\n"
    assert '"revoked": true' in local(rig, "token", "list", "carol", "--json").stdout


def test_groups_indexes_and_files(rig: dict[str, Any]) -> None:
    assert remote(rig, "group", "create", "ops").stdout == "Group 'ops': create done.\n"
    assert remote(rig, "group", "add", "ops", "bob").returncode == 0
    assert '"members": [\n      "bob"\n    ]' in local(rig, "group", "list", "--json").stdout
    assert remote(rig, "group", "delete", "ops").returncode == 0
    created = remote(rig, "index", "create", "scratch", "--allow-delete")
    assert created.returncode == 0, created.stderr
    assert created.stdout == local(rig, "index", "show", "scratch").stdout
    updated = remote(rig, "index", "update", "scratch", "--description", "for tests")
    assert '"description": "for tests"' in updated.stdout
    assert remote(rig, "index", "delete", "scratch").stdout == "Index 'scratch' deleted.\n"
    assert local(rig, "index", "show", "scratch").returncode == 2
    yanked = remote(rig, "yank", PROJECT, "2.0", "--reason", "oops")
    assert yanked.stdout == f"yank: {PROJECT.replace('-', '_')}-2.0-py3-none-any.whl\n"
    unyanked = remote(rig, "unyank", PROJECT, "2.0")
    assert unyanked.stdout.startswith("unyank: ")
    promoted = remote(rig, "promote", PROJECT, "2.0", "--from", "main", "--to", "prod")
    assert promoted.stdout.startswith("promoted: "), promoted.stderr
    newest = local(rig, "log", "--limit", "1", "--json").stdout
    assert '"actor": "alice"' in newest, newest


def test_server_refusals_are_one_line(rig: dict[str, Any]) -> None:
    url = rig["server"].url
    line = failed(remote(rig, "user", "update", "nobody", "--disabled"))
    assert line == f"ministry: The server at {url} answered 404: No user 'nobody'."
    line = failed(remote(rig, "log", "--index", "nosuch"))
    assert line.startswith(f"ministry: The server at {url} answered 404: ")
    line = failed(remote(rig, "user", "list", MINISTRY_USER="bob", MINISTRY_PASSWORD=BOB))
    refused = "answered 403: Only server administrators may list users."
    assert line == f"ministry: The server at {url} {refused}"
    line = failed(remote(rig, "user", "list", MINISTRY_PASSWORD="wrong-password"))
    assert "answered 401" in line


def test_a_token_cannot_administer(rig: dict[str, Any]) -> None:
    """Tokens only read and upload: a leaked CI token never manages the server."""
    line = failed(remote(rig, "user", "list", MINISTRY_USER="", MINISTRY_TOKEN=rig["secret"]))
    assert "answered 403: API tokens only read and upload; list users needs your password" in line


def test_no_server_there(rig: dict[str, Any]) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    line = failed(remote(rig, "user", "list", MINISTRY_URL=f"http://127.0.0.1:{port}"))
    assert line.startswith(f"ministry: Cannot reach the server at http://127.0.0.1:{port}: ")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://pypi.example", "over plain http would send the password unencrypted"),
        ("https://alice:secret@pypi.example", "Put no credentials in --url"),
        ("ftp://pypi.example", "needs an http:// or https:// address"),
    ],
)
def test_urls_that_would_leak_are_refused(rig: dict[str, Any], url: str, words: str) -> None:
    """Refused before any connection: nothing listens at pypi.example."""
    assert words in failed(remote(rig, "user", "list", MINISTRY_URL=url))


def test_no_credentials(rig: dict[str, Any], tmp_path: Path) -> None:
    line = failed(remote(rig, "user", "list", MINISTRY_USER="", NETRC=str(tmp_path / "missing")))
    assert "No credentials for 127.0.0.1" in line


def test_disable_locally(rig: dict[str, Any]) -> None:
    assert local(rig, "user", "disable", "bob").stdout == "User 'bob' updated (disabled).\n"
    assert local(rig, "user", "enable", "bob").stdout == "User 'bob' updated (user).\n"


def test_removing_users(rig: dict[str, Any]) -> None:
    for name in ("dave", "erin"):
        added = remote(rig, "user", "add", name, "--password-stdin", stdin=f"{name}-password-4\n")
        assert added.returncode == 0, added.stderr
    made = remote(rig, "token", "create", "erin")
    assert made.returncode == 0, made.stderr
    assert remote(rig, "index", "create", "grants", "--readers", "dave").returncode == 0
    url = rig["server"].url
    line = failed(remote(rig, "user", "remove", "dave"))
    assert line == (
        f"ministry: The server at {url} answered 409: User 'dave' is still named in the "
        "readers of index grants: take those rights away first, or disable the user instead."
    )
    line = failed(remote(rig, "user", "remove", "alice"))
    assert line.endswith("answered 400: You cannot remove yourself; another administrator can.")
    line = failed(remote(rig, "user", "remove", "erin", MINISTRY_USER="bob", MINISTRY_PASSWORD=BOB))
    assert line.endswith("answered 403: Only server administrators may remove users.")
    removed = remote(rig, "user", "remove", "erin")
    assert removed.stdout == "User 'erin' removed, with their tokens and group memberships.\n"
    assert '"name": "erin"' not in local(rig, "user", "list", "--json").stdout
    line = failed(local(rig, "token", "list", "erin"))
    assert line == "ministry: No user 'erin'."
    assert remote(rig, "index", "update", "grants", "--readers", "").returncode == 0
    here = local(rig, "user", "remove", "dave")
    assert here.stdout == "User 'dave' removed, with their tokens and group memberships.\n"


class _NotMinistry(BaseHTTPRequestHandler):
    """A web server that is not Ministry: a redirect under /moved, a page elsewhere."""

    def do_GET(self) -> None:
        if self.path.startswith("/moved"):
            self.send_response(301)
            self.send_header("Location", "https://pypi.example/")
            self.end_headers()
            return
        body = b"<html>a wiki</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


def test_a_server_that_is_not_ministry(rig: dict[str, Any]) -> None:
    """A wrong address is one line; a redirect is not followed with the password."""
    other = ThreadingHTTPServer(("127.0.0.1", 0), _NotMinistry)
    thread = threading.Thread(target=other.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{other.server_address[1]}"
        line = failed(remote(rig, "user", "list", MINISTRY_URL=base))
        assert line.endswith("did not answer as Ministry's API does: is it the address of a "
                             "Ministry server?")  # fmt: skip
        line = failed(remote(rig, "user", "list", MINISTRY_URL=base + "/moved"))
        assert line.endswith("answered 301, a redirect to https://pypi.example/: give that "
                             "address as --url.")  # fmt: skip
    finally:
        other.shutdown()
        other.server_close()


def test_publishers(rig: dict[str, Any]) -> None:
    added = remote(
        rig, "publisher", "add", PROJECT, "--github", "acme/remote", "--workflow", "release.yml"
    )
    assert added.returncode == 0, added.stderr
    publisher_id = added.stdout.split()[0]
    assert added.stdout.startswith(f"{publisher_id}  main/{PROJECT}  github:acme/remote ")
    for listing in (["publisher", "list"], ["publisher", "list", PROJECT, "--json"]):
        here, there = local(rig, *listing), remote(rig, *listing)
        assert there.returncode == 0, there.stderr
        assert publisher_id in there.stdout
        assert there.stdout == here.stdout
    line = failed(
        remote(rig, "publisher", "add", "acme-new", "--github", "acme/new", "--workflow",
               "release.yml", "--owner", "bob")
    )  # fmt: skip
    assert line.startswith("ministry: --owner works only on the server's machine")
    removed = remote(rig, "publisher", "remove", publisher_id)
    assert removed.stdout == "removed " + added.stdout
    assert publisher_id not in local(rig, "publisher", "list").stdout
    line = failed(remote(rig, "publisher", "remove", publisher_id))
    assert line.endswith(f"answered 404: No trusted publisher {publisher_id!r}.")


def test_removal_from_another_site_is_refused(rig: dict[str, Any]) -> None:
    """A page of another site cannot make an administrator's browser remove a user."""
    added = remote(rig, "user", "add", "frank", "--password-stdin", stdin="frank-password-5\n")
    assert added.returncode == 0, added.stderr
    with rig["server"].client() as client:
        for where in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            answer = client.delete("/-/api/users/frank", headers=where, auth=("alice", ALICE))
            assert answer.status_code == 403
            answer = client.delete("/-/api/publishers/0123456789ab", headers=where,
                                   auth=("alice", ALICE))  # fmt: skip
            assert answer.status_code == 403
    assert '"name": "frank"' in local(rig, "user", "list", "--json").stdout


def test_project_roles(rig: dict[str, Any]) -> None:
    added = remote(rig, "project", "add-maintainer", PROJECT, "@team")
    assert added.returncode == 0, added.stderr
    assert "maintainers: @team" in added.stdout
    for listing in (["project", "owners", PROJECT], ["project", "owners", PROJECT, "--json"]):
        here, there = local(rig, *listing), remote(rig, *listing)
        assert there.returncode == 0, there.stderr
        assert there.stdout == here.stdout
    removed = remote(rig, "project", "remove-maintainer", PROJECT, "@team")
    assert removed.stdout.endswith("maintainers: none\n")
    line = failed(remote(rig, "project", "add-owner", PROJECT, "bob", MINISTRY_USER="bob",
                         MINISTRY_PASSWORD=BOB))  # fmt: skip
    assert line.startswith(f"ministry: The server at {rig['server'].url} answered 403: ")
