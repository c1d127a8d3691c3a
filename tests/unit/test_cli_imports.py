"""The ``ministry`` command loads, and does, only what the sub-command it runs needs.

Every command builds the whole parser first, and ``ministry --help`` does nothing
else, so the parser must not pay for the server, the HTTP client, the stores or the
progress bars (ministry/cli/main.py says how the CLI keeps them apart). Each case
runs in a fresh interpreter, whose ``sys.modules`` then shows what was imported.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ALICE
from ministry.cli.main import build_parser, parse
from ministry.cli.parsers import Run
from ministry.cli.parsers.mirror import UPSTREAM_INDEX
from ministry.services.indexes import UPSTREAM_INDEX as SERVICES_UPSTREAM_INDEX
from ministry.version import version
from support.server import run_cli

# Each test runs a fresh interpreter: what a command imports is what a process imports.
pytestmark = pytest.mark.slow

# Runs ``main`` with the arguments after ``-c CODE``; prints what it wrote and the modules.
_PROBE = """
import contextlib, io, json, os, sys
from ministry.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        status = main(sys.argv[1:], os.environ)
    except SystemExit as exit:
        status = exit.code
print(json.dumps({"status": status, "output": out.getvalue(), "modules": sorted(sys.modules)}))
"""

# Runs ``main`` with the arguments after ``-c CODE``; prints its status and how many
# passwords it hashed.
_COUNT_HASHES = """
import contextlib, io, os, sys
import argon2
hashes = 0
real = argon2.PasswordHasher.hash
def counted(self, *args, **kwargs):
    global hashes
    hashes += 1
    return real(self, *args, **kwargs)
argon2.PasswordHasher.hash = counted
from ministry.cli.main import main

with contextlib.redirect_stdout(io.StringIO()):
    status = main(sys.argv[1:], os.environ)
print(status, hashes)
"""

# What no parser may import: the server, the HTTP client, the stores and their drivers,
# password hashing, metrics, output formatting, distribution metadata.
_NOT_FOR_THE_PARSER = (
    "argon2",
    "asyncio",
    "boto3",
    "botocore",
    "httpx",
    "importlib.metadata",
    "ministry.app",
    "ministry.services",
    "ministry.storage.sqlite",
    "ministry.web",
    "ministry.wiring",
    "packaging",
    "prometheus_client",
    "python_multipart",
    "readme_renderer",
    "redis",
    "rich",
    "sqlite3",
    "tomli_w",
    "tornado",
)

# What listing users from SQLite never needs: the web layer, the other backends, READMEs,
# the metrics a server shows.
_NOT_FOR_USER_LIST = (
    "boto3",
    "botocore",
    "ministry.app",
    "ministry.storage.redis",
    "ministry.storage.s3",
    "ministry.web.server",
    "prometheus_client",
    "readme_renderer",
    "redis",
    "tornado",
)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data directory (SQLite and files) holding one user, alice."""
    directory = tmp_path / "data"
    name, password = ALICE
    added = run_cli(
        "user", "add", name, "--password-stdin", "--data", str(directory), stdin=password
    )
    assert added.returncode == 0, added.stderr
    return directory


def _probe(*argv: str) -> tuple[object, str, set[str]]:
    """The exit status, the standard output and the modules of ``main(argv)`` in a new process."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    return found["status"], found["output"], set(found["modules"])


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["serve", "--help"], ["user", "list", "--help"], ["mirror", "--help"]],
    ids=" ".join,
)
def test_help_imports_nothing_heavy(argv: list[str]) -> None:
    """Help, for the command or one sub-command, is answered from the parser alone."""
    status, output, modules = _probe(*argv)
    assert status == 0
    assert "usage: ministry" in output
    assert sorted(modules.intersection(_NOT_FOR_THE_PARSER)) == []


def test_user_list_imports_only_what_it_opens(data: Path) -> None:
    """``user list`` on SQLite and files opens those stores, never the server or S3/Redis."""
    status, output, modules = _probe("user", "list", "--data", str(data))
    assert status == 0
    assert ALICE[0] in output
    assert "ministry.storage.sqlite" in modules  # the probe sees what the command imports
    assert sorted(modules.intersection(_NOT_FOR_USER_LIST)) == []


def test_user_list_hashes_no_password(data: Path) -> None:
    """A command logs no one in, so it makes no login decoy (an Argon2 hash at full cost
    takes a tenth of a second and 64 MiB); the server makes its decoy at start."""
    result = subprocess.run(
        [sys.executable, "-c", _COUNT_HASHES, "user", "list", "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "0"]


def test_version_is_looked_up_when_asked() -> None:
    """``--version`` still answers, although the parser no longer reads it when built."""
    status, output, _ = _probe("--version")
    assert status == 0
    assert output == f"ministry {version()}\n"


def _runs(parser: argparse.ArgumentParser) -> Iterator[tuple[str, Run]]:
    """Every sub-command's ``Run``, by its words (argparse shows sub-parsers only privately)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                run = child.get_default("run")
                if run is None:
                    for words, found in _runs(child):
                        yield f"{name} {words}", found
                else:
                    yield name, run


def test_every_command_names_an_implementation_that_exists() -> None:
    """A name in a parser that no module defines would only fail when that command runs."""
    runs = dict(_runs(build_parser()))
    assert {"serve", "user list", "index create", "config show", "yank", "log"} <= set(runs)
    for command, run in runs.items():
        assert isinstance(run, Run), command
        implementation = getattr(importlib.import_module(run.module), run.function, None)
        assert inspect.isfunction(implementation), f"{command}: {run}"
        assert len(inspect.signature(implementation).parameters) == 2, command


def test_mirror_fills_the_index_the_upstream_makes() -> None:
    """The parser's default is the services' name for the proxy index, written twice."""
    assert UPSTREAM_INDEX == SERVICES_UPSTREAM_INDEX
    arguments, _ = parse(["mirror", "requests"], {})
    assert arguments.index == SERVICES_UPSTREAM_INDEX
