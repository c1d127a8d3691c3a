"""The server's TLS context: what it refuses to load, and reloads that change the certificate
new handshakes get, or keep it when the new files are bad.

docs/security.md, "TLS". Handshakes here run in memory (two ``ssl.MemoryBIO`` pairs),
so what a client would be shown is checked without a socket or a server.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from ministry.settings import SettingsError
from ministry.web.tls import ServerTLS, server_tls
from support.backends import LOOPBACK
from support.tls import Certificates, make_certificates


def presented(server: ssl.SSLContext, authority: Path) -> x509.Certificate:
    """The certificate a client trusting ``authority`` is shown by ``server``.

    Raises ``ssl.SSLError`` when the handshake fails.
    """
    client_context = ssl.create_default_context(cafile=authority)
    client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_context.wrap_bio(client_in, client_out, server_hostname=LOOPBACK)
    accepted = server.wrap_bio(server_in, server_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, end, out, peer_in in (
            ("client", client, client_out, server_in),
            ("server", accepted, server_out, client_in),
        ):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
            peer_in.write(out.read())
        if all(done.values()):
            der = client.getpeercert(binary_form=True)
            assert der is not None
            return x509.load_der_x509_certificate(der)
    raise AssertionError("the handshake did not finish")


def renew(served: Certificates, new: Certificates) -> None:
    """Put ``new``'s certificate and key in the files ``served`` names."""
    served.certificate.write_bytes(new.certificate.read_bytes())
    served.key.write_bytes(new.key.read_bytes())


def certificate_of(certificates: Certificates) -> x509.Certificate:
    return x509.load_pem_x509_certificate(certificates.certificate.read_bytes())


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Certificates, Certificates]:
    """Two authorities, each with a server certificate for 127.0.0.1."""
    return make_certificates(tmp_path / "a"), make_certificates(tmp_path / "b")


def test_the_context_serves_the_certificate_over_tls_1_2_and_later(
    pair: tuple[Certificates, Certificates],
) -> None:
    first, _ = pair
    tls = ServerTLS(first.certificate, first.key)
    assert tls.context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert presented(tls.context, first.authority) == certificate_of(first)


def test_neither_file_is_plain_http_and_one_alone_is_refused(tmp_path: Path) -> None:
    assert server_tls(None, None) is None
    with pytest.raises(SettingsError, match="--tls-cert was given without --tls-key"):
        server_tls(tmp_path / "server.pem", None)
    with pytest.raises(SettingsError, match="--tls-key was given without --tls-cert"):
        server_tls(None, tmp_path / "server.key")


def test_a_reload_loads_the_new_files_into_the_same_context(
    pair: tuple[Certificates, Certificates], caplog: pytest.LogCaptureFixture
) -> None:
    first, second = pair
    tls = ServerTLS(first.certificate, first.key)
    context = tls.context
    renew(first, second)
    with caplog.at_level(logging.INFO, logger="ministry"):
        assert tls.reload()
    assert tls.context is context
    assert presented(context, second.authority) == certificate_of(second)
    with pytest.raises(ssl.SSLCertVerificationError):
        presented(context, first.authority)
    assert f"TLS certificate reloaded from {first.certificate}" in caplog.text


def test_a_reload_may_change_the_type_of_key(tmp_path: Path) -> None:
    """An RSA certificate after an EC one: clients that prefer EC are shown the RSA one
    too (loaded beside the old pair in the same context, the EC one would still win)."""
    served = make_certificates(tmp_path / "ec")
    renewed = make_certificates(tmp_path / "rsa", rsa_key=True)
    tls = ServerTLS(served.certificate, served.key)
    renew(served, renewed)
    assert tls.reload()
    assert presented(tls.context, renewed.authority) == certificate_of(renewed)
    with pytest.raises(ssl.SSLCertVerificationError):
        presented(tls.context, served.authority)


@pytest.mark.parametrize("broken", ["key of another certificate", "not PEM", "missing key"])
def test_a_reload_that_fails_keeps_the_certificate_served(
    pair: tuple[Certificates, Certificates], broken: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A new certificate with the old key loaded straight into the context in use would
    leave it with a certificate and no key: no handshake at all."""
    first, second = pair
    tls = ServerTLS(first.certificate, first.key)
    served = certificate_of(first)
    first.certificate.write_bytes(second.certificate.read_bytes())
    if broken == "not PEM":
        first.key.write_text("this is not a key\n")
    elif broken == "missing key":
        first.key.unlink()
    with caplog.at_level(logging.INFO, logger="ministry"):
        assert not tls.reload()
    assert presented(tls.context, first.authority) == served
    assert "TLS reload failed; still serving the previous certificate" in caplog.text
    assert str(first.key) in caplog.text


def test_a_key_others_can_read_is_warned_about(
    pair: tuple[Certificates, Certificates], caplog: pytest.LogCaptureFixture
) -> None:
    """At start and at every reload: the key is what a stolen identity needs."""
    first, _ = pair
    first.key.chmod(0o600)
    with caplog.at_level(logging.INFO, logger="ministry"):
        tls = ServerTLS(first.certificate, first.key)
    assert "can be read by other users" not in caplog.text
    first.key.chmod(0o640)
    with caplog.at_level(logging.INFO, logger="ministry"):
        assert tls.reload()
    assert f"TLS key {first.key} can be read by other users (mode 0640)" in caplog.text
