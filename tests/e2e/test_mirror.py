"""``ministry mirror``: a proxy index filled ahead of time, then served without its upstream.

The upstreams are local: another ``ministry serve`` (PEP 691 JSON with PEP 658
metadata files and ETags) and a static tree (HTML only, no metadata files, so
dependencies must be read from the files themselves).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import ALICE
from support.clients import new_venv, pip_install
from support.distributions import make_sdist, make_wheel
from support.inprocess import call_cli
from support.server import MinistryServer, ministry_command, wait_for
from support.uploads import post_upload
from support.upstreams import StaticUpstream

pytestmark = pytest.mark.skipif(
    os.uname().machine != "x86_64", reason="the platform wheels are made for x86_64 Linux"
)


def publish(server: MinistryServer, path: Path) -> None:
    with server.client() as client:
        response = post_upload(client, path, auth=ALICE)
        assert response.status_code == 200, response.text


def fetched(upstream: MinistryServer, filename: str) -> int:
    """How often the upstream sent a file (whole or in part)."""
    pattern = re.compile(rf'"GET \S*/{re.escape(filename)} HTTP/1\.1" 20[06] ')
    return len(pattern.findall(upstream.log()))


def mirror(data: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return call_cli("mirror", "--data", str(data), *arguments)


def page(server: MinistryServer, project: str, index: str = "") -> dict[str, object]:
    prefix = f"/{index}" if index else ""
    with server.client() as client:
        response = client.get(
            f"{prefix}/simple/{project}/",
            headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        )
    assert response.status_code == 200, response.text
    document: dict[str, object] = response.json()
    return document


def filenames(document: dict[str, object]) -> set[str]:
    files = document["files"]
    assert isinstance(files, list)
    return {entry["filename"] for entry in files}


@pytest.fixture
def upstream(fresh_server: MinistryServer) -> MinistryServer:
    return fresh_server


def test_mirror_of_a_closure_for_one_platform_installs_without_the_upstream(
    upstream: MinistryServer, tmp_path: Path, home: Path, unique: str
) -> None:
    app, native, lib, leaf = (f"{unique}-{part}" for part in ("app", "native", "lib", "leaf"))
    windows, old = f"{unique}-windows", f"{unique}-old"
    made = tmp_path / "made"
    made.mkdir()
    requires = [
        f"{native}>=1",
        lib,
        f'{windows}; sys_platform == "win32"',
        f'{old}; python_version < "3.8"',
    ]
    taken = {
        make_wheel(made, app, "1.0", requires_dist=requires).name,
        make_wheel(made, native, "1.0", tag="cp311-cp311-manylinux_2_17_x86_64").name,
        make_wheel(made, lib, "1.0", requires_dist=[leaf]).name,
        make_wheel(made, lib, "2.0", requires_dist=[leaf]).name,
        make_wheel(made, leaf, "1.0").name,
    }
    left = {
        make_sdist(made, app, "1.0").name,
        make_wheel(made, native, "1.0", tag="cp311-cp311-win_amd64").name,
        make_wheel(made, native, "1.0", tag="cp311-cp311-macosx_11_0_arm64").name,
        make_wheel(made, native, "1.0", tag="cp312-cp312-manylinux_2_17_x86_64").name,
        make_wheel(made, lib, "3.0rc1", requires_dist=[leaf]).name,
        make_wheel(made, windows, "1.0").name,
        make_wheel(made, old, "1.0").name,
    }
    for path in sorted(made.iterdir()):
        publish(upstream, path)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"# what the app needs\n{app}==1.0\n")
    data = tmp_path / "mirror"

    result = mirror(
        data, "--upstream", f"{upstream.url}/simple/", "-r", str(requirements), "--with-deps",
        "--python-version", "3.11", "--platform", "manylinux_2_17_x86_64", "--only-binary",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"fetched {len(taken)} files" in result.stdout
    for filename in taken:
        assert fetched(upstream, filename) == 1, filename
        # Installers read PEP 658 files where they are offered: the mirror has them too.
        assert fetched(upstream, filename + ".metadata") == 1, filename
    for filename in left:
        assert fetched(upstream, filename) == 0, filename

    upstream.stop()
    server = MinistryServer(data).start()  # no --upstream: the proxy index is stored
    try:
        python = new_venv(tmp_path / "venv")
        installed = pip_install(
            python, home, "--only-binary", ":all:", "--index-url", f"{server.url}/simple/", app
        )
        assert installed.returncode == 0, installed.stdout + installed.stderr
        for filename in taken - {make_wheel(made, lib, "1.0").name}:
            assert (
                server.served(f"/upstream/packages/{project_of(filename)}/{filename}")
                + (server.served(f"/packages/{project_of(filename)}/{filename}"))
                == 1
            ), filename
    finally:
        server.stop()

    offline = MinistryServer(data, arguments=["--offline"]).start()
    try:
        # Offline, a page offers what the mirror holds, so installers choose among it.
        assert filenames(page(offline, native)) == {
            f"{native.replace('-', '_')}-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
        }
        python = new_venv(tmp_path / "venv-offline")
        installed = pip_install(
            python, home, "--only-binary", ":all:", "--index-url", f"{offline.url}/simple/", app
        )
        assert installed.returncode == 0, installed.stdout + installed.stderr
    finally:
        offline.stop()


def project_of(filename: str) -> str:
    return filename.split("-", 1)[0].replace("_", "-")


def test_a_second_run_fetches_only_what_the_upstream_added(
    upstream: MinistryServer, tmp_path: Path, unique: str
) -> None:
    made = tmp_path / "made"
    made.mkdir()
    first = make_wheel(made, unique, "1.0")
    publish(upstream, first)
    data = tmp_path / "mirror"
    source = ["--upstream", f"{upstream.url}/simple/", unique]
    assert mirror(data, *source).returncode == 0
    assert fetched(upstream, first.name) == 1

    # Nothing changed: the page is revalidated with its ETag, and nothing is fetched.
    again = mirror(data, *source)
    assert again.returncode == 0, again.stderr
    assert "fetched 0 files" in again.stdout
    assert upstream.served(f"/simple/{unique}/", status=304) == 1
    assert fetched(upstream, first.name) == 1

    second = make_wheel(made, unique, "1.1")
    publish(upstream, second)
    added = mirror(data, *source)
    assert added.returncode == 0, added.stderr
    assert "fetched 1 files" in added.stdout
    assert fetched(upstream, first.name) == 1
    assert fetched(upstream, second.name) == 1

    # What a mirror holds is never evicted to keep a cache bound, however small.
    before = json.loads(call_cli("cache", "stats", "--json", "--data", str(data)).stdout)
    assert before["files"] >= 2 and before["indexes"][0]["mirrored_bytes"] > 0
    pruned = call_cli("cache", "prune", "--max-size", "0", "--data", str(data))
    assert pruned.returncode == 0, pruned.stderr
    assert "Evicted 0 files" in pruned.stdout
    after = json.loads(call_cli("cache", "stats", "--json", "--data", str(data)).stdout)
    assert after == before


def test_dry_run_prints_the_files_and_their_size_and_fetches_none(
    upstream: MinistryServer, tmp_path: Path, unique: str
) -> None:
    made = tmp_path / "made"
    made.mkdir()
    wheels = [make_wheel(made, unique, version) for version in ("1.0", "2.0", "3.0")]
    for wheel in wheels:
        publish(upstream, wheel)
    data = tmp_path / "mirror"
    result = mirror(
        data, "--upstream", f"{upstream.url}/simple/", "--newest", "2", "--dry-run", unique
    )
    assert result.returncode == 0, result.stderr
    size = sum(w.stat().st_size for w in wheels[1:])
    assert f"would fetch 2 files ({size:,} bytes)" in result.stdout
    assert f"would fetch {wheels[2].name}" in result.stdout
    assert wheels[0].name not in result.stdout
    assert all(fetched(upstream, w.name) == 0 for w in wheels)


def test_all_mirrors_every_listed_project_with_a_warning(
    upstream: MinistryServer, tmp_path: Path, unique: str
) -> None:
    made = tmp_path / "made"
    made.mkdir()
    wheels = [make_wheel(made, f"{unique}-{n}", "1.0") for n in ("a", "b")]
    sdist = make_sdist(made, f"{unique}-a", "1.0")
    for path in [*wheels, sdist]:
        publish(upstream, path)
    result = mirror(tmp_path / "mirror", "--upstream", f"{upstream.url}/simple/", "--all",
                    "--only-binary")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "terabytes" in result.stderr
    assert all(fetched(upstream, w.name) == 1 for w in wheels)
    assert fetched(upstream, sdist.name) == 0


def test_mistakes_are_refused_with_a_message(fresh_server: MinistryServer, tmp_path: Path) -> None:
    data = tmp_path / "mirror"
    nothing = mirror(data, "--upstream", f"{fresh_server.url}/simple/")
    assert nothing.returncode == 2
    assert "nothing to mirror" in nothing.stderr
    hosted = mirror(data, "--index", "main", "requests")
    assert hosted.returncode == 2
    assert "not a proxy index" in hosted.stderr
    version = mirror(data, "--python-version", "eleven", "requests")
    assert version.returncode == 2
    assert "eleven" in version.stderr
    unknown = mirror(data, "--upstream", f"{fresh_server.url}/simple/", "no-such-project")
    assert unknown.returncode == 1
    assert "no-such-project" in unknown.stderr


def test_a_killed_run_resumes_and_fetches_nothing_twice(tmp_path: Path, unique: str) -> None:
    made = tmp_path / "made"
    made.mkdir()
    big = {
        name: make_wheel(
            made, name, "1.0", requires_dist=deps,
            files={f"{name.replace('-', '_')}/blob.bin": os.urandom(1024 * 1024)},
        )
        for name, deps in (
            (f"{unique}-app", [f"{unique}-dep"]), (f"{unique}-dep", []), (f"{unique}-other", []),
        )
    }  # fmt: skip
    data = tmp_path / "mirror"
    parts = data / "tmp" / "mirror" / "upstream"
    with StaticUpstream() as upstream:
        for path in big.values():
            upstream.add(path)
        upstream.pace_files(512 * 1024)
        command = ministry_command(
            "mirror", "--data", str(data), "--upstream", upstream.url, "--with-deps",
            "--connections", "1", f"{unique}-app", f"{unique}-other",
        )  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:

            def halfway() -> bool:
                assert process.poll() is None, "the mirror run ended before it was killed"
                sizes = [p.stat().st_size for p in parts.glob("*.part")] if parts.is_dir() else []
                return any(size > 256 * 1024 for size in sizes)

            wait_for(halfway, timeout=60, what="a download halfway through")
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        before = {name: upstream.count(upstream.file_path(p.name)) for name, p in big.items()}
        assert sum(before.values()) >= 1
        upstream.clear_requests()
        upstream.pace_files(None)

        rerun = mirror(data, "--upstream", upstream.url, "--with-deps",
                       f"{unique}-app", f"{unique}-other")  # fmt: skip
        assert rerun.returncode == 0, rerun.stderr
        assert "fetched" in rerun.stdout
        asked_before = {upstream.file_path(p.name) for n, p in big.items() if before[n]}
        again = [r for r in upstream.received if r.path.startswith("/files/")]
        for request in again:
            if request.path in asked_before:
                # Asked for before the kill: only the rest of it is asked for now.
                assert re.fullmatch(r"bytes=[1-9]\d*-", request.headers.get("range", "")), request
                assert request.status == 206, request
        assert any("range" in r.headers for r in again), "the interrupted download was not resumed"
    assert not list(parts.glob("*.part"))

    server = MinistryServer(data, arguments=["--offline"]).start()
    try:
        for path in big.values():
            project = path.name.split("-")[0].replace("_", "-")
            with server.client() as client:
                response = client.get(f"/upstream/packages/{project}/{path.name}")
            assert response.status_code == 200
            assert response.content == path.read_bytes()
    finally:
        server.stop()


def test_an_offline_mirror_serves_pages_and_metadata_files(
    upstream: MinistryServer, tmp_path: Path, unique: str
) -> None:
    made = tmp_path / "made"
    made.mkdir()
    wheel = make_wheel(made, unique, "1.0", requires_python=">=3.8")
    publish(upstream, wheel)
    data = tmp_path / "mirror"
    assert mirror(data, "--upstream", f"{upstream.url}/simple/", unique).returncode == 0
    upstream.stop()
    server = MinistryServer(data, arguments=["--offline"]).start()
    try:
        files = page(server, unique)["files"]
        assert isinstance(files, list)
        (entry,) = files
        assert entry["requires-python"] == ">=3.8"
        assert entry["core-metadata"] is not False
        with server.client() as client:
            metadata = client.get(f"/upstream/packages/{unique}/{wheel.name}.metadata")
        assert metadata.status_code == 200
        assert f"Name: {unique}" in metadata.text
    finally:
        server.stop()


def test_a_file_that_does_not_match_its_hash_is_not_kept(tmp_path: Path, unique: str) -> None:
    made = tmp_path / "made"
    made.mkdir()
    wheel = make_wheel(made, unique, "1.0")
    data = tmp_path / "mirror"
    with StaticUpstream() as upstream:
        upstream.add(wheel)
        upstream.corrupt_files(True)
        altered = mirror(data, "--upstream", upstream.url, unique)
        assert altered.returncode == 1
        assert f"failed {wheel.name}: Upstream sent" in altered.stderr
        assert not list((data / "tmp" / "mirror" / "upstream").glob("*.part"))

        upstream.heal()
        healed = mirror(data, "--upstream", upstream.url, unique)
        assert healed.returncode == 0, healed.stderr
        assert "fetched 1 files" in healed.stdout

        upstream.stop()
        # An upstream that cannot be reached fails the run, and says for which project.
        gone = mirror(data, "--upstream", upstream.url, unique, f"{unique}-never-seen")
    assert gone.returncode == 1
    assert f"failed {unique}-never-seen (project page)" in gone.stderr
    assert f"upstream failed for {unique}: its kept page was used" in gone.stderr


def test_all_takes_the_lists_of_every_upstream_each_name_from_where_it_is_routed(
    tmp_path: Path, unique: str
) -> None:
    """``--all`` with two HTTP upstreams, a routed one and a local PEP 503 tree: every
    list's projects are mirrored, a routed name only from its upstream (never the
    higher version the other offers), and a name outside the routed upstream's
    patterns is not taken from its list."""
    made = tmp_path / "made"
    tree = tmp_path / "tree" / "simple"
    public, routed, plain = f"{unique}-public", f"{unique}-corp-lib", f"{unique}-plain"
    local = f"{unique}-local"
    for where in ("a", "corp", "local"):
        (made / where).mkdir(parents=True)
    with StaticUpstream() as a, StaticUpstream() as corp:
        taken = [
            a.add(make_wheel(made / "a", public, "1.0")),
            corp.add(make_wheel(made / "corp", routed, "1.0")),
        ]
        confused = a.add(make_wheel(made / "a", routed, "9.0"))
        outside = corp.add(make_wheel(made / "corp", plain, "1.0"))
        wheel = make_wheel(made / "local", local, "1.0")
        (tree / local).mkdir(parents=True)
        (tree.parent / wheel.name).write_bytes(wheel.read_bytes())
        (tree / local / "index.html").write_text(f'<a href="../../{wheel.name}">{wheel.name}</a>')

        result = mirror(
            tmp_path / "mirror", "--all", "--only-binary",
            "--upstream", a.url,
            "--upstream", f"{corp.url} only={unique}-corp-*",
            "--upstream", tree.as_uri() + "/",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "fetched 3 files" in result.stdout
        for upstream, hosted in ((a, taken[0]), (corp, taken[1])):
            assert upstream.count(upstream.file_path(hosted.filename)) == 1
        assert a.count(a.page_path(routed)) == 0
        assert a.count(a.file_path(confused.filename)) == 0
        assert corp.count(corp.page_path(plain)) == 0
        assert corp.count(corp.file_path(outside.filename)) == 0

    server = MinistryServer(tmp_path / "mirror", arguments=["--offline"]).start()
    try:
        assert filenames(page(server, routed, "upstream")) == {taken[1].filename}
        assert filenames(page(server, local, "upstream")) == {wheel.name}
    finally:
        server.stop()


def test_all_mirrors_what_the_others_list_when_an_upstream_is_down(
    tmp_path: Path, unique: str
) -> None:
    """An upstream whose list cannot be read fails the run, named, after the projects
    of the others were mirrored."""
    made = tmp_path / "made"
    made.mkdir()
    with StaticUpstream() as up, StaticUpstream() as down:
        hosted = up.add(make_wheel(made, f"{unique}-up", "1.0"))
        down.add(make_wheel(made, f"{unique}-down", "1.0"))
        down.offline()
        result = mirror(tmp_path / "mirror", "--all", "--upstream", down.url, "--upstream", up.url)
        assert result.returncode == 1
        assert f"failed {down.url} (project list)" in result.stderr
        assert "fetched 1 files" in result.stdout
        assert up.count(up.file_path(hosted.filename)) == 1
