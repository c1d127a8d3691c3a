"""The ``ministry`` command: serve (defaults, environment, shutdown), users, tokens, import."""

from __future__ import annotations

import base64
import os
import pty
import random
import select
import signal
import socket
import sqlite3
import subprocess
import tomllib
from pathlib import Path

import pytest

from conftest import ALICE
from support.distributions import make_sdist, make_wheel
from support.inprocess import InProcessServer, call_cli
from support.multipart import FileField, encode
from support.server import MinistryServer, Server, ministry_command, run_cli, wait_for
from support.uploads import form_fields, post_upload


@pytest.mark.slow
def test_module_and_help() -> None:
    """``python -m ministry`` is the command, and every sub-command documents itself."""
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("serve", "user", "token", "import"):
        assert command in result.stdout
    serve_help = run_cli("serve", "--help").stdout
    for flag in ("--host", "--port", "--data", "MINISTRY_HOST", "MINISTRY_PORT", "MINISTRY_DATA"):
        assert flag in serve_help


@pytest.mark.slow
def test_version() -> None:
    """``ministry --version`` prints the version of the project, as pyproject.toml states it."""
    with (Path(__file__).resolve().parents[2] / "pyproject.toml").open("rb") as file:
        stated = tomllib.load(file)["project"]["version"]
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"ministry {stated}\n"


@pytest.mark.slow
def test_serve_from_environment_creates_the_data_directory(tmp_path: Path) -> None:
    """``MINISTRY_*`` variables configure the server; the data directory appears on first start."""
    data = tmp_path / "from-env"
    server = MinistryServer(
        tmp_path / "unused", environment={"MINISTRY_DATA": str(data), "MINISTRY_HOST": "127.0.0.1"}
    )
    # The flags the helper passes win over the environment, so start the process by hand.
    with server.log_path.open("wb") as log:
        process = subprocess.Popen(
            ministry_command("serve"),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MINISTRY_DATA": str(data), "MINISTRY_PORT": "0"},
        )
    try:
        wait_for(lambda: "serving http://127.0.0.1:" in server.log(), what="the server to start")
        assert (data / "ministry.sqlite3").is_file()
        assert f"(data: {data.resolve()}, a new store)" in server.log()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0


@pytest.mark.slow
def test_default_data_directory_is_relative_to_the_working_directory(tmp_path: Path) -> None:
    """With no flag and no variable, data goes to ./ministry-data."""
    log_path = tmp_path / "log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ministry_command("serve", "--port", "0"),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("MINISTRY_")},
        )
    try:
        wait_for(lambda: "serving" in log_path.read_text(), what="the server to start")
        assert (tmp_path / "ministry-data" / "ministry.sqlite3").is_file()
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0


def test_bad_settings_name_the_setting(tmp_path: Path) -> None:
    """A bad value stops the start with a message naming where it came from."""
    result = call_cli("serve", "--data", str(tmp_path), environment={"MINISTRY_PORT": "eighty"})
    assert result.returncode == 2
    assert "MINISTRY_PORT" in result.stderr


def test_one_log_line_per_request(fresh_server: Server) -> None:
    """Every request is one access-log line with method, path and status."""
    with fresh_server.client() as client:
        client.get("/simple/")
        client.get("/simple/nothing-here/")
        client.head("/packages/")
    log = fresh_server.log()
    assert fresh_server.served("/simple/") == 1
    assert fresh_server.served("/simple/nothing-here/", 404) == 1
    assert log.count('"HEAD /packages/ HTTP/1.1" 200') == 1


def test_sigterm_finishes_the_upload_in_flight(
    fresh_process: MinistryServer, tmp_path: Path
) -> None:
    """Clean shutdown: no new connections, but a request already under way completes."""
    noise = random.Random(1).randbytes(100_000)
    wheel = make_wheel(tmp_path, "inflight", "1.0", files={"inflight/x.bin": noise})
    body, content_type = encode(
        form_fields(wheel), [FileField("content", wheel.name, wheel.read_bytes())]
    )
    credentials = base64.b64encode(f"{ALICE[0]}:{ALICE[1]}".encode()).decode()
    head = (
        f"POST /legacy/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nAuthorization: Basic {credentials}\r\n\r\n"
    ).encode()
    spools = fresh_process.data / "tmp"
    with socket.create_connection(("127.0.0.1", fresh_process.port), timeout=30) as connection:
        connection.sendall(head + body[: len(body) // 2])
        wait_for(lambda: any(spools.iterdir()), what="the upload to be under way")
        assert fresh_process.process is not None
        fresh_process.process.send_signal(signal.SIGTERM)
        wait_for(lambda: "stopping" in fresh_process.log(), what="the server to begin stopping")
        connection.sendall(body[len(body) // 2 :])
        answer = connection.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert fresh_process.stop() == 0
    assert "stopped" in fresh_process.log()
    restarted = InProcessServer(fresh_process.data).start()
    try:
        with restarted.client() as client:
            assert client.get(f"/packages/inflight/{wheel.name}").content == wheel.read_bytes()
    finally:
        restarted.stop()


@pytest.mark.slow
def test_user_add_prompts_for_the_password(tmp_path: Path) -> None:
    """Without --password-stdin, ``user add`` asks twice on the terminal and never echoes."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        ministry_command("user", "add", "carol", "--data", str(tmp_path)),
        stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True,
    )  # fmt: skip
    os.close(terminal)
    seen = b""
    for _ in range(2):
        while b"assword: " not in seen:
            ready, _, _ = select.select([controller], [], [], 30)
            assert ready, seen
            seen += os.read(controller, 1024)
        seen = seen.replace(b"assword: ", b"", 1)
        os.write(controller, b"carol-password-3\n")
    assert process.wait(timeout=30) == 0
    os.close(controller)
    listing = run_cli("user", "list", "--data", str(tmp_path))
    assert "carol" in listing.stdout


def test_user_add_refuses_bad_input(tmp_path: Path) -> None:
    """Short passwords, odd names and duplicates are refused with a message, exit status 2."""
    data = ["--data", str(tmp_path)]
    short = call_cli("user", "add", "dave", "--password-stdin", *data, stdin="short\n")
    odd = call_cli("user", "add", "../dave", "--password-stdin", *data, stdin="long-enough-1\n")
    first = call_cli("user", "add", "dave", "--password-stdin", *data, stdin="long-enough-1\n")
    again = call_cli("user", "add", "dave", "--password-stdin", *data, stdin="long-enough-1\n")
    assert (short.returncode, odd.returncode, first.returncode, again.returncode) == (2, 2, 0, 2)
    assert "at least 8 characters" in short.stderr
    assert "Invalid name" in odd.stderr
    assert "exists already" in again.stderr


def test_only_hashes_are_stored(fresh_server: Server, tmp_path: Path) -> None:
    """Tokens are printed once and stored as hashes; passwords as Argon2id; both work."""
    created = fresh_server.cli("token", "create", "alice")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("mop_")
    assert "shown only once" in created.stderr
    store = b"".join(
        p.read_bytes() for p in fresh_server.data.iterdir() if p.name.startswith("ministry.sqlite3")
    )
    # The secret is everything after "mop_<id>_" (it may itself contain "_").
    token_id, secret = token.removeprefix("mop_").split("_", 1)
    assert token.encode() not in store
    assert secret.encode() not in store
    assert ALICE[1].encode() not in store
    with sqlite3.connect(fresh_server.data / "ministry.sqlite3") as database:
        (password_hash,) = database.execute("SELECT password_hash FROM users").fetchone()
    assert password_hash.startswith("$argon2id$")
    wheel = make_wheel(tmp_path, "hashed", "1.0")
    with fresh_server.client() as client:
        assert post_upload(client, wheel, auth=("__token__", token)).status_code == 200
        assert post_upload(client, wheel, auth=ALICE).status_code == 200
    listed = fresh_server.cli("token", "list", "alice")
    assert token_id in listed.stdout
    assert secret not in listed.stdout
    assert listed.stdout.count("never") == 1  # it never expires, but it was used above
    unknown = fresh_server.cli("token", "create", "nobody")
    assert unknown.returncode == 2
    assert "No user 'nobody'" in unknown.stderr


def test_import_a_directory(fresh_server: Server, tmp_path: Path) -> None:
    """``ministry import`` checks files like uploads, skips what is present, lists refusals."""
    source = tmp_path / "store"
    (source / "nested").mkdir(parents=True)
    good_wheel = make_wheel(source, "imported", "1.0")
    good_sdist = make_sdist(source / "nested", "imported", "1.0")
    corrupt = source / "broken-1.0-py3-none-any.whl"
    corrupt.write_bytes(b"not a zip")
    (source / "README.txt").write_text("not a distribution")
    first = fresh_server.cli("import", str(source))
    assert first.returncode == 1, first.stderr
    assert "2 published" in first.stderr
    assert "Invalid distribution file" in first.stderr
    assert "README.txt" in first.stderr
    with fresh_server.client() as client:
        for path in (good_wheel, good_sdist):
            assert client.get(f"/packages/imported/{path.name}").content == path.read_bytes()
        assert client.get("/packages/broken/").status_code == 404
    refused = [line for line in first.stderr.splitlines() if line.startswith("refused ")]
    assert len(refused) == 1 and "README" not in refused[0], first.stderr
    corrupt.unlink()
    again = fresh_server.cli("import", str(source))
    assert again.returncode == 0, again.stderr  # a README is skipped, not refused
    assert "2 already present" in again.stderr
    assert "1 other files skipped (not a wheel or .tar.gz sdist: README.txt)" in again.stderr
    missing = fresh_server.cli("import", str(tmp_path / "nowhere"))
    assert missing.returncode == 2
