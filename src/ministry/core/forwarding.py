"""What a reverse proxy says about a request, believed only when the proxy is trusted.

Behind nginx every connection comes from nginx; the client's address, the
scheme it used and the host it asked for arrive in ``X-Forwarded-For``,
``-Proto`` and ``-Host``. Anyone can send those headers, so they are read only
when the connection comes from a configured proxy address (docs/security.md, "HTTP abuse"), and
even then a value that is not plainly an address, a scheme or a host is
ignored rather than copied into the log, the login limits or absolute URLs.

``X-Forwarded-For`` is a list each proxy appends to: only its right end, up to
the first address that is not a trusted proxy, was written by proxies we trust;
anything further left is whatever the client claimed.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Forwarded", "TrustedProxies", "forwarded_host", "forwarded_scheme", "trusted_proxies"]

_SCHEMES = frozenset({"http", "https"})
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
# A DNS name (or IPv4 address) or a bracketed IPv6 address, then perhaps a port.
_HOST = re.compile(
    rf"(?:(?P<name>{_LABEL}(?:\.{_LABEL})*)|\[(?P<ipv6>[0-9a-f:.]+)\])(?::(?P<port>\d{{1,5}}))?"
)
# The longest DNS name, plus brackets and a port.
_LONGEST_HOST = 253 + 8

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Forwarded:
    """What a trusted proxy says; None for each part it does not say, or says badly."""

    client: str | None = None
    scheme: str | None = None
    host: str | None = None


def _address(text: str) -> Address | None:
    """An IP address written plainly; None for anything else (ports, names, scope ids)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A scope id ("fe80::1%eth0") may hold any text at all: not an address to log.
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        return None
    return address


def _values(lines: Sequence[str]) -> list[str]:
    """The items of a list header, over all its lines (repeated lines form one list)."""
    return [item.strip() for line in lines for item in line.split(",")]


class TrustedProxies:
    """The networks of the reverse proxies whose ``X-Forwarded-*`` headers are believed."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: Address) -> bool:
        """Whether ``address`` is one of the proxies (an IPv4 one also as ``::ffff:a.b.c.d``)."""
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        return any(
            candidate in network
            for candidate in (address, mapped)
            if candidate is not None
            for network in self.networks
        )

    def forwarded(
        self,
        peer: str,
        *,
        forwarded_for: Sequence[str],
        proto: Sequence[str],
        host: Sequence[str],
    ) -> Forwarded:
        """What the headers say when ``peer`` (the TCP peer) is trusted; nothing otherwise.

        Each argument but ``peer`` is the header's lines, as the request carried them.
        """
        address = _address(peer)
        if address is None or not self.trusts(address):
            return Forwarded()
        return Forwarded(
            client=self.client(forwarded_for),
            scheme=forwarded_scheme(proto),
            host=forwarded_host(host),
        )

    def client(self, forwarded_for: Sequence[str]) -> str | None:
        """The client's address in ``X-Forwarded-For`` as sent by a trusted peer.

        Walking from the right, the first address that is not a trusted proxy is
        the client; when all are trusted, the leftmost is. An entry on the way that
        is not an IP address makes the whole header worthless: None.
        """
        client: Address | None = None
        for entry in reversed(_values(forwarded_for)):
            client = _address(entry)
            if client is None:
                return None
            if not self.trusts(client):
                break
        return str(client) if client is not None else None


@functools.lru_cache(maxsize=8)
def trusted_proxies(networks: tuple[str, ...]) -> TrustedProxies:
    """The proxies of the settings' networks, parsed once rather than for every request."""
    return TrustedProxies(networks)


def forwarded_scheme(lines: Sequence[str]) -> str | None:
    """The scheme of ``X-Forwarded-Proto`` (its last value): ``http``, ``https`` or None."""
    values = _values(lines)
    scheme = values[-1].lower() if values else ""
    return scheme if scheme in _SCHEMES else None


def forwarded_host(lines: Sequence[str]) -> str | None:
    """The host (and port) of ``X-Forwarded-Host`` (its last value), lower case; None if
    it is not a plain host name, IPv4 or bracketed IPv6 address with an optional port.

    Nothing else may pass into an absolute URL: no user part, path, space or control.
    """
    values = _values(lines)
    host = values[-1] if values else ""
    # ASCII first: lower() would turn some other letters (the Kelvin sign) into ASCII ones.
    if not host.isascii() or len(host) > _LONGEST_HOST:
        return None
    host = host.lower()
    match = _HOST.fullmatch(host)
    if match is None:
        return None
    if match["ipv6"] is not None:
        try:
            ipaddress.IPv6Address(match["ipv6"])
        except ValueError:
            return None
    elif len(match["name"]) > 253:
        return None
    if match["port"] is not None and not 0 < int(match["port"]) <= 65535:
        return None
    return host
