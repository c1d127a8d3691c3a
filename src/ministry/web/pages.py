"""More pages for people: how to use an index, the indexes and their projects, the audit log."""

from __future__ import annotations

from ministry.core.models import DEFAULT_INDEX
from ministry.core.permissions import check_admin, check_manage_index, may_see, seen_by
from ministry.core.sizes import format_size
from ministry.errors import InvalidRequest
from ministry.web.ui import PageHandler, allowed, done_message, size

__all__ = ["AuditHandler", "HelpHandler", "IndexHandler", "IndexesHandler"]

_AUDIT_PAGE = 200


class HelpHandler(PageHandler):
    """``/-/help[?index=NAME]``: pip, uv, Poetry, PDM and twine set up for this server."""

    async def get(self) -> None:
        """The configuration snippets, with this server's own addresses."""
        index = self.get_argument("index", DEFAULT_INDEX)
        await self.read_access(index)  # an index the reader may not see is not found
        base = self.base_url
        prefix = "" if index == DEFAULT_INDEX else f"/{index}"
        self.render(
            "help.html",
            index=index,
            name="ministry" if index == DEFAULT_INDEX else index.replace("/", "-"),
            simple=f"{base}{prefix}/simple/",
            root=f"{base}{prefix}",
            upload=f"{base}{prefix}/legacy/",
        )


class IndexesHandler(PageHandler):
    """``/-/indexes``: every index the reader may see, with what it is."""

    async def get(self) -> None:
        """The list."""
        identity = await self.identity()
        configs = await self.services.indexes.configs()
        shown = [
            seen_by(identity, c, configs)
            for c in sorted(configs.values(), key=lambda c: c.name)
            if may_see(identity, c)
        ]
        may_create = identity is not None and allowed(check_admin, identity, "create indexes")
        self.render("indexes.html", indexes=shown, may_create=may_create)


class IndexHandler(PageHandler):
    """``/-/indexes/<name>/``: the projects one index shows."""

    async def get(self, index: str) -> None:
        """The index's settings people care about, and its projects."""
        access = await self.read_access(index)
        projects = await self.services.catalog.projects(access)
        runs = [r for r in await self.services.metadata.list_mirror_runs() if r.index == index]
        self.cache_for(access, "max-age=0, must-revalidate")
        prefix = "" if index == DEFAULT_INDEX else f"/{index}"
        identity = await self.identity()
        may_edit = identity is not None and allowed(check_manage_index, identity, access.index)
        cache = None
        if may_edit and identity is not None and access.index.kind == "proxy":
            cache = await self.services.proxy_cache.usage(identity, access.index)
        self.render(
            "index.html",
            access=access,
            projects=projects,
            prefix=prefix,
            runs=runs,
            size=size,
            may_edit=may_edit,
            cache=cache,
            server_bound=self.services.proxy_cache.max_size,
            format_size=format_size,
            # After deleting a project's last release, the browser lands here.
            done=done_message(self.get_argument("done", ""), self.get_argument("what", "")),
        )


class AuditHandler(PageHandler):
    """``/-/audit[?before=SERIAL]``: who changed what, newest first, for administrators."""

    async def get(self) -> None:
        """One page of the change log."""
        identity = await self.identity_or_login()
        if identity is None:
            return
        try:
            before = int(self.get_argument("before")) if self.get_argument("before", "") else None
        except ValueError as exc:
            raise InvalidRequest("'before' must be a serial, a whole number.") from exc
        changes, older = await self.services.audit.newest(
            identity, before=before, limit=_AUDIT_PAGE
        )
        self.set_header("Cache-Control", "no-store")
        self.render("audit.html", changes=changes, older=older)
