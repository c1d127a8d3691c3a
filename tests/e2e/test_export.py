"""``ministry export --static``: a tree that a plain web server serves to pip."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import ALICE
from support.clients import new_venv, pip_install
from support.distributions import make_wheel
from support.server import MinistryServer, wait_for
from support.uploads import post_upload
from support.upstreams import free_port


def publish(server: MinistryServer, wheel: Path) -> None:
    with server.client() as client:
        response = post_upload(client, wheel, auth=ALICE)
        assert response.status_code == 200, response.text


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def static_server(tmp_path: Path) -> Iterator[tuple[Path, str, Path]]:
    """``python -m http.server`` over an (as yet empty) export directory; its log file."""
    tree, log = tmp_path / "tree", tmp_path / "http.log"
    tree.mkdir()
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
             "--directory", str(tree)],
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(url + "/"), what="http.server")
        yield tree, url, log
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_exported_tree_installs_with_pip(
    fresh_server: MinistryServer,
    static_server: tuple[Path, str, Path],
    tmp_path: Path,
    home: Path,
    unique: str,
) -> None:
    tree, url, log = static_server
    dependency = f"{unique}-lib"
    library = make_wheel(tmp_path, dependency, "1.0")
    publish(fresh_server, library)
    publish(fresh_server, make_wheel(tmp_path, unique, "1.0", requires_dist=[dependency]))
    exported = fresh_server.cli("export", "--static", str(tree))
    assert exported.returncode == 0, exported.stderr
    assert "2 projects, 2 files" in exported.stdout

    page = json.loads((tree / "simple" / unique / "index.json").read_text())
    (entry,) = page["files"]
    assert entry["url"] == f"../../packages/{unique}/{unique}-1.0-py3-none-any.whl"
    metadata = tree / "packages" / unique / f"{unique}-1.0-py3-none-any.whl.metadata"
    assert metadata.read_text().startswith("Metadata-Version:")
    assert entry["core-metadata"] is not False
    # Made for a web server to publish: readable by everyone, unlike the data directory.
    assert all(p.stat().st_mode & 0o004 for p in (tree, *tree.rglob("*")))

    python = new_venv(tmp_path / "venv")
    installed = pip_install(python, home, "--index-url", f"{url}/simple/", unique)
    assert installed.returncode == 0, installed.stderr
    served = log.read_text()
    assert f"GET /packages/{unique}/{unique}-1.0-py3-none-any.whl HTTP" in served
    assert f"GET /packages/{dependency}/{library.name} HTTP" in served

    # A second export replaces the first, with what was published since.
    publish(fresh_server, make_wheel(tmp_path, unique, "2.0", requires_dist=[dependency]))
    assert fresh_server.cli("export", "--static", str(tree)).returncode == 0
    files = json.loads((tree / "simple" / unique / "index.json").read_text())["files"]
    assert [f["filename"] for f in files] == [
        f"{unique}-1.0-py3-none-any.whl",
        f"{unique}-2.0-py3-none-any.whl",
    ]
    assert not [p for p in tree.parent.iterdir() if p.name.startswith(".tree")]


def test_export_refuses_a_directory_with_other_things_in_it(
    fresh_server: MinistryServer, tmp_path: Path
) -> None:
    target = tmp_path / "somewhere"
    target.mkdir()
    (target / "precious.txt").write_text("keep me")
    refused = fresh_server.cli("export", "--static", str(target))
    assert refused.returncode != 0
    assert "not empty" in refused.stderr
    assert (target / "precious.txt").read_text() == "keep me"
