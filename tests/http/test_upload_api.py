"""The legacy upload API over raw HTTP: every refusal is a clear 4xx that leaves nothing behind.

docs/protocol.md, "Uploads", and docs/security.md, "Hostile uploads".
"""

from __future__ import annotations

import base64
import hashlib
import io
import random
import socket
import zipfile
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from conftest import ALICE
from support.distributions import make_sdist, make_wheel, metadata_text
from support.inprocess import InProcessServer
from support.multipart import FileField, encode
from support.server import Server
from support.uploads import form_fields, post_upload

DIGEST_MISMATCH = "The digest supplied does not match a digest calculated from the uploaded file."
UV_ACCEPT = "application/json;q=0.9, text/plain;q=0.8, text/html;q=0.7"


@pytest.fixture(params=["sqlite+file", pytest.param("redis+s3", marks=pytest.mark.slow)])
def server(request: pytest.FixtureRequest, server: Server) -> Server:
    """Every test here runs on the local stores and on the shared ones (Redis and S3)."""
    if request.param == "sqlite+file":
        return server
    shared: Server = request.getfixturevalue("shared_server")
    return shared


@pytest.fixture
def token(server: Server) -> str:
    """A new API token of alice on whichever server the test runs against."""
    result = server.cli("token", "create", "alice", "--description", "upload tests")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _on_shared_stores(server: Server) -> bool:
    return "MINISTRY_STORAGE" in server.environment


def store_state(server: Server) -> tuple[object, ...]:
    """Everything an upload could change: blobs, temporary files and the serial."""
    data = server.data
    temporary = sorted(str(p) for p in (data / "tmp").iterdir())
    if _on_shared_stores(server):
        blobs = _s3_keys(server.environment)
    else:
        blobs = sorted(str(p) for p in (data / "blobs" / "sha256").rglob("*") if p.is_file())
        temporary += sorted(str(p) for p in (data / "blobs" / ".tmp").iterdir())
    with server.client() as client:
        serial = client.get("/simple/").headers["X-PyPI-Last-Serial"]
    return blobs, temporary, serial


def _s3_keys(environment: dict[str, str]) -> list[str]:
    """Every object under the server's S3 prefix, read as any S3 client would."""
    bucket, _, prefix = environment["MINISTRY_STORAGE"].removeprefix("s3://").partition("/")
    client = boto3.client(
        "s3",
        endpoint_url=environment["AWS_ENDPOINT_URL"],
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        region_name=environment["AWS_REGION"],
    )
    try:
        keys: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return sorted(keys)
    finally:
        client.close()


@pytest.fixture
def unchanged(server: Server) -> Callable[[], None]:
    """Call at the end of a test to assert the store is as it was at its start."""
    before = store_state(server)
    return lambda: _assert_same(before, store_state(server))


def _assert_same(before: tuple[object, ...], after: tuple[object, ...]) -> None:
    assert after == before


def refused(response: object, status: int, message: str) -> None:
    """The status, and the message in the reason phrase and in the body (twine shows the reason)."""
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert message in response.reason_phrase  # type: ignore[attr-defined]
    assert message in response.text  # type: ignore[attr-defined]


def test_upload_without_credentials_is_401(
    server: Server, tmp_path: Path, unique: str, unchanged: Callable[[], None]
) -> None:
    """docs/protocol.md, "Authentication": 401 with a Basic challenge, nothing stored."""
    wheel = make_wheel(tmp_path, unique, "1.0")
    with server.client() as client:
        response = post_upload(client, wheel, auth=None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    unchanged()


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic " + base64.b64encode(b"alice:wrong-password").decode(),
        "Basic " + base64.b64encode(b"nobody:alice-password-1").decode(),
        "Basic " + base64.b64encode(b"__token__:mop_0000000000000000_" + b"a" * 43).decode(),
        "Basic " + base64.b64encode(b"__token__:not-a-token").decode(),
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "Basic " + base64.b64encode(b"alice:").decode(),
        "Basic " + "A" * 16000,
        "Bearer something",
        "Basic",
    ],
)
def test_bad_credentials_are_401_never_500(
    server: Server,
    tmp_path: Path,
    unique: str,
    authorization: str,
    unchanged: Callable[[], None],
) -> None:
    """docs/security.md, "Credentials": wrong, unknown and malformed credentials are 401 with one
    message."""
    wheel = make_wheel(tmp_path, unique, "1.0")
    body, content_type = encode(
        form_fields(wheel), [FileField("content", wheel.name, wheel.read_bytes())]
    )
    with server.client() as client:
        response = client.post(
            "/legacy/",
            content=body,
            headers={"Content-Type": content_type, "Authorization": authorization},
        )
    assert response.status_code == 401, response.text
    assert "WWW-Authenticate" in response.headers
    unchanged()


def test_unknown_user_and_wrong_password_read_the_same(server: Server, tmp_path: Path) -> None:
    """docs/security.md, "Credentials": no user enumeration through different messages."""
    wheel = make_wheel(tmp_path, "enumeration", "1.0")
    with server.client() as client:
        wrong = post_upload(client, wheel, auth=("alice", "not-her-password"))
        unknown = post_upload(client, wheel, auth=("mallory", "not-her-password"))
    assert (wrong.status_code, wrong.text) == (unknown.status_code, unknown.text)


def test_token_upload(server: Server, token: str, tmp_path: Path, unique: str) -> None:
    """docs/protocol.md, "Authentication": ``__token__`` with an API token uploads."""
    wheel = make_wheel(tmp_path, unique, "1.0")
    with server.client() as client:
        response = post_upload(client, wheel, auth=("__token__", token))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("url", ["/", "/dist", "/legacy", "/legacy/"])
def test_every_upload_url_answers_in_place(
    server: Server, tmp_path: Path, unique: str, url: str
) -> None:
    """docs/protocol.md, "Upload URLs": uploads are never redirected, whatever the spelling."""
    wheel = make_wheel(tmp_path, f"{unique}-{url.strip('/') or 'root'}", "1.0")
    with server.client() as client:
        response = post_upload(client, wheel, auth=ALICE, url=url)
    assert response.status_code == 200, response.text


def test_identical_reupload_is_200_and_changes_nothing(
    server: Server, tmp_path: Path, unique: str
) -> None:
    """docs/protocol.md, "Duplicates": retrying an identical upload is a no-op that answers 200."""
    wheel = make_wheel(tmp_path, unique, "1.0")
    with server.client() as client:
        assert post_upload(client, wheel, auth=ALICE).status_code == 200
        before = store_state(server)
        again = post_upload(client, wheel, auth=ALICE)
    assert again.status_code == 200
    assert store_state(server) == before


def test_same_filename_other_bytes_is_file_already_exists(
    server: Server, tmp_path: Path, unique: str
) -> None:
    """docs/protocol.md, "Duplicates": 400 starting "File already exists"; the original stays."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = make_wheel(tmp_path / "a", unique, "1.0")
    second = make_wheel(tmp_path / "b", unique, "1.0", summary="other bytes")
    with server.client() as client:
        assert post_upload(client, first, auth=ALICE).status_code == 200
        before = store_state(server)
        response = post_upload(client, second, auth=ALICE)
        stored = client.get(f"/packages/{unique}/{first.name}").content
    refused(response, 400, "File already exists")
    assert response.reason_phrase.startswith("File already exists")
    assert response.text.startswith("400 File already exists")
    assert stored == first.read_bytes()
    assert store_state(server) == before


def test_same_bytes_under_another_filename_is_refused(
    server: Server, tmp_path: Path, unique: str
) -> None:
    """docs/security.md, "Hostile uploads": the same content under a second (valid) filename is a
    duplicate."""
    wheel = make_wheel(tmp_path, unique, "1.0")
    with_build_tag = tmp_path / wheel.name.replace("-1.0-", "-1.0-1-")
    with_build_tag.write_bytes(wheel.read_bytes())
    with server.client() as client:
        assert post_upload(client, wheel, auth=ALICE).status_code == 200
        response = post_upload(client, with_build_tag, auth=ALICE)
    refused(response, 400, "File already exists")
    assert wheel.name in response.text


def test_second_sdist_of_a_release_is_refused(server: Server, tmp_path: Path, unique: str) -> None:
    """docs/protocol.md, "Duplicates": one sdist per release; ``1.0`` and ``1.0.0`` are one
    release."""
    first = make_sdist(tmp_path, unique, "1.0")
    second = make_sdist(tmp_path, unique, "1.0.0")
    with server.client() as client:
        assert post_upload(client, first, auth=ALICE).status_code == 200
        response = post_upload(client, second, auth=ALICE)
    refused(response, 400, "Only one sdist may be uploaded per release")


def _upload_fields(wheel: Path, **changes: str | None) -> list[tuple[str, str]]:
    fields = dict(form_fields(wheel))
    for key, value in changes.items():
        key = key.replace("action", ":action") if key == "action" else key
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    return list(fields.items())


@pytest.mark.parametrize(
    ("changes", "status", "message"),
    [
        ({"action": None}, 400, "Missing ':action' field"),
        ({"action": "frobnicate"}, 400, "Unknown ':action'"),
        ({"action": "submit"}, 410, "Project pre-registration is no longer required"),
        ({"action": "doc_upload"}, 410, "Uploading documentation is no longer supported"),
        ({"protocol_version": "2"}, 400, "Unknown protocol version."),
        ({"name": None}, 400, "Missing 'name' field"),
        ({"name": "-bad-"}, 400, "is an invalid value for Name"),
        ({"version": "one.two"}, 400, "is an invalid value for Version"),
        ({"filetype": "bdist_egg"}, 400, "Use a known file type."),
        ({"filetype": "sdist"}, 400, "Invalid file extension"),
        ({"sha256_digest": "0" * 64}, 400, DIGEST_MISMATCH),
        ({"blake2_256_digest": "f" * 64}, 400, DIGEST_MISMATCH),
        ({"md5_digest": "0" * 32}, 400, DIGEST_MISMATCH),
        (
            {"sha256_digest": None, "blake2_256_digest": None},
            400,
            "Include at least one message digest.",
        ),
        ({"sha256_digest": "xyz"}, 400, "Invalid sha256_digest"),
        ({"metadata_version": "9.9"}, 400, "is not a valid metadata version"),
        ({"name": "other-name"}, 400, "Start filename for 'other-name'"),
        ({"version": "2.0"}, 400, "Version in filename should be '2.0' not '1.0'"),
    ],
)
def test_form_errors(
    server: Server,
    tmp_path: Path,
    unique: str,
    changes: dict[str, str | None],
    status: int,
    message: str,
    unchanged: Callable[[], None],
) -> None:
    """docs/protocol.md, "Upload form", "Digests": each form error has its own message; nothing
    stored."""
    wheel = make_wheel(tmp_path, unique, "1.0")
    with server.client() as client:
        response = post_upload(client, wheel, auth=ALICE, fields=_upload_fields(wheel, **changes))
    refused(response, status, message)
    unchanged()


def test_uppercase_digests_are_accepted(server: Server, tmp_path: Path, unique: str) -> None:
    """docs/protocol.md, "Digests": hex digests compare case-insensitively."""
    wheel = make_wheel(tmp_path, unique, "1.0")
    data = wheel.read_bytes()
    fields = _upload_fields(
        wheel,
        sha256_digest=hashlib.sha256(data).hexdigest().upper(),
        md5_digest=hashlib.md5(data).hexdigest().upper(),
    )
    with server.client() as client:
        assert post_upload(client, wheel, auth=ALICE, fields=fields).status_code == 200


@pytest.mark.parametrize(
    ("filename", "message"),
    [
        ("../evil-1.0-py3-none-any.whl", "'/' or '\\' in the name"),
        ("sub/evil-1.0-py3-none-any.whl", "'/' or '\\' in the name"),
        ("..\\evil-1.0-py3-none-any.whl", "'/' or '\\' in the name"),
        ("evil-1.0-py3-none-any.whl\x00.txt", "non-printable characters"),
        ("evil-1.0\x1b-py3-none-any.whl", "non-printable characters"),
        ("evil-1.0\r\n-py3-none-any.whl", "Malformed multipart body"),
        ("еvil-1.0-py3-none-any.whl", "only ASCII letters"),
        ("evil-1.0.egg", "Invalid file extension"),
        ("evil-1.0.zip", "Invalid file extension"),
        (".whl", "only ASCII letters"),
        ("e" * 300 + "-1.0-py3-none-any.whl", "longer than 255 bytes"),
    ],
)
def test_hostile_filenames(
    server: Server,
    tmp_path: Path,
    filename: str,
    message: str,
    unchanged: Callable[[], None],
) -> None:
    """docs/security.md, "Hostile uploads": path separators, control characters and look-alikes are
    400."""
    wheel = make_wheel(tmp_path, "evil", "1.0")
    data = wheel.read_bytes()
    fields = _upload_fields(wheel, name="evil")
    with server.client() as client:
        response = post_upload(
            client, wheel, auth=ALICE, fields=fields, files=[FileField("content", filename, data)]
        )
    assert response.status_code == 400, response.text
    assert message in response.text
    unchanged()


def _wheel_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda d, n: make_wheel(d, n, "1.0", metadata=metadata_text("someone-else", "1.0")),
            "names project 'someone-else'",
        ),
        (
            lambda d, n: make_wheel(d, n, "1.0", metadata=metadata_text(n, "1.1")),
            "has version '1.1'",
        ),
        (
            lambda d, n: make_wheel(d, n, "1.0", dist_info_name="other-1.0"),
            "Invalid distribution file",
        ),
        (
            lambda d, n: make_wheel(d, n, "1.0", metadata="Metadata-Version: 2.1\nName: x\n"),
            "Invalid metadata",
        ),
        (lambda d, n: make_wheel(d, n, "1.0", metadata=metadata_text(n, "1.0") + "\x00"), "NUL"),
        (lambda d, n: make_sdist(d, n, "1.0", top="wrong-top"), "Invalid distribution file"),
    ],
)
def test_file_contents_must_match(
    server: Server,
    tmp_path: Path,
    unique: str,
    make: Callable[[Path, str], Path],
    message: str,
    unchanged: Callable[[], None],
) -> None:
    """docs/protocol.md, "Names in uploads": the file's own metadata decides, and must agree."""
    path = make(tmp_path, unique)
    with server.client() as client:
        response = post_upload(client, path, auth=ALICE)
    assert response.status_code == 400, response.text
    assert message in response.text
    unchanged()


@pytest.mark.parametrize(
    "data",
    [b"not a zip at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, b"PK\x03\x04" + b"\x00" * 50],
)
def test_corrupt_archives_are_refused(
    server: Server,
    tmp_path: Path,
    unique: str,
    data: bytes,
    unchanged: Callable[[], None],
) -> None:
    """docs/security.md, "Hostile uploads": a corrupt or fake wheel is "Invalid distribution file",
    never a 500."""
    path = tmp_path / f"{unique}-1.0-py3-none-any.whl"
    path.write_bytes(data)
    with server.client() as client:
        response = post_upload(client, path, auth=ALICE)
    refused(response, 400, "Invalid distribution file")
    unchanged()


def test_multipart_shape_errors(
    server: Server, tmp_path: Path, unique: str, unchanged: Callable[[], None]
) -> None:
    """docs/protocol.md, "Upload form": duplicates, no file, bad part types, not multipart."""
    wheel = make_wheel(tmp_path, unique, "1.0")
    data = wheel.read_bytes()
    fields = form_fields(wheel)
    content = FileField("content", wheel.name, data)
    cases = [
        ([*fields, ("name", unique)], [content], "appears more than once"),
        (fields, [content, content], "more than one file"),
        (fields, [], "Upload payload does not have a file."),
        (
            fields,
            [FileField("content", wheel.name, data, "image/png")],
            "Invalid distribution file.",
        ),
        (fields, [content, FileField("summary", "s.txt", b"x")], "summary: Should not be a tuple."),
    ]
    with server.client() as client:
        for case_fields, files, message in cases:
            response = post_upload(client, wheel, auth=ALICE, fields=case_fields, files=files)
            assert response.status_code == 400, (message, response.text)
            assert message in response.text
        not_multipart = client.post(
            "/legacy/",
            content=b"name=x",
            auth=ALICE,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        no_boundary = client.post(
            "/legacy/", content=b"x", auth=ALICE, headers={"Content-Type": "multipart/form-data"}
        )
        truncated_body, content_type = encode(fields, [content])
        truncated = client.post(
            "/legacy/",
            content=truncated_body[:-40],
            auth=ALICE,
            headers={"Content-Type": content_type},
        )
    assert not_multipart.status_code == 400
    assert "multipart/form-data" in not_multipart.text
    assert no_boundary.status_code == 400
    assert truncated.status_code == 400
    unchanged()


def test_missing_part_content_type_is_accepted(server: Server, tmp_path: Path, unique: str) -> None:
    """docs/protocol.md, "Upload form": uv and flit send the file part without a Content-Type."""
    wheel = make_wheel(tmp_path, unique, "1.0")
    files = [FileField("content", wheel.name, wheel.read_bytes(), content_type=None)]
    fields = [*_upload_fields(wheel, pyversion=None), ("requires_python", "")]
    with server.client() as client:
        response = post_upload(client, wheel, auth=ALICE, fields=fields, files=files)
    assert response.status_code == 200, response.text


def test_errors_are_json_for_uv(server: Server, tmp_path: Path, unique: str) -> None:
    """docs/protocol.md, "Upload answers": uv's Accept gets ``{"message","code","title"}``, exactly
    application/json."""
    wheel = make_wheel(tmp_path, unique, "1.0")
    fields = _upload_fields(wheel, sha256_digest="0" * 64)
    with server.client() as client:
        response = post_upload(
            client, wheel, auth=ALICE, fields=fields, headers={"Accept": UV_ACCEPT}
        )
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    document = response.json()
    assert document["message"] == DIGEST_MISMATCH
    assert document["code"] == f"400 {DIGEST_MISMATCH}"
    assert document["title"] == "Bad Request"


def test_oversized_file_is_413_and_leaves_nothing(tmp_path: Path) -> None:
    """docs/security.md, "Hostile uploads": the size limit holds on the bytes received, whatever
    Content-Length says."""
    server = InProcessServer(tmp_path / "data", arguments=["--max-upload-size", "20K"]).start()
    try:
        assert (
            server.cli("user", "add", *ALICE[:1], "--password-stdin", stdin=ALICE[1]).returncode
            == 0
        )
        noise = random.Random(0).randbytes(100_000)  # incompressible, so the wheel stays big
        big = make_wheel(tmp_path, "big", "1.0", files={"big/blob.bin": noise})
        small = make_wheel(tmp_path, "small", "1.0")
        before = store_state(server)
        with server.client() as client:
            response = post_upload(client, big, auth=ALICE)
            assert response.status_code == 413, response.text
            assert "File too large" in response.text
            assert store_state(server) == before
            # Chunked, with no Content-Length at all.
            body, content_type = encode(
                form_fields(big), [FileField("content", big.name, big.read_bytes())]
            )
            chunked = client.post(
                "/legacy/",
                content=iter([body[i : i + 4096] for i in range(0, len(body), 4096)]),
                auth=ALICE,
                headers={"Content-Type": content_type},
            )
            assert chunked.status_code == 413
            assert post_upload(client, small, auth=ALICE).status_code == 200
    finally:
        server.stop()


def test_client_hanging_up_mid_body_leaves_nothing(tmp_path: Path) -> None:
    """docs/security.md, "Hostile uploads": a disconnect mid-body leaves no file, no metadata, no
    temporary file."""
    server = InProcessServer(tmp_path / "data").start()
    try:
        assert (
            server.cli("user", "add", ALICE[0], "--password-stdin", stdin=ALICE[1]).returncode == 0
        )
        wheel = make_wheel(tmp_path, "hangup", "1.0", files={"hangup/x.bin": b"x" * 200_000})
        body, content_type = encode(
            form_fields(wheel), [FileField("content", wheel.name, wheel.read_bytes())]
        )
        before = store_state(server)
        credentials = base64.b64encode(f"{ALICE[0]}:{ALICE[1]}".encode()).decode()
        head = (
            f"POST /legacy/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nAuthorization: Basic {credentials}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", server.port)) as connection:
            connection.sendall(head + body[: len(body) // 2])
        with server.client() as client:
            # The server notices the hang-up and cleans up; a later retry succeeds.
            assert post_upload(client, wheel, auth=ALICE).status_code == 200
        after = store_state(server)
        assert after[1] == before[1], "a temporary file was left behind"
        assert len(after[0]) == len(before[0]) + 2  # the wheel and its metadata file
    finally:
        server.stop()
