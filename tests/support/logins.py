"""The login form posted as a browser posts it, for tests that need no real browser."""

from __future__ import annotations

import re
from collections.abc import Mapping

import httpx

_XSRF_FIELD = re.compile(r'(name="_xsrf" value=")[^"]*(")')


def form_login(
    client: httpx.Client,
    username: str,
    password: str,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """POST ``/-/login`` with the XSRF token of the cookie the form page set."""
    if "_xsrf" not in client.cookies:
        client.get("/-/login").raise_for_status()
    fields = {
        "username": username,
        "password": password,
        "next": "/",
        "_xsrf": client.cookies["_xsrf"],
    }
    return client.post("/-/login", data=fields, headers=dict(headers or {}))


def without_xsrf_token(page: str) -> str:
    """A page with its form's XSRF token blanked: Tornado masks it afresh on every render."""
    return _XSRF_FIELD.sub(r"\1\2", page)
