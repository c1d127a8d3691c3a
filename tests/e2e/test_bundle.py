"""``ministry export --bundle`` and ``ministry import --bundle``: an index carried to a server
that cannot reach the first one, verified on the way in, installed from with pip."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ALICE
from support.clients import new_venv, pip_install
from support.distributions import make_sdist, make_wheel
from support.inprocess import call_cli
from support.server import MinistryServer
from support.uploads import post_upload
from support.upstreams import StaticUpstream

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
# The proxy must reach its loopback upstream directly, whatever this machine's proxy settings.
DIRECT = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def ministry(data: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """``python -m ministry`` against a data directory, without a server."""
    return call_cli(*arguments, "--data", str(data))


def versions(python: Path, *modules: str) -> list[str]:
    """The VERSION of each module, imported in the venv of ``python``."""
    code = f"import {', '.join(modules)}; print({', '.join(m + '.VERSION' for m in modules)})"
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return result.stdout.split()


def simple_files(server: MinistryServer, project: str) -> dict[str, object]:
    """A project's files on its PEP 691 page, as {filename: yanked}."""
    with server.client() as client:
        response = client.get(f"/simple/{project}/", headers={"Accept": SIMPLE_JSON})
    assert response.status_code == 200, response.text
    return {f["filename"]: f["yanked"] for f in response.json()["files"]}


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[MinistryServer]]:
    """Servers a test starts; each is stopped at the end if it still runs."""
    started: list[MinistryServer] = []
    yield started
    for server in started:
        if server.process is not None and server.process.poll() is None:
            server.stop()


def start(servers: list[MinistryServer], data: Path, *arguments: str) -> MinistryServer:
    server = MinistryServer(data, arguments=arguments, environment=DIRECT).start()
    servers.append(server)
    return server


def test_a_bundle_moves_files_and_yanks_to_a_new_server(
    fresh_server: MinistryServer,
    servers: list[MinistryServer],
    tmp_path: Path,
    home: Path,
    unique: str,
) -> None:
    """Uploaded files, an sdist and a yank travel in a bundle; pip installs from the new server,
    and importing the bundle again changes nothing."""
    app, lib = f"{unique}-app", f"{unique}-lib"
    dists = tmp_path / "dists"
    dists.mkdir()
    files = [
        make_wheel(dists, lib, "1.0"),
        make_sdist(dists, lib, "1.0"),
        make_wheel(dists, lib, "2.0"),
        make_wheel(dists, app, "1.0", requires_dist=[lib]),
    ]
    with fresh_server.client() as client:
        for path in files:
            assert post_upload(client, path, auth=ALICE).status_code == 200
    yanked = fresh_server.cli("yank", lib, "2.0", "--reason", "broken build")
    assert yanked.returncode == 0, yanked.stderr

    bundle = tmp_path / "carry" / "main.bundle"
    bundle.parent.mkdir()
    exported = fresh_server.cli("export", "--bundle", str(bundle))  # while the server runs
    assert exported.returncode == 0, exported.stderr
    assert f"4 files ({sum(p.stat().st_size for p in files):,} bytes)" in exported.stdout
    assert [p.name for p in bundle.parent.iterdir()] == ["main.bundle"]
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile(names[0]).read())  # type: ignore[union-attr]
    assert names[0] == "ministry-bundle.json"
    assert manifest["format"] == "ministry-bundle" and manifest["version"] == 1
    assert manifest["index"] == {"name": "main", "kind": "hosted", "description": ""}
    by_name = {f["filename"]: f for f in manifest["files"]}
    assert by_name[files[2].name]["yanked"] == "broken build"
    assert by_name[files[1].name]["metadata_sha256"] is None
    assert f"files/{files[0].name}.metadata" in names

    target = tmp_path / "air-gapped"
    imported = ministry(target, "import", "--bundle", str(bundle))
    assert imported.returncode == 0, imported.stderr
    assert "4 published, 0 already present, 1 yanked" in imported.stderr
    again = ministry(target, "import", "--bundle", str(bundle))
    assert again.returncode == 0, again.stderr
    assert "0 published, 4 already present, 0 yanked" in again.stderr
    assert not list((target / "tmp").iterdir())

    server = start(servers, target)
    assert simple_files(server, lib) == {
        files[0].name: False,
        files[1].name: False,
        files[2].name: "broken build",
    }
    python = new_venv(tmp_path / "venv")
    installed = pip_install(python, home, "--index-url", f"{server.url}/simple/", app)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert versions(python, app.replace("-", "_"), lib.replace("-", "_")) == ["1.0", "1.0"]
    assert server.served(f"/packages/{app}/{files[3].name}") == 1
    assert server.served(f"/packages/{lib}/{files[0].name}") == 1
    with server.client() as client:
        assert client.get(f"/packages/{lib}/{files[1].name}").content == files[1].read_bytes()


def test_a_bundle_of_a_mirror_serves_the_cached_files_without_the_upstream(
    servers: list[MinistryServer], tmp_path: Path, home: Path, unique: str
) -> None:
    """A proxy index's cached files (and only those) travel; the new index is made a base of
    main, so /simple/ installs what the mirror served, with the upstream gone."""
    app, lib = f"{unique}-app", f"{unique}-lib"
    dists = tmp_path / "dists"
    dists.mkdir()
    app_wheel = make_wheel(dists, app, "1.0", requires_dist=[f"{lib}<2"])
    lib_wheel = make_wheel(dists, lib, "1.0")
    with StaticUpstream() as static:
        for path in (app_wheel, lib_wheel, make_wheel(dists, lib, "2.0")):
            static.add(path)
        mirror = start(servers, tmp_path / "mirror", "--upstream", static.url)
        python = new_venv(tmp_path / "venv1")
        installed = pip_install(python, home, "--index-url", f"{mirror.url}/simple/", app)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        mirror.stop()
        static.clear_requests()
        bundle = tmp_path / "mirror.bundle"
        exported = ministry(mirror.data, "export", "--bundle", str(bundle), "--index", "upstream")
        assert exported.returncode == 0, exported.stderr
        assert "2 files" in exported.stdout
        assert "1 proxied files left out as not cached" in exported.stdout
        assert static.requests == []  # nothing was fetched for the bundle

    target = tmp_path / "air-gapped"
    imported = ministry(target, "import", "--bundle", str(bundle))
    assert imported.returncode == 0, imported.stderr
    assert "created the hosted index 'upstream'" in imported.stderr
    assert "added 'upstream' as the last base of 'main'" in imported.stderr
    assert "2 published" in imported.stderr
    shown = ministry(target, "index", "show", "main")
    assert json.loads(shown.stdout)["bases"] == ["upstream"]

    server = start(servers, target)
    python = new_venv(tmp_path / "venv2")
    installed = pip_install(python, home, "--index-url", f"{server.url}/simple/", app)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert versions(python, app.replace("-", "_"), lib.replace("-", "_")) == ["1.0", "1.0"]
    assert server.served(f"/packages/{lib}/{lib_wheel.name}") == 1
    assert server.served(f"/packages/{app}/{app_wheel.name}") == 1


@pytest.fixture
def bundle(tmp_path: Path, unique: str) -> Path:
    """A bundle of two wheels and an sdist, made with the CLI alone."""
    source = tmp_path / "source"
    source.mkdir()
    make_wheel(source, f"{unique}-lib", "1.0")
    make_sdist(source, f"{unique}-lib", "1.0")
    make_wheel(source, f"{unique}-app", "1.0")
    data = tmp_path / "origin"
    assert ministry(data, "import", str(source)).returncode == 0
    path = tmp_path / "origin.bundle"
    exported = ministry(data, "export", "--bundle", str(path))
    assert exported.returncode == 0, exported.stderr
    return path


def rewritten(
    source: Path,
    target: Path,
    change: dict[str, bytes] | None = None,
    extra: tarfile.TarInfo | None = None,
) -> Path:
    """A copy of a bundle with some members' bytes replaced (same size) or one member added."""
    with tarfile.open(source) as old, tarfile.open(target, "w") as new:
        for member in old:
            data = old.extractfile(member).read()  # type: ignore[union-attr]
            new.addfile(member, io.BytesIO((change or {}).get(member.name, data)))
        if extra is not None:
            new.addfile(extra, io.BytesIO(b"x" * extra.size) if extra.isreg() else None)
    return target


def projects(data: Path) -> list[str]:
    """The projects a data directory's default index shows, through a server."""
    server = MinistryServer(data).start()
    try:
        with server.client() as client:
            page = client.get("/simple/", headers={"Accept": SIMPLE_JSON}).json()
    finally:
        server.stop()
    return [p["name"] for p in page["projects"]]


def test_a_damaged_bundle_imports_nothing(bundle: Path, tmp_path: Path, unique: str) -> None:
    """One flipped byte in one file fails the import before any file is published."""
    with tarfile.open(bundle) as tar:
        wheel = next(m for m in tar.getmembers() if m.name.endswith("-none-any.whl"))
        data = bytearray(tar.extractfile(wheel).read())  # type: ignore[union-attr]
    data[len(data) // 2] ^= 0x01
    tampered = rewritten(bundle, tmp_path / "tampered.bundle", {wheel.name: bytes(data)})
    target = tmp_path / "target"
    refused = ministry(target, "import", "--bundle", str(tampered))
    assert refused.returncode == 2, refused.stderr
    assert wheel.name.removeprefix("files/") in refused.stderr
    assert "does not match the sha256" in refused.stderr
    assert "Nothing was imported" in refused.stderr

    link = tarfile.TarInfo("files/evil.whl")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    escape = tarfile.TarInfo("files/../../escape-1.0-py3-none-any.whl")
    escape.size = 3
    for name, extra, words in (
        ("link", link, "not a plain file"),
        ("escape", escape, "not a safe file name"),
    ):
        bad = rewritten(bundle, tmp_path / f"{name}.bundle", extra=extra)
        refused = ministry(target, "import", "--bundle", str(bad))
        assert refused.returncode == 2, refused.stderr
        assert words in refused.stderr
    assert projects(target) == []


def test_what_is_not_a_bundle_is_refused_clearly(bundle: Path, tmp_path: Path) -> None:
    """Another file, another manifest version, a proxy target, or a bad command line."""
    target = tmp_path / "target"
    text = tmp_path / "notes.txt"
    text.write_text("not a tar file\n" * 100)
    refused = ministry(target, "import", "--bundle", str(text))
    assert refused.returncode == 2
    assert "is not a ministry bundle (not a tar file)" in refused.stderr

    with tarfile.open(bundle) as tar:
        manifest = json.loads(tar.extractfile("ministry-bundle.json").read())  # type: ignore[union-attr]
    manifest["version"] = 2
    future = tmp_path / "future.bundle"
    with tarfile.open(future, "w") as tar:
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo("ministry-bundle.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    refused = ministry(target, "import", "--bundle", str(future))
    assert refused.returncode == 2
    assert "ministry bundle of version 2" in refused.stderr

    plain = tmp_path / "plain.tar"
    with tarfile.open(plain, "w") as tar:
        tar.add(text, arcname="notes.txt")
    refused = ministry(target, "import", "--bundle", str(plain))
    assert refused.returncode == 2
    assert "does not start with a manifest" in refused.stderr

    created = ministry(target, "index", "create", "mirror", "--upstream", "http://127.0.0.1:9/")
    assert created.returncode == 0, created.stderr
    refused = ministry(target, "import", "--bundle", str(bundle), "--index", "mirror")
    assert refused.returncode == 2
    assert "proxy index" in refused.stderr and "--index" in refused.stderr

    both = ministry(target, "export", "--static", str(tmp_path / "tree"), "--bundle", "x")
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr
    assert ministry(target, "export").returncode == 2
    for arguments in ((), (str(tmp_path), "--bundle", str(bundle))):
        wrong = ministry(target, "import", *arguments)
        assert wrong.returncode == 2
        assert "give a directory or --bundle FILE" in wrong.stderr
    assert projects(target) == []
