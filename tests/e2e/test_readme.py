"""The README's examples, run top to bottom on a fresh data directory; the pip, uv and
twine settings of the README and of ``/-/help`` given to those clients.

Every ``sh`` block of README.md runs in order, in one empty working directory, as
README.md, "Working on the code" says: ``.venv/bin/`` is this test's
``ministry``, ``127.0.0.1:8080`` the address of the server the examples start,
``PROJECT`` the project in ``dist/``, ``PASSWORD`` alice's password, and
``https://mirror.example.test/simple/`` a loopback upstream. A ``ministry serve`` line
starts in the background in place of the server before it; the other lines run in bash
on a terminal of their own, so that the password prompts are the real ones. A block
after ``<!-- not run: REASON -->`` is left out; every other block must succeed.
"""

from __future__ import annotations

import fcntl
import html
import os
import pty
import re
import select
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import children
from support.clients import isolated_environment, new_venv, run, tool
from support.distributions import make_sdist, make_wheel
from support.server import http_client, wait_for
from support.upstreams import StaticUpstream, free_port

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"
PROJECT = "acme-lib"
PASSWORD = "correct-horse-battery-staple"
#: The upstream's project that requirements.txt names; it needs ``LEAF``.
REQUIRED, LEAF = "upstream-lib", "upstream-leaf"

_BLOCK = re.compile(r"(?:<!-- not run: (?P<reason>[^>]+?) -->\n)?```sh\n(?P<code>.*?)```", re.S)
_SERVE = re.compile(r"^\S*/ministry serve\b")
#: How the quick start installs the server, before it starts it.
INSTALL = "python3 -m venv .venv && .venv/bin/pip install . && "
_PROMPT = re.compile(r"password[^\n:]*: ?$", re.I)
_TIMEOUT = 120.0
#: Whatever a client would fetch from elsewhere goes to a proxy that is not there.
_NO_INTERNET = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
}


@dataclass(frozen=True)
class Block:
    """One ``sh`` block of the README: its code, its line, and why it is not run."""

    code: str
    line: int
    reason: str | None


def readme_blocks(text: str) -> list[Block]:
    """Every ``sh`` block, in order."""
    return [
        Block(match["code"], text.count("\n", 0, match.start("code")) + 1, match["reason"])
        for match in _BLOCK.finditer(text)
    ]


def commands(code: str) -> list[str]:
    """A block's commands, one per line once backslash continuations are joined."""
    return [line for line in code.replace("\\\n", " ").splitlines() if line.strip()]


class Examples:
    """The working directory, the environment and the server of the README's examples."""

    def __init__(self, root: Path, upstream: StaticUpstream) -> None:
        self.root = root
        self.cwd = root / "work"
        self.cwd.mkdir()
        self.port = free_port()
        self.state = root / "state.sh"
        self.server: subprocess.Popen[bytes] | None = None
        self.server_log = root / "servers.log"
        self.substitutions = {
            ".venv/bin/": f"{self._bin()}/",
            "127.0.0.1:8080": f"127.0.0.1:{self.port}",
            "https://mirror.example.test/simple/": upstream.url,
        }
        home = root / "home"
        self.environment = isolated_environment(
            home,
            {
                "PATH": f"{self._venv()}:{Path(tool('uv')).parent}:{os.environ['PATH']}",
                "VIRTUAL_ENV": str(root / "venv"),
                "MINISTRY_PORT": str(self.port),
                **_NO_INTERNET,
                # pip's index, for --upstream pip.
                "PIP_INDEX_URL": upstream.url,
            },
        )
        if "PYTHONPATH" in os.environ:  # the ministry under test, not an installed one
            self.environment["PYTHONPATH"] = os.environ["PYTHONPATH"]
        self._files(home)

    def _bin(self) -> Path:
        """``ministry`` from the interpreter running the tests (README: ``.venv/bin/``)."""
        directory = self.root / "bin"
        if not directory.exists():
            directory.mkdir()
            script = directory / "ministry"
            script.write_text(f'#!/bin/sh\nexec {sys.executable} -m ministry "$@"\n')
            script.chmod(0o755)
        return directory

    def _venv(self) -> Path:
        """A fresh virtual environment whose ``pip`` is the tests' pip installing into it."""
        directory = self.root / "venv" / "bin"
        if not directory.exists():
            python = new_venv(self.root / "venv")
            script = directory / "pip"
            script.write_text(f'#!/bin/sh\nexec {sys.executable} -m pip --python {python} "$@"\n')
            script.chmod(0o755)
        return directory

    def _files(self, home: Path) -> None:
        """``dist/`` (PROJECT), ``requirements.txt`` (the upstream's) and a pypiserver
        directory, ``~/packages``."""
        dist = self.cwd / "dist"
        dist.mkdir()
        make_wheel(dist, PROJECT, "1.0")
        make_sdist(dist, PROJECT, "1.0")
        (self.cwd / "requirements.txt").write_text(f"{REQUIRED}\n")
        packages = home / "packages"
        packages.mkdir()
        make_wheel(packages, "old-lib", "0.9")

    def substitute(self, code: str) -> str:
        """The README's placeholders replaced with this test's values; the quick start's
        install is left out (the test runs the package it is testing), its start kept."""
        code = code.replace(INSTALL, "")
        for placeholder, value in self.substitutions.items():
            code = code.replace(placeholder, value)
        code = re.sub(r"\bPROJECT\b", PROJECT, code)
        return re.sub(r"\bPASSWORD\b", PASSWORD, code)

    def run_block(self, block: Block) -> None:
        """Run the block's commands: servers in the background, the rest in bash."""
        script: list[str] = []
        for command in commands(self.substitute(block.code)):
            if _SERVE.match(command):
                self.shell("\n".join(script), block)
                script = []
                self.serve(command, block)
            else:
                script.append(command)
        self.shell("\n".join(script), block)

    def shell(self, code: str, block: Block) -> None:
        """Run code in bash on a terminal, the variables of earlier blocks set."""
        if not code:
            return
        script = (
            f"set -a\n[ -f {self.state} ] && . {self.state}\nset -eo pipefail\n"
            f"{code}\nexport -p > {self.state}\n"
        )
        status, output = on_terminal(["bash", "-c", script], self.cwd, self.environment)
        assert status == 0, f"README.md line {block.line}: exit {status}\n$ {code}\n{output}"

    def serve(self, command: str, block: Block) -> None:
        """Start ``ministry serve`` in place of the running server; wait until it serves."""
        self.stop()
        with self.server_log.open("ab") as log:
            offset = log.tell()
            self.server = subprocess.Popen(
                ["bash", "-c", f"exec {command}"],
                cwd=self.cwd,
                env=self.environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=children.die_with_parent(),  # support/children.py says why
            )
        children.started(self.server)
        serving = f"serving http://127.0.0.1:{self.port}/"

        def ready() -> bool:
            assert self.server is not None
            log = self.server_log.read_bytes()[offset:].decode(errors="replace")
            assert self.server.poll() is None, f"README.md line {block.line}: {command}\n{log}"
            return serving in log

        wait_for(ready, 30.0, f"README.md line {block.line}: {command}")

    def stop(self) -> None:
        """Stop the running server, if any, as an operator does (SIGTERM)."""
        if self.server is not None:
            self.server.terminate()
            assert self.server.wait(timeout=30) == 0, self.server_log.read_text()
            children.stopped(self.server)
            self.server = None


def on_terminal(
    command: list[str], cwd: Path, environment: dict[str, str], answer: str = PASSWORD
) -> tuple[int, str]:
    """Run a command on a terminal of its own, answering each password prompt; its exit
    status and everything it wrote."""
    main, secondary = pty.openpty()

    dies_with_parent = children.die_with_parent()  # support/children.py says why

    def controlling_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        if dies_with_parent is not None:
            dies_with_parent()

    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=environment,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        start_new_session=True,
        preexec_fn=controlling_terminal,
    )
    os.close(secondary)
    output, unanswered = b"", 0
    deadline = time.monotonic() + _TIMEOUT
    try:
        while True:
            assert time.monotonic() < deadline, f"{command} took too long:\n{output.decode()}"
            ready, _, _ = select.select([main], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the terminal closed: every process on it is gone
                break
            if not chunk:
                break
            output += chunk
            if _PROMPT.search(output[unanswered:].decode(errors="replace")):
                os.write(main, f"{answer}\n".encode())
                unanswered = len(output)
    except BaseException:  # given up on: nothing it started outlives the test
        os.killpg(process.pid, signal.SIGKILL)
        raise
    finally:
        os.close(main)
    status = process.wait(timeout=_TIMEOUT)
    return status, output.decode(errors="replace").replace("\r\n", "\n")


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[StaticUpstream]:
    """The upstream the examples proxy and mirror: REQUIRED needing LEAF."""
    made = tmp_path / "upstream"
    made.mkdir()
    with StaticUpstream() as served:
        served.add(make_wheel(made, REQUIRED, "1.0", requires_dist=[LEAF]))
        served.add(make_wheel(made, LEAF, "1.0"))
        yield served


def test_every_readme_block_runs_in_order_on_a_fresh_data_directory(
    tmp_path: Path, upstream: StaticUpstream
) -> None:
    blocks = readme_blocks(README.read_text())
    # The quick start is one command that installs and starts the server.
    assert blocks[0].code.strip() == f"{INSTALL}.venv/bin/ministry serve", blocks[0]
    examples = Examples(tmp_path, upstream)
    ran = []
    try:
        for block in blocks:
            if block.reason is None:
                examples.run_block(block)
                ran.append(block.line)
        assert examples.server is not None, "no block started a server"
        check_help_page(examples)
        check_readme_settings(examples)
        check_readme_config_file(examples)
        check_readme_pypirc(examples)
    finally:
        examples.stop()
    assert ran == [block.line for block in blocks if block.reason is None]
    # A marker stands right before the block it leaves out, or it would leave out nothing.
    markers = re.findall(r"^<!-- not run:", README.read_text(), re.M)
    assert len(markers) == sum(1 for block in blocks if block.reason)
    assert len(ran) >= 10, ran
    # The examples used the README's data directory, and the proxy reached the upstream.
    assert (examples.cwd / "ministry-data").is_dir()
    assert upstream.count(upstream.page_path(REQUIRED)) >= 1


def check_help_page(examples: Examples) -> None:
    """``/-/help``'s pip.conf works for pip, and its uv settings for uv, in both files."""
    with http_client(f"http://127.0.0.1:{examples.port}") as client:
        page = client.get("/-/help")
    assert page.status_code == 200
    snippets = {
        heading: [
            html.unescape(text) for text in re.findall(r"<pre[^>]*>(.*?)</pre>", section, re.S)
        ]
        for heading, section in re.findall(
            r'<h2 id="(\w+)">.*?</h2>(.*?)(?=<h2|\Z)', page.text, re.S
        )
    }
    pyproject, uv_toml = snippets["uv"][:2]  # the page's order: pyproject.toml, uv.toml
    check_settings(examples, examples.root / "help", snippets["pip"][0], pyproject, uv_toml)


def check_readme_settings(examples: Examples) -> None:
    """The README's pip.conf and uv.toml, and its uv.toml table in a pyproject.toml."""
    text = examples.substitute(README.read_text())
    (pip_conf,) = re.findall(r"```ini\n(\[global\]\n.*?)```", text, re.S)
    (uv_toml,) = re.findall(r"```toml\n(\[\[index\]\]\n.*?)```", text, re.S)
    pyproject = uv_toml.replace("[[index]]", "[[tool.uv.index]]", 1)
    check_settings(examples, examples.root / "readme-settings", pip_conf, pyproject, uv_toml)


def check_readme_config_file(examples: Examples) -> None:
    """The README's example config file is one that ``ministry config show`` accepts."""
    (config,) = re.findall(r"```toml\n(\[server\]\n.*?)```", README.read_text(), re.S)
    path = examples.root / "ministry.toml"
    path.write_text(config)
    shown = subprocess.run(
        [str(examples.root / "bin" / "ministry"), "config", "show", "--config", str(path)],
        env=examples.environment,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert f'public_url = "https://pypi.example.test"  # {path}, line 3' in shown.stdout


def check_readme_pypirc(examples: Examples) -> None:
    """The README's ``~/.pypirc``, with the token the examples made, lets ``twine upload -r
    ministry`` upload (the files of ``dist/`` again, which changes nothing)."""
    text = examples.substitute(README.read_text())
    (pypirc,) = re.findall(r"```ini\n(\[distutils\]\n.*?)```", text, re.S)
    token = re.search(r'^declare -x TOKEN="(mop_[^"]+)"$', examples.state.read_text(), re.M)
    assert token is not None, "no block set TOKEN"
    home = Path(examples.environment["HOME"])
    (home / ".pypirc").write_text(pypirc.replace("mop_…", token[1]))
    command = "twine upload -r ministry dist/*"
    status, output = on_terminal(["bash", "-c", command], examples.cwd, examples.environment)
    assert status == 0, output
    assert f"127.0.0.1:{examples.port}/legacy/" in output


def check_settings(
    examples: Examples, work: Path, pip_conf: str, pyproject: str, uv_toml: str
) -> None:
    """pip installs with the pip.conf alone; uv locks a project with the pyproject.toml
    table and installs with the uv.toml alone."""
    home = work / "home"
    work.mkdir()
    (work / "pip.conf").write_text(pip_conf)
    pip = run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-d", "got", PROJECT],
        home,
        cwd=work,
        extra_environment={**_NO_INTERNET, "PIP_CONFIG_FILE": str(work / "pip.conf")},
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert any((work / "got").glob("acme_lib-1.0*"))
    project = work / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "app"\nversion = "0"\nrequires-python = ">=3.11"\n'
        f'dependencies = ["{PROJECT}"]\n\n{pyproject}\n'
    )
    # uv reads a project's [tool.uv] only when it looks for configuration at all.
    locked = run(
        [tool("uv"), "lock"],
        home,
        cwd=project,
        extra_environment={**_NO_INTERNET, "UV_NO_CONFIG": "0"},
    )
    assert locked.returncode == 0, locked.stderr
    assert f'name = "{PROJECT}"' in (project / "uv.lock").read_text()
    assert f"127.0.0.1:{examples.port}" in (project / "uv.lock").read_text()
    (work / "uv.toml").write_text(uv_toml)
    target = new_venv(work / "venv")
    installed = run(
        [
            tool("uv"),
            "pip",
            "install",
            "--config-file",
            "uv.toml",
            "--python",
            str(target),
            PROJECT,
        ],
        home,
        cwd=work,
        extra_environment=_NO_INTERNET,
    )
    assert installed.returncode == 0, installed.stderr
