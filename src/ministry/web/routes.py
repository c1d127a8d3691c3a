"""The single URL table of the server.

The default index answers at the root, as the original plan promised: ``/simple/``,
the root project form ``/<project>/`` (so ``pip install -i http://ministry.example:8080 pkg``
works), uploads at ``/``, ``/dist`` and ``/legacy/``, ``/packages/``, ``/search`` and
the JSON API. Every index, the default one included, also answers under its own
name with the same URLs: ``/<index>/`` (its project list, and uploads),
``/<index>/<project>/``, ``/<index>/simple/``, ``/<index>/legacy/``,
``/<index>/packages/``, ``/<index>/search``, ``/<index>/project/`` and
``/<index>/pypi/``. ``/packages/<filename>`` (pypiserver's file links) redirects to
the one file of that name. Management lives under ``/-/``, a prefix no index can take;
administration in the browser under ``/-/admin/`` (docs/web.md).

An address of one or two parts (``/a/`` or ``/a/b/``) may name an index or a
project; ``IndexRootHandler`` decides on each request, and an index wins.
"""

from __future__ import annotations

from typing import Any

import tornado.httputil
import tornado.routing

from ministry.errors import InvalidRequest, NotFound
from ministry.web import api
from ministry.web.admin import AdminHandler
from ministry.web.admin_accounts import GroupsHandler, UsersHandler
from ministry.web.admin_indexes import EditIndexHandler, NewIndexHandler
from ministry.web.base import BaseHandler
from ministry.web.files import FileHandler
from ministry.web.home import (
    HealthHandler,
    IndexRootHandler,
    MetricsHandler,
    ReadyHandler,
    RootHandler,
    RootProjectHandler,
)
from ministry.web.integrity import ProvenanceHandler
from ministry.web.json_api import ProjectJsonHandler
from ministry.web.listing import (
    PackagesFileHandler,
    PackagesIndexHandler,
    PackagesProjectHandler,
)
from ministry.web.oidc import AudienceHandler, BurnTokenHandler, DiscoveryHandler, MintTokenHandler
from ministry.web.pages import AuditHandler, HelpHandler, IndexesHandler, IndexHandler
from ministry.web.sessions import LoginHandler, LogoutHandler, TokensHandler
from ministry.web.simple import ProjectPageHandler, SimpleIndexHandler
from ministry.web.ui import (
    DeleteHandler,
    ProjectHandler,
    PromoteHandler,
    PublishersHandler,
    RolesHandler,
    SearchHandler,
    UserHandler,
    YankHandler,
)
from ministry.web.upload import UploadHandler
from ministry.web.urls import INDEX_PATTERN

__all__ = ["NotFoundHandler", "routes"]

_PROJECT = r"(?P<project>[^/]+)"
_INDEX = rf"(?P<index>{INDEX_PATTERN})"


def _add_slash(handler: BaseHandler) -> None:
    """301 to the same path with a slash, keeping the query string."""
    target = handler.request.path + "/"
    if handler.request.query:
        target += "?" + handler.request.query
    handler.redirect(target, permanent=True)


class AddSlashHandler(BaseHandler):
    """Redirects ``/simple/foo`` to ``/simple/foo/``: every page URL ends in a slash."""

    def get(self, **_: str) -> None:
        """301 to the slash form."""
        _add_slash(self)

    head = get


class IndexNoSlashHandler(UploadHandler):
    """``/<index>`` without the slash: a POST uploads to the index where it is (twine and
    poetry give up on a redirect); a GET goes to ``/<index>/`` when the reader may read
    such an index, and is 404 otherwise (``/favicon.ico`` need not bounce twice)."""

    async def get(self, index: str) -> None:  # type: ignore[override]
        """301 to the slash form, or 404."""
        if not await self.services.indexes.shows(index, await self.identity()):
            raise NotFound("Not found: no page at this address.")
        _add_slash(self)

    head = get


class NotFoundHandler(BaseHandler):
    """Every URL that no route claims."""

    def session_allowed(self) -> bool:
        """A browser's 404 page shows who is signed in; nothing here acts on the cookie."""
        return self.request.method in ("GET", "HEAD")

    async def prepare(self) -> None:
        """404 for every method."""
        if self.wants_page():
            identity = await self.identity()
            self.current_user = identity.user if identity else None
        raise NotFound("Not found: no page at this address.")


class _NulInQuery(tornado.routing.Matcher):
    """Any request whose query string holds an encoded NUL: no argument here has one."""

    def match(self, request: tornado.httputil.HTTPServerRequest) -> dict[str, Any] | None:
        """``{}`` (no arguments for the handler) when the query holds ``%00``."""
        return {} if "%00" in request.query else None


class NulQueryHandler(BaseHandler):
    """400 for a NUL in the query (docs/security.md, "HTTP abuse"), rather than a quietly
    altered argument."""

    async def prepare(self) -> None:
        """400 for every method."""
        raise InvalidRequest("The query string holds a NUL character (%00); remove it.")


def _index_routes(prefix: str) -> list[Any]:
    """The routes of an index under ``prefix`` ("" for the default index at the root)."""
    return [
        (rf"{prefix}/simple", AddSlashHandler),
        (rf"{prefix}/simple/", SimpleIndexHandler),
        (rf"{prefix}/simple/{_PROJECT}", AddSlashHandler),
        (rf"{prefix}/simple/{_PROJECT}/", ProjectPageHandler,
         {"template": "{prefix}/simple/{project}/"}),
        (rf"{prefix}/packages", AddSlashHandler),
        (rf"{prefix}/packages/", PackagesIndexHandler),
        (rf"{prefix}/packages/{_PROJECT}/", PackagesProjectHandler),
        (rf"{prefix}/packages/{_PROJECT}/(?P<filename>[^/]+)", FileHandler),
        (rf"{prefix}/project/{_PROJECT}", AddSlashHandler),
        (rf"{prefix}/project/{_PROJECT}/", ProjectHandler),
        (rf"{prefix}/project/{_PROJECT}/(?P<version>[^/]+)/", ProjectHandler),
        (rf"{prefix}/pypi/{_PROJECT}/json/?", ProjectJsonHandler),
        (rf"{prefix}/pypi/{_PROJECT}/(?P<version>[^/]+)/json/?", ProjectJsonHandler),
        (rf"{prefix}/integrity/{_PROJECT}/(?P<version>[^/]+)/(?P<filename>[^/]+)/provenance",
         ProvenanceHandler),
    ]  # fmt: skip


def routes() -> list[Any]:
    """The URL table, most specific first; the root project form comes last."""
    return [
        tornado.routing.Rule(_NulInQuery(), NulQueryHandler),
        (r"/", RootHandler),
        (r"/(?:dist|legacy)/?", UploadHandler),
        (r"/_/oidc/audience", AudienceHandler),
        (r"/_/oidc/mint-token", MintTokenHandler),
        (r"/_/oidc/burn-token", BurnTokenHandler),
        (r"/\.well-known/pytp/(?P<key>[0-9a-f]{64})", DiscoveryHandler),
        (r"/-/health", HealthHandler),
        (r"/-/ready", ReadyHandler),
        (r"/-/metrics", MetricsHandler),
        (r"/search", SearchHandler),
        (r"/-/login", LoginHandler),
        (r"/-/logout", LogoutHandler),
        (r"/-/tokens", TokensHandler),
        (r"/-/yank", YankHandler),
        (r"/-/delete", DeleteHandler),
        (r"/-/promote", PromoteHandler),
        (r"/-/roles", RolesHandler),
        (r"/-/publishers", PublishersHandler),
        (r"/-/user", UserHandler),
        (r"/-/help", HelpHandler),
        (r"/-/audit", AuditHandler),
        (r"/-/indexes", IndexesHandler),
        (rf"/-/indexes/{_INDEX}/", IndexHandler),
        (r"/-/admin/?", AdminHandler),
        (r"/-/admin/indexes/new", NewIndexHandler),
        (rf"/-/admin/indexes/{_INDEX}/", EditIndexHandler),
        (r"/-/admin/groups", GroupsHandler),
        (r"/-/admin/users", UsersHandler),
        *api.routes(_INDEX, _PROJECT),
        *_index_routes(""),
        *_index_routes(f"/{_INDEX}"),
        (rf"/{_INDEX}/legacy/?", UploadHandler),
        (rf"/{_INDEX}/search", SearchHandler),
        (r"/packages/(?P<filename>[^/]+)", PackagesFileHandler),
        # One or two parts: an index's project list or a project page, decided per request.
        (rf"/{_INDEX}/", IndexRootHandler),
        (rf"/{_INDEX}", IndexNoSlashHandler),
        # Names no index could have (upper case, say) still redirect to the normalized page.
        (rf"/{_INDEX}/{_PROJECT}/", RootProjectHandler),
        (rf"/{_PROJECT}/", RootProjectHandler),
    ]
