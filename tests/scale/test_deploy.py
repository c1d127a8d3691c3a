"""The files of deploy/: what docs/deploy.md shows, and each one checked by the tool that reads it.

The systemd unit goes through ``systemd-analyze verify``, the sample config file
through ``ministry config show``, and the container image's health check is run
against a real server. The image itself is not built here (that needs a
container engine and the network).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ministry.cli.serve import _GRACE_SECONDS
from support.backends import free_ports, missing_tool
from support.clients import tool
from support.server import MinistryServer

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
DOC = ROOT / "docs" / "deploy.md"
UNIT = DEPLOY / "ministry.service"
CONFIG = DEPLOY / "ministry.toml"
CONTAINERFILE = DEPLOY / "Containerfile"


def shown(language: str) -> list[str]:
    """The contents of docs/deploy.md's fenced blocks in ``language``."""
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.DOTALL)


def unit_settings() -> dict[str, str]:
    """The ``[Service]`` settings of the unit (the last value of each)."""
    service = UNIT.read_text().split("[Service]\n", 1)[1].split("\n[", 1)[0]
    pairs = (line.split("=", 1) for line in service.splitlines() if re.match(r"[A-Z]\w*=", line))
    return dict(pairs)


def no_ministry_variables() -> dict[str, str]:
    """This environment without MINISTRY_* variables, which would win over the file."""
    return {key: value for key, value in os.environ.items() if not key.startswith("MINISTRY_")}


@pytest.mark.parametrize(
    ("path", "language"), [(UNIT, "ini"), (CONFIG, "toml"), (CONTAINERFILE, "dockerfile")]
)
def test_the_doc_shows_the_files_of_deploy_as_they_are(path: Path, language: str) -> None:
    assert path.read_text() in shown(language), f"docs/deploy.md differs from {path}"


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    """``systemd-analyze verify`` names the unit's file in every complaint it has."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        missing_tool("systemd-analyze is not installed (Debian: apt-get install systemd)")
    # verify checks that ExecStart is an executable file; /opt/ministry is not here.
    text = UNIT.read_text().replace("/opt/ministry/bin/ministry", tool("ministry"))
    unit = tmp_path / "ministry.service"
    unit.write_text(text)
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    complaints = [line for line in output.splitlines() if unit.name in line]
    assert result.returncode == 0 and not complaints, output


def test_the_unit_runs_the_server_as_the_doc_says() -> None:
    settings = unit_settings()
    assert settings["ExecStart"] == (
        "/opt/ministry/bin/ministry serve --config /etc/ministry/ministry.toml"
    )
    assert settings["StateDirectory"] == "ministry"
    assert settings["LimitNOFILE"] == "65536"
    # A stop lets requests finish for the grace time; systemd must wait longer than that.
    stop = re.fullmatch(r"(\d+)s", settings["TimeoutStopSec"])
    assert stop is not None and int(stop[1]) > _GRACE_SECONDS
    assert settings["CapabilityBoundingSet"] == ""
    assert settings["SystemCallFilter"] == "@system-service"


def test_ministry_accepts_the_sample_config() -> None:
    result = subprocess.run(
        [tool("ministry"), "config", "show", "--config", str(CONFIG)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=no_ministry_variables(),
    )
    assert result.returncode == 0, result.stderr
    # The data directory is the unit's StateDirectory, and nginx on this machine is trusted.
    assert re.search(r'^data = "/var/lib/ministry"', result.stdout, re.MULTILINE)
    assert re.search(r'^trusted_proxies = \["127\.0\.0\.1/32"\]', result.stdout, re.MULTILINE)


def health_check() -> list[str]:
    """The image's HEALTHCHECK command, with this interpreter for ``python``."""
    text = CONTAINERFILE.read_text()
    match = re.search(r"^HEALTHCHECK [^\n]*\\\n\s*CMD (\[[^\n]*\])$", text, re.MULTILINE)
    assert match is not None, "deploy/Containerfile has no HEALTHCHECK in exec form"
    command: list[str] = json.loads(match[1])
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


def test_the_image_health_check_asks_the_server(server: MinistryServer) -> None:
    """It passes while the server answers, fails when none does, and ignores proxy settings."""
    dead_proxy = f"http://127.0.0.1:{free_ports(1)[0]}"
    environment = {**os.environ, "HTTP_PROXY": dead_proxy, "http_proxy": dead_proxy}

    def check(port: int) -> int:
        return subprocess.run(
            health_check(),
            env={**environment, "MINISTRY_PORT": str(port)},
            capture_output=True,
            timeout=60,
            check=False,
        ).returncode

    assert check(server.port) == 0
    assert check(free_ports(1)[0]) != 0
