"""``serve --storage-redirect``: downloads go straight to S3 through pre-signed URLs."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from conftest import ALICE, add_user
from support.clients import new_venv, pip_install, uv
from support.distributions import make_wheel
from support.server import MinistryServer, run_cli
from support.uploads import post_upload


@pytest.fixture
def redirecting(
    tmp_path: Path, shared_stores: Callable[[], dict[str, str]]
) -> Iterator[MinistryServer]:
    server = MinistryServer(
        tmp_path / "data", arguments=["--storage-redirect"], environment=shared_stores()
    ).start()
    add_user(server, *ALICE)
    yield server
    server.stop()


def test_downloads_redirect_to_s3_with_the_right_bytes_and_headers(
    redirecting: MinistryServer, tmp_path: Path, unique: str
) -> None:
    wheel = make_wheel(tmp_path, unique, "1.0")
    with redirecting.client() as client:
        assert post_upload(client, wheel, auth=ALICE).status_code == 200
        answer = client.get(f"/packages/{unique}/{wheel.name}")
        metadata_answer = client.get(f"/packages/{unique}/{wheel.name}.metadata")
    assert answer.status_code == 302
    endpoint = redirecting.environment["AWS_ENDPOINT_URL"]
    assert answer.headers["Location"].startswith(endpoint + "/")
    assert "X-Amz-Signature=" in answer.headers["Location"]
    assert "Cache-Control" not in answer.headers  # the URL expires: nobody may keep it

    with httpx.Client(trust_env=False, timeout=30) as s3:
        direct = s3.get(answer.headers["Location"])
        assert direct.status_code == 200
        assert direct.content == wheel.read_bytes()
        assert direct.headers["Content-Type"] == "application/octet-stream"
        assert wheel.name in direct.headers["Content-Disposition"]
        ranged = s3.get(answer.headers["Location"], headers={"Range": "bytes=0-3"})
        assert ranged.status_code == 206
        assert ranged.content == b"PK\x03\x04"
        metadata = s3.get(metadata_answer.headers["Location"])
    assert metadata.text.startswith("Metadata-Version:")
    assert metadata.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_conditional_requests_are_answered_without_a_redirect(
    redirecting: MinistryServer, tmp_path: Path, unique: str
) -> None:
    wheel = make_wheel(tmp_path, unique, "1.0")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    with redirecting.client() as client:
        assert post_upload(client, wheel, auth=ALICE).status_code == 200
        answer = client.get(
            f"/packages/{unique}/{wheel.name}", headers={"If-None-Match": f'"{digest}"'}
        )
    assert answer.status_code == 304


def test_pip_and_uv_install_through_the_redirect(
    redirecting: MinistryServer, tmp_path: Path, home: Path, unique: str
) -> None:
    wheel = make_wheel(tmp_path, unique, "1.0")
    with redirecting.client() as client:
        assert post_upload(client, wheel, auth=ALICE).status_code == 200
    index = f"{redirecting.url}/simple/"

    python = new_venv(tmp_path / "pip-venv")
    result = pip_install(python, home, "--index-url", index, unique)
    assert result.returncode == 0, result.stdout + result.stderr

    venv = tmp_path / "uv-venv"
    assert uv(home, "venv", "--python", sys.executable, str(venv)).returncode == 0
    result = uv(
        home, "pip", "install", "--python", str(venv / "bin" / "python"),
        "--index-url", index, "--no-cache", unique,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert redirecting.served(f"/packages/{unique}/{wheel.name}", 302) >= 2


def test_private_files_are_only_redirected_for_readers(
    redirecting: MinistryServer, tmp_path: Path, unique: str
) -> None:
    """The pre-signed URL is the key to the bytes: only someone allowed to read gets one."""
    index = f"team/{unique}"
    result = redirecting.cli("index", "create", index, "--private", "--uploaders", "alice")
    assert result.returncode == 0, result.stderr
    wheel = make_wheel(tmp_path, unique, "1.0")
    path = f"/{index}/packages/{unique}/{wheel.name}"
    with redirecting.client() as client:
        assert post_upload(client, wheel, auth=ALICE, url=f"/{index}/legacy/").status_code == 200
        assert client.get(path).status_code == 401
        assert "Location" not in client.get(path).headers
        assert client.get(path, auth=ALICE).status_code == 302


def test_redirect_needs_an_s3_store(tmp_path: Path) -> None:
    result = run_cli("serve", "--port", "0", "--data", str(tmp_path), "--storage-redirect")
    assert result.returncode == 2
    assert "--storage-redirect needs an S3 store" in result.stderr
    assert not (tmp_path / "ministry.sqlite3").exists()


def test_accel_redirect_needs_a_file_store(
    tmp_path: Path, shared_stores: Callable[[], dict[str, str]]
) -> None:
    """nginx cannot read objects in a bucket: the flag is refused before anything starts."""
    result = run_cli(
        "serve", "--port", "0", "--data", str(tmp_path), "--accel-redirect", "/_blobs/",
        environment=shared_stores(),
    )  # fmt: skip
    assert result.returncode == 2
    assert "--accel-redirect needs a file store" in result.stderr
