"""The real publishing tools (poetry, pdm, hatch, flit) upload to a running server.

Each test publishes a project of its own with one tool, as a user would, then
checks what the server holds: the files on the project's simple page (PEP 691
JSON) with the sha256 of the local files, the same bytes served back, and the
upload POSTs in the server's access log. Where a tool has a skip-existing mode,
a second publish of rebuilt files (same filenames, other bytes) must be skipped
by the tool, exit 0, and leave the original files in place (docs/protocol.md,
"Duplicates", "Client behaviours").

Nothing here may reach the internet: every tool runs with its HTTP(S) proxy set
to a closed loopback port and only 127.0.0.1 exempted, so a download attempt
fails the test instead of leaving the machine.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urljoin

import pytest
from packaging.utils import canonicalize_name

from conftest import ALICE
from support.clients import run
from support.distributions import make_sdist, make_wheel
from support.server import MinistryServer

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
UPLOAD_OK = '"POST /legacy/ HTTP/1.1" 200'
UPLOAD_REFUSED = '"POST /legacy/ HTTP/1.1" 400'


def find_tool(name: str) -> Path:
    """The executable of a publishing tool; skips the test, or fails it, when it is missing.

    scripts/install-test-tools puts each tool in a virtual environment of its own
    under ``$MINISTRY_TEST_TOOLS/<tool>``. A missing tool skips its test unless
    ``MINISTRY_REQUIRE_TOOLS=1`` (as scripts/test sets), when it fails it.
    """
    root = os.environ.get("MINISTRY_TEST_TOOLS", "")
    path = Path(root, name, "bin", name) if root else None
    if path is not None and path.is_file() and os.access(path, os.X_OK):
        return path
    if path is None:
        reason = f"{name}: MINISTRY_TEST_TOOLS is unset (see scripts/install-test-tools)"
    else:
        reason = f"{name} not found at {path}; run scripts/install-test-tools {root}"
    if os.environ.get("MINISTRY_REQUIRE_TOOLS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def publishing_tool() -> Callable[[str], Path]:
    """``publishing_tool("poetry")`` is poetry's executable, or a skip (or failure) if missing."""
    return find_tool


def _closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def offline(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment that lets a tool reach 127.0.0.1 only.

    Every other host goes through a proxy that refuses connections, and pip (which
    some tools call to fetch build dependencies) is told there is no index.
    """
    trap = f"http://127.0.0.1:{_closed_port()}"
    environment = {
        "HTTP_PROXY": trap,
        "HTTPS_PROXY": trap,
        "ALL_PROXY": trap,
        "http_proxy": trap,
        "https_proxy": trap,
        "all_proxy": trap,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "PIP_NO_INDEX": "1",
    }
    environment.update(extra or {})
    return environment


def described(result: subprocess.CompletedProcess[str]) -> str:
    """A tool's command, exit status and output, for assertion messages."""
    return (
        f"command: {result.args}\nexit status: {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_files(dist: Path, name: str, version: str, *, flavour: str) -> dict[str, str]:
    """A wheel and an sdist of ``name`` in ``dist``; returns filename -> sha256.

    ``flavour`` changes the bytes (module text and summary) but not the filenames.
    """
    dist.mkdir(parents=True, exist_ok=True)
    for old in dist.iterdir():
        old.unlink()
    module = canonicalize_name(name).replace("-", "_")
    summary = f"Published by the end-to-end tests ({flavour})"
    wheel = make_wheel(
        dist,
        name,
        version,
        summary=summary,
        files={f"{module}/__init__.py": f"FLAVOUR = {flavour!r}\n".encode()},
    )
    sdist = make_sdist(dist, name, version, summary=summary)
    return {path.name: sha256_of(path) for path in (wheel, sdist)}


def assert_served(server: MinistryServer, project: str, expected: Mapping[str, str]) -> None:
    """The simple page of ``project`` lists exactly ``expected`` (filename -> sha256).

    Each listed file is also downloaded and must have the published bytes.
    """
    normalized = canonicalize_name(project)
    page_path = f"/simple/{normalized}/"
    with server.client() as client:
        page = client.get(page_path, headers={"Accept": SIMPLE_JSON})
        assert page.status_code == 200, f"GET {page_path}: {page.status_code} {page.text}"
        assert page.headers["Content-Type"].split(";")[0].strip() == SIMPLE_JSON
        listed = {entry["filename"]: entry for entry in page.json()["files"]}
        assert sorted(listed) == sorted(expected), f"{page_path} lists {sorted(listed)}"
        for filename, sha256 in expected.items():
            entry = listed[filename]
            assert entry["hashes"]["sha256"] == sha256, f"{filename}: listed {entry['hashes']}"
            url = urljoin(server.url + page_path, entry["url"])
            download = client.get(url, headers={"Accept-Encoding": "identity"})
            assert download.status_code == 200, f"GET {url}: {download.status_code}"
            assert hashlib.sha256(download.content).hexdigest() == sha256, (
                f"{url} serves other bytes than the published {filename}"
            )


class LogWindow:
    """The part of the server log written after it was opened."""

    def __init__(self, server: MinistryServer) -> None:
        self._server = server
        self._offset = len(server.log())

    def text(self) -> str:
        return self._server.log()[self._offset :]

    def count(self, needle: str) -> int:
        return self.text().count(needle)


def test_poetry_publish_then_skip_existing(
    server: MinistryServer,
    home: Path,
    tmp_path: Path,
    unique: str,
    publishing_tool: Callable[[str], Path],
) -> None:
    poetry = publishing_tool("poetry")
    # A display name that is not normalized: poetry names its files after the
    # escaped form, the server lists the project under the normalized one.
    name, version = f"{unique}_Poetry.Demo", "1.0.0"
    module = canonicalize_name(name).replace("-", "_")
    project = tmp_path / "project"
    (project / module).mkdir(parents=True)
    (project / module / "__init__.py").write_text('"""Poetry demo."""\n')
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "{version}"\n'
        'description = "Published by the end-to-end tests"\n'
        'requires-python = ">=3.9"\n\n'
        '[build-system]\nrequires = ["poetry-core>=2.0,<3"]\n'
        'build-backend = "poetry.core.masonry.api"\n'
    )
    environment = offline(
        {
            "POETRY_REPOSITORIES_MINISTRY_URL": f"{server.url}/legacy/",
            "POETRY_CONFIG_DIR": str(tmp_path / "poetry-config"),
            "POETRY_CACHE_DIR": str(tmp_path / "poetry-cache"),
            "POETRY_DATA_DIR": str(tmp_path / "poetry-data"),
            "POETRY_VIRTUALENVS_CREATE": "false",
        }
    )

    def poetry_run(*arguments: str) -> subprocess.CompletedProcess[str]:
        return run(
            [str(poetry), "--no-ansi", "--no-interaction", *arguments],
            home,
            cwd=project,
            extra_environment=environment,
        )

    # poetry-core builds in-process; the proxy trap makes any download fail.
    built = poetry_run("build")
    assert built.returncode == 0, described(built)
    dist = project / "dist"
    original = {path.name: sha256_of(path) for path in dist.iterdir()}
    assert sorted(original) == [
        f"{module}-{version}-py3-none-any.whl",
        f"{module}-{version}.tar.gz",
    ]

    window = LogWindow(server)
    published = poetry_run("publish", "--repository", "ministry", "-u", ALICE[0], "-p", ALICE[1])
    assert published.returncode == 0, described(published)
    assert window.count(UPLOAD_OK) == 2, window.text()
    assert_served(server, name, original)

    # Same filenames, other bytes: the server refuses them with "File already
    # exists", which poetry's --skip-existing turns into a skip.
    (project / module / "__init__.py").write_text('"""Poetry demo, rebuilt."""\nREBUILT = True\n')
    rebuilt = poetry_run("build", "--clean")
    assert rebuilt.returncode == 0, described(rebuilt)
    changed = {path.name: sha256_of(path) for path in dist.iterdir()}
    assert changed.keys() == original.keys()
    assert all(changed[filename] != original[filename] for filename in original)

    window = LogWindow(server)
    skipped = poetry_run(
        "publish", "--repository", "ministry", "-u", ALICE[0], "-p", ALICE[1], "--skip-existing"
    )
    assert skipped.returncode == 0, described(skipped)
    # poetry draws its progress bars, and the skip notice, on stderr.
    output = skipped.stdout + skipped.stderr
    for filename in original:
        assert f"{filename} File exists. Skipping" in output, described(skipped)
    assert window.count(UPLOAD_REFUSED) == 2, window.text()
    assert window.count(UPLOAD_OK) == 0, window.text()
    assert_served(server, name, original)


def test_pdm_publish_then_skip_existing(
    server: MinistryServer,
    home: Path,
    tmp_path: Path,
    unique: str,
    publishing_tool: Callable[[str], Path],
) -> None:
    pdm = publishing_tool("pdm")
    name, version = f"{unique}-pdm", "2.0"
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "{version}"\nrequires-python = ">=3.9"\n\n'
        '[build-system]\nrequires = ["pdm-backend"]\nbuild-backend = "pdm.backend"\n'
    )
    dist = project / "dist"
    original = build_files(dist, name, version, flavour="original")
    environment = offline(
        {
            "PDM_CHECK_UPDATE": "false",
            # pdm wants an interpreter for the project even to publish; without one
            # it would create a virtualenv. Its own is enough and stays untouched.
            "PDM_PYTHON": str(pdm.parent / "python"),
            "PDM_HOME": str(tmp_path / "pdm-home"),
            "PDM_CACHE_DIR": str(tmp_path / "pdm-cache"),
        }
    )

    def publish(*extra: str) -> subprocess.CompletedProcess[str]:
        return run(
            [
                str(pdm), "publish", "--no-build",
                "--repository", f"{server.url}/legacy/",
                "--username", ALICE[0], "--password", ALICE[1], *extra,
            ],
            home,
            cwd=project,
            extra_environment=environment,
        )  # fmt: skip

    window = LogWindow(server)
    published = publish()
    assert published.returncode == 0, described(published)
    assert window.count(UPLOAD_OK) == 2, window.text()
    assert_served(server, name, original)

    changed = build_files(dist, name, version, flavour="rebuilt")
    assert changed.keys() == original.keys()
    assert all(changed[filename] != original[filename] for filename in original)

    window = LogWindow(server)
    skipped = publish("--skip-existing")
    assert skipped.returncode == 0, described(skipped)
    output = skipped.stdout + skipped.stderr
    for filename in original:
        assert re.search(rf"Skipping {re.escape(filename)}\b", output), described(skipped)
    assert window.count(UPLOAD_REFUSED) == 2, window.text()
    assert window.count(UPLOAD_OK) == 0, window.text()
    assert_served(server, name, original)


def test_hatch_publish_republish_and_conflict(
    server: MinistryServer,
    home: Path,
    tmp_path: Path,
    unique: str,
    publishing_tool: Callable[[str], Path],
) -> None:
    hatch = publishing_tool("hatch")
    name, version = f"{unique}-hatch", "0.3.1"
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "{version}"\n\n'
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
    )
    dist = project / "dist"
    original = build_files(dist, name, version, flavour="original")
    config = tmp_path / "hatch" / "config.toml"
    config.parent.mkdir()
    config.write_text("")  # hatch refuses a named config file that does not exist
    environment = offline(
        {
            "HATCH_CONFIG": str(config),
            "HATCH_DATA_DIR": str(tmp_path / "hatch" / "data"),
            "HATCH_CACHE_DIR": str(tmp_path / "hatch" / "cache"),
        }
    )

    def publish() -> subprocess.CompletedProcess[str]:
        return run(
            [
                str(hatch), "publish", "--no-prompt",
                "--repo", f"{server.url}/legacy/",
                "--user", ALICE[0], "--auth", ALICE[1],
                *sorted(str(path) for path in dist.iterdir()),
            ],
            home,
            cwd=project,
            extra_environment=environment,
        )  # fmt: skip

    window = LogWindow(server)
    published = publish()
    assert published.returncode == 0, described(published)
    assert window.count(UPLOAD_OK) == 2, window.text()
    assert_served(server, name, original)

    # hatch looks for existing files at the devpi-style <repo>/+simple/<name>/
    # (docs/protocol.md, "Client behaviours"), which this server does not serve, so it uploads
    # the identical files again; the idempotent 200 (docs/protocol.md, "Duplicates") makes that a
    # success.
    window = LogWindow(server)
    again = publish()
    assert again.returncode == 0, described(again)
    assert window.count(UPLOAD_OK) + (again.stdout + again.stderr).count("already exists") == 2
    assert_served(server, name, original)

    # hatch has no skip-existing mode: other bytes under a published filename are
    # an error, and the server's reason must reach the user.
    build_files(dist, name, version, flavour="rebuilt")
    window = LogWindow(server)
    conflict = publish()
    assert conflict.returncode != 0, described(conflict)
    assert "File already exists" in conflict.stdout + conflict.stderr, described(conflict)
    assert window.count(UPLOAD_REFUSED) >= 1, window.text()
    assert_served(server, name, original)


def test_flit_publish_with_token(
    server: MinistryServer,
    token: str,
    home: Path,
    tmp_path: Path,
    unique: str,
    publishing_tool: Callable[[str], Path],
) -> None:
    flit = publishing_tool("flit")
    name, version = f"{unique}-flit", "0.1"
    module = canonicalize_name(name).replace("-", "_")
    project = tmp_path / "project"
    project.mkdir()
    (project / f"{module}.py").write_text(
        f'"""A module published by flit in the end-to-end tests."""\n\n__version__ = "{version}"\n'
    )
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["flit_core>=3.2,<5"]\nbuild-backend = "flit_core.buildapi"\n\n'
        f'[project]\nname = "{name}"\ndynamic = ["version", "description"]\n'
        'requires-python = ">=3.9"\n\n'
        f'[tool.flit.module]\nname = "{module}"\n'
    )
    environment = offline(
        {
            "FLIT_INDEX_URL": f"{server.url}/legacy/",
            "FLIT_USERNAME": "__token__",
            "FLIT_PASSWORD": token,
            "FLIT_NO_NETWORK": "1",
        }
    )

    window = LogWindow(server)
    published = run(
        [str(flit), "publish", "--no-use-vcs"],
        home,
        cwd=project,
        extra_environment=environment,
    )
    assert published.returncode == 0, described(published)
    built = {path.name: sha256_of(path) for path in (project / "dist").iterdir()}
    assert sorted(built) == [f"{module}-{version}-py3-none-any.whl", f"{module}-{version}.tar.gz"]
    assert window.count(UPLOAD_OK) == 2, window.text()
    assert_served(server, name, built)
