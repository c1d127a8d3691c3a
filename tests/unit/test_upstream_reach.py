"""The reach rule: which addresses a proxy index's requests may connect to."""

from __future__ import annotations

import ipaddress

import pytest

from ministry.core.upstream_reach import Reach, endpoint, is_internal

INTERNAL = [
    "127.0.0.1", "127.255.0.9", "::1", "10.2.3.4", "172.16.0.1", "172.31.255.254",
    "192.168.1.1", "100.64.0.1", "100.127.255.255", "169.254.169.254", "fe80::1",
    "fc00::1", "fd12:3456::1", "0.0.0.0",  # noqa: S104
    "0.1.2.3", "::", "224.0.0.1", "239.1.1.1",
    "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
]  # fmt: skip
# Public addresses, among them documentation ranges that ``is_private`` calls private.
PUBLIC = [
    "93.184.216.34", "192.0.2.1", "198.51.100.7", "203.0.113.9", "2001:db8::1",
    "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:93.184.216.34",
]  # fmt: skip


@pytest.mark.parametrize("address", INTERNAL)
def test_internal_addresses(address: str) -> None:
    assert is_internal(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address: str) -> None:
    assert not is_internal(ipaddress.ip_address(address))


def test_the_upstreams_own_host_and_port_may_be_internal() -> None:
    """Only that host and port: another port of the same machine is refused."""
    reach = Reach.of("http://pkgs.example.test:8081/simple/", ())
    loopback = ipaddress.ip_address("127.0.0.1")
    assert reach.permits("pkgs.example.test", 8081, loopback)
    assert not reach.permits("pkgs.example.test", 8082, loopback)
    assert not reach.permits("127.0.0.1", 8081, loopback)
    assert reach.permits("pypi.example.test", 443, ipaddress.ip_address("203.0.113.9"))


def test_allowed_networks_and_hosts() -> None:
    reach = Reach.of("https://index.example.test/simple/", ("10.1.0.0/16", "Files.Example.Test"))
    assert reach.permits("anything.example.test", 80, ipaddress.ip_address("10.1.2.3"))
    assert reach.permits("x", 80, ipaddress.ip_address("::ffff:10.1.2.3"))
    assert not reach.permits("anything.example.test", 80, ipaddress.ip_address("10.2.0.1"))
    assert reach.permits("files.example.test.", 8080, ipaddress.ip_address("192.168.0.5"))


def test_endpoint_defaults_the_port_by_scheme() -> None:
    assert endpoint("https://pkgs.example.test/simple/") == ("pkgs.example.test", 443)
    assert endpoint("http://[::1]:9000/x") == ("::1", 9000)
    assert endpoint("http://127.0.0.1:notaport/") is None
