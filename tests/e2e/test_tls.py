"""``ministry serve --tls-cert --tls-key``: HTTPS without a proxy in front, end to end.

Real clients (httpx, pip, uv, twine) that trust a private authority are served and
those that do not are refused; plain HTTP and TLS 1.1 on the port get nothing;
``--processes`` workers serve HTTPS; SIGHUP renews the certificate while an open
connection goes on (docs/deploy.md, "HTTPS"; docs/security.md, "TLS"). The files
the server refuses at start are tested in the test process: http/test_https.py.
"""

from __future__ import annotations

import http.client
import re
import signal
import socket
import ssl
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import ALICE, add_user
from support.backends import LOOPBACK
from support.clients import new_venv, run, twine_upload, uv
from support.distributions import make_wheel
from support.server import MinistryServer, wait_for
from support.tls import Certificates, make_certificates
from support.uploads import post_upload

DEPLOY = Path(__file__).parents[2] / "docs" / "deploy.md"
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
# requests (under pip and twine) prefers these variables to --cert: the machine's must
# not decide which authority the clients trust.
NO_MACHINE_BUNDLE = {"REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": ""}
RELOADED = "TLS certificate reloaded from"
RELOAD_FAILED = "TLS reload failed; still serving the previous certificate"


def tls_arguments(certificates: Certificates) -> list[str]:
    return ["--tls-cert", str(certificates.certificate), "--tls-key", str(certificates.key)]


def trusting(certificates: Certificates) -> ssl.SSLContext:
    """A client context that trusts only the authority of ``certificates``."""
    return ssl.create_default_context(cafile=certificates.authority)


def renew(served: Certificates, new: Certificates) -> None:
    """Put ``new``'s certificate and key in the files the server was started with."""
    served.certificate.write_bytes(new.certificate.read_bytes())
    served.key.write_bytes(new.key.read_bytes())


def hang_up(server: MinistryServer) -> None:
    """SIGHUP to the server process, as ``systemctl reload`` sends it."""
    assert server.process is not None
    server.process.send_signal(signal.SIGHUP)


def log_text(server: MinistryServer) -> str:
    """The log file as it is now (no barrier request: it would need a handshake)."""
    return server.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def https(
    tmp_path_factory: pytest.TempPathFactory, certificates: Certificates
) -> Iterator[MinistryServer]:
    """A server process speaking HTTPS only, with user alice."""
    data = tmp_path_factory.mktemp("https") / "data"
    server = MinistryServer(data, arguments=tls_arguments(certificates)).start()
    add_user(server, *ALICE)
    yield server
    server.stop()


def test_a_client_trusting_the_authority_is_served(
    https: MinistryServer, certificates: Certificates, tmp_path: Path, unique: str
) -> None:
    """The "serving" line says https; pages, the JSON API and uploads work over it."""
    assert https.url.startswith("https://127.0.0.1:")
    assert f"serving {https.url}/ (data: " in log_text(https)
    wheel = make_wheel(tmp_path, unique, "1.0")
    with https.client(verify=trusting(certificates)) as client:
        assert post_upload(client, wheel, auth=ALICE).status_code == 200
        assert client.get("/simple/").status_code == 200
        page = client.get(f"/simple/{unique}/", headers=JSON)
        assert page.status_code == 200, page.text
        assert [f["filename"] for f in page.json()["files"]] == [wheel.name]
        document = client.get(f"/pypi/{unique}/json")
        assert document.status_code == 200, document.text
        assert document.json()["urls"][0]["url"] == f"{https.url}/packages/{unique}/{wheel.name}"
    assert https.served(f"/pypi/{unique}/json") == 1


def test_a_client_not_trusting_the_authority_is_refused(https: MinistryServer) -> None:
    """The machine's own bundle does not know the test's authority: verification fails."""
    with https.client() as client, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY"):
        client.get("/simple/")


def test_plain_http_to_the_port_is_served_nothing(https: MinistryServer) -> None:
    with socket.create_connection((LOOPBACK, https.port), timeout=10) as plain:
        plain.sendall(f"GET /simple/ HTTP/1.1\r\nHost: {LOOPBACK}:{https.port}\r\n\r\n".encode())
        try:
            answer = plain.recv(65536)
        except ConnectionResetError:
            answer = b""  # closed with the request unread
    assert not answer.startswith(b"HTTP/"), answer[:200]
    wait_for(lambda: "http request" in log_text(https), 10, "the refused handshake in the log")


def test_tls_1_1_is_refused_and_tls_1_2_is_served(
    https: MinistryServer, certificates: Certificates
) -> None:
    """The client offers TLS 1.0 and 1.1 only (its own security level lowered so that it
    may): the server answers with the protocol-version alert. The same client allowed
    TLS 1.2 is served, so the refusal is the server's."""

    def handshake(highest: ssl.TLSVersion) -> str | None:
        context = trusting(certificates)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # as old as the point
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = highest
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        with (
            socket.create_connection((LOOPBACK, https.port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=LOOPBACK) as wrapped,
        ):
            return wrapped.version()

    with pytest.raises(ssl.SSLError) as refused:
        handshake(ssl.TLSVersion.TLSv1_1)
    assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION"
    assert handshake(ssl.TLSVersion.TLSv1_2) == "TLSv1.2"


def test_twine_pip_and_uv_trust_the_authority_they_are_given(
    https: MinistryServer, certificates: Certificates, tmp_path: Path, home: Path, unique: str
) -> None:
    """twine --cert, pip --cert and uv with SSL_CERT_FILE (docs/deploy.md, "HTTPS"); uv
    with the machine's bundle alone is refused."""
    authority = str(certificates.authority)
    wheel = make_wheel(tmp_path, unique, "1.0")
    uploaded = twine_upload(
        home, f"{https.url}/legacy/", *ALICE, wheel,
        options=["--cert", authority], environment=NO_MACHINE_BUNDLE,
    )  # fmt: skip
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    download = f"/packages/{unique}/{wheel.name}"

    python = new_venv(tmp_path / "pip-venv")
    installed = run(
        [sys.executable, "-m", "pip", "--isolated", "--python", str(python), "install",
         "--no-cache-dir", "--cert", authority, "--index-url", f"{https.url}/simple/", unique],
        home,
        extra_environment=NO_MACHINE_BUNDLE,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert https.served(download) == 1

    venv = tmp_path / "uv-venv"
    assert uv(home, "venv", "--python", sys.executable, str(venv)).returncode == 0
    install = ["pip", "install", "--python", str(venv / "bin" / "python"), "--no-cache",
               "--index-url", f"{https.url}/simple/", unique]  # fmt: skip
    untrusting = uv(home, *install)
    assert untrusting.returncode != 0
    assert "certificate" in untrusting.stderr.lower(), untrusting.stderr
    with_authority = uv(home, *install, environment={"SSL_CERT_FILE": authority})
    assert with_authority.returncode == 0, with_authority.stdout + with_authority.stderr
    assert https.served(download) == 2


def test_sighup_renews_the_certificate_and_open_connections_go_on(tmp_path: Path) -> None:
    """New handshakes get the new certificate; a keep-alive connection opened before is
    answered on; a broken file at the next SIGHUP is logged and the certificate kept."""
    served = make_certificates(tmp_path / "served")
    served.key.chmod(0o644)
    renewed = make_certificates(tmp_path / "renewed")
    server = MinistryServer(tmp_path / "data", arguments=tls_arguments(served)).start()
    try:
        assert f"TLS key {served.key} can be read by other users (mode 0644)" in log_text(server)
        before = http.client.HTTPSConnection(
            LOOPBACK, server.port, context=trusting(served), timeout=10
        )
        before.request("GET", "/simple/")
        assert before.getresponse().read() and before.sock is not None
        connection, first_certificate = before.sock, before.sock.getpeercert(binary_form=True)

        renew(served, renewed)
        served.key.chmod(0o600)
        hang_up(server)
        wait_for(lambda: RELOADED in log_text(server), 10, "the reload")
        with server.client(verify=trusting(renewed)) as client:
            assert client.get("/simple/").status_code == 200
        with (
            server.client(verify=trusting(served)) as client,
            pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY"),
        ):
            client.get("/simple/")

        before.request("GET", "/-/health")
        assert before.getresponse().status == 200
        assert before.sock is connection  # the same connection, still on the first certificate
        assert connection.getpeercert(binary_form=True) == first_certificate
        before.close()

        served.certificate.write_text("-----BEGIN CERTIFICATE-----\nbroken\n")
        hang_up(server)
        wait_for(lambda: RELOAD_FAILED in log_text(server), 10, "the failed reload")
        assert f"TLS certificate {served.certificate} holds a damaged certificate" in log_text(
            server
        )
        with server.client(verify=trusting(renewed)) as client:
            assert client.get("/simple/").status_code == 200
        assert server.running
        assert "Traceback" not in log_text(server)
        assert log_text(server).count(RELOADED) == 1
        assert "can be read by other users" not in log_text(server).split(RELOADED)[1]
    finally:
        assert server.stop() == 0


def test_processes_serve_https_and_each_reloads_on_sighup(tmp_path: Path) -> None:
    """The supervisor passes SIGHUP on: every worker, and the supervisor's own copy that
    later workers start from, loads the new certificate."""
    served = make_certificates(tmp_path / "served")
    served.key.chmod(0o600)
    renewed = make_certificates(tmp_path / "renewed")
    arguments = [*tls_arguments(served), "--processes", "2"]
    server = MinistryServer(tmp_path / "data", arguments=arguments).start()
    try:
        assert f"serving {server.url}/ with 2 processes" in log_text(server)
        # Each worker logs its connection cap after its SIGHUP handler is in place.
        wait_for(lambda: log_text(server).count("at most") == 2, 30, "both workers")
        for _ in range(4):
            with server.client(verify=trusting(served)) as client:
                assert client.get("/simple/").status_code == 200

        renew(served, renewed)
        hang_up(server)
        wait_for(lambda: log_text(server).count(RELOADED) == 3, 10, "three reloads")
        reloading = {
            line.split("[")[1].split("]")[0]
            for line in log_text(server).splitlines()
            if RELOADED in line
        }
        assert len(reloading) == 3  # the supervisor and both workers
        for _ in range(6):
            with server.client(verify=trusting(renewed)) as client:
                assert client.get("/simple/").status_code == 200
        assert "died" not in log_text(server)
    finally:
        assert server.stop() == 0


def test_the_documented_private_authority_signs_a_certificate_clients_accept(
    tmp_path: Path,
) -> None:
    """The openssl commands of docs/deploy.md, "A private certificate authority", run as
    written: the server starts with what they make, and a strict client trusting their
    authority is served on the certificate's name."""
    blocks = re.findall(r"```sh\n(.*?)```", DEPLOY.read_text(), re.DOTALL)
    (commands,) = (block for block in blocks if "openssl req -x509" in block)
    made = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", commands],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    arguments = [
        "--tls-cert",
        str(tmp_path / "server.pem"),
        "--tls-key",
        str(tmp_path / "server.key"),
    ]
    server = MinistryServer(tmp_path / "data", arguments=arguments).start()
    try:
        assert "can be read by other users" not in log_text(server)  # openssl writes keys 0600
        context = ssl.create_default_context(cafile=tmp_path / "ca.pem")
        context.verify_flags |= ssl.VERIFY_X509_STRICT
        with (
            socket.create_connection((LOOPBACK, server.port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="pypi.example.test") as wrapped,
        ):
            wrapped.sendall(b"GET /simple/ HTTP/1.1\r\nHost: pypi.example.test\r\n\r\n")
            assert wrapped.recv(65536).startswith(b"HTTP/1.1 200 ")
    finally:
        assert server.stop() == 0
