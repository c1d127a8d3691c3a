"""``/``: what this server is and how to use it (uploads are POSTed here too); the root
forms ``/<index>/`` and ``[/<index>]/<project>/`` that pip and uv read when given
``-i http://ministry.example:8080[/<index>]``; ``/-/health`` and ``/-/ready``."""

from __future__ import annotations

import json

from packaging.utils import canonicalize_name

from ministry.core.models import DEFAULT_INDEX
from ministry.core.permissions import administers
from ministry.services.readiness import check_stores
from ministry.web.base import BaseHandler
from ministry.web.simple import ProjectPageHandler, SimpleIndexHandler
from ministry.web.upload import UploadHandler

__all__ = [
    "HealthHandler",
    "IndexRootHandler",
    "MetricsHandler",
    "ReadyHandler",
    "RootHandler",
    "RootProjectHandler",
]


class RootHandler(UploadHandler):
    """GET shows the home page; POST is the upload API (twine's default URL form)."""

    administers = False

    def session_allowed(self) -> bool:
        """The home page shows the signed-in user; uploads here never act on a cookie."""
        return self.request.method in ("GET", "HEAD")

    async def get(self, **_: str) -> None:
        """The home page."""
        identity = await self.identity()
        self.current_user = identity.user if identity else None
        if identity is not None:  # the header links the administration pages (web.ui)
            self.administers = administers(identity, await self.services.indexes.configs())
        access = await self.read_access(DEFAULT_INDEX)
        self.render(
            "home.html",
            project_count=await self.services.catalog.project_count(access),
            recent=await self.services.search.recent(access),
            base_url=self.base_url,
        )

    head = get


class RootProjectHandler(ProjectPageHandler):
    """``/<project>/`` and ``/<index>/<project>/``: a project's simple page at the address
    pip and uv ask for when given ``-i http://ministry.example:8080[/<index>]``."""

    def initialize(self) -> None:  # type: ignore[override]
        """The redirect's template is chosen per request (``project_page``)."""
        self.template = "/{project}/"

    async def get(self, project: str, index: str | None = None) -> None:
        """The page of ``project`` in ``index`` (the default index at the root)."""
        await self.project_page(project, index)

    head = get

    async def project_page(self, project: str, index: str | None) -> None:
        """The page; a name that is not normalized is redirected to the same form, or to
        ``/simple/`` when an index the reader may read holds the normalized address, so that
        a redirect never leads to something else."""
        prefix = "" if index is None else f"/{index}"
        self.template = prefix + "/{project}/"
        normalized = canonicalize_name(project)
        if normalized != project:
            address = f"{prefix}/{normalized}".lstrip("/")
            if await self.services.indexes.shows(address, await self.identity()):
                self.template = prefix + "/simple/{project}/"
        await ProjectPageHandler.get(self, project=project, index=index or DEFAULT_INDEX)


class IndexRootHandler(UploadHandler, SimpleIndexHandler, RootProjectHandler):
    """``/<name>/``: POST uploads to index ``name``; GET is index ``name``'s project list
    when the reader may read such an index, else a project page: ``/<project>/`` of the
    default index, or ``/<index>/<project>/`` when ``name`` is ``index/project``.

    The index list is asked on every request, and an index the reader may read wins
    over a project of the same address, so no uploader can put a project in front of
    an index; a private index the reader may not read does not exist for them, as on
    every other URL (docs/security.md, "URLs of an index").
    """

    async def get(self, index: str, **_: str) -> None:  # type: ignore[override]
        """The index's project list, or the project page the address means."""
        if await self.services.indexes.shows(index, await self.identity()):
            await SimpleIndexHandler.get(self, index)
            return
        parent, _slash, project = index.rpartition("/")
        await self.project_page(project, parent or None)

    async def head(self, index: str, **_: str) -> None:  # type: ignore[override]
        """As GET, without the body."""
        await self.get(index)


class HealthHandler(BaseHandler):
    """``/-/health``: the process is alive and serving."""

    def get(self) -> None:
        """Always ``{"status": "ok"}`` while the event loop runs."""
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"status": "ok"}))

    head = get


class ReadyHandler(BaseHandler):
    """``/-/ready``: 200 while both stores answer and take writes; 503 says which fails."""

    async def get(self) -> None:
        """``{"status": "ready"|"unavailable", "stores": {"metadata": …, "blobs": …}}``,
        and ``"risks": {"metadata": …}`` for a store started despite a risk."""
        readiness = await check_stores(self.services.metadata, self.services.blobs)
        self.set_status(200 if readiness.ready else 503)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        status = "ready" if readiness.ready else "unavailable"
        answer: dict[str, object] = {"status": status, "stores": readiness.stores}
        if readiness.risks:
            answer["risks"] = readiness.risks
        # Still 200: the node dropped its caches and serves the store as it is now, and
        # every node notices at once, so 503 would take them all out of the balancer
        # (docs/operations.md, "When the metadata store goes back").
        rollbacks = self.services.rollback.rollbacks if self.services.server_metrics else []
        if rollbacks:
            answer["rollback"] = [rollback.report() for rollback in rollbacks]
        self.finish(json.dumps(answer))

    head = get


class MetricsHandler(BaseHandler):
    """``/-/metrics``: the Prometheus text format."""

    async def get(self) -> None:
        """Every metric of this process, and the last runs of the mirror jobs.

        Open to anyone, so private indexes are counted under one label, unnamed.
        """
        runs = await self.services.metadata.list_mirror_runs()
        self.services.metrics.record_mirror_runs(runs)
        configs = await self.services.indexes.configs()
        public = [name for name, config in configs.items() if not config.private]
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(self.services.metrics.exposition(public))
