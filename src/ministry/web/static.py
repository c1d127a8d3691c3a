"""The pages' CSS and script files, served by Tornado's file handler."""

from __future__ import annotations

import tornado.web

from ministry.web.base import believe_proxy
from ministry.wiring import Services

__all__ = ["StaticHandler"]


class StaticHandler(tornado.web.StaticFileHandler):
    """Tornado's static files, logged with the client a trusted proxy names, like every page."""

    def prepare(self) -> None:
        """Read the trusted proxy's headers before the access log reads the address."""
        services: Services = self.application.settings["services"]
        believe_proxy(self.request, services.settings.trusted_proxies)
