"""The cross-site rules and README image rule on their own (docs/security.md, "Cross-site
requests", "Content-Security-Policy")."""

from __future__ import annotations

import pytest
import tornado.httputil

from ministry.core.readme import render_description
from ministry.errors import PermissionDenied, UnsupportedMediaType
from ministry.web.crosssite import origin_of, refuse_cross_site, require_json


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://pkgs.example.test", ("http", "pkgs.example.test", 80)),
        ("HTTPS://PKGS.example.test/pypi/", ("https", "pkgs.example.test", 443)),
        ("https://pkgs.example.test:443", ("https", "pkgs.example.test", 443)),
        ("http://[::1]:8080", ("http", "::1", 8080)),
        ("null", None),
        ("file:///etc", None),
        ("http://pkgs.example.test:99999", None),
        ("http://", None),
    ],
)
def test_origin_of(url: str, origin: tuple[str, str, int] | None) -> None:
    assert origin_of(url) == origin


def headers(**values: str) -> tornado.httputil.HTTPHeaders:
    return tornado.httputil.HTTPHeaders({k.replace("_", "-"): v for k, v in values.items()})


@pytest.mark.parametrize(
    "sent",
    [
        {"Origin": "http://evil.example.test"},
        {"Origin": "null"},
        {"Origin": "http://pkgs.example.test:8080"},
        {"Origin": ""},
        {"Sec_Fetch_Site": "cross-site"},
        {"Sec_Fetch_Site": "Same-Site"},
    ],
)
def test_foreign_writes_are_refused(sent: dict[str, str]) -> None:
    with pytest.raises(PermissionDenied, match="another site"):
        refuse_cross_site(headers(**sent), "http://pkgs.example.test")


@pytest.mark.parametrize(
    "sent",
    [
        {},
        {"Origin": "http://pkgs.example.test"},
        {"Origin": "http://pkgs.example.test:80", "Sec_Fetch_Site": "same-origin"},
        {"Sec_Fetch_Site": "none"},
    ],
)
def test_own_and_tool_writes_pass(sent: dict[str, str]) -> None:
    refuse_cross_site(headers(**sent), "http://pkgs.example.test/")


def test_only_declared_json_bodies_pass() -> None:
    require_json(headers(), b"")
    require_json(headers(Content_Type="application/json"), b"{}")
    require_json(headers(Content_Type="Application/JSON; charset=utf-8"), b"{}")
    for declared in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx"):
        with pytest.raises(UnsupportedMediaType):
            require_json(headers(Content_Type=declared), b"")
    with pytest.raises(UnsupportedMediaType):
        require_json(headers(), b"{}")


@pytest.mark.parametrize(
    "image",
    [
        '<img src="https://tracker.example.test/p.gif" alt="seen">',
        '<img src="HTTP://tracker.example.test/p.gif" alt="seen">',
        '<img src="//tracker.example.test/p.gif" alt="seen">',
        '<img src="/\\tracker.example.test/p.gif" alt="seen">',
        '<img src="/&#9;/tracker.example.test/p.gif" alt="seen">',
        '<img src=" https://tracker.example.test/p.gif" alt="seen">',
        "![seen](https://tracker.example.test/p.gif)",
    ],
)
def test_readme_images_from_other_hosts_lose_their_address(image: str) -> None:
    html = render_description(f"Text\n\n{image}\n", "text/markdown")
    assert "tracker.example.test" not in html
    assert '<img alt="seen">' in html


def test_readme_images_here_stay() -> None:
    html = render_description("![local](docs/a.png) ![root](/a.png)", "text/markdown")
    assert '<img src="docs/a.png" alt="local">' in html
    assert '<img src="/a.png" alt="root">' in html
    rst = render_description(".. image:: https://tracker.example.test/a.png\n   :alt: rst\n", None)
    assert "tracker.example.test" not in rst
