"""``kill -9`` in the middle of the work that writes files (docs/security.md, "Hostile uploads").

A server is killed while an upload's body streams in, while it fills its proxy
cache from a slow upstream, right after a burst of concurrent uploads got their
answers (the uploads share their disk flushes: each answered one must still be
whole), and a ``ministry mirror`` run is killed halfway through a download. Each
time the dead process's temporary file is there to prove the kill came mid-write
(in the burst, the uploads left unanswered); after a restart it is swept, nothing
partial is listed or served, ``ministry verify --grace 0`` finds the stores
consistent (after the burst, once ``--repair`` has mended what the unanswered
uploads left: orphan blobs, a record without its manifest), and the work done
again succeeds.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from conftest import ALICE, add_user
from support.distributions import make_sdist, make_wheel
from support.inprocess import call_cli
from support.multipart import FileField, encode
from support.server import MinistryServer, ministry_command, run_cli, wait_for
from support.uploads import form_fields, post_upload
from support.upstreams import StaticUpstream

MiB = 1024 * 1024
# The server and the mirror must reach the loopback upstream directly.
DIRECT = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def big_wheel(directory: Path, name: str, size: int) -> Path:
    """A wheel of about ``size`` incompressible bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    module = name.replace("-", "_")
    return make_wheel(directory, name, "1.0", files={f"{module}/data.bin": os.urandom(size)})


def largest(directory: Path, pattern: str) -> int:
    """The size of the largest file matching ``pattern`` (0 if none), racing deletions."""
    sizes = [0]
    for path in directory.glob(pattern) if directory.is_dir() else []:
        try:
            sizes.append(path.stat().st_size)
        except FileNotFoundError:
            continue
    return max(sizes)


def assert_consistent(data: Path) -> None:
    """``ministry verify`` with no grace period: every blob named and sound, no orphan."""
    result = call_cli("verify", "--data", str(data), "--grace", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all consistent" in result.stdout


def test_a_server_killed_while_an_upload_streams_in_keeps_nothing_of_it(
    tmp_path: Path, unique: str
) -> None:
    server = MinistryServer(tmp_path / "data").start()
    add_user(server, *ALICE)
    wheel = big_wheel(tmp_path / "made", unique, 8 * MiB)
    body, content_type = encode(
        form_fields(wheel), [FileField("content", wheel.name, wheel.read_bytes())]
    )
    credentials = base64.b64encode(f"{ALICE[0]}:{ALICE[1]}".encode()).decode()
    head = (
        f"POST /legacy/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        f"Authorization: Basic {credentials}\r\n\r\n"
    )
    spool = server.data / "tmp"
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(head.encode() + body[: len(body) // 2])
        wait_for(lambda: largest(spool, "upload-*") > 2 * MiB, 30, "half the body spooled")
        server.stop(signal.SIGKILL)
    assert list(spool.glob("upload-*")), "the kill should have left the spool behind"

    restarted = MinistryServer(server.data).start()
    try:
        assert not list(spool.glob("upload-*"))
        assert not list((server.data / "blobs" / ".tmp").iterdir())
        with restarted.client() as client:
            assert client.get(f"/simple/{unique}/").status_code == 404
            assert client.get(f"/packages/{unique}/{wheel.name}").status_code == 404
        assert_consistent(server.data)
        with restarted.client() as client:
            assert post_upload(client, wheel, auth=ALICE).status_code == 200
            assert client.get(f"/packages/{unique}/{wheel.name}").content == wheel.read_bytes()
        assert_consistent(server.data)
    finally:
        restarted.stop()


def test_a_server_killed_after_concurrent_uploads_keeps_every_acknowledged_one(
    tmp_path: Path, unique: str
) -> None:
    # New projects (their roles are journalled too), several files of one project
    # (they share fan-out and manifest directories), wheels (with a metadata file).
    made = tmp_path / "made"
    made.mkdir()
    shared = f"{unique}-shared"
    files = {make_wheel(made, f"{unique}-p{n}", "1.0"): f"{unique}-p{n}" for n in range(8)}
    files |= {make_wheel(made, shared, f"1.{n}"): shared for n in range(6)}
    files |= {make_sdist(made, shared, f"1.{n}"): shared for n in range(6)}
    server = MinistryServer(tmp_path / "data").start()
    add_user(server, *ALICE)
    acknowledged: list[Path] = []
    half = threading.Event()

    def upload(path: Path) -> None:
        try:
            with server.client() as client:
                if post_upload(client, path, auth=ALICE).status_code == 200:
                    acknowledged.append(path)
        except httpx.HTTPError:
            return  # cut off by the kill: not acknowledged, so nothing is owed
        if len(acknowledged) >= len(files) // 2:
            half.set()

    with ThreadPoolExecutor(8) as pool:
        for path in files:
            pool.submit(upload, path)
        assert half.wait(60), "half the uploads answered"
        server.stop(signal.SIGKILL)
    assert acknowledged

    restarted = MinistryServer(server.data).start()
    try:
        with restarted.client() as client:
            for path in acknowledged:
                project = files[path]
                listed = client.get(f"/simple/{project}/").text
                assert path.name in listed, path.name
                served = client.get(f"/packages/{project}/{path.name}")
                assert served.content == path.read_bytes(), path.name
                if path.suffix == ".whl":
                    metadata = client.get(f"/packages/{project}/{path.name}.metadata")
                    assert metadata.status_code == 200, path.name
        # What the kill cut off may have left the blobs of an upload that never committed
        # (orphans) or a commit whose manifest was not yet written (unjournalled): never
        # of an upload that was answered 200.
        found = call_cli("verify", "--data", str(server.data), "--grace", "0").stdout
        answered = {path.name for path in acknowledged}
        for line in found.splitlines():
            if line.startswith("unjournalled: file "):
                assert line.split()[2].partition("/")[2] not in answered, line
            elif ":" in line and not line.startswith(("orphan:", "checked ")):
                assert "INFO" in line, line  # progress, no other problem
        # verify quarantined the orphans; --repair writes the missing manifests.
        assert call_cli("verify", "--data", str(server.data), "--repair").returncode in (0, 1)
        assert_consistent(server.data)
    finally:
        restarted.stop()


def test_a_server_killed_while_filling_its_proxy_cache_serves_no_partial_file(
    tmp_path: Path, unique: str
) -> None:
    wheel = big_wheel(tmp_path / "made", unique, 2 * MiB)
    data = wheel.read_bytes()
    url = f"/packages/{unique}/{wheel.name}"
    spool = tmp_path / "data" / "tmp"
    with StaticUpstream() as upstream:
        upstream.add(wheel)
        upstream.pace_files(256 * 1024)
        arguments = ["--upstream", upstream.url]
        server = MinistryServer(tmp_path / "data", arguments=arguments, environment=DIRECT)
        server.start()
        received: list[bytes] = []

        def download() -> None:
            try:
                with server.client() as client, client.stream("GET", url) as response:
                    received.extend(response.iter_raw())
            except httpx.HTTPError:
                pass  # cut off by the kill, as expected

        reader = threading.Thread(target=download, daemon=True)
        reader.start()
        wait_for(lambda: largest(spool, "proxy-*") > 256 * 1024, 60, "the fill halfway")
        server.stop(signal.SIGKILL)
        reader.join(30)
        assert len(b"".join(received)) < len(data)
        assert list(spool.glob("proxy-*")), "the kill should have left the download behind"

        upstream.pace_files(None)
        restarted = MinistryServer(server.data, arguments=arguments, environment=DIRECT).start()
        try:
            assert not list(spool.glob("proxy-*"))
            assert_consistent(server.data)
            with restarted.client() as client:
                assert client.get(url).content == data
            assert upstream.count(upstream.file_path(wheel.name)) == 2
            assert_consistent(server.data)
        finally:
            restarted.stop()


def test_a_killed_mirror_run_leaves_only_complete_files_cached(tmp_path: Path, unique: str) -> None:
    projects = [f"{unique}-a", f"{unique}-b"]
    wheels = [big_wheel(tmp_path / "made", project, 2 * MiB) for project in projects]
    data = tmp_path / "data"
    parts = data / "tmp" / "mirror" / "upstream"
    with StaticUpstream() as upstream:
        for wheel in wheels:
            upstream.add(wheel)
        upstream.pace_files(512 * 1024)
        command = ministry_command(
            "mirror", "--data", str(data), "--upstream", upstream.url, "--connections", "1",
            *projects,
        )  # fmt: skip
        process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **DIRECT},
        )
        try:
            wait_for(lambda: largest(parts, "*.part") > 256 * 1024, 60, "a download halfway")
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        assert largest(parts, "*.part") < 2 * MiB  # kept for the next run to resume
        assert_consistent(data)

        offline = MinistryServer(data, arguments=["--offline"]).start()
        try:
            with offline.client() as client:
                statuses = []
                for project, wheel in zip(projects, wheels, strict=True):
                    response = client.get(f"/upstream/packages/{project}/{wheel.name}")
                    statuses.append(response.status_code)
                    if response.status_code == 200:
                        assert response.content == wheel.read_bytes()
            assert 404 in statuses, statuses  # the file cut off is not served
            assert sorted(p.name for p in (data / "tmp").iterdir()) == ["mirror"]
        finally:
            offline.stop()

        upstream.pace_files(None)
        rerun = run_cli("mirror", "--data", str(data), *projects, environment=DIRECT)
        assert rerun.returncode == 0, rerun.stderr
    assert not list(parts.glob("*.part"))
    assert_consistent(data)
