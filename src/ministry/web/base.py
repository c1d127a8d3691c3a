"""What every handler shares: access to the services, authentication, and the error table.

Domain errors are mapped to HTTP here and nowhere else. The message travels in
the reason phrase as well as the body, because twine prints only the reason
phrase (docs/protocol.md, "Upload answers"); clients that prefer JSON (uv) get the public index's
``{"message", "code", "title"}`` shape. Browsers get a page of the site instead, with
the standard reason phrase.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import uuid
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, final
from urllib.parse import quote

import tornado.httputil
import tornado.web

from ministry.core.forwarding import trusted_proxies
from ministry.core.negotiation import negotiate, prefers_html
from ministry.core.permissions import Identity
from ministry.errors import (
    AuthenticationFailed,
    AuthenticationRequired,
    Conflict,
    FileExists,
    Gone,
    InvalidRequest,
    MinistryError,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RangeNotSatisfiable,
    StorageError,
    StorageFull,
    StorageUnavailable,
    TooManyAttempts,
    UnsupportedMediaType,
    UpstreamUnavailable,
)
from ministry.services.indexes import ReadAccess
from ministry.web.crosssite import refuse_cross_site
from ministry.web.tornado_internals import reason_phrase, unsent_bytes
from ministry.web.urls import local_path
from ministry.wiring import Services

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "SESSION_COOKIE",
    "BaseHandler",
    "believe_proxy",
    "error_of",
    "status_of",
    "title_of",
]

#: The browser session: an API token made at login, kept in an HttpOnly cookie.
SESSION_COOKIE = "ministry_session"

log = logging.getLogger(__name__)

#: The one table from domain errors to status codes; the first matching class wins.
_STATUS: tuple[tuple[type[MinistryError], int], ...] = (
    (NotFound, 404),
    (FileExists, 400),  # upload clients skip a file on 400 + "File already exists"
    (InvalidRequest, 400),
    (Conflict, 409),
    (PayloadTooLarge, 413),
    (AuthenticationRequired, 401),
    (PermissionDenied, 403),
    (NotAcceptable, 406),
    (UnsupportedMediaType, 415),
    (Gone, 410),
    (RangeNotSatisfiable, 416),
    (TooManyAttempts, 429),
    (StorageFull, 507),
    (StorageUnavailable, 503),
    (StorageError, 500),
    (UpstreamUnavailable, 502),
)
#: What an error page says in its heading, in words for people (the title keeps the phrase).
_HEADLINES = {
    400: "This request cannot be answered",
    401: "Log in to see this page",
    403: "You may not do this",
    404: "Page not found",
    429: "Too many attempts",
    503: "The server is busy or its store is down",
}
_REALM = 'Basic realm="Ministry of Packages", charset="UTF-8"'
# A Basic credential longer than this is an attack, not a password.
_MAX_AUTHORIZATION = 4096
_UNSAFE_REASON = re.compile(r"[^\x20-\x7e]")
# A store that is down is often back within seconds (a restart, a failover); pip
# retries a 503 after this long, up to five times.
_STORE_RETRY_AFTER = "5"
# An incoming X-Request-ID is kept only when it is short plain text: it is copied into
# the log and a response header, so nothing that could break either passes.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}\Z")
#: No inline script or style, nothing from another host, never in a frame
#: (docs/security.md, "Content-Security-Policy").
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def status_of(error: MinistryError) -> int:
    """The HTTP status for a domain error."""
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return 500


def _reason(message: str) -> str:
    # Reason phrases are ISO-8859-1 text on one line; keep them plain ASCII.
    return _UNSAFE_REASON.sub("?", message)[:400]


def believe_proxy(request: tornado.httputil.HTTPServerRequest, proxies: Sequence[str]) -> None:
    """Take the client, scheme and host from a trusted proxy's headers
    (docs/security.md, "HTTP abuse").

    Done once, as a handler is made, before anything reads the request (an
    upload's body streams in only after): the access log, the audit log and
    the login limits read ``remote_ip``, absolute URLs the scheme and host.
    From any other peer the headers are ignored, so a client cannot forge them.
    """
    trusted = trusted_proxies(proxies)
    if not trusted or request.remote_ip is None:
        return
    said = trusted.forwarded(
        request.remote_ip,
        forwarded_for=request.headers.get_list("X-Forwarded-For"),
        proto=request.headers.get_list("X-Forwarded-Proto"),
        host=request.headers.get_list("X-Forwarded-Host"),
    )
    if said.client is not None:
        request.remote_ip = said.client
    if said.scheme is not None:
        request.protocol = said.scheme
    if said.host is not None:
        request.host = said.host
        request.host_name = tornado.httputil.split_host_and_port(said.host)[0]


class BaseHandler(tornado.web.RequestHandler):
    """Base of every handler.

    Each live handler is listed in the application's ``in_flight`` set until its
    response is sent or its client leaves, so that a shutdown can wait for them.
    """

    _request_identity: Identity | None = None
    _identity_known = False
    #: Who a browser's session cookie names, on a handler that does not accept the
    #: cookie: for the header of its error page only (``learn_viewer``).
    _viewer: str | None = None
    _request_id: str | None = None
    #: Body bytes sent so far (none for HEAD), for the access log and metrics.
    bytes_sent = 0
    #: Whether flush() ran: the status and headers are sent, so no error page can be.
    headers_sent = False
    #: The index the request reads or writes, once a handler has named it.
    access_index: str | None = None
    #: Whether a 401 asks a browser for Basic credentials too (the pages offer a login form).
    challenges_browsers = True

    def __init__(
        self,
        application: tornado.web.Application,
        request: tornado.httputil.HTTPServerRequest,
        **kwargs: Any,
    ) -> None:
        super().__init__(application, request, **kwargs)
        believe_proxy(self.request, self.services.settings.trusted_proxies)
        self._in_flight().add(self)

    def _in_flight(self) -> set[BaseHandler]:
        in_flight: set[BaseHandler] = self.application.settings["in_flight"]
        return in_flight

    def on_finish(self) -> None:
        """The response is sent."""
        self._in_flight().discard(self)

    def on_connection_close(self) -> None:
        """The client went away."""
        self._in_flight().discard(self)
        super().on_connection_close()

    def abort(self) -> None:
        """Cut the connection mid-response: the one way to tell a client a body is broken.

        Ending the body cleanly would make a truncated file look complete.
        """
        # Detached, Tornado neither finishes the response nor writes an error after it.
        self.detach().close()
        self._in_flight().discard(self)

    @property
    def services(self) -> Services:
        """The services built by ``wiring``."""
        services: Services = self.application.settings["services"]
        return services

    @property
    def base_url(self) -> str:
        """Scheme, host and port for absolute URLs, without a trailing slash.

        The configured public URL when there is one, so that no header can change
        the addresses a page gives; else what the request (or a trusted proxy) says.
        """
        public_url = self.services.settings.public_url
        return public_url or f"{self.request.protocol}://{self.request.host}"

    @property
    def request_id(self) -> str:
        """The client's ``X-Request-ID`` when it is plain and short, else a new one."""
        if self._request_id is None:
            incoming = self.request.headers.get("X-Request-ID", "")
            self._request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        return self._request_id

    @property
    def access_user(self) -> str | None:
        """Who the request authenticated as, if it did."""
        identity = self._request_identity
        return identity.user if identity is not None else None

    def flush(self, include_footers: bool = False) -> Any:
        """Send what is buffered, counting the body bytes that go out."""
        if self.request.method != "HEAD":
            self.bytes_sent += unsent_bytes(self)
        sending = super().flush(include_footers)
        self.headers_sent = True
        return sending

    def set_default_headers(self) -> None:
        """Headers that make sense on every response."""
        self.set_header("X-Request-ID", self.request_id)
        self.set_header("Server", "Ministry")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)

    def prefers_json(self) -> bool:
        """Whether the client would rather read errors as JSON (uv does)."""
        accept = self.request.headers.get("Accept")
        chosen = negotiate(accept, ("text/plain", "application/json"), default="text/plain")
        return chosen == "application/json"

    # -- errors ---------------------------------------------------------------------

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        """Send an error; a domain error with its status and its message as the reason phrase.

        Tornado sends every exception that is not an ``HTTPError`` as a 500: a domain
        error's status comes from the table instead.
        """
        error = error_of(kwargs)
        if error is not None:
            status_code = status_of(error)
            kwargs["reason"] = _reason(error.message)
        super().send_error(status_code, **kwargs)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Write the message: JSON for clients that prefer it, a page for browsers, plain
        text otherwise."""
        error = error_of(kwargs)
        self.retry_after(error)
        if isinstance(error, AuthenticationRequired) and (
            self.challenges_browsers or not self.wants_page()
        ):
            self.set_header("WWW-Authenticate", _REALM)
        if isinstance(error, RangeNotSatisfiable):
            self.set_header("Content-Range", f"bytes */{error.size}")
        message = error.message if error else reason_phrase(self)
        if self.wants_page():
            self.write_error_page(status_code, message)
            return
        if self.prefers_json():
            # uv reads "code" only when the type is exactly application/json.
            self.set_header("Content-Type", "application/json")
            document = {
                "message": message,
                "code": f"{status_code} {message}",
                "title": reason_phrase(self) if error is None else title_of(status_code),
            }
            self.finish(json.dumps(document))
            return
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code} {message}\n")

    def wants_page(self) -> bool:
        """Whether the client is a browser, which reads an error as a page of the site."""
        return not self.prefers_json() and prefers_html(self.request.headers.get("Accept"))

    def write_error_page(self, status_code: int, message: str) -> None:
        """The error as a page with the site's header, under the standard reason phrase
        (the message is in the page; the status line is no place for a sentence)."""
        self.set_status(status_code)
        self.set_header("Cache-Control", "no-store")
        self.render(
            "error.html",
            current_user=self.current_user or self._viewer,
            cookie_ignored=self._viewer is not None and not self.current_user,
            status_code=status_code,
            title=title_of(status_code),
            headline=_HEADLINES.get(status_code, title_of(status_code)),
            message=message,
            login=f"/-/login?next={quote(local_path(self.request.uri or '/'), safe='/')}",
        )

    def retry_after(self, error: MinistryError | None) -> None:
        """``Retry-After`` on a refusal that ends by itself, whatever the body's format."""
        if isinstance(error, TooManyAttempts):
            self.set_header("Retry-After", str(error.retry_after))
        if isinstance(error, StorageUnavailable):
            self.set_header("Retry-After", _STORE_RETRY_AFTER)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """Expected errors are one log line; only real failures carry a traceback."""
        if isinstance(value, MinistryError) and not isinstance(value, StorageError):
            log.info("%s %s: %s", self.request.method, self.request.uri, value.message)
            return
        if isinstance(value, StorageFull | StorageUnavailable):
            # An expected outage: one line per request, with the cause the client never sees.
            log.error(
                "%s %s: %s (cause: %s)",
                self.request.method,
                self.request.uri,
                value.message,
                _causes(value),
            )
            return
        super().log_exception(typ, value, tb)

    # -- authentication ---------------------------------------------------------------

    def basic_credentials(self) -> tuple[str, str] | None:
        """The Basic credentials of the request, None if it sent none."""
        header = self.request.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, encoded = header.strip().partition(" ")
        if scheme.lower() != "basic" or len(encoded) > _MAX_AUTHORIZATION:
            raise AuthenticationRequired(
                "Use HTTP Basic authentication (a user and password or token)."
            )
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise AuthenticationRequired("Malformed Basic credentials.") from exc
        username, separator, password = decoded.partition(":")
        if not separator or not username or not password:
            raise AuthenticationRequired("Basic credentials need a user name and a password.")
        return username, password

    def session_allowed(self) -> bool:
        """Whether the browser's session cookie may stand for credentials here.

        Only on the pages people use, whose forms check the XSRF token: a cookie
        travels with any request a browser makes, so an API or the simple pages
        (which caches in front may keep) must never act on it.
        """
        return False

    @final
    def check_xsrf_cookie(self) -> None:
        """Tornado's hook before every POST, PUT, PATCH and DELETE, whatever the handler.

        Here, and not in handlers, so that none can forget it: a write another
        site's page sent is refused before credentials or body are looked at
        (docs/security.md, "Cross-site requests").
        """
        refuse_cross_site(self.request.headers, self.base_url)
        self.check_write()

    def check_write(self) -> None:
        """A handler's own check of a write, after the cross-site one; nothing by default."""

    async def identity(self) -> Identity | None:
        """Who the request acts as, or None for an anonymous request; 401 for bad credentials.

        Asked once per request: the answer is kept. An expired or revoked session
        makes the request anonymous (and the cookie is dropped), not an error.
        """
        if not self._identity_known:
            credentials = self.basic_credentials()
            address = self.request.remote_ip or "unknown"
            if credentials is not None:
                self._request_identity = await self.services.auth.authenticate(
                    *credentials, address
                )
            elif self.session_allowed() and (session := self.get_cookie(SESSION_COOKIE)):
                try:
                    self._request_identity = await self.services.auth.authenticate_session(
                        session, address
                    )
                except AuthenticationFailed:
                    self.clear_cookie(SESSION_COOKIE, path="/")
            self._identity_known = True
        return self._request_identity

    async def prepare(self) -> None:
        """Learn who a browser is signed in as, for an error page's header."""
        await self.learn_viewer()

    async def learn_viewer(self) -> None:
        """The user a browser's session cookie names, where the cookie is no credential.

        The simple pages, files and APIs never act on the cookie (``session_allowed``):
        any site can make a browser send it. Their error page for a browser still says
        who is signed in, so the name is kept apart from the request's identity: it goes
        into that page's header and nowhere else, and every answer stays the one a
        stranger gets (docs/security.md, "Cross-site requests"). A browser's GET with a
        cookie costs one session lookup here; package tools send no cookie.
        """
        if (
            self.session_allowed()
            or self.request.method not in ("GET", "HEAD")
            or not self.wants_page()
            or self.request.headers.get("Authorization")
        ):
            return
        session = self.get_cookie(SESSION_COOKIE)
        if not session:
            return
        address = self.request.remote_ip or "unknown"
        try:
            self._viewer = (await self.services.auth.authenticate_session(session, address)).user
        except MinistryError:
            return  # an expired session, or a store that failed: the header says "Log in"

    async def require_identity(self) -> Identity:
        """Who the request acts as; 401 without valid credentials."""
        identity = await self.identity()
        if identity is None:
            raise AuthenticationRequired(
                "Authentication required: send a user name and password, "
                "or __token__ and an API token."
            )
        return identity

    def cache_for(self, access: ReadAccess, directives: str) -> None:
        """``Cache-Control`` for what ``access`` shows: never in shared caches if private."""
        scope = "private" if access.private else "public"
        self.set_header("Cache-Control", f"{scope}, {directives}")

    async def read_access(self, index: str) -> ReadAccess:
        """What this request may read through an index, or 404/401/403."""
        self.access_index = index
        return await self.services.indexes.read_access(index, await self.identity())


def title_of(status_code: int) -> str:
    """The standard phrase of a status code, as a page's title."""
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


def _causes(error: BaseException) -> str:
    """The chain of exceptions behind an error, innermost last, for the server log."""
    causes: list[str] = []
    cause = error.__cause__
    while cause is not None and len(causes) < 4:
        causes.append(f"{type(cause).__name__}: {cause}")
        cause = cause.__cause__
    return " <- ".join(causes) or "unknown"


def error_of(kwargs: dict[str, Any]) -> MinistryError | None:
    """The domain error behind ``send_error``'s arguments, if there is one."""
    exc_info = kwargs.get("exc_info")
    if exc_info and isinstance(exc_info[1], MinistryError):
        return exc_info[1]
    return None
