"""The ``ministry`` command fails the same way every time: one line on stderr that says
what to do, exit status 2, and a traceback only with ``--debug``; and it never takes a
mistyped ``--data`` for a new, empty store (ministry/cli/runtime.py says which commands
may make one).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import ALICE
from ministry.cli.failures import report
from support.inprocess import call_cli
from support.server import ministry_command, run_cli

# TEST-NET-3 (RFC 5737): documentation only, on no interface of any machine.
_NOT_HERE = "203.0.113.1"


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a failed command printed on stderr (and it printed nothing else)."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ministry")
    return lines[0]


def init(data: Path) -> Path:
    """A new store in ``data``."""
    result = call_cli("init", "--data", str(data))
    assert result.returncode == 0, result.stderr
    return data


# -- the server cannot start -------------------------------------------------------------


@pytest.mark.slow
def test_serve_on_a_port_in_use(tmp_path: Path) -> None:
    """Another process holds the port: one line naming it and the fix, no data directory."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--port", str(port), "--data", str(tmp_path / "data"))
    line = one_line(result)
    assert f"Cannot listen on 127.0.0.1:{port}: the port is in use" in line
    assert "--port" in line
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("options", "words"),
    [
        # An address no interface has cannot be bound: choose one with --host.
        (["--host", _NOT_HERE],
         [f"Cannot listen on {_NOT_HERE}:0: no network interface", "--host"]),
        # A data directory that cannot be made is named, with why.
        (["--data", "FILE/data"],
         ["Cannot create the data directory FILE/data", "a file is in the way"]),
    ],
    ids=["address", "data"],
)  # fmt: skip
def test_serve_cannot_start(tmp_path: Path, options: list[str], words: list[str]) -> None:
    """What stops the start is one line that says what to change."""
    file = tmp_path / "file"
    file.write_text("not a directory")
    options = [option.replace("FILE", str(file)) for option in options]
    line = one_line(run_cli("serve", "--port", "0", "--data", str(tmp_path / "data"), *options))
    for word in words:
        assert word.replace("FILE", str(file)) in line


@pytest.mark.slow
def test_debug_adds_the_traceback(tmp_path: Path) -> None:
    """``--debug`` (before or after the sub-command) prints the traceback, then the line."""
    (tmp_path / "file").write_text("not a directory")
    for where in (["--debug", "serve"], ["serve", "--debug"]):
        result = run_cli(*where, "--port", "0", "--data", str(tmp_path / "file" / "data"))
        assert result.returncode == 2
        assert result.stderr.startswith("Traceback (most recent call last):")
        last = result.stderr.splitlines()[-1]
        assert last.startswith("ministry: Cannot create the data directory")


def test_a_usage_mistake_is_one_line() -> None:
    """argparse's mistakes read like the others: what is wrong, and where the usage is."""
    line = one_line(call_cli("user", "add"))
    assert line == (
        "ministry user add: the following arguments are required: name "
        "(see ministry user add --help)"
    )
    assert "(see ministry --help)" in one_line(call_cli("frobnicate"))


def test_an_unexpected_failure_is_one_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    """A failure Ministry has no words for (a bug) still prints one line, asks for
    ``--debug``, and exits 3, apart from both bad input (2) and problems found (1)."""
    assert report(RuntimeError("boom"), debug=False) == 3
    err = capsys.readouterr().err
    assert err == (
        "ministry: unexpected failure (RuntimeError: boom); run the command again with "
        "--debug for the traceback, and report it.\n"
    )


# -- passwords without a terminal --------------------------------------------------------


@pytest.mark.slow  # a process without a controlling terminal, which this one may have
def test_user_add_without_a_terminal(tmp_path: Path) -> None:
    """No terminal and no --password-stdin: one line pointing at --password-stdin, before
    the store is touched (no user, no new store)."""
    result = subprocess.run(
        ministry_command("user", "add", "carol", "--data", str(tmp_path / "data")),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False,
        start_new_session=True,  # no controlling terminal to open either
    )  # fmt: skip
    line = one_line(result)
    assert line == (
        "ministry: No terminal to ask for the password on: give it on standard input "
        "with --password-stdin."
    )
    assert not (tmp_path / "data").exists()


# -- a data directory without a store -----------------------------------------------------

_READERS = [
    ("user", "list"),
    ("user", "update", "alice", "--admin"),
    ("token", "list", "alice"),
    ("group", "create", "team"),
    ("index", "list"),
    ("index", "create", "team/dev"),
    ("verify",),
    ("log",),
    ("yank", "pkg", "1.0"),
    ("project", "owners", "pkg"),
    ("publisher", "list"),
    ("export", "--static", "OUT"),
    ("backup", "OUT"),
    ("migrate", "--to-db", "sqlite:///OUT/m.sqlite3", "--to-storage", "file:///OUT/blobs"),
]


@pytest.mark.parametrize("command", _READERS, ids=" ".join)
def test_commands_refuse_a_data_directory_without_a_store(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """``--data typo``: one line naming the path and ``ministry init``; nothing created."""
    typo = tmp_path / "typo"
    words = [word.replace("OUT", str(tmp_path / "out")) for word in command]
    line = one_line(call_cli(*words, "--data", str(typo)))
    assert f"No Ministry store in {typo}: the directory does not exist" in line
    assert f"ministry init --data {typo}" in line
    assert not typo.exists()
    assert not (tmp_path / "out").exists()


def test_an_empty_directory_is_no_store(tmp_path: Path) -> None:
    """A directory that exists but holds no store is refused too, and left empty."""
    empty = tmp_path / "empty"
    empty.mkdir()
    line = one_line(call_cli("verify", "--data", str(empty)))
    assert f"No Ministry store in {empty}: the directory holds no ministry.sqlite3" in line
    assert list(empty.iterdir()) == []


def test_a_missing_sqlite_file_named_by_db(tmp_path: Path) -> None:
    """With --db sqlite:///PATH the store is that file, and the line names it."""
    database = tmp_path / "meta" / "m.sqlite3"
    result = call_cli("user", "list", "--db", f"sqlite:///{database}", "--data", str(tmp_path))
    assert f"No Ministry store at {database}" in one_line(result)


@pytest.mark.skipif(os.geteuid() == 0, reason="root opens every directory")
def test_a_store_closed_to_this_user_is_not_called_missing(tmp_path: Path) -> None:
    """Another user's store (the server's, mode 0700) is "permission denied", not "no
    store", so that nobody runs ``init`` over it."""
    data = init(tmp_path / "data")
    data.chmod(0o000)
    try:
        line = one_line(call_cli("user", "list", "--data", str(data)))
    finally:
        data.chmod(0o700)
    assert f"Cannot open {data / 'ministry.sqlite3'}: permission denied" in line


@pytest.mark.slow  # a Redis server of its own
def test_a_redis_prefix_that_holds_no_store(tmp_path: Path, redis_url: str) -> None:
    """A mistyped --db is refused as a mistyped --data is; ``init`` makes the store."""
    environment = {"MINISTRY_DB": f"{redis_url}?prefix=t{os.urandom(6).hex()}"}
    data = ["--data", str(tmp_path / "scratch")]
    line = one_line(call_cli("user", "list", *data, environment=environment))
    assert f"No Ministry store at {redis_url}" in line
    assert "nothing is stored under that URL and prefix" in line
    created = call_cli("init", *data, environment=environment)
    assert created.returncode == 0, created.stderr
    assert created.stderr.startswith(f"ministry: created a new store in {redis_url}")
    listed = call_cli("user", "list", *data, environment=environment)
    assert listed.returncode == 0, listed.stderr


def test_init_makes_a_store_once(tmp_path: Path) -> None:
    """``init`` makes the store with its default index; again, it leaves it as it is."""
    data = tmp_path / "data"
    first = call_cli("init", "--data", str(data))
    assert first.returncode == 0, first.stderr
    assert first.stderr == f"ministry: created a new store in {data}\n"
    again = call_cli("init", "--data", str(data))
    assert again.returncode == 0, again.stderr
    assert again.stderr == f"ministry: {data} already holds a store\n"
    listed = call_cli("index", "list", "--data", str(data))
    assert listed.returncode == 0, listed.stderr
    assert "main" in listed.stdout


def test_user_add_makes_the_first_store_and_says_so(tmp_path: Path) -> None:
    """The first administrator may be made before the first start: the store is made,
    and stderr says where, so a mistyped path shows at once."""
    data = tmp_path / "data"
    name, password = ALICE
    arguments = ("user", "add", name, "--admin", "--password-stdin", "--data", str(data))
    first = call_cli(*arguments, stdin=password + "\n")
    assert first.returncode == 0, first.stderr
    assert first.stderr == f"ministry: created a new store in {data}\n"
    assert call_cli("user", "add", "bob", "--password-stdin", "--data", str(data),
                    stdin="bob-password-1\n").stderr == ""  # fmt: skip


# -- backups go into empty directories or earlier backups of the same store -------------


def test_backup_refuses_a_directory_of_other_files(tmp_path: Path) -> None:
    """A non-empty directory that is not a backup is not written into."""
    data = init(tmp_path / "data")
    target = tmp_path / "home"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    for extra in ((), ("--force",)):
        line = one_line(call_cli("backup", str(target), *extra, "--data", str(data)))
        assert f"{target} holds files that are not part of a backup (notes.txt)" in line
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]


def test_backup_adds_to_a_backup_of_the_same_store_only(tmp_path: Path) -> None:
    """The nightly backup into one directory goes on working; another store's backup is
    replaced only with --force."""
    data, other = init(tmp_path / "data"), init(tmp_path / "other")
    target = tmp_path / "backup"
    for _ in range(2):
        result = call_cli("backup", str(target), "--data", str(data))
        assert result.returncode == 0, result.stderr
    manifest = json.loads((target / "backup.json").read_text())
    line = one_line(call_cli("backup", str(target), "--data", str(other)))
    assert "holds a backup of another store" in line
    assert "--force" in line
    assert json.loads((target / "backup.json").read_text()) == manifest
    forced = call_cli("backup", str(target), "--force", "--data", str(other))
    assert forced.returncode == 0, forced.stderr
    assert json.loads((target / "backup.json").read_text())["generation"] != manifest["generation"]


def test_backup_takes_up_an_interrupted_one(tmp_path: Path) -> None:
    """What an interrupted backup leaves (no manifest yet) is a backup to finish."""
    data = init(tmp_path / "data")
    target = tmp_path / "backup"
    (target / "blobs" / ".tmp").mkdir(parents=True)
    (target / "metadata.sqlite3.partial").write_bytes(b"half")
    result = call_cli("backup", str(target), "--data", str(data))
    assert result.returncode == 0, result.stderr
    assert (target / "backup.json").is_file()
    assert not (target / "metadata.sqlite3.partial").exists()


# -- smaller things ------------------------------------------------------------------------


def test_yank_help_says_the_version_is_needed() -> None:
    """yank and unyank need a version or a file; delete without one deletes the project."""
    for action in ("yank", "unyank"):
        text = " ".join(call_cli(action, "--help").stdout.split())
        assert "required unless --file" in text
    assert "the whole project" in " ".join(call_cli("delete", "--help").stdout.split())


def test_index_create_refuses_groups_that_do_not_exist(tmp_path: Path) -> None:
    """``--uploaders @nope`` is refused (nothing created) until the group exists."""
    data = ["--data", str(init(tmp_path / "data"))]
    line = one_line(call_cli("index", "create", "team/dev", "--uploaders", "alice,@qa", *data))
    assert "No group 'qa': create it first (ministry group create qa)" in line
    assert "team/dev" not in call_cli("index", "list", *data).stdout
    assert call_cli("group", "create", "qa", *data).returncode == 0
    created = call_cli("index", "create", "team/dev", "--uploaders", "@qa", "--readers", "@all",
                       *data)  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert one_line(call_cli("index", "update", "team/dev", "--admins", "@leads", *data))


@pytest.mark.slow  # pip is asked in a process of its own
def test_index_create_takes_upstream_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--upstream pip`` means what it means to ``serve``: the index pip here uses."""
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_INDEX_URL", "https://pypi.example.test/simple/")
    data = ["--data", str(init(tmp_path / "data"))]
    created = call_cli("index", "create", "mirror/pip", "--upstream", "pip", *data)
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["upstream"] == "https://pypi.example.test/simple/"
    assert json.loads(created.stdout)["kind"] == "proxy"
