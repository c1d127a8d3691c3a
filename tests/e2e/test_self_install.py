"""Ministry of Packages served by itself: build this checkout, upload it, install it, run it.

The release is built by the real build frontend (``python -m build``) from this
checkout, uploaded with twine to a fresh ``ministry serve``, and installed by pip
from that server's simple index into a new virtual environment. The installed
command then reports its version and serves its own pages.

Nothing here may reach the internet, and pip runs isolated from this machine's
configuration, so the installer cannot fetch the dependencies (tornado, packaging,
…) from anywhere: the project is installed with ``--no-deps`` and the new
environment borrows the dependencies of the environment running the tests
through a ``.pth`` file. A ``.pth`` line is appended to ``sys.path`` after the new
environment's own site-packages, so ``ministry`` and its metadata are found in the
new environment first, and the checkout's editable install (whose import hook
lives in a ``.pth`` file of the test environment, which is not processed when that
directory is only named on ``sys.path``) cannot stand in for it; the test checks
where ``ministry`` was imported from.
"""

from __future__ import annotations

import html
import importlib.util
import os
import re
import signal
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import ALICE
from support.clients import isolated_environment, new_venv, pip_install, run, twine_upload
from support.server import MinistryServer, wait_for

_CHECKOUT = Path(__file__).resolve().parents[2]
_PROJECT = "ministry-of-packages"


def _checkout_version() -> str:
    with (_CHECKOUT / "pyproject.toml").open("rb") as file:
        found: str = tomllib.load(file)["project"]["version"]
    return found


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist and wheel of this checkout, built offline with the backend of this environment."""
    if not (_CHECKOUT / "pyproject.toml").is_file():
        pytest.skip("no pyproject.toml above the tests: not running from a source tree")
    if importlib.util.find_spec("hatchling") is None:
        pytest.skip("hatchling (the build backend in pyproject.toml) is not installed here")
    out = tmp_path_factory.mktemp("release")
    home = tmp_path_factory.mktemp("build-home")
    result = run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(_CHECKOUT)],
        home,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel}


@pytest.fixture(scope="module")
def published(
    tmp_path_factory: pytest.TempPathFactory, release: dict[str, Path]
) -> Iterator[MinistryServer]:
    """A fresh server with the release uploaded to it by twine."""
    instance = MinistryServer(tmp_path_factory.mktemp("self") / "data").start()
    try:
        added = instance.cli("user", "add", ALICE[0], "--password-stdin", stdin=ALICE[1] + "\n")
        assert added.returncode == 0, added.stderr
        home = tmp_path_factory.mktemp("twine-home")
        uploaded = twine_upload(
            home, f"{instance.url}/legacy/", *ALICE, release["sdist"], release["wheel"]
        )
        assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
        yield instance
    finally:
        instance.stop()


def test_the_release_holds_the_templates_and_static_files(release: dict[str, Path]) -> None:
    """The wheel carries the web UI's files; the sdist carries them, the docs and the tests."""
    with zipfile.ZipFile(release["wheel"]) as wheel:
        in_wheel = set(wheel.namelist())
    packaged = {
        path.relative_to(_CHECKOUT / "src").as_posix()
        for folder in ("templates", "static")
        for path in (_CHECKOUT / "src" / "ministry" / folder).iterdir()
    }
    assert packaged, "the checkout has no templates or static files to compare with"
    assert packaged <= in_wheel
    assert "ministry/__main__.py" in in_wheel
    with tarfile.open(release["sdist"]) as sdist:
        top = f"ministry_of_packages-{_checkout_version()}/"
        in_sdist = {name.removeprefix(top) for name in sdist.getnames()}
    assert {f"src/{name}" for name in packaged} <= in_sdist
    assert {"README.md", "CHANGELOG.md", "pyproject.toml", "PKG-INFO"} <= in_sdist
    assert "tests/conftest.py" in in_sdist
    # The deployment files, which tests/scale/test_deploy.py checks against the docs.
    assert {"deploy/ministry.service", "deploy/ministry.toml", "deploy/Containerfile"} <= in_sdist
    assert not any(name.startswith(".hypothesis") or "__pycache__" in name for name in in_sdist)


def test_pip_installs_the_release_from_our_own_server(
    published: MinistryServer, release: dict[str, Path], tmp_path: Path, home: Path
) -> None:
    """pip fetches the wheel from the server; the installed command runs from the new venv."""
    venv = tmp_path / "venv"
    python = new_venv(venv)
    wheel_path = f"/packages/{_PROJECT}/{release['wheel'].name}"
    before = published.served(wheel_path)
    result = pip_install(
        python, home, "--no-deps", "--index-url", f"{published.url}/simple/", _PROJECT
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert published.served(wheel_path) == before + 1
    _borrow_dependencies(python)

    version = subprocess.run(
        [str(venv / "bin" / "ministry"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=isolated_environment(home),
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"ministry {_checkout_version()}"

    located = subprocess.run(
        [str(python), "-c", "import ministry; print(ministry.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=isolated_environment(home),
    )
    package = Path(located.stdout.strip()).parent
    assert package.is_relative_to(venv), package
    assert (package / "templates" / "base.html").is_file()
    assert (package / "static" / "ministry.css").is_file()


def test_the_installed_command_serves_its_pages(
    published: MinistryServer, release: dict[str, Path], tmp_path: Path, home: Path
) -> None:
    """``ministry serve`` from the installed wheel renders a page and serves its stylesheet."""
    venv = tmp_path / "venv"
    python = new_venv(venv)
    result = pip_install(python, home, "--no-deps", str(release["wheel"]))
    assert result.returncode == 0, result.stdout + result.stderr
    _borrow_dependencies(python)

    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(venv / "bin" / "ministry"), "serve", "--port", "0", "--data", str(tmp_path / "d")],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=isolated_environment(home),
        )
    try:
        wait_for(lambda: "serving http://127.0.0.1:" in log_path.read_text(), 60, "the server")
        port = log_path.read_text().split("serving http://127.0.0.1:")[1].split("/")[0]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            page = client.get("/", timeout=30)
            assert page.status_code == 200, page.text
            link = re.search(r'href="([^"]*ministry\.css[^"]*)"', page.text)
            assert link is not None, page.text
            stylesheet = client.get(html.unescape(link.group(1)), timeout=30)
        assert stylesheet.status_code == 200, link.group(1)
        assert stylesheet.content == (_CHECKOUT / "src/ministry/static/ministry.css").read_bytes()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_the_sdist_from_our_server_builds_the_same_wheel(
    published: MinistryServer, release: dict[str, Path], tmp_path: Path, home: Path
) -> None:
    """pip downloads the sdist from the server and builds it offline into an equivalent wheel."""
    sdist_path = f"/packages/{_PROJECT}/{release['sdist'].name}"
    before = published.served(sdist_path)
    out = tmp_path / "wheels"
    # The backend builds in this environment (--no-build-isolation): nothing to download.
    offline = ["--no-cache-dir", "--no-deps", "--no-build-isolation", "--no-binary", _PROJECT]
    index = ["--index-url", f"{published.url}/simple/"]
    pip_wheel = [sys.executable, "-m", "pip", "--isolated", "wheel", *offline, *index]
    result = run([*pip_wheel, "--wheel-dir", str(out), _PROJECT], home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert published.served(sdist_path) == before + 1
    (built,) = out.glob("*.whl")
    assert built.name == release["wheel"].name
    with zipfile.ZipFile(built) as rebuilt, zipfile.ZipFile(release["wheel"]) as original:
        assert sorted(rebuilt.namelist()) == sorted(original.namelist())


def _borrow_dependencies(python: Path) -> None:
    """Put the test environment's site-packages on the new environment's path, after its own."""
    found = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={key: value for key, value in os.environ.items() if not key.startswith("PYTHON")},
    )
    target = Path(found.stdout.strip())
    (target / "zz-test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
