"""Real clients end to end: ``python -m build``, upload with twine and uv, install with pip and uv.

Each test runs twice: against a server on SQLite and files, and against one on
Redis and S3, the stores of a scaled-out deployment.

Every client runs isolated from this machine's configuration, and each test checks
in the server's access log that the files really came from our server.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ALICE
from support.clients import new_venv, pip_install, run, twine_upload, uv
from support.server import MinistryServer


def _write_project(root: Path, name: str, version: str, dependencies: list[str]) -> Path:
    module = name.replace("-", "_")
    (root / "src" / module).mkdir(parents=True)
    (root / "src" / module / "__init__.py").write_text(f'NAME = "{name}"\nVERSION = "{version}"\n')
    (root / "README.md").write_text(f"# {name}\n\nA tiny project for the tests.\n")
    requirements = ", ".join(f'"{d}"' for d in dependencies)
    (root / "pyproject.toml").write_text(
        "[build-system]\n"
        'requires = ["hatchling"]\n'
        'build-backend = "hatchling.build"\n\n'
        "[project]\n"
        f'name = "{name}"\nversion = "{version}"\n'
        'description = "A tiny project"\nreadme = "README.md"\n'
        f'requires-python = ">=3.8"\ndependencies = [{requirements}]\n\n'
        "[tool.hatch.build.targets.wheel]\n"
        f'packages = ["src/{module}"]\n'
    )
    return root


def build(root: Path) -> list[Path]:
    """``python -m build`` without isolation: the backend comes from the test environment."""
    out = root / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(root)],
        check=True,
        capture_output=True,
    )
    return sorted(out.iterdir())


@pytest.fixture(scope="module", params=["sqlite-files", "redis-s3"])
def server(request: pytest.FixtureRequest, server: MinistryServer) -> MinistryServer:
    """Every test runs on both kinds of stores: SQLite and files, Redis and S3."""
    if request.param == "redis-s3":
        shared: MinistryServer = request.getfixturevalue("shared_server")
        return shared
    return server


@pytest.fixture(scope="module")
def token(server: MinistryServer) -> str:
    """An API token of alice on the server the test runs against."""
    result = server.cli("token", "create", "alice", "--description", "uv publish")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Two private projects, one depending on the other, built by the real build frontend."""
    root = tmp_path_factory.mktemp("projects")
    lib = build(_write_project(root / "lib", "tiny-lib", "1.0", []))
    app = build(_write_project(root / "app", "tiny-app", "2.0", ["tiny-lib>=1.0"]))
    return {"tiny-lib": lib, "tiny-app": app}


@pytest.fixture(scope="module")
def uploaded(
    server: MinistryServer,
    projects: dict[str, list[Path]],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, list[Path]]:
    """Both projects uploaded with twine and a password."""
    home = tmp_path_factory.mktemp("twine-home")
    for files in projects.values():
        result = twine_upload(home, f"{server.url}/legacy/", *ALICE, *files)
        assert result.returncode == 0, result.stdout + result.stderr
    return projects


def wheel_of(files: list[Path]) -> Path:
    return next(p for p in files if p.suffix == ".whl")


def test_twine_upload_is_served(server: MinistryServer, uploaded: dict[str, list[Path]]) -> None:
    """twine's uploads are published with the hashes of the built files."""
    with server.client() as client:
        for name, files in uploaded.items():
            page = client.get(
                f"/simple/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
            ).json()
            hashes = {f["filename"]: f["hashes"]["sha256"] for f in page["files"]}
            assert hashes == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_twine_reupload_identical_succeeds(
    server: MinistryServer, uploaded: dict[str, list[Path]], home: Path
) -> None:
    """docs/protocol.md, "Duplicates": twine retries and re-runs are safe (twine 7 has no
    --skip-existing here)."""
    result = twine_upload(home, f"{server.url}/legacy/", *ALICE, *uploaded["tiny-lib"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_twine_other_bytes_same_name_is_refused(
    server: MinistryServer, uploaded: dict[str, list[Path]], home: Path, tmp_path: Path
) -> None:
    """docs/protocol.md, "Duplicates": twine shows the reason phrase "File already exists"."""
    original = wheel_of(uploaded["tiny-lib"])
    changed = tmp_path / original.name
    root = _write_project(tmp_path / "changed", "tiny-lib", "1.0", ["requests"])
    changed.write_bytes(wheel_of(build(root)).read_bytes())
    result = twine_upload(home, f"{server.url}/legacy/", *ALICE, changed)
    assert result.returncode != 0
    assert "File already exists" in result.stdout + result.stderr
    with server.client() as client:
        stored = client.get(f"/packages/tiny-lib/{original.name}").content
    assert stored == original.read_bytes()


def test_twine_wrong_password_says_so(
    server: MinistryServer, uploaded: dict[str, list[Path]], home: Path
) -> None:
    """A wrong password fails with a message twine prints (it shows the reason phrase)."""
    result = twine_upload(home, f"{server.url}/legacy/", "alice", "wrong", *uploaded["tiny-lib"])
    assert result.returncode != 0
    assert "Invalid or non-existent authentication information" in result.stdout + result.stderr


def test_pip_installs_with_dependency(
    server: MinistryServer, uploaded: dict[str, list[Path]], tmp_path: Path, home: Path
) -> None:
    """pip resolves tiny-app and its private dependency tiny-lib from ``/simple/``."""
    python = new_venv(tmp_path / "venv")
    before = {
        name: server.served(f"/packages/{name}/{wheel_of(files).name}")
        for name, files in uploaded.items()
    }
    result = pip_install(python, home, "--index-url", f"{server.url}/simple/", "tiny-app")
    assert result.returncode == 0, result.stdout + result.stderr
    check = subprocess.run(
        [str(python), "-c", "import tiny_app, tiny_lib; print(tiny_app.VERSION, tiny_lib.VERSION)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert check.stdout.split() == ["2.0", "1.0"]
    for name, files in uploaded.items():
        assert server.served(f"/packages/{name}/{wheel_of(files).name}") == before[name] + 1
    assert server.served("/simple/tiny-app/") >= 1


def test_pip_root_form_index_url(
    server: MinistryServer, uploaded: dict[str, list[Path]], tmp_path: Path, home: Path
) -> None:
    """``pip install -i http://ministry.example:PORT pkg`` works: pages answer at
    ``/<project>/``."""
    python = new_venv(tmp_path / "venv")
    before = server.served("/tiny-app/")
    result = pip_install(python, home, "-i", server.url, "tiny-app")
    assert result.returncode == 0, result.stdout + result.stderr
    assert server.served("/tiny-app/") == before + 1
    assert server.served("/tiny-lib/") >= 1


def test_uv_pip_installs_with_dependency(
    server: MinistryServer, uploaded: dict[str, list[Path]], tmp_path: Path, home: Path
) -> None:
    """uv resolves the same pair; it reads the PEP 658 metadata instead of whole wheels."""
    venv = tmp_path / "venv"
    assert uv(home, "venv", "--python", sys.executable, str(venv)).returncode == 0
    wheel = wheel_of(uploaded["tiny-lib"]).name
    before = server.served(f"/packages/tiny-lib/{wheel}.metadata")
    result = uv(
        home, "pip", "install", "--python", str(venv / "bin" / "python"),
        "--index-url", f"{server.url}/simple/", "--no-cache", "tiny-app",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tiny-lib==1.0" in result.stderr
    assert server.served(f"/packages/tiny-lib/{wheel}.metadata") == before + 1
    assert server.served(f"/packages/tiny-lib/{wheel}") >= 1


def test_uv_publish_with_token_and_check_url(
    server: MinistryServer, token: str, tmp_path: Path, home: Path, unique: str
) -> None:
    """uv publish uploads with a token; re-uploads succeed; ``--check-url`` skips what exists."""
    files = build(_write_project(tmp_path / "p", f"uvpub-{unique}", "0.1", []))
    publish = ["publish", "--publish-url", f"{server.url}/legacy/", "--token", token]
    first = uv(home, *publish, *map(str, files))
    assert first.returncode == 0, first.stdout + first.stderr
    again = uv(home, *publish, *map(str, files))
    assert again.returncode == 0, again.stdout + again.stderr
    posts = server.log().count('"POST /legacy/ HTTP/1.1" 200')
    checked = uv(home, *publish, "--check-url", f"{server.url}/simple/", *map(str, files))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "already exists" in checked.stderr.lower() or "skipping" in checked.stderr.lower()
    assert server.log().count('"POST /legacy/ HTTP/1.1" 200') == posts  # nothing was re-sent


def test_uv_publish_other_bytes_is_refused(
    server: MinistryServer, token: str, tmp_path: Path, home: Path, unique: str
) -> None:
    """uv shows our message for a filename that is taken by other bytes."""
    name = f"uvclash-{unique}"
    first = build(_write_project(tmp_path / "a", name, "0.1", []))
    second = build(_write_project(tmp_path / "b", name, "0.1", ["tiny-lib"]))
    publish = ["publish", "--publish-url", f"{server.url}/legacy/", "--token", token]
    assert uv(home, *publish, *map(str, first)).returncode == 0
    result = uv(home, *publish, str(wheel_of(second)))
    assert result.returncode != 0
    assert "File already exists" in result.stderr


def test_clients_never_fell_back_elsewhere(server: MinistryServer, home: Path) -> None:
    """The isolation holds: pip cannot find a project our server does not have."""
    python = new_venv(home / "venv")
    result = pip_install(python, home, "--index-url", f"{server.url}/simple/", "six")
    assert result.returncode != 0
    assert server.served("/simple/six/", 404) >= 1
    assert run([sys.executable, "-c", "print(1)"], home).returncode == 0
