"""HTTPS without a proxy in front: the server's SSL context, and its certificate renewed
without a restart.

Tornado makes each connection's TLS session from one ``ssl.SSLContext`` at accept time,
and a session keeps the certificate it started with. A reload (SIGHUP) loads the files
into a new context, and each handshake from then on is handed that one (the context's
server-name callback, which OpenSSL calls for every ClientHello, with or without SNI):
new connections get the new certificate, open ones go on with theirs, and a renewal
is a SIGHUP, not a restart (docs/deploy.md, "HTTPS").

Loading into the context in use instead would go wrong twice over: a chain loaded
before a key that does not match leaves it with a certificate and no key (no handshake
at all), and a certificate with another type of key (RSA after EC) is added beside the
old one, which clients that prefer the old type are still shown.

A file is checked before anything is loaded from it, so that a mistake names the
file and what is wrong with it (OpenSSL's own errors say "PEM lib"), and a reload
that fails leaves the certificate served as it was (docs/security.md, "TLS").
"""

from __future__ import annotations

import logging
import re
import ssl
import stat
from pathlib import Path

from ministry.settings import SettingsError

__all__ = ["ServerTLS", "server_tls"]

log = logging.getLogger("ministry")

_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_PRIVATE_KEY = re.compile(rb"-----BEGIN ((?:RSA |EC |DSA |ENCRYPTED )?PRIVATE KEY)-----")
_ENCRYPTED = (b"ENCRYPTED PRIVATE KEY", b"Proc-Type: 4,ENCRYPTED")


def server_tls(certificate: Path | None, key: Path | None) -> ServerTLS | None:
    """The TLS of ``--tls-cert`` and ``--tls-key``: None for neither, an error for one alone."""
    if certificate is None and key is None:
        return None
    if certificate is None or key is None:
        given, missing = ("--tls-cert", "--tls-key") if key is None else ("--tls-key", "--tls-cert")
        raise SettingsError(
            f"{given} was given without {missing}: HTTPS needs both the certificate and its key "
            "(or neither, for plain HTTP)"
        )
    return ServerTLS(certificate, key)


class ServerTLS:
    """A certificate and key file, and the server context that serves them.

    Raises ``SettingsError`` naming the file when they cannot be served.
    """

    def __init__(self, certificate: Path, key: Path) -> None:
        self.certificate = certificate
        self.key = key
        #: What the server wraps every connection with; it stays the same object.
        self.context = _new_context()
        self._load(self.context)
        self._current = self.context
        self.context.sni_callback = self._hand_over

    def reload(self) -> bool:
        """Load the files again for the handshakes to come; on failure log why and keep
        serving what was loaded before."""
        renewed = _new_context()
        try:
            self._load(renewed)
        except SettingsError as exc:
            log.error("TLS reload failed; still serving the previous certificate: %s", exc)
            return False
        self._current = renewed
        log.info("TLS certificate reloaded from %s (key %s)", self.certificate, self.key)
        return True

    def _hand_over(
        self, connection: ssl.SSLObject | ssl.SSLSocket, _name: str | None, _: ssl.SSLContext
    ) -> None:
        # Called in the handshake, before a certificate is chosen: the session takes the
        # certificate and key of the context it holds when this returns.
        if self._current is not self.context:
            connection.context = self._current

    def _load(self, context: ssl.SSLContext) -> None:
        _check_certificate(self.certificate)
        _check_key(self.key)
        try:
            context.load_cert_chain(self.certificate, self.key, password=_no_password)
        except OSError as exc:  # ssl.SSLError included; the file changed since it was checked
            reason = getattr(exc, "reason", None)
            if reason == "KEY_VALUES_MISMATCH":
                raise SettingsError(
                    f"TLS key {self.key} is not the key of the certificate in {self.certificate}"
                ) from None
            raise SettingsError(
                f"TLS key {self.key} could not be loaded with the certificate in "
                f"{self.certificate}: {exc}"
            ) from None
        _warn_if_readable(self.key)


def _new_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _no_password() -> bytes:
    # Without a callback OpenSSL would ask on the terminal; encrypted keys are refused
    # before this is reached, so an empty password only fails cleanly.
    return b""


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None


def _check_certificate(path: Path) -> None:
    data = _read(path, "TLS certificate")
    if _CERTIFICATE not in data:
        raise SettingsError(
            f"TLS certificate {path} is not a PEM certificate (no '-----BEGIN CERTIFICATE-----' "
            "line)"
        )
    try:
        # Parses every certificate of the chain, and nothing else of the file.
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(
            cadata=data.decode("ascii", "replace")
        )
    except ssl.SSLError as exc:
        raise SettingsError(f"TLS certificate {path} holds a damaged certificate: {exc}") from None


def _check_key(path: Path) -> None:
    data = _read(path, "TLS key")
    if _PRIVATE_KEY.search(data) is None:
        raise SettingsError(
            f"TLS key {path} is not a PEM private key (no '-----BEGIN PRIVATE KEY-----' line)"
        )
    if any(marker in data for marker in _ENCRYPTED):
        raise SettingsError(
            f"TLS key {path} is encrypted; the server needs it without a passphrase "
            "(openssl pkey -in KEY -out PLAIN-KEY writes one)"
        )


def _warn_if_readable(path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return  # gone since it was loaded: the next reload says so
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning(
            "TLS key %s can be read by other users (mode %04o): make it readable by the "
            "server's user alone (chmod 600)",
            path,
            mode,
        )
