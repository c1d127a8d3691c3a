"""The single URL table of the server, and the one function that builds file URLs.

Every URL the original plan promised is here: ``/simple/``, the root project
form ``/<project>/`` (so ``pip install -i http://host:8080 pkg`` works), the
upload URLs ``/``, ``/dist`` and ``/legacy/``, ``/packages/`` and the JSON API.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import tornado.web

from ministry.errors import NotFound
from ministry.web.base import BaseHandler
from ministry.web.files import FileHandler
from ministry.web.home import HealthHandler, RootHandler
from ministry.web.json_api import ProjectJsonHandler
from ministry.web.listing import PackagesIndexHandler, PackagesProjectHandler
from ministry.web.simple import ProjectPageHandler, SimpleIndexHandler
from ministry.web.upload import UploadHandler

__all__ = ["NotFoundHandler", "file_path", "routes"]

_SEGMENT = r"([^/]+)"


def file_path(index: str, project: str, filename: str) -> str:
    """The URL path of a stored file; ``.metadata`` appended gives its PEP 658 file.

    No query string, ever: pip and uv would build different metadata URLs from it
    (STANDARDS.md F6).
    """
    return f"/packages/{quote(project)}/{quote(filename, safe='+!')}"


class AddSlashHandler(BaseHandler):
    """Redirects ``/simple/foo`` to ``/simple/foo/``: every page URL ends in a slash."""

    def get(self, *_: str) -> None:
        """301 to the same path with a slash, keeping the query string."""
        target = self.request.path + "/"
        if self.request.query:
            target += "?" + self.request.query
        self.redirect(target, permanent=True)

    head = get


class NotFoundHandler(BaseHandler):
    """Every URL that no route claims."""

    def prepare(self) -> None:
        """404 for every method."""
        raise NotFound("Not found: no page at this address.")


def routes() -> list[Any]:
    """The URL table, most specific first; the root project form comes last."""
    return [
        (r"/", RootHandler),
        (r"/(?:dist|legacy)/?", UploadHandler),
        (r"/-/health", HealthHandler),
        (r"/simple", tornado.web.RedirectHandler, {"url": "/simple/", "permanent": True}),
        (r"/simple/", SimpleIndexHandler),
        (rf"/simple/{_SEGMENT}", AddSlashHandler),
        (rf"/simple/{_SEGMENT}/", ProjectPageHandler, {"path_for": "/simple/{}/"}),
        (r"/packages", tornado.web.RedirectHandler, {"url": "/packages/", "permanent": True}),
        (r"/packages/", PackagesIndexHandler),
        (rf"/packages/{_SEGMENT}/", PackagesProjectHandler),
        (rf"/packages/{_SEGMENT}/{_SEGMENT}", FileHandler),
        (rf"/pypi/{_SEGMENT}/json/?", ProjectJsonHandler),
        (rf"/pypi/{_SEGMENT}/{_SEGMENT}/json/?", ProjectJsonHandler),
        (rf"/{_SEGMENT}/", ProjectPageHandler, {"path_for": "/{}/"}),
    ]
