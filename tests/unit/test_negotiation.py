"""Unit tests for ministry.core.negotiation: PEP 691 Accept handling
(docs/protocol.md, "Content negotiation")."""

from __future__ import annotations

import pytest

from ministry.core.negotiation import (
    SIMPLE_HTML,
    SIMPLE_JSON,
    TEXT_HTML,
    accepts_encoding,
    choose_simple_format,
    negotiate,
    prefers_html,
)

# The exact Accept strings real clients send (docs/protocol.md, "Client behaviours").
PIP = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)
UV = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.01"
)
POETRY = "application/vnd.pypi.simple.v1+json, */*;q=0.1"
PDM = PIP  # unearth sends pip's string
FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
CHROME = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)


@pytest.mark.parametrize(
    ("client", "accept"),
    [("pip", PIP), ("uv", UV), ("poetry", POETRY), ("pdm", PDM)],
)
def test_real_installer_accept_headers_get_json(client: str, accept: str) -> None:
    """pip, uv, poetry and pdm all get the v1 JSON form with their exact Accept strings."""
    assert choose_simple_format(accept) == SIMPLE_JSON, client


@pytest.mark.parametrize("accept", [None, "", "   "])
def test_missing_accept_header_gets_text_html(accept: str | None) -> None:
    """No Accept header (hatch, curl without -H) is answered with text/html."""
    assert choose_simple_format(accept) == TEXT_HTML


def test_curl_wildcard_gets_text_html() -> None:
    """curl's ``*/*`` gets text/html, the public index's default, not the JSON form."""
    assert choose_simple_format("*/*") == TEXT_HTML


@pytest.mark.parametrize("accept", [FIREFOX, CHROME], ids=["firefox", "chrome"])
def test_browser_accept_gets_text_html(accept: str) -> None:
    """A browser's Accept names text/html at q=1 and gets text/html."""
    assert choose_simple_format(accept) == TEXT_HTML


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("text/html", TEXT_HTML),
        ("application/vnd.pypi.simple.v1+html", SIMPLE_HTML),
        ("application/vnd.pypi.simple.v1+json", SIMPLE_JSON),
    ],
)
def test_single_named_type_is_chosen(accept: str, expected: str) -> None:
    """Each of the three supported media types is served when it is the only one asked."""
    assert choose_simple_format(accept) == expected


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/vnd.pypi.simple.latest+json", SIMPLE_JSON),
        ("application/vnd.pypi.simple.latest+html", SIMPLE_HTML),
        ("application/vnd.pypi.simple.latest+json;q=0.5, text/html;q=0.4", SIMPLE_JSON),
    ],
)
def test_latest_alias_is_answered_with_concrete_type(accept: str, expected: str) -> None:
    """``latest+json``/``latest+html`` are answered with the concrete v1 type, never latest."""
    chosen = choose_simple_format(accept)
    assert chosen == expected
    assert "latest" not in chosen


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/vnd.pypi.simple.v1+json;q=0, text/html", TEXT_HTML),
        ("application/vnd.pypi.simple.v1+json; q=0, */*", TEXT_HTML),
        ("application/vnd.pypi.simple.v1+json;q=0.000, text/html;q=0.1", TEXT_HTML),
        ("*/*, text/html;q=0", SIMPLE_JSON),
    ],
)
def test_q_zero_excludes_a_type(accept: str, expected: str) -> None:
    """A ``;q=0`` entry means "not acceptable", even when a wildcard would match it."""
    assert choose_simple_format(accept) == expected


@pytest.mark.parametrize(
    "accept",
    [
        "text/html;q=0",
        "*/*;q=0",
        "application/vnd.pypi.simple.v1+json;q=0",
    ],
)
def test_everything_excluded_is_not_acceptable(accept: str) -> None:
    """When every offer is excluded with q=0 there is nothing to send (406)."""
    assert choose_simple_format(accept) is None


@pytest.mark.parametrize(
    "accept",
    [
        "application/json",
        "application/vnd.pypi.simple.v2+json",
        "application/xml, image/png",
        "text/plain;q=1",
    ],
)
def test_unknown_types_only_give_none_for_406(accept: str) -> None:
    """Only unknown types and no wildcard -> None, which the handler answers with 406."""
    assert choose_simple_format(accept) is None


@pytest.mark.parametrize(
    "accept",
    [
        "application/vnd.pypi.simple.v1+json;q=0.1, text/html;q=0.01",
        "application/vnd.pypi.simple.v1+json; q=0.1, text/html; q=0.01",
        "application/vnd.pypi.simple.v1+json;   q=0.1,text/html;q=0.01",
        "application/vnd.pypi.simple.v1+json ; q=0.1 , text/html ; q=0.01",
        "application/vnd.pypi.simple.v1+json;Q=0.1, text/html;Q=0.01",
    ],
)
def test_q_value_spacing_and_case_are_tolerated(accept: str) -> None:
    """``;q=`` and ``; q=`` (and an upper-case ``Q``) are read the same way."""
    assert choose_simple_format(accept) == SIMPLE_JSON


def test_q_value_decides_not_the_order_of_entries() -> None:
    """The order of entries has no meaning; the higher q-value wins."""
    accept = "text/html;q=0.5, application/vnd.pypi.simple.v1+json;q=0.4"
    assert choose_simple_format(accept) == TEXT_HTML
    reversed_accept = "application/vnd.pypi.simple.v1+json;q=0.4, text/html;q=0.5"
    assert choose_simple_format(reversed_accept) == TEXT_HTML


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("text/html, application/vnd.pypi.simple.v1+json", SIMPLE_JSON),
        ("text/html, application/vnd.pypi.simple.v1+html", SIMPLE_HTML),
        (
            "text/html, application/vnd.pypi.simple.v1+html, application/vnd.pypi.simple.v1+json",
            SIMPLE_JSON,
        ),
        ("application/*", SIMPLE_JSON),
        ("text/*", TEXT_HTML),
    ],
)
def test_ties_prefer_json_then_html_then_text_html(accept: str, expected: str) -> None:
    """On equal quality the server prefers JSON over v1+html over text/html."""
    assert choose_simple_format(accept) == expected


def test_wildcard_does_not_outrank_a_named_type() -> None:
    """poetry's ``*/*;q=0.1`` must not make HTML win over the named JSON type."""
    assert choose_simple_format("*/*;q=0.1, application/vnd.pypi.simple.v1+json") == SIMPLE_JSON


def test_more_specific_range_decides_the_quality() -> None:
    """RFC 9110 12.5.1: ``v1+json;q=0.5, */*`` gives JSON q=0.5 and text/html q=1 -> HTML."""
    assert choose_simple_format("application/vnd.pypi.simple.v1+json;q=0.5, */*") == TEXT_HTML


def test_media_types_are_case_insensitive() -> None:
    """RFC 9110 8.3.1: media type names compare case-insensitively."""
    assert choose_simple_format("Application/VND.PyPI.Simple.V1+JSON") == SIMPLE_JSON


@pytest.mark.parametrize(
    "accept",
    [
        "application/vnd.pypi.simple.v1+json;q=abc, text/html;q=0.5",
        "application/vnd.pypi.simple.v1+json;q=, text/html;q=0.5",
        "application/vnd.pypi.simple.v1+json;q=nan, text/html;q=0.5",
        "application/vnd.pypi.simple.v1+json;q, text/html;q=0.5",
    ],
)
def test_malformed_q_is_read_as_one_or_the_entry_ignored(accept: str) -> None:
    """A malformed q is treated as 1 (JSON wins) or its entry ignored (HTML), never a crash."""
    assert choose_simple_format(accept) in {SIMPLE_JSON, TEXT_HTML}


@pytest.mark.parametrize("accept", ["foo", ", , ;;", "/", ";q=1", "text/html;;;q=0.5;;"])
def test_garbage_entries_never_raise(accept: str) -> None:
    """Syntactically broken Accept values return an offer or None, never raise."""
    assert choose_simple_format(accept) in {None, SIMPLE_JSON, SIMPLE_HTML, TEXT_HTML}


def test_long_header_with_real_entry_first_still_negotiates() -> None:
    """pip's string followed by 1000 junk entries still gets JSON."""
    accept = PIP + ", " + ", ".join(f"x-junk/type{i};q=0.9" for i in range(1000))
    assert choose_simple_format(accept) == SIMPLE_JSON


def test_thousand_entry_header_is_read_only_up_to_a_bound() -> None:
    """The work per header is bounded, so an entry after 1000 junk ones is not read."""
    accept = ", ".join(["x-junk/type"] * 1000 + [SIMPLE_JSON])
    assert choose_simple_format(accept) is None


def test_negotiate_uses_default_only_without_header() -> None:
    """negotiate(): the default answers a missing header; an explicit mismatch gives None."""
    offers = ("application/json", "text/plain")
    assert negotiate(None, offers, default="text/plain") == "text/plain"
    assert negotiate("application/json", offers, default="text/plain") == "application/json"
    assert negotiate("image/png", offers, default="text/plain") is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("gzip, deflate", True),
        ("deflate, gzip;q=0.5", True),
        ("GZIP", True),
        ("gzip; q=0.001", True),
        ("gzip;q=0", False),
        ("gzip ; q=0.0", False),
        ("*", True),
        ("*;q=0", False),
        ("gzip;q=0, *", False),
        ("identity", False),
        ("br, zstd", False),
        ("", False),
        (None, False),
    ],
)
def test_accepts_encoding(header: str | None, expected: bool) -> None:
    """docs/protocol.md, "Response headers": gzip only when Accept-Encoding names it or ``*`` with
    q>0; an explicit q=0 wins."""
    assert accepts_encoding(header, "gzip") is expected


@pytest.mark.parametrize(
    ("accept", "page"),
    [
        (FIREFOX, True),
        (CHROME, True),
        ("text/html", True),
        (PIP, False),
        (UV, False),
        (POETRY, False),
        ("*/*", False),
        (None, False),
        ("", False),
        ("application/json, text/html", True),  # equal liking: a page (JSON is asked first)
        ("text/html;q=0", False),
    ],
)
def test_error_pages_are_for_browsers(accept: str | None, page: bool) -> None:
    """Browsers name text/html first; installers name it last, curl not at all."""
    assert prefers_html(accept) is page
