"""The data on disk is its owner's alone: 0700 directories, 0600 files, looser ones closed.

docs/security.md, "Secrets at rest and on screen": the database holds password and
token hashes, the blobs the files of private indexes.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from conftest import ALICE, add_user
from support.distributions import make_wheel
from support.inprocess import call_cli
from support.server import MinistryServer
from support.uploads import post_upload

WARNING = "closed to other users"


def _open_to_others(root: Path) -> list[str]:
    """Every path under ``root`` (itself included) that group or others may use."""
    paths = [root, *root.rglob("*")]
    return [
        f"{path} {stat.S_IMODE(path.stat().st_mode):o}"
        for path in paths
        if stat.S_IMODE(path.stat().st_mode) & 0o077
    ]


def test_a_command_on_a_fresh_data_directory_creates_it_private(tmp_path: Path) -> None:
    """``user add`` makes the data directory 0700 and the database 0600."""
    data = tmp_path / "data"
    result = call_cli("user", "add", "carol", "--password-stdin", "--data", str(data),
                     stdin="carol-password-333\n")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "ministry.sqlite3").stat().st_mode) == 0o600
    assert _open_to_others(data) == []
    assert WARNING not in result.stderr


@pytest.mark.slow
def test_serve_keeps_everything_private_and_closes_what_was_open(tmp_path: Path) -> None:
    """Database, WAL, blobs, spools and backups are 0600 in 0700 directories; a restart
    after someone opened them up closes them again, with one warning line."""
    data = tmp_path / "data"
    server = MinistryServer(data).start()
    try:
        add_user(server, *ALICE)
        wheel = make_wheel(tmp_path, "modes-lib", "1.0")
        with server.client() as client:
            assert post_upload(client, wheel, auth=ALICE).status_code == 200
        assert list(data.rglob("*-wal")), list(data.rglob("*"))
        assert list((data / "blobs" / "sha256").rglob("*")), "the upload is stored"
        assert _open_to_others(data) == []
        backup = server.cli("backup", str(tmp_path / "backup"))
        assert backup.returncode == 0, backup.stderr
        assert _open_to_others(tmp_path / "backup") == []
    finally:
        server.stop()
    assert WARNING not in server.log()

    loosened = [data, data / "ministry.sqlite3", data / "blobs", data / "blobs" / "sha256"]
    for path in loosened:
        path.chmod(0o755 if path.is_dir() else 0o644)
    server.start()
    try:
        for path in loosened:
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
        warnings = [line for line in server.log().splitlines() if WARNING in line]
        assert len(warnings) == 1, warnings
        assert str(data / "ministry.sqlite3") in warnings[0]
    finally:
        server.stop()
