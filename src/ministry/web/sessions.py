"""Signing in and out of the web pages, and the page where users manage their tokens.

A session is an API token of its own kind (``services.auth.SESSION_PREFIX``),
made at login, kept in an HttpOnly, SameSite cookie (Secure over TLS) and
revoked at logout, so that every node sharing the store knows it and nothing
rests on a server-side secret.

The server speaks plain HTTP; TLS ends at a proxy in front, which says so with
``X-Forwarded-Proto: https``. For the Secure flag alone that header is believed
from anyone, not only from a trusted proxy (web.base): a client that lies only
makes its own cookie one its browser won't send back over plain HTTP, while a
proxy that ends TLS but is not listed in ``--trusted-proxies`` still gets a
Secure cookie for its users.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from ministry.core.forwarding import forwarded_scheme
from ministry.errors import (
    AuthenticationFailed,
    InvalidRequest,
    PermissionDenied,
    TooManyAttempts,
)
from ministry.web.base import SESSION_COOKIE
from ministry.web.ui import PageHandler

__all__ = ["LoginHandler", "LogoutHandler", "TokensHandler"]

_DESCRIPTION_CHARACTERS = 200
_MAX_DAYS = 3650
# Browsers drop tabs and newlines from a URL and read a backslash as "/", so "/", tab,
# "/evil" or "/", backslash, "evil" would lead off-site; nor has a path spaces or controls.
_NOT_IN_LOCAL_PATH = re.compile(r"[\x00-\x20\x7f\\]")


def local_path(target: str) -> str:
    """Where to go after logging in: a path on this server, never another site
    (docs/security.md, "HTTP abuse")."""
    if (
        target.startswith("/")
        and not target.startswith("//")
        and not _NOT_IN_LOCAL_PATH.search(target)
    ):
        return target
    return "/"


class LoginHandler(PageHandler):
    """``/-/login``: the form, and the session it starts."""

    def get(self) -> None:
        """The login form."""
        self.render("login.html", error=None, next=local_path(self.get_argument("next", "/")))

    async def post(self) -> None:
        """Check the password, start a session, go where the user was going."""
        username = self.get_argument("username", "").strip()
        password = self.get_argument("password", "")
        target = local_path(self.get_argument("next", "/"))
        address = self.request.remote_ip or "unknown"
        try:
            if not username or not password:
                raise AuthenticationFailed("Enter your user name and password.")
            identity = await self.services.auth.authenticate(username, password, address)
            # An API token proves no password: the service refuses to start a session with it.
            lifetime = timedelta(seconds=self.services.settings.session_lifetime)
            session = await self.services.accounts.start_session(identity, lifetime)
        except (AuthenticationFailed, PermissionDenied) as exc:
            self.set_status(401)
            self.render("login.html", error=exc.message, next=target)
            return
        except TooManyAttempts as exc:
            self.set_status(429)
            self.retry_after(exc)
            self.render("login.html", error=exc.message, next=target)
            return
        self.set_cookie(
            SESSION_COOKIE,
            session,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=self._over_tls(),
            expires=datetime.now(UTC) + lifetime,
        )
        self.redirect(target, status=303)

    def _over_tls(self) -> bool:
        # ``protocol`` is already a trusted proxy's word; the header is taken from
        # anyone too (see the module's docstring), in any letter case or list form.
        forwarded = forwarded_scheme(self.request.headers.get_list("X-Forwarded-Proto"))
        return self.request.protocol == "https" or forwarded == "https"


class LogoutHandler(PageHandler):
    """``POST /-/logout``: the session ends here and in every other process."""

    async def post(self) -> None:
        """Revoke the session, drop the cookie."""
        identity = await self.identity()
        if identity is not None:
            await self.services.accounts.end_session(identity)
        self.clear_cookie(SESSION_COOKIE, path="/")
        self.redirect("/", status=303)


class TokensHandler(PageHandler):
    """``/-/tokens``: a user's API tokens; create one (its secret shown once) or revoke one."""

    async def get(self) -> None:
        """The list and the form."""
        if await self.identity_or_login() is not None:
            await self._show(created=None)

    async def post(self) -> None:
        """Create or revoke, by the button pressed."""
        identity = await self.require_identity()
        accounts = self.services.accounts
        if self.get_argument("revoke", None):
            await accounts.revoke_token(identity, identity.user, self.get_argument("revoke"))
            self.redirect("/-/tokens", status=303)
            return
        description = self.get_argument("description", "").strip()[:_DESCRIPTION_CHARACTERS]
        index = self.get_argument("index", "").strip() or None
        _, secret = await accounts.create_token(
            identity,
            identity.user,
            description=description,
            expires=_expiry(self.get_argument("days", "").strip()),
            index=index,
        )
        await self._show(created=secret)

    async def _show(self, created: str | None) -> None:
        identity = await self.require_identity()
        tokens = await self.services.accounts.list_tokens(identity, identity.user)
        self.set_header("Cache-Control", "no-store")
        self.render(
            "tokens.html",
            created=created,
            tokens=sorted(tokens, key=lambda t: t.created, reverse=True),
            now=datetime.now(UTC),
            upload_url=f"{self.base_url}/legacy/",
        )


def _expiry(days: str) -> datetime | None:
    if not days:
        return None
    if not days.isdigit() or not 1 <= int(days) <= _MAX_DAYS:
        raise InvalidRequest(f"A token lasts from 1 to {_MAX_DAYS} days, or without end.")
    return datetime.now(UTC) + timedelta(days=int(days))
