"""The pages people read in a browser: ``[/<index>]/project/<project>/[<version>/]``.

They show what the JSON API document holds (the same data, from the same kept
view), with the description rendered and sanitized; errors are pages too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import tornado.web
from packaging.utils import canonicalize_name

from ministry.core.models import DEFAULT_INDEX, ProjectRole, RoleName
from ministry.core.permissions import (
    Identity,
    check_manage_roles,
    check_project_action,
    check_upload_project,
    may_read,
    rights,
)
from ministry.core.readme import render_description
from ministry.core.trusted_publishing import PROVIDERS, project_named
from ministry.errors import InvalidRequest, NotFound, PermissionDenied
from ministry.services.indexes import ReadAccess
from ministry.web.base import BaseHandler
from ministry.web.simple import normalized_or_redirect
from ministry.web.urls import index_prefix

__all__ = [
    "DeleteHandler",
    "PageHandler",
    "ProjectHandler",
    "PromoteHandler",
    "RolesHandler",
    "SearchHandler",
    "UserHandler",
    "YankHandler",
]

_UNITS = ("bytes", "kB", "MB", "GB", "TB")
_RESULTS = 100
_REASON_CHARACTERS = 500
#: Longer queries are cut: no project name or summary word is this long.
_QUERY_CHARACTERS = 200
_ROLES: dict[str, RoleName] = {"owner": "owner", "maintainer": "maintainer"}


class PageHandler(BaseHandler):
    """A page: the session cookie signs in, forms carry an XSRF token, errors are pages too."""

    #: A stranger is sent to the login form, never asked for Basic credentials.
    challenges_browsers = False

    def session_allowed(self) -> bool:
        """Pages accept the session cookie: their forms are checked against XSRF."""
        return True

    def check_write(self) -> None:
        """Every form posted to a page carries the token of its ``_xsrf`` cookie."""
        tornado.web.RequestHandler.check_xsrf_cookie(self)

    async def prepare(self) -> None:
        """Learn who is signed in, for the page header."""
        identity = await self.identity()
        self.current_user = identity.user if identity else None

    async def identity_or_login(self) -> Identity | None:
        """Who is signed in; None after sending a stranger to the login form and back."""
        identity = await self.identity()
        if identity is None:
            self.redirect("/-/login?next=" + quote(self.request.uri or "/", safe="/"))
        return identity

    def cache_for(self, access: ReadAccess, directives: str) -> None:
        """What a signed-in reader sees is theirs alone."""
        if self.current_user:
            self.set_header("Cache-Control", f"private, {directives}")
        else:
            super().cache_for(access, directives)


def size(count: int | None) -> str:
    """A size as people read it: 1.2 MB; nothing when unknown (a proxied file that an
    upstream's HTML page listed without its size)."""
    if count is None:
        return ""
    value = float(count)
    for unit in _UNITS:
        if value < 1000 or unit == _UNITS[-1]:
            return f"{count} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def safe_links(info: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """The project's links that are web addresses: a ``javascript:`` URL is never a link."""
    links = dict(info.get("project_urls") or {})
    if info.get("home_page"):
        links.setdefault("Homepage", info["home_page"])
    for label, url in links.items():
        if isinstance(url, str) and urlsplit(url.strip()).scheme.lower() in ("http", "https"):
            yield str(label), url.strip()


class ProjectHandler(PageHandler):
    """A project's page (its newest release) or one release's page."""

    async def get(
        self, project: str, version: str | None = None, index: str = DEFAULT_INDEX
    ) -> None:
        """The page; 301 to the normalized name, 404 for unknown projects and versions."""
        access = await self.read_access(index)
        template = "{prefix}/project/{project}/" + (f"{version}/" if version else "")
        normalized = normalized_or_redirect(self, project, template)
        if normalized is None:
            return
        base_url = self.base_url
        catalog = self.services.catalog
        latest = await catalog.project_document(access, normalized, None, base_url)
        shown = latest
        if version is not None:
            shown = await catalog.project_document(access, normalized, version, base_url)
        info = shown["info"]
        description = await asyncio.to_thread(
            render_description, info["description"] or "", info["description_content_type"]
        )
        prefix = f"/{index}" if "index" in self.path_kwargs else ""
        simple_url = f"{base_url}{prefix}/simple/"
        pin = f"=={info['version']}" if version is not None else ""
        roles = await self._roles(access, normalized)
        may_manage = await self._may(access, normalized, roles, "manage")
        publishers = []
        identity = await self.identity()
        if may_manage and identity is not None:
            publishers = await self.services.publishers.list(
                identity, access.index.name, canonicalize_name(normalized)
            )
        may_yank = await self._may(access, normalized, roles, "yank")
        self.cache_for(access, "max-age=0, must-revalidate")
        self.render(
            "project.html",
            may_yank=may_yank,
            promote_to=await self._promote_targets(access, normalized) if may_yank else [],
            may_delete=await self._may(access, normalized, roles, "delete"),
            may_manage=may_manage,
            publishers=publishers,
            roles=roles,
            info=info,
            files=shown["urls"],
            published=await catalog.publishers_of(
                access, normalized, [f["filename"] for f in shown["urls"]]
            ),
            versions=_history(latest["releases"]),
            description=description,
            install=f"pip install --index-url {simple_url} {normalized}{pin}",
            links=list(safe_links(info)),
            project_url=f"{prefix}/project/{normalized}/",
            simple_url=f"{prefix}/simple/{normalized}/",
            index=access.index.name,
            size=size,
        )

    head = get

    async def _promote_targets(self, access: ReadAccess, project: str) -> list[str]:
        """The other hosted indexes this user may publish the project in (the promotion
        checks again, the project's roles in the target too)."""
        identity = await self.identity()
        if identity is None or access.index.kind != "hosted":
            return []
        targets = []
        for name, config in sorted((await self.services.indexes.configs()).items()):
            if name == access.index.name or config.kind != "hosted":
                continue
            if not may_read(identity, config):
                continue
            try:
                check_upload_project(identity, config, project)
            except PermissionDenied:
                continue
            targets.append(name)
        return targets

    async def _roles(self, access: ReadAccess, project: str) -> list[ProjectRole] | None:
        """The project's owners and maintainers in this index; None where it has none here."""
        try:
            return await self.services.ownership.roles(
                access.index.name, canonicalize_name(project)
            )
        except NotFound:
            return None

    async def _may(
        self, access: ReadAccess, project: str, roles: list[ProjectRole] | None, action: str
    ) -> bool:
        """Whether to offer a form (yank, delete, manage): the action checks again, of course."""
        identity = await self.identity()
        config = access.index
        if identity is None or roles is None:
            return False
        if action == "delete" and not config.allow_delete:
            return False
        try:
            if action == "manage":
                check_manage_roles(identity, config, project, roles)
            else:
                check_project_action(
                    identity, config, project, roles, action, owners_only=action == "delete"
                )
        except PermissionDenied:
            return False
        return True


class RolesHandler(PageHandler):
    """``POST /-/roles``: the forms of a project page that add and remove owners and maintainers."""

    async def post(self) -> None:
        """Add or remove one owner or maintainer, then show the project again."""
        identity = await self.require_identity()
        index = self.get_argument("index", DEFAULT_INDEX)
        project = canonicalize_name(self.get_argument("project"))
        principal = self.get_argument("principal").strip()
        role = _ROLES.get(self.get_argument("role"))
        if role is None:
            raise InvalidRequest("Choose the role: owner or maintainer.")
        ownership = self.services.ownership
        if self.get_argument("action") == "remove":
            await ownership.remove(identity, index, project, principal, role)
        else:
            await ownership.add(identity, index, project, principal, role)
        prefix = "" if index == DEFAULT_INDEX else f"/{index}"
        self.redirect(f"{prefix}/project/{project}/", status=303)


class PublishersHandler(PageHandler):
    """``POST /-/publishers``: the project page's forms that add and remove trusted publishers."""

    async def post(self) -> None:
        """Add or remove one publisher, then show the project again."""
        identity = await self.require_identity()
        index = self.get_argument("index", DEFAULT_INDEX)
        project = project_named(self.get_argument("project"))
        publishers = self.services.publishers
        if self.get_argument("action") == "remove":
            chosen = self.get_argument("publisher")
            if chosen not in {
                p.publisher_id for p in await publishers.list(identity, index, project)
            }:
                raise NotFound("No such trusted publisher of this project.")
            await publishers.remove(identity, chosen)
        else:
            provider = self.get_argument("provider")
            if provider not in PROVIDERS:
                raise InvalidRequest("Choose GitHub or GitLab.")
            await publishers.add(
                identity,
                index,
                project,
                "github" if provider == "github" else "gitlab",
                self.get_argument("repository").strip(),
                self.get_argument("workflow").strip(),
                environment=self.get_argument("environment", "").strip() or None,
            )
        prefix = "" if index == DEFAULT_INDEX else f"/{index}"
        self.redirect(f"{prefix}/project/{project}/", status=303)


class YankHandler(PageHandler):
    """``POST /-/yank``: the yank and unyank buttons of a release page."""

    async def post(self) -> None:
        """Yank or unyank one release, then show its page again."""
        identity = await self.require_identity()
        index = self.get_argument("index", DEFAULT_INDEX)
        project = canonicalize_name(self.get_argument("project"))
        version = self.get_argument("version")
        maintenance = self.services.maintenance
        if self.get_argument("action") == "unyank":
            await maintenance.unyank(identity, index, project, version=version)
        else:
            reason = self.get_argument("reason", "").strip()[:_REASON_CHARACTERS]
            await maintenance.yank(identity, index, project, version=version, reason=reason)
        prefix = "" if index == DEFAULT_INDEX else f"/{index}"
        self.redirect(f"{prefix}/project/{project}/{quote(version, safe='')}/", status=303)


class PromoteHandler(PageHandler):
    """``POST /-/promote``: a release page's promote form (``services.promote``)."""

    async def post(self) -> None:
        """Publish one release in another index, then show it there."""
        identity = await self.require_identity()
        index = self.get_argument("index", DEFAULT_INDEX)
        project = canonicalize_name(self.get_argument("project"))
        version = self.get_argument("version")
        target = self.get_argument("to")
        await self.services.promote.promote(identity, index, project, version, target)
        prefix = "" if target == DEFAULT_INDEX else f"/{target}"
        self.redirect(f"{prefix}/project/{project}/{quote(version, safe='')}/", status=303)


class DeleteHandler(PageHandler):
    """``POST /-/delete``: a release's delete button, where the index allows deleting."""

    async def post(self) -> None:
        """Delete one release for good (its filenames are retired), then show the project."""
        identity = await self.require_identity()
        if self.get_argument("confirm", "") != "yes":
            raise InvalidRequest("Tick the box to confirm: deleting cannot be undone.")
        index = self.get_argument("index", DEFAULT_INDEX)
        project = canonicalize_name(self.get_argument("project"))
        version = self.get_argument("version")
        await self.services.maintenance.delete(identity, index, project, version=version)
        prefix = "" if index == DEFAULT_INDEX else f"/{index}"
        self.redirect(f"{prefix}/project/{project}/", status=303)


class UserHandler(PageHandler):
    """``/-/user``: who is signed in, their rights and groups."""

    async def get(self) -> None:
        """The signed-in user's page."""
        identity = await self.identity_or_login()
        if identity is None:
            return
        configs = await self.services.indexes.configs()
        held = [(name, rights(identity, config)) for name, config in sorted(configs.items())]
        self.set_header("Cache-Control", "no-store")
        self.render("user.html", identity=identity, rights=[(n, r) for n, r in held if r])


def _history(releases: dict[str, list[dict[str, Any]]]) -> list[tuple[str, bool, str]]:
    """Every version, newest first: whether it is yanked, and when it was first uploaded."""
    history = []
    for version, files in releases.items():
        yanked = bool(files) and all(f["yanked"] for f in files)
        times = sorted(f["upload_time"] for f in files if f["upload_time"])
        history.append((version, yanked, times[0][:10] if times else ""))
    return history[::-1]


class SearchHandler(PageHandler):
    """``/search?q=…``: projects by name and summary in every index the reader may read;
    ``/<index>/search?q=…`` in that index (its own projects and those it inherits)."""

    async def get(self, index: str | None = None) -> None:
        """The search form, and the matches when there is a query."""
        query = self.get_argument("q", "").strip()[:_QUERY_CHARACTERS]
        if index is None:
            identity = await self.identity()
            indexes = self.services.indexes
            names = await indexes.readable_names(identity)
            accesses = [await indexes.read_access(name, identity) for name in names]
        else:
            accesses = [await self.read_access(index)]
        search = self.services.search
        hits = await search.search(accesses, query, _RESULTS) if query else []
        private = self.current_user or any(access.private for access in accesses)
        self.set_header(
            "Cache-Control", f"{'private' if private else 'public'}, max-age=0, must-revalidate"
        )
        # Across indexes a project links to its own index; in one index, to its page there.
        prefix = "" if index is None else f"/{index}"
        self.render(
            "search.html",
            query=query,
            hits=[(hit, prefix or index_prefix(hit.project.index)) for hit in hits],
            limit=_RESULTS,
            index=index,
            prefix=prefix,
        )

    head = get
