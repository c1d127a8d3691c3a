"""``/``: what this server is and how to use it (uploads are POSTed here too); ``/-/health``."""

from __future__ import annotations

import json

from ministry.core.models import DEFAULT_INDEX
from ministry.web.base import BaseHandler
from ministry.web.upload import UploadHandler

__all__ = ["HealthHandler", "RootHandler"]


class RootHandler(UploadHandler):
    """GET shows the home page; POST is the upload API (twine's default URL form)."""

    async def get(self) -> None:  # type: ignore[override]
        """The home page."""
        projects = await self.services.catalog.projects(DEFAULT_INDEX)
        self.render(
            "home.html",
            project_count=len(projects),
            base_url=f"{self.request.protocol}://{self.request.host}",
        )

    head = get


class HealthHandler(BaseHandler):
    """``/-/health``: the process is alive and serving."""

    def get(self) -> None:
        """Always ``{"status": "ok"}`` while the event loop runs."""
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"status": "ok"}))

    head = get
