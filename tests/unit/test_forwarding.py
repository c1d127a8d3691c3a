"""Unit tests for ministry.core.forwarding: which forwarded values are believed
(docs/security.md, "HTTP abuse")."""

from __future__ import annotations

import ipaddress

import pytest

from ministry.core.forwarding import (
    Forwarded,
    TrustedProxies,
    forwarded_host,
    forwarded_scheme,
    trusted_proxies,
)

PROXIES = TrustedProxies(["127.0.0.1/32", "10.0.0.0/8", "fd00::/8"])


def said(peer: str, *, xff: str = "", proto: str = "", host: str = "") -> Forwarded:
    return PROXIES.forwarded(
        peer,
        forwarded_for=[xff] if xff else [],
        proto=[proto] if proto else [],
        host=[host] if host else [],
    )


def test_an_untrusted_peer_is_not_believed() -> None:
    assert said("192.0.2.1", xff="203.0.113.9", proto="https", host="a.example.test") == (
        Forwarded()
    )


def test_a_trusted_peer_is_believed() -> None:
    assert said("10.1.2.3", xff="203.0.113.9", proto="https", host="a.example.test") == (
        Forwarded("203.0.113.9", "https", "a.example.test")
    )


def test_a_peer_that_is_not_an_address_is_not_believed() -> None:
    assert said("fe80::1%eth0", xff="203.0.113.9") == Forwarded()


def test_no_proxies_trust_nobody() -> None:
    empty = TrustedProxies([])
    assert not empty
    assert empty.forwarded("127.0.0.1", forwarded_for=["203.0.113.9"], proto=[], host=[]) == (
        Forwarded()
    )


def test_an_ipv4_proxy_is_trusted_on_a_dual_stack_socket_too() -> None:
    assert PROXIES.trusts(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not PROXIES.trusts(ipaddress.ip_address("::ffff:127.0.0.2"))
    assert PROXIES.trusts(ipaddress.ip_address("fd12::1"))


@pytest.mark.parametrize(
    ("lines", "client"),
    [
        # What the client claims left of the first untrusted address is never read.
        (["198.51.100.1, 203.0.113.9"], "203.0.113.9"),
        (["junk, 203.0.113.9, 10.0.0.5"], "203.0.113.9"),
        # Trusted proxies on the way are skipped.
        (["203.0.113.9, 10.0.0.5, 127.0.0.1"], "203.0.113.9"),
        # Repeated header lines are one list, in order.
        (["198.51.100.1", "203.0.113.9, 10.0.0.5"], "203.0.113.9"),
        # All trusted: the leftmost, the client on the proxies' own network.
        (["10.0.0.7, 10.0.0.5"], "10.0.0.7"),
        ([" 2001:DB8::1 "], "2001:db8::1"),
        ([], None),
    ],
)
def test_the_client_is_the_first_untrusted_address_from_the_right(
    lines: list[str], client: str | None
) -> None:
    assert PROXIES.client(lines) == client


@pytest.mark.parametrize(
    "lines",
    [
        ["unknown"],
        [""],
        ["203.0.113.9:4711"],  # ports are not part of the list
        ["[2001:db8::1]"],
        ["203.0.113.9, 10.0.0.5, not-an-ip"],
        ["203.0.113.9, 10.0.0.5,"],  # an empty entry on the way
        ["fe80::1%<script>"],  # a scope id is any text
        ["203.0.113.9\r\nX-Evil: 1"],
    ],
)
def test_a_list_with_a_bad_entry_on_the_way_is_ignored(lines: list[str]) -> None:
    assert PROXIES.client(lines) is None


@pytest.mark.parametrize(
    ("lines", "scheme"),
    [
        (["https"], "https"),
        (["HTTP"], "http"),
        (["http, https"], "https"),
        (["https", "http"], "http"),
        (["ftp"], None),
        (["https, javascript"], None),  # the last value counts, and it is bad
        (["https://"], None),
        ([""], None),
        ([], None),
    ],
)
def test_the_scheme_is_the_last_value_and_only_http_or_https(
    lines: list[str], scheme: str | None
) -> None:
    assert forwarded_scheme(lines) == scheme


@pytest.mark.parametrize(
    ("lines", "host"),
    [
        (["pypi.example.test"], "pypi.example.test"),
        (["PyPI.Example.Test:8443"], "pypi.example.test:8443"),
        (["first.example.test, pypi.example.test"], "pypi.example.test"),
        (["203.0.113.9:80"], "203.0.113.9:80"),
        (["[2001:db8::1]:443"], "[2001:db8::1]:443"),
        (["[2001:db8::1]"], "[2001:db8::1]"),
        (["build_host.internal"], "build_host.internal"),
        (["localhost"], "localhost"),
    ],
)
def test_a_plain_host_and_port_are_taken(lines: list[str], host: str) -> None:
    assert forwarded_host(lines) == host


@pytest.mark.parametrize(
    "value",
    [
        "",
        "evil.example.test/path",
        "user@evil.example.test",
        "evil.example.test?x=1",
        "evil.example.test#x",
        "evil example.test",
        "evil.example.test\tx",
        "evil.example.test\x00",
        "evil.example.test\r\nSet-Cookie: x=1",
        "pypi.example.test:",
        "pypi.example.test:99999",
        "pypi.example.test:0",
        "pypi.example.test:http",
        "-pypi.example.test",
        "pypi..example.test",
        ".pypi.example.test",
        "pypi.example.test.",
        "[2001:db8::zz]",
        "[2001:db8::1",
        "2001:db8::1",
        "\\\\evil.example.test",
        "ev\u0131l.example.test",  # a dotless i, which IDNA would fold
        "pypi.example.tes\u212a",  # a Kelvin sign, which lower() makes a "k"
        "a" * 64 + ".example.test",  # a label longer than DNS allows
        ".".join(["a" * 60] * 5),  # a name longer than DNS allows
    ],
)
def test_anything_but_a_plain_host_is_refused(value: str) -> None:
    assert forwarded_host([value]) is None


def test_the_proxies_of_the_settings_are_parsed_once() -> None:
    networks = ("127.0.0.1/32", "10.0.0.0/8")
    assert trusted_proxies(networks) is trusted_proxies(networks)
    assert trusted_proxies(networks).trusts(ipaddress.ip_address("10.9.8.7"))
