"""``make_app``: the Tornado application for a set of services."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import tornado.web

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
        rendered_listings=OrderedDict(),
        template_path=str(Path(__file__).parent / "templates"),
        # Under /-/, a prefix no index can take.
        static_path=str(Path(__file__).parent / "static"),
        static_url_prefix="/-/static/",
        static_handler_class=StaticHandler,
        # Checked by the browser pages only (web.ui.PageHandler): they alone take the
        # session cookie; uploads and the APIs authenticate every request themselves.
        xsrf_cookies=True,
        xsrf_cookie_kwargs={"httponly": True, "samesite": "Strict"},
        default_handler_class=NotFoundHandler,
        log_function=log_request,
    )
