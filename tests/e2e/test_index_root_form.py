"""``pip install -i http://ministry.example:PORT/<index> pkg`` and uv's ``--index-url``
with the same root form, for an index with a one-part name and a private one with a slash; and twine
uploading to ``http://ministry.example:PORT/<index>``, without the slash.

pip and uv append ``/<project>/`` to the index URL, so they read ``/<index>/<project>/``
rather than ``/<index>/simple/<project>/``. The server's access log shows that the
pages and the files came from there.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ALICE
from support.clients import new_venv, pip_install, twine_upload, uv
from support.distributions import make_wheel
from support.inprocess import InProcessServer
from support.server import Server
from support.uploads import post_upload

#: (index, what its URL needs): ``solo`` is public, ``team/dev`` private to alice.
INDEXES = [("solo", None), ("team/dev", ALICE)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``root-lib`` in ``solo``; ``root-app`` (needing root-lib) in ``solo`` and in private
    ``team/dev``, which inherits solo."""
    root = tmp_path_factory.mktemp("root-form")
    server = InProcessServer(root / "data").start()
    assert server.cli("user", "add", ALICE[0], "--password-stdin", stdin=ALICE[1]).returncode == 0
    for arguments in (
        ("solo", "--uploaders", "alice"),
        ("team/dev", "--bases", "solo", "--uploaders", "alice", "--private"),
    ):
        result = server.cli("index", "create", *arguments)
        assert result.returncode == 0, result.stderr
    with server.client() as client:
        for index, name, version, needs in (
            ("solo", "root-lib", "1.0", []),
            ("solo", "root-app", "1.0", ["root-lib>=1.0"]),
            ("team/dev", "root-app", "2.0", ["root-lib>=1.0"]),
        ):
            where = root / index.replace("/", "-")
            where.mkdir(exist_ok=True)
            wheel = make_wheel(where, name, version, requires_dist=needs)
            response = post_upload(client, wheel, auth=ALICE, url=f"/{index}/")
            assert response.status_code == 200, response.text
    yield server
    server.stop()


def index_url(server: Server, index: str, user: tuple[str, str] | None) -> str:
    """The root form of the index, with credentials in it when it needs them."""
    host = server.url.removeprefix("http://")
    credentials = f"{user[0]}:{user[1]}@" if user else ""
    return f"http://{credentials}{host}/{index}"


def wheel(name: str, version: str) -> str:
    return f"{name.replace('-', '_')}-{version}-py3-none-any.whl"


def expected(index: str) -> dict[str, str]:
    """The file of each project that the index offers."""
    return {"root-app": "2.0" if index == "team/dev" else "1.0", "root-lib": "1.0"}


def served(server: Server, index: str) -> dict[str, int]:
    """How often each page and file of the install was sent under the root form."""
    paths = [f"/{index}/{name}/" for name in expected(index)]
    paths += [f"/{index}/packages/{n}/{wheel(n, v)}" for n, v in expected(index).items()]
    return {path: server.served(path) for path in paths}


def versions(home: Path, python: Path) -> list[str]:
    """The installed root-app and root-lib, as ``name==version``."""
    result = uv(home, "pip", "freeze", "--python", str(python))
    assert result.returncode == 0, result.stderr
    return sorted(line for line in result.stdout.split() if line.startswith("root-"))


@pytest.mark.parametrize(("index", "user"), INDEXES)
def test_pip_installs_from_the_root_form(
    server: Server, tmp_path: Path, home: Path, index: str, user: tuple[str, str] | None
) -> None:
    """pip reads ``/<index>/root-app/`` and ``/<index>/root-lib/`` and gets both wheels."""
    python = new_venv(tmp_path / "venv")
    before = served(server, index)
    result = pip_install(python, home, "-i", index_url(server, index, user), "root-app")
    assert result.returncode == 0, result.stdout + result.stderr
    assert versions(home, python) == [f"{n}=={v}" for n, v in expected(index).items()]
    after = served(server, index)
    assert all(after[path] > before[path] for path in after), (before, after)


@pytest.mark.parametrize(("index", "user"), INDEXES)
def test_uv_installs_from_the_root_form(
    server: Server, tmp_path: Path, home: Path, index: str, user: tuple[str, str] | None
) -> None:
    """uv does the same through ``--index-url``."""
    venv = tmp_path / "venv"
    assert uv(home, "venv", "--python", sys.executable, str(venv)).returncode == 0
    python = venv / "bin" / "python"
    before = served(server, index)
    result = uv(
        home, "pip", "install", "--python", str(python), "--no-cache",
        "--index-url", index_url(server, index, user), "root-app",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert versions(home, python) == [f"{n}=={v}" for n, v in expected(index).items()]
    after = served(server, index)
    assert all(after[path] > before[path] for path in after), (before, after)


@pytest.mark.parametrize("index", ["solo", "team/dev"])
def test_twine_uploads_to_the_index_url_without_a_slash(
    server: Server, tmp_path: Path, home: Path, index: str
) -> None:
    """``twine upload --repository-url http://ministry.example:PORT/<index>`` publishes there."""
    name = "bare-" + index.replace("/", "-")
    made = make_wheel(tmp_path, name, "1.0")
    result = twine_upload(home, f"{server.url}/{index}", *ALICE, made)
    assert result.returncode == 0, result.stdout + result.stderr
    with server.client() as client:
        page = client.get(f"/{index}/{name}/", auth=ALICE)
    assert made.name in page.text
