"""A server configured by its TOML file alone, ``ministry config show``, and bad files.

The servers here get no ``--port`` or ``--data``: the file says where the data is and
which port to take, as it does for a server run by systemd with ``--config`` only.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from conftest import ALICE, add_user
from support.distributions import make_wheel
from support.inprocess import InProcessServer, call_cli
from support.logins import form_login
from support.server import Server, ministry_command
from support.uploads import post_upload
from support.upstreams import with_userinfo

#: An upstream on loopback that nothing answers (the discard port): only its text matters.
UNREACHABLE = "http://127.0.0.1:9/simple/"

SITE = """\
# The site's settings.
[server]
port = 0
log_format = "json"

[storage]
data = "{data}"

[limits]
max_upload_size = "4K"

[auth]
session_lifetime = "2h"

[[index]]
name = "team/dev"
bases = ["team/prod", "main"]
private = true
readers = ["alice"]
uploaders = ["alice"]

[[index]]
name = "team/prod"
description = "Released builds"
"""


def _site(tmp_path: Path, text: str = SITE) -> tuple[Path, Path]:
    data = tmp_path / "data"
    config = tmp_path / "ministry.toml"
    config.write_text(text.replace("{data}", str(data)))
    return config, data


def _line(config: Path, start: str) -> int:
    """The number of the file's first line that starts with ``start``."""
    lines = config.read_text().splitlines()
    return next(n for n, line in enumerate(lines, start=1) if line.startswith(start))


def _changes(server: Server) -> list[dict[str, object]]:
    with server.client(auth=ALICE) as client:
        answer = client.get("/-/api/log", params={"limit": 1000})
    answer.raise_for_status()
    entries: list[dict[str, object]] = answer.json()["changes"]
    return entries


def test_the_file_alone_configures_the_server(tmp_path: Path) -> None:
    """Port, data directory, limits, log format, session length and indexes from the file."""
    config, data = _site(tmp_path)
    server = InProcessServer(data, config=config).start()
    try:
        assert (data / "ministry.sqlite3").exists()
        add_user(server, *ALICE)
        assert server.cli("user", "update", ALICE[0], "--admin").returncode == 0
        big = make_wheel(tmp_path, "roomy", "1.0", files={"roomy/blob.bin": os.urandom(9000)})
        with server.client() as client:
            assert client.get("/team/dev/simple/").status_code == 401
            refused = post_upload(client, big, auth=ALICE, url="/team/dev/")
            assert refused.status_code == 413
            assert form_login(client, *ALICE).status_code == 303
            cookie = next(c for c in client.cookies.jar if c.name == "ministry_session")
        assert cookie.expires is not None
        lifetime = cookie.expires - datetime.now(UTC).timestamp()
        assert 7000 < lifetime <= 7200
        with server.client(auth=ALICE) as client:
            assert client.get("/team/dev/simple/").status_code == 200
            index = client.get("/-/api/indexes/team/prod").json()
        assert index["description"] == "Released builds"
        made = [c for c in _changes(server) if c["actor"] == "config"]
        assert sorted(str(c["index"]) for c in made) == ["team/dev", "team/prod"]
        assert json.loads(server.log().splitlines()[-1])["route"] == "HealthHandler"
    finally:
        assert server.stop() == 0


def test_each_start_makes_the_store_agree_with_the_file_and_nothing_more(tmp_path: Path) -> None:
    """A second start with the same file writes nothing; a changed key is set; an entry
    taken out of the file leaves its index alone; a change made by hand to a key the file
    gives is put back."""
    config, data = _site(tmp_path)
    server = InProcessServer(data, config=config).start()
    add_user(server, *ALICE)
    assert server.cli("user", "update", ALICE[0], "--admin").returncode == 0
    made = len(_changes(server))
    assert server.cli("index", "update", "team/prod", "--description", "by hand").returncode == 0
    assert server.stop() == 0
    changes = _changes(server.start())
    assert [(c["actor"], c["index"]) for c in changes[made + 1 :]] == [("config", "team/prod")]
    assert server.stop() == 0
    again = _changes(server.start())
    assert server.stop() == 0
    assert len(again) == len(changes)
    config.write_text(
        SITE.replace("{data}", str(data)).split("[[index]]")[0]
        + '[[index]]\nname = "team/dev"\nprivate = false\n'
    )
    changed = InProcessServer(data, config=config).start()
    try:
        with changed.client() as client:
            assert client.get("/team/dev/simple/").status_code == 200
            assert client.get("/team/prod/simple/").status_code == 200
        with changed.client(auth=ALICE) as client:
            dev = client.get("/-/api/indexes/team/dev").json()
        assert dev["bases"] == ["team/prod", "main"]  # not in the file now: kept
    finally:
        assert changed.stop() == 0


def test_commands_find_the_stores_through_the_file(tmp_path: Path) -> None:
    """An administration command given only --config works on the server's stores."""
    config, data = _site(tmp_path)
    added = call_cli("user", "add", "carol", "--password-stdin", "--config", str(config),
                    stdin="carol-password-3\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    server = InProcessServer(data, config=config).start()
    try:
        with server.client(auth=("carol", "carol-password-3")) as client:
            assert client.get("/-/api/whoami").json()["user"] == "carol"
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_a_mistake_in_the_file_stops_the_start_before_anything_happens(tmp_path: Path) -> None:
    """Exit status 2, the line and the key named, no port taken, no data directory made."""
    config, data = _site(tmp_path, SITE.replace('max_upload_size = "4K"', 'max_uplaod_size = "4K"'))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    text = config.read_text().replace("port = 0", f"port = {port}")
    config.write_text(text)
    started = subprocess.run(
        ministry_command("serve", "--config", str(config)),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert started.returncode == 2
    assert started.stderr.strip() == (
        f"ministry: {config}, line {_line(config, 'max_uplaod')}: unknown key 'max_uplaod_size' "
        "in [limits]; its keys are "
        "max_upload_size, max_cache_size, max_connections, client_timeout."
    )
    assert not data.exists()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # free: the server never took it


def test_an_index_entry_the_store_refuses_stops_the_start(tmp_path: Path) -> None:
    """A base that is no index: the entry's line, and the reason."""
    config, _ = _site(tmp_path, SITE.replace('"team/prod", "main"', '"team/qa"'))
    started = call_cli("serve", "--config", str(config))
    assert started.returncode == 2
    assert f"{config}, line {_line(config, '[[index]]')}: [[index]] 'team/dev':" in started.stderr
    assert "cannot inherit from 'team/qa': no such index" in started.stderr


def test_config_show_masks_secrets_and_names_sources(tmp_path: Path) -> None:
    """Each value with where it came from; no password in the output."""
    config, _ = _site(tmp_path)
    config.write_text(
        config.read_text()
        + f'\n[upstream]\nurl = "{with_userinfo(UNREACHABLE, "mirror", "s3cret-up")}"\n'
        + '[[mirror]]\nname = "ci"\nprojects = ["uv"]\n'
    )
    shown = call_cli(
        "config", "show", "--config", str(config), "--processes", "2",
        environment={"MINISTRY_DB": "redis://:s3cret-db@127.0.0.1:9/0"},
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "s3cret" not in shown.stdout
    lines = shown.stdout.splitlines()
    assert 'processes = "2"  # --processes' in lines
    assert 'db = "redis://:***@127.0.0.1:9/0"  # MINISTRY_DB' in lines
    assert f"max_upload_size = 4096  # {config}, line {_line(config, 'max_upload')}" in lines
    masked = f'url = ["{with_userinfo(UNREACHABLE, "mirror", "***")}"]'
    assert f"{masked}  # {config}, line {_line(config, 'url =')}" in lines
    assert 'host = "127.0.0.1"  # default' in lines
    document = tomllib.loads(shown.stdout)
    assert [i["name"] for i in document["index"]] == ["team/dev", "team/prod"]
    assert document["mirror"] == [{"name": "ci", "projects": ["uv"]}]


# One secret per kind of URL a setting may hold; each is "s3cret" with a tag.
SECRET_URLS = [
    ("MINISTRY_DB", "redis://:s3cret-a@127.0.0.1:9/0"),
    ("MINISTRY_DB", "redis://ministry:s3cret-b@127.0.0.1:9/0"),
    ("MINISTRY_DB", "rediss://ministry:s3cret-c@127.0.0.1:9/0"),
    ("MINISTRY_DB", "unix:///run/redis.sock?db=0&password=s3cret-d"),
    ("MINISTRY_STORAGE", "s3://AKIDs3cret-e:s3cret-f@bucket/prefix"),
    ("MINISTRY_STORAGE", "s3://bucket/prefix?access_key=s3cret-g&secret_key=s3cret-h"),
    ("MINISTRY_UPSTREAM", "https://s3cret-i@127.0.0.1:9/simple/"),
    ("MINISTRY_UPSTREAM", "https://pkgs.example.test/simple/?token=s3cret-j"),
]


def test_config_show_masks_every_kind_of_secret_url(tmp_path: Path) -> None:
    """Redis passwords (in the user part or the query), S3 keys, upstream tokens: none shows.

    docs/security.md, "Secrets at rest and on screen".
    """
    config, _ = _site(tmp_path)
    config.write_text(
        config.read_text()
        + '\n[[index]]\nname = "team/proxy"\nupstream = "https://u:s3cret-k@pkgs.example.test/simple/"\n'
    )
    by_variable: dict[str, list[str]] = {}
    for variable, url in SECRET_URLS:
        by_variable.setdefault(variable, []).append(url)
    for round_ in range(max(len(urls) for urls in by_variable.values())):
        environment = {v: urls[round_ % len(urls)] for v, urls in by_variable.items()}
        shown = call_cli("config", "show", "--config", str(config), environment=environment)
        assert shown.returncode == 0, shown.stderr
        assert "s3cret" not in shown.stdout + shown.stderr, environment
        for variable in environment:
            assert f"  # {variable}" in shown.stdout
        assert "***" in shown.stdout


def test_config_show_prints_a_file_that_configures_the_same_server(tmp_path: Path) -> None:
    """What config show prints, used as the config file, shows the same settings again."""
    config, _ = _site(tmp_path)
    first = call_cli("config", "show", "--config", str(config), "--host", "::1")
    assert first.returncode == 0, first.stderr
    copy = tmp_path / "shown.toml"
    copy.write_text(first.stdout)
    second = call_cli("config", "show", "--config", str(copy))
    assert second.returncode == 0, second.stderr

    def values(text: str) -> list[str]:
        return [line.split("  # ")[0] for line in text.splitlines() if not line.startswith("#")]

    assert values(second.stdout) == values(first.stdout)
    assert 'host = "::1"' in values(second.stdout)


def test_config_show_checks_mirror_jobs_too(tmp_path: Path) -> None:
    """A file that shows without an error starts without one: jobs are checked as well."""
    config, _ = _site(tmp_path, SITE + '\n[[mirror]]\nname = "ci"\nprojects = ["uv"]\nevery = 5\n')
    shown = call_cli("config", "show", "--config", str(config))
    assert shown.returncode == 2
    line = _line(config, "every")
    assert f"{config}, line {line}: [[mirror]] 'ci': 'every' must be a str" in shown.stderr


def test_a_flag_overrides_the_file_for_one_run(tmp_path: Path) -> None:
    """--max-upload-size on the command line beats the file's 4K."""
    config, data = _site(tmp_path)
    server = InProcessServer(data, config=config, arguments=["--max-upload-size", "1M"]).start()
    try:
        add_user(server, *ALICE)
        big = make_wheel(tmp_path, "roomy", "1.0", files={"roomy/blob.bin": os.urandom(9000)})
        with server.client() as client:
            assert post_upload(client, big, auth=ALICE).status_code == 200
            assert httpx.codes.is_success(client.get("/simple/roomy/").status_code)
    finally:
        assert server.stop() == 0
