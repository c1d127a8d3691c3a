"""Refusing writes that another site's page makes a browser send (docs/security.md, "Cross-site
requests").

A browser attaches the Basic credentials it has cached for this server, and the
session cookie, to a form another site posts here; neither proves the user meant
it. Browsers say where a request comes from in ``Origin`` and ``Sec-Fetch-Site``,
which a page cannot forge; package tools (pip, uv, twine, poetry, curl) send
neither header and are not affected.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import tornado.httputil

from ministry.errors import PermissionDenied, UnsupportedMediaType

__all__ = ["SAFE_METHODS", "origin_of", "refuse_cross_site", "require_json"]

#: Methods that change nothing: a cross-site GET is a link, and is answered.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# ``same-origin`` is this server's own page; ``none`` is the user typing the address.
_FOREIGN_FETCH_SITES = frozenset({"cross-site", "same-site"})


def origin_of(url: str) -> tuple[str, str, int] | None:
    """Scheme, host and port of a URL, with the default port filled in; None if it has none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def refuse_cross_site(headers: tornado.httputil.HTTPHeaders, own_url: str) -> None:
    """403 for a request another site's page sent; ``own_url`` is this server's address.

    ``Origin: null`` (a sandboxed frame, a ``data:`` page, some redirects) is
    another site too: nothing of ours is ever served that way.
    """
    fetch_site = headers.get("Sec-Fetch-Site", "").strip().lower()
    if fetch_site in _FOREIGN_FETCH_SITES:
        raise PermissionDenied(
            f"Refused: this request was sent by a page of another site (Sec-Fetch-Site: "
            f"{fetch_site}). Changes are made from this server's own pages or with a "
            "package tool, never from another site."
        )
    origin = headers.get("Origin")
    if origin is None:
        return
    own = origin_of(own_url)
    if own is None or origin_of(origin) != own:
        shown = origin.strip()[:100].encode("ascii", "replace").decode()
        raise PermissionDenied(
            f"Refused: this request was sent by a page of another site (Origin: {shown}), "
            f"not of {own_url}. Changes are made from this server's own pages or with a "
            "package tool, never from another site."
        )


def require_json(headers: tornado.httputil.HTTPHeaders, body: bytes) -> None:
    """415 for a body that is not declared JSON: an HTML form cannot declare it.

    A form posts ``text/plain`` or ``application/x-www-form-urlencoded`` to any
    site without asking first, and its ``text/plain`` body can spell out JSON; a
    page can only send ``application/json`` elsewhere after the browser asks this
    server (a preflight), which the server never allows.
    """
    declared = headers.get("Content-Type")
    if declared is None and not body:
        return
    kind = (declared or "").partition(";")[0].strip().lower()
    if kind != "application/json":
        raise UnsupportedMediaType(
            f"Send the request body as JSON with 'Content-Type: application/json' "
            f"(this request said {(declared or 'nothing')[:100]!r})."
        )
