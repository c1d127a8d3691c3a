"""Which addresses a proxy index may connect to: the rule that keeps it from being a
door into the operator's network (docs/security.md, "Upstream requests (SSRF)").

An upstream page names the URLs of its files, so a hostile or hijacked upstream
could point the server at its own admin ports or at the cloud metadata service.
An address in :data:`INTERNAL_NETWORKS` may be reached only on the upstream
index's own host and port, or when the operator allowed its network or host name.
The table is written out here, not taken from ``ipaddress``'s ``is_private``,
which also covers public documentation ranges and changes between versions.
Pure code: resolving names is the caller's part.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["INTERNAL_NETWORKS", "Reach", "endpoint", "ip_literal", "is_internal"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Addresses that lead into the server's own host or network, never to the public internet.
INTERNAL_NETWORKS: tuple[Network, ...] = tuple(
    ipaddress.ip_network(network)
    for network in (
        "127.0.0.0/8",  # loopback
        "::1/128",
        "10.0.0.0/8",  # RFC 1918
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",  # carrier-grade NAT (RFC 6598)
        "169.254.0.0/16",  # link-local, where cloud metadata services answer
        "fe80::/10",
        "fc00::/7",  # unique-local
        "0.0.0.0/8",  # unspecified: "this host"
        "::/128",
        "224.0.0.0/4",  # multicast
        "ff00::/8",
    )
)


def is_internal(address: Address) -> bool:
    """Whether ``address`` (or the IPv4 address an IPv4-mapped IPv6 one stands for) is internal."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in INTERNAL_NETWORKS)


def ip_literal(host: str) -> Address | None:
    """``host`` as an IP address when it is one (brackets and a zone index allowed)."""
    try:
        return ipaddress.ip_address(host.strip("[]").partition("%")[0])
    except ValueError:
        return None


def endpoint(url: str) -> tuple[str, int] | None:
    """The lower-case host and the port (defaulted by scheme) a URL connects to."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    default = 443 if parts.scheme == "https" else 80
    return parts.hostname.lower(), port or default


@dataclass(frozen=True)
class Reach:
    """The addresses one upstream's requests may connect to.

    ``own`` is the upstream index's host and port (the operator configured it);
    ``networks`` and ``hosts`` are what ``--upstream-allow-internal`` allows.
    """

    own: tuple[str, int] | None
    networks: tuple[Network, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def of(cls, upstream: str, allowed: Iterable[str]) -> Reach:
        """The rule for the upstream index at ``upstream`` with the operator's allow list."""
        networks: list[Network] = []
        hosts: set[str] = set()
        for item in allowed:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(endpoint(upstream), tuple(networks), frozenset(hosts))

    def permits(self, host: str, port: int, address: Address) -> bool:
        """Whether a connection to ``host:port`` may go to ``address``."""
        if not is_internal(address):
            return True
        host = host.lower().strip("[]").rstrip(".")
        if self.own is not None and (host, port) == (self.own[0].strip("[]"), self.own[1]):
            return True
        if host in self.hosts:
            return True
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        return any(a in n for n in self.networks for a in (address, mapped) if a is not None)
