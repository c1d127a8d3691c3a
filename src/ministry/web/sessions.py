"""Signing in and out of the web pages, and the page where users manage their tokens.

A session is an API token of its own kind (``services.auth.SESSION_PREFIX``),
made at login, kept in an HttpOnly, SameSite cookie (Secure over TLS) and
revoked at logout, so that every node sharing the store knows it and nothing
rests on a server-side secret. It is no token to its user, though: the tokens page
lists sessions apart (with a way to end them all), and logging in or out is written
to the server log, not to the audit log of changes.

The server speaks plain HTTP; TLS ends at a proxy in front, which says so with
``X-Forwarded-Proto: https``. For the Secure flag alone that header is believed
from anyone, not only from a trusted proxy (web.base): a client that lies only
makes its own cookie one its browser won't send back over plain HTTP, while a
proxy that ends TLS but is not listed in ``--trusted-proxies`` still gets a
Secure cookie for its users.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from ministry.core.forwarding import forwarded_scheme
from ministry.core.models import DEFAULT_INDEX
from ministry.core.permissions import Identity
from ministry.errors import (
    AuthenticationFailed,
    PermissionDenied,
    TooManyAttempts,
)
from ministry.web.base import SESSION_COOKIE
from ministry.web.ui import PageHandler
from ministry.web.urls import index_prefix, local_path

__all__ = ["LoginHandler", "LogoutHandler", "TokenForm", "TokensHandler", "repository_name"]

_DESCRIPTION_CHARACTERS = 200
_MAX_DAYS = 3650
_DAYS_CHARACTERS = 10


class LoginHandler(PageHandler):
    """``/-/login``: the form, and the session it starts."""

    def get(self) -> None:
        """The login form."""
        self.render(
            "login.html", error=None, username="", next=local_path(self.get_argument("next", "/"))
        )

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
            self.render("login.html", error=exc.message, username=username, next=target)
            return
        except TooManyAttempts as exc:
            self.set_status(429)
            self.retry_after(exc)
            self.render("login.html", error=exc.message, username=username, next=target)
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


@dataclass(frozen=True)
class TokenForm:
    """What the token form was sent with, kept to show it again beside its errors."""

    description: str = ""
    index: str = ""
    days: str = ""
    #: Field name to message, for the fields that were refused.
    errors: dict[str, str] = field(default_factory=dict)


class TokensHandler(PageHandler):
    """``/-/tokens``: a user's API tokens; create one (its secret shown once) or revoke one;
    their browser sessions, and signing out of all of them."""

    async def get(self) -> None:
        """The list and the form."""
        if await self.identity_or_login() is not None:
            await self._show(TokenForm())

    async def post(self) -> None:
        """Create or revoke, by the button pressed."""
        identity = await self.require_identity()
        accounts = self.services.accounts
        if self.get_argument("revoke", None):
            await accounts.revoke_token(identity, identity.user, self.get_argument("revoke"))
            self.redirect("/-/tokens", status=303)
            return
        if self.get_argument("sign_out", None) == "everywhere":
            await accounts.end_every_session(identity)
            self.clear_cookie(SESSION_COOKIE, path="/")
            self.redirect("/", status=303)
            return
        form = TokenForm(
            description=self.get_argument("description", "").strip()[:_DESCRIPTION_CHARACTERS],
            index=self.get_argument("index", "").strip(),
            days=self.get_argument("days", "").strip()[:_DAYS_CHARACTERS],
        )
        errors = await self._check(identity, form)
        if errors:
            self.set_status(400)
            await self._show(replace(form, errors=errors))
            return
        token, secret = await accounts.create_token(
            identity,
            identity.user,
            description=form.description,
            expires=_expiry(form.days),
            index=form.index or None,
        )
        await self._show(TokenForm(), created=secret, created_index=token.index)

    async def _check(self, identity: Identity, form: TokenForm) -> dict[str, str]:
        """The form's mistakes, by field; the service checks the index again."""
        errors = {}
        if form.index and form.index not in await self.services.indexes.upload_targets(identity):
            errors["index"] = "Choose one of the listed indexes, or every index."
        if form.days and (not form.days.isdigit() or not 1 <= int(form.days) <= _MAX_DAYS):
            errors["days"] = (
                f"Enter a whole number of days from 1 to {_MAX_DAYS}, or leave it empty "
                "for a token that does not expire."
            )
        return errors

    async def _show(
        self, form: TokenForm, created: str | None = None, created_index: str | None = None
    ) -> None:
        identity = await self.require_identity()
        accounts = self.services.accounts
        tokens = await accounts.list_tokens(identity, identity.user)
        sessions = await accounts.list_sessions(identity, identity.user)
        self.set_header("Cache-Control", "no-store")
        upload_index = created_index or DEFAULT_INDEX
        self.render(
            "tokens.html",
            form=form,
            targets=await self.services.indexes.upload_targets(identity),
            created=created,
            created_index=created_index,
            tokens=sorted(tokens, key=lambda t: t.created, reverse=True),
            sessions=sorted(sessions, key=lambda t: t.created, reverse=True),
            current_session=identity.session_id,
            now=datetime.now(UTC),
            upload_url=f"{self.base_url}{index_prefix(upload_index)}/legacy/",
            repository=repository_name(upload_index),
            max_days=_MAX_DAYS,
        )


def repository_name(index: str) -> str:
    """The name of an index in a ``.pypirc`` or ``uv.toml``: one word."""
    return "ministry" if index == DEFAULT_INDEX else index.replace("/", "-")


def _expiry(days: str) -> datetime | None:
    if not days:
        return None
    return datetime.now(UTC) + timedelta(days=int(days))
