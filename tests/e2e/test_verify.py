"""``ministry verify``: bad bytes found and quarantined, orphans swept, proxy caches repaired.

Every test damages a real store the way disks and operators do (a flipped byte,
a deleted file, an object overwritten in S3) behind the back of a running
server, then runs the real command next to it and looks at what clients get.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import ALICE, add_user
from support.backends import SeaweedS3
from support.distributions import make_sdist, make_wheel
from support.inprocess import InProcessServer
from support.uploads import post_upload
from support.upstreams import StaticUpstream

# The command and the stores are under test, not a server process: the servers run in
# the test process.
pytestmark = pytest.mark.in_process


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob_path(server: InProcessServer, digest: str) -> Path:
    return server.data / "blobs" / "sha256" / digest[:2] / digest[2:4] / digest


def flip_a_byte(path: Path) -> bytes:
    """Flip the middle byte of a file in place, as a failing disk does; returns the new bytes."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return bytes(data)


def verify(server: InProcessServer, *options: str) -> subprocess.CompletedProcess[str]:
    return server.cli("verify", *options)


def publish(server: InProcessServer, path: Path) -> None:
    with server.client() as client:
        response = post_upload(client, path, auth=ALICE)
    assert response.status_code == 200, response.text


def age(path: Path, seconds: float) -> None:
    """Make a file look ``seconds`` old."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_flipped_byte_in_a_hosted_file_is_quarantined_and_never_served(
    fresh_server: InProcessServer, tmp_path: Path, unique: str
) -> None:
    wheel = make_wheel(tmp_path, unique, "1.0")
    data = wheel.read_bytes()
    publish(fresh_server, wheel)
    url = f"/packages/{unique}/{wheel.name}"
    with fresh_server.client() as client:
        metadata = client.get(url + ".metadata").content
    clean = verify(fresh_server)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "all consistent" in clean.stdout

    stored = blob_path(fresh_server, sha256(data))
    damaged = flip_a_byte(stored)
    blob_path(fresh_server, sha256(metadata)).unlink()
    result = verify(fresh_server)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert f"mismatched: hosted file main/{wheel.name} (sha256 {sha256(data)}): quarantined" in out
    assert f"missing: metadata file main/{wheel.name}.metadata" in out
    assert "restore it from a backup" in out
    assert "2 problems (1 mismatched, 1 missing)" in out

    # The bad bytes are kept aside, out of reach of every URL.
    assert not stored.exists()
    (kept,) = (fresh_server.data / "blobs" / "quarantine").iterdir()
    assert kept.name.startswith(sha256(data)) and kept.read_bytes() == damaged
    with fresh_server.client() as client:
        page = client.get(f"/simple/{unique}/")
        assert wheel.name in page.text  # the filename stays taken
        for path in (url, url + ".metadata"):
            response = client.get(path)
            assert response.status_code == 500, response.text
            assert "missing" in response.text and "backup" in response.text
            assert damaged not in response.content
        # Restoring from a backup: the original bytes back under their key.
        stored.write_bytes(data)
        blob_path(fresh_server, sha256(metadata)).write_bytes(metadata)
        assert client.get(url).content == data
    assert verify(fresh_server).returncode == 0


def test_blobs_no_record_names_are_quarantined_once_past_the_grace_period(
    fresh_server: InProcessServer, tmp_path: Path, unique: str
) -> None:
    """The bytes of deleted files are named by no record: orphans, unless still young."""
    old, young, kept = (make_sdist(tmp_path, unique, version) for version in ("1.0", "2.0", "3.0"))
    for sdist in (old, young, kept):
        publish(fresh_server, sdist)
    allowed = fresh_server.cli("index", "update", "main", "--allow-delete")
    assert allowed.returncode == 0, allowed.stderr
    for sdist in (old, young):
        deleted = fresh_server.cli("delete", unique, "--file", sdist.name)
        assert deleted.returncode == 0, deleted.stderr
    old_sha, young_sha = sha256(old.read_bytes()), sha256(young.read_bytes())
    age(blob_path(fresh_server, old_sha), 2 * 3600)

    result = verify(fresh_server)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"orphan: a blob no record names (sha256 {old_sha}): quarantined" in result.stdout
    assert young_sha not in result.stdout
    assert "1 blobs no record names are younger than the grace period (1h)" in result.stdout
    assert not blob_path(fresh_server, old_sha).exists()
    assert blob_path(fresh_server, young_sha).exists()

    swept = verify(fresh_server, "--grace", "0")
    assert swept.returncode == 1
    assert f"orphan: a blob no record names (sha256 {young_sha})" in swept.stdout
    assert verify(fresh_server).returncode == 0
    assert len(list((fresh_server.data / "blobs" / "quarantine").iterdir())) == 2
    with fresh_server.client() as client:
        response = client.get(f"/packages/{unique}/{kept.name}")
    assert response.content == kept.read_bytes()

    # Blobs an eviction set aside (docs/proxy.md, "Eviction and uploads") are the
    # eviction's business: no orphans, even past the grace period, and a record's
    # blob set aside for a moment is still read, so it is not missing either.
    evicting = fresh_server.data / "blobs" / "evicting"
    evicting.mkdir(exist_ok=True)
    stray = evicting / sha256(b"set aside by an eviction")
    stray.write_bytes(b"set aside by an eviction")
    age(stray, 2 * 3600)
    kept_sha = sha256(kept.read_bytes())
    blob_path(fresh_server, kept_sha).rename(evicting / kept_sha)
    checked = verify(fresh_server, "--grace", "0")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert stray.name not in checked.stdout and kept_sha not in checked.stdout
    assert stray.exists() and (evicting / kept_sha).exists()
    with fresh_server.client() as client:
        response = client.get(f"/packages/{unique}/{kept.name}")
    assert response.content == kept.read_bytes()


def test_a_corrupted_proxied_file_is_fetched_again_from_its_upstream(
    tmp_path: Path, unique: str
) -> None:
    wheel = make_wheel(tmp_path, unique, "1.0", files={f"{unique}/data.bin": os.urandom(200_000)})
    data = wheel.read_bytes()
    url = f"/packages/{unique}/{wheel.name}"
    with StaticUpstream() as upstream:
        upstream.add(wheel)
        fetches = upstream.file_path(wheel.name)
        server = InProcessServer(tmp_path / "data", arguments=["--upstream", upstream.url]).start()
        try:
            with server.client() as client:
                assert client.get(url).content == data
            assert upstream.count(fetches) == 1

            # Without --repair: quarantined, and the cache forgets it; the next client
            # request fetches it again.
            flip_a_byte(blob_path(server, sha256(data)))
            result = verify(server)
            assert result.returncode == 1, result.stdout + result.stderr
            assert f"mismatched: proxy cache upstream/{wheel.name}" in result.stdout
            assert "fetches it again from upstream when asked" in result.stdout
            with server.client() as client:
                assert client.get(url).content == data
            assert upstream.count(fetches) == 2

            # With --repair: fetched at once, checked against the page's hash.
            blob_path(server, sha256(data)).unlink()
            repaired = verify(server, "--repair")
            assert repaired.returncode == 1, repaired.stdout + repaired.stderr
            assert f"missing: proxy cache upstream/{wheel.name}" in repaired.stdout
            assert "fetched again from upstream" in repaired.stdout
            assert upstream.count(fetches) == 3
            assert blob_path(server, sha256(data)).read_bytes() == data
            with server.client() as client:
                assert client.get(url).content == data
            assert upstream.count(fetches) == 3  # served from the cache
            assert verify(server).returncode == 0
        finally:
            server.stop()


def test_a_repair_that_cannot_reach_the_upstream_says_so(tmp_path: Path, unique: str) -> None:
    wheel = make_wheel(tmp_path, unique, "1.0")
    with StaticUpstream() as upstream:
        upstream.add(wheel)
        server = InProcessServer(tmp_path / "data", arguments=["--upstream", upstream.url]).start()
        try:
            with server.client() as client:
                assert client.get(f"/packages/{unique}/{wheel.name}").status_code == 200
            flip_a_byte(blob_path(server, sha256(wheel.read_bytes())))
            upstream.corrupt_files(True)
            result = verify(server, "--repair")
        finally:
            server.stop()
    assert result.returncode == 1
    assert f"mismatched: proxy cache upstream/{wheel.name}" in result.stdout
    assert "fetching it again failed: Upstream sent" in result.stdout
    assert not blob_path(server, sha256(wheel.read_bytes())).exists()


def test_verify_on_redis_and_s3_quarantines_under_the_prefix(
    tmp_path: Path,
    unique: str,
    shared_stores: Callable[[], dict[str, str]],
    seaweed: SeaweedS3,
) -> None:
    environment = shared_stores()
    storage = urlsplit(environment["MINISTRY_STORAGE"])
    bucket, prefix = storage.netloc, storage.path.strip("/")
    server = InProcessServer(tmp_path / "data", environment=environment).start()
    try:
        add_user(server, *ALICE)
        wheel = make_wheel(tmp_path, unique, "1.0")
        data = wheel.read_bytes()
        digest = sha256(data)
        publish(server, wheel)
        assert verify(server).returncode == 0
        client = seaweed.client()
        try:
            key = f"{prefix}/sha256/{digest[:2]}/{digest[2:4]}/{digest}"
            client.put_object(Bucket=bucket, Key=key, Body=data[:-1] + bytes([data[-1] ^ 0xFF]))
        finally:
            client.close()
        result = verify(server, "--index", "main")
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"mismatched: hosted file main/{wheel.name}" in result.stdout
        assert f"quarantined to s3://{bucket}/{prefix}/quarantine/{digest}." in result.stdout
        assert "orphans were not looked for" in result.stdout
        with server.client() as http:
            response = http.get(f"/packages/{unique}/{wheel.name}")
        assert response.status_code == 500
        assert "missing" in response.text
    finally:
        server.stop()
