"""``ministry export --static``: a tree that a plain web server serves to pip."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import ALICE
from support.clients import new_venv, pip_install
from support.distributions import make_wheel
from support.inprocess import call_cli
from support.server import MinistryServer, ministry_command, wait_for
from support.uploads import post_upload
from support.upstreams import StaticUpstream, free_port

# The proxy must reach its loopback upstream directly, whatever this machine's proxy settings.
DIRECT = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


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


@pytest.fixture
def mirror(tmp_path: Path, unique: str) -> Iterator[tuple[StaticUpstream, Path]]:
    """A store whose main index inherits a proxy of a loopback upstream serving three
    versions of a project, of which only 1.0 was ever downloaded (so cached); and the
    upstream, its requests cleared."""
    dists = tmp_path / "dists"
    dists.mkdir()
    # Big enough that a paced upstream takes seconds to send one.
    wheels = [
        make_wheel(dists, unique, v, files={"payload.bin": os.urandom(200_000)})
        for v in ("1.0", "2.0", "3.0")
    ]
    with StaticUpstream() as static:
        for wheel in wheels:
            static.add(wheel)
        data = tmp_path / "data"
        server = MinistryServer(data, arguments=("--upstream", static.url), environment=DIRECT)
        server.start()
        try:
            with server.client() as client:
                client.get(f"/simple/{unique}/")  # the page first, as pip asks
                response = client.get(f"/packages/{unique}/{wheels[0].name}")
                assert response.status_code == 200, response.text
        finally:
            server.stop()
        static.clear_requests()
        yield static, data


def export(data: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return call_cli("export", *arguments, "--data", str(data), environment=DIRECT)


def page_files(tree: Path, project: str) -> list[str]:
    page = json.loads((tree / "simple" / project / "index.json").read_text())
    return [f["filename"] for f in page["files"]]


def test_an_export_fetches_nothing_unless_asked(
    mirror: tuple[StaticUpstream, Path], tmp_path: Path, unique: str
) -> None:
    """By default only the cached file goes in, the others are counted; --fetch-missing
    says what it will fetch, fetches it, and both runs log their progress without a
    terminal."""
    static, data = mirror
    tree = tmp_path / "tree"
    exported = export(data, "--static", str(tree))
    assert exported.returncode == 0, exported.stderr
    assert static.count("/files/") == 0
    assert "1 projects, 1 files" in exported.stdout
    assert "2 proxied files left out as not cached (--fetch-missing" in exported.stdout
    assert page_files(tree, unique) == [f"{unique}-1.0-py3-none-any.whl"]
    assert sorted(p.name for p in (tree / "packages" / unique).iterdir()) == [
        f"{unique}-1.0-py3-none-any.whl"
    ]
    # Not a terminal: log lines instead of a bar.
    assert "ministry.progress: exporting" in exported.stderr
    assert "1/1 files" in exported.stderr

    fetched = export(data, "--static", str(tree), "--fetch-missing")
    assert fetched.returncode == 0, fetched.stderr
    assert "fetching from the upstream: 2 files not cached, of unknown size" in fetched.stderr
    assert "ministry.progress: fetching" in fetched.stderr and "2/2 files" in fetched.stderr
    assert static.count("/files/") == 2
    assert "1 projects, 3 files" in fetched.stdout and "left out" not in fetched.stdout
    assert len(page_files(tree, unique)) == 3

    # What was fetched stays cached: the next export needs the upstream no more.
    static.clear_requests()
    again = export(data, "--static", str(tree), "--fetch-missing")
    assert again.returncode == 0, again.stderr
    assert static.count("/files/") == 0
    assert "fetching from the upstream" not in again.stderr


def test_sigterm_during_an_export_leaves_the_previous_one_whole(
    mirror: tuple[StaticUpstream, Path], tmp_path: Path, unique: str
) -> None:
    """SIGTERM while the missing files trickle in: the temporary tree is removed, the
    earlier export is left as it was, and the exit status says SIGTERM."""
    static, data = mirror
    tree = tmp_path / "tree"
    assert export(data, "--static", str(tree)).returncode == 0
    before = sorted(str(p.relative_to(tree)) for p in tree.rglob("*"))
    static.pace_files(20_000)  # 10 s a file
    log = tmp_path / "export.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            ministry_command("export", "--static", str(tree), "--fetch-missing",
                             "--data", str(data)),
            stdout=output, stderr=subprocess.STDOUT, env={**os.environ, **DIRECT},
        )  # fmt: skip
    try:
        wait_for(lambda: static.count("/files/") > 0, what="the export to start fetching")
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tree.partial")]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 128 + signal.SIGTERM, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".tree")]
    assert sorted(str(p.relative_to(tree)) for p in tree.rglob("*")) == before
    # Nor is the download in progress left in the data directory's temporary files.
    assert not [p for p in (data / "tmp").rglob("*") if p.is_file()]
    assert "Traceback" not in log.read_text()


def test_a_bundle_fetches_the_missing_files_only_when_asked(
    mirror: tuple[StaticUpstream, Path], tmp_path: Path
) -> None:
    static, data = mirror
    bundle = tmp_path / "mirror.bundle"
    exported = export(data, "--bundle", str(bundle), "--index", "upstream")
    assert exported.returncode == 0, exported.stderr
    assert "1 files" in exported.stdout and "2 proxied files left out" in exported.stdout
    assert static.count("/files/") == 0

    fetched = export(data, "--bundle", str(bundle), "--index", "upstream", "--fetch-missing")
    assert fetched.returncode == 0, fetched.stderr
    assert "fetching from the upstream: 2 files not cached" in fetched.stderr
    assert "3 files" in fetched.stdout and "left out" not in fetched.stdout
    assert static.count("/files/") == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".mirror.bundle")]


def test_metadata_files_and_sizes_of_a_ministry_upstream(
    fresh_server: MinistryServer, tmp_path: Path, unique: str
) -> None:
    """Of an upstream that gives sizes and PEP 658 files: the estimate is in bytes, and a
    page names a metadata file only when the export wrote it."""
    wheels = [make_wheel(tmp_path, unique, v) for v in ("1.0", "2.0")]
    for wheel in wheels:
        publish(fresh_server, wheel)
    data = tmp_path / "proxy"
    proxy = MinistryServer(
        data, arguments=("--upstream", f"{fresh_server.url}/simple/"), environment=DIRECT
    ).start()
    try:
        with proxy.client() as client:
            assert client.get(f"/simple/{unique}/").status_code == 200
            assert client.get(f"/packages/{unique}/{wheels[0].name}").status_code == 200
    finally:
        proxy.stop()

    tree = tmp_path / "tree"
    exported = export(data, "--static", str(tree))
    assert exported.returncode == 0, exported.stderr
    (entry,) = json.loads((tree / "simple" / unique / "index.json").read_text())["files"]
    assert entry["filename"] == wheels[0].name
    assert entry.get("core-metadata", False) is False  # its metadata file was never fetched
    assert not (tree / "packages" / unique / f"{wheels[0].name}.metadata").exists()

    fetched = export(data, "--static", str(tree), "--fetch-missing")
    assert fetched.returncode == 0, fetched.stderr
    size = wheels[1].stat().st_size
    assert f"fetching from the upstream: 1 files not cached, {size:,} bytes\n" in fetched.stderr
    files = json.loads((tree / "simple" / unique / "index.json").read_text())["files"]
    assert [f["filename"] for f in files] == [w.name for w in wheels]
    assert all(f["core-metadata"] for f in files)
    for wheel in wheels:
        metadata = tree / "packages" / unique / f"{wheel.name}.metadata"
        assert metadata.read_text().startswith("Metadata-Version:")
