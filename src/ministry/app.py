"""``make_app``: the Tornado application for a set of services."""

from __future__ import annotations

from pathlib import Path

import tornado.web

from ministry.web.listing import compressed_rows
from ministry.web.observe import log_request
from ministry.web.routes import NotFoundHandler, routes
from ministry.web.static import StaticHandler
from ministry.wiring import Services

__all__ = ["make_app"]


def make_app(services: Services) -> tornado.web.Application:
    """The application: routes, templates and the services every handler reaches."""
    return tornado.web.Application(
        routes(),
        services=services,
        in_flight=set(),
        compressed_rows=compressed_rows(),
        template_path=str(Path(__file__).parent / "templates"),
        # Under /-/, a prefix no index can take.
        static_path=str(Path(__file__).parent / "static"),
        static_url_prefix="/-/static/",
        static_handler_class=StaticHandler,
        # Makes Tornado call BaseHandler.check_xsrf_cookie before every write: the
        # cross-site check for all handlers, then the XSRF token of the browser pages
        # (web.ui.PageHandler), which alone take the session cookie.
        xsrf_cookies=True,
        xsrf_cookie_kwargs={"httponly": True, "samesite": "Strict"},
        default_handler_class=NotFoundHandler,
        log_function=log_request,
    )
