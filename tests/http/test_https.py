"""``ministry serve --tls-cert --tls-key`` in the test process: the files it refuses, and
what the server knows once it speaks HTTPS (its own https origin and URLs).

docs/deploy.md, "HTTPS"; docs/security.md, "TLS". The server process, real clients
and SIGHUP are in e2e/test_tls.py.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from conftest import ALICE, add_user
from support.distributions import make_wheel
from support.inprocess import InProcessServer, call_cli
from support.logins import form_login
from support.tls import Certificates, make_certificates
from support.uploads import post_upload


@pytest.fixture(scope="module")
def https(
    tmp_path_factory: pytest.TempPathFactory, certificates: Certificates
) -> Iterator[InProcessServer]:
    """A server speaking HTTPS only, with user alice."""
    arguments = ["--tls-cert", str(certificates.certificate), "--tls-key", str(certificates.key)]
    server = InProcessServer(tmp_path_factory.mktemp("https") / "data", arguments=arguments)
    server.start()
    add_user(server, *ALICE)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def trusting(certificates: Certificates) -> ssl.SSLContext:
    """A client context that trusts the test's authority."""
    return ssl.create_default_context(cafile=certificates.authority)


def serve(tmp_path: Path, *arguments: str, environment: dict[str, str] | None = None) -> str:
    """What ``ministry serve`` says when it refuses to start; fails if it starts or crashes."""
    result = call_cli(
        "serve", "--port", "0", "--data", str(tmp_path / "data"), *arguments,
        environment=environment,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was opened
    return lines[0]


def test_one_file_without_the_other_is_refused(tmp_path: Path, certificates: Certificates) -> None:
    assert serve(tmp_path, "--tls-cert", str(certificates.certificate)) == (
        "ministry: --tls-cert was given without --tls-key: HTTPS needs both the certificate "
        "and its key (or neither, for plain HTTP)"
    )
    line = serve(tmp_path, environment={"MINISTRY_TLS_KEY": str(certificates.key)})
    assert line.startswith("ministry: --tls-key was given without --tls-cert")


def test_files_that_cannot_be_served_are_named(tmp_path: Path, certificates: Certificates) -> None:
    """Missing, unreadable, not PEM, encrypted, or a key of another certificate: one line
    naming the file, exit status 2."""
    cert, key = str(certificates.certificate), str(certificates.key)
    missing = tmp_path / "missing.pem"
    assert serve(tmp_path, "--tls-cert", str(missing), "--tls-key", key) == (
        f"ministry: TLS certificate {missing} cannot be read: No such file or directory"
    )
    directory = tmp_path / "a-directory"
    directory.mkdir()
    assert serve(tmp_path, "--tls-cert", cert, "--tls-key", str(directory)) == (
        f"ministry: TLS key {directory} cannot be read: Is a directory"
    )
    text = tmp_path / "notes.txt"
    text.write_text("not a certificate\n")
    assert serve(tmp_path, "--tls-cert", str(text), "--tls-key", key) == (
        f"ministry: TLS certificate {text} is not a PEM certificate "
        "(no '-----BEGIN CERTIFICATE-----' line)"
    )
    assert serve(tmp_path, "--tls-cert", cert, "--tls-key", str(text)) == (
        f"ministry: TLS key {text} is not a PEM private key (no '-----BEGIN PRIVATE KEY-----' line)"
    )
    # The certificate given as the key, and the key as the certificate.
    assert serve(tmp_path, "--tls-cert", cert, "--tls-key", cert).startswith(
        f"ministry: TLS key {cert} is not a PEM private key"
    )
    assert serve(tmp_path, "--tls-cert", key, "--tls-key", key).startswith(
        f"ministry: TLS certificate {key} is not a PEM certificate"
    )
    damaged = tmp_path / "damaged.pem"
    damaged.write_text(certificates.certificate.read_text().replace("M", "!", 3))
    assert serve(tmp_path, "--tls-cert", str(damaged), "--tls-key", key).startswith(
        f"ministry: TLS certificate {damaged} holds a damaged certificate"
    )


def test_an_encrypted_key_or_another_certificates_key_is_refused(
    tmp_path: Path, certificates: Certificates
) -> None:
    other = make_certificates(tmp_path / "other")
    cert = str(certificates.certificate)
    assert serve(tmp_path, "--tls-cert", cert, "--tls-key", str(other.key)) == (
        f"ministry: TLS key {other.key} is not the key of the certificate in {cert}"
    )
    key = serialization.load_pem_private_key(certificates.key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"a passphrase"),
        )
    )
    assert serve(tmp_path, "--tls-cert", cert, "--tls-key", str(encrypted)).startswith(
        f"ministry: TLS key {encrypted} is encrypted; the server needs it without a passphrase"
    )


def test_config_show_lists_the_tls_files(tmp_path: Path) -> None:
    config = tmp_path / "ministry.toml"
    config.write_text('[server]\ntls_cert = "/etc/ssl/ministry/fullchain.pem"\n')
    shown = call_cli(
        "config", "show", "--config", str(config),
        environment={"MINISTRY_TLS_KEY": "/etc/ssl/ministry/privkey.pem"},
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert f'tls_cert = "/etc/ssl/ministry/fullchain.pem"  # {config}, line 2' in lines
    assert 'tls_key = "/etc/ssl/ministry/privkey.pem"  # MINISTRY_TLS_KEY' in lines
    bare = call_cli("config", "show", "--data", str(tmp_path / "data"))
    assert "# tls_cert: not set; none (plain HTTP)" in bare.stdout


def test_the_server_knows_its_urls_are_https(
    https: InProcessServer, trusting: ssl.SSLContext, tmp_path: Path, unique: str
) -> None:
    """The JSON API's file URLs and the upload URL on the help pages name https."""
    assert https.url.startswith("https://127.0.0.1:")
    wheel = make_wheel(tmp_path, unique, "1.0")
    with https.client(verify=trusting) as client:
        assert post_upload(client, wheel, auth=ALICE).status_code == 200
        document = client.get(f"/pypi/{unique}/json")
        assert document.status_code == 200, document.text
        assert [f["url"] for f in document.json()["urls"]] == [
            f"{https.url}/packages/{unique}/{wheel.name}"
        ]
        assert document.json()["info"]["project_url"] == f"{https.url}/project/{unique}/"


def test_the_cross_site_check_takes_the_https_origin_as_its_own(
    https: InProcessServer, trusting: ssl.SSLContext, tmp_path: Path, unique: str
) -> None:
    """A browser page of this server says ``Origin: https://ministry.example:PORT``: a
    write from it is accepted, one from the same host and port over http is another site's."""
    wheel = make_wheel(tmp_path, unique, "1.0")
    plain_origin = https.url.replace("https://", "http://")
    with https.client(verify=trusting) as client:
        refused = post_upload(client, wheel, auth=ALICE, headers={"Origin": plain_origin})
        assert refused.status_code == 403, refused.text
        accepted = post_upload(client, wheel, auth=ALICE, headers={"Origin": https.url})
        assert accepted.status_code == 200, accepted.text
        login = form_login(client, *ALICE, headers={"Origin": https.url})
        assert login.status_code == 303, login.text
        assert "secure" in login.headers["Set-Cookie"].lower()


def test_plain_http_to_the_port_is_answered_by_nothing(https: InProcessServer) -> None:
    plain = https.url.replace("https://", "http://")
    with (
        httpx.Client(base_url=plain, trust_env=False, timeout=10) as client,
        pytest.raises(httpx.HTTPError),
    ):
        client.get("/simple/")
