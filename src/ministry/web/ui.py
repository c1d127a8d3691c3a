"""The pages people read in a browser: ``[/<index>]/project/<project>/[<version>/]``.

They show what the JSON API document holds (the same data, from the same kept
view), with the description rendered and sanitized; errors are pages too.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import tornado.web
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from ministry.core.file_kinds import group_files
from ministry.core.install_snippets import install_snippets
from ministry.core.models import DEFAULT_INDEX, ProjectRole, RoleName
from ministry.core.permissions import (
    Identity,
    administers,
    check_manage_roles,
    check_project_action,
    check_upload_project,
    may_read,
    rights,
)
from ministry.core.readme import render_description
from ministry.core.trusted_publishing import PROVIDERS, project_named
from ministry.errors import Conflict, InvalidRequest, MinistryError, NotFound, PermissionDenied
from ministry.services.indexes import ReadAccess
from ministry.web.base import BaseHandler, status_of
from ministry.web.simple import normalized_or_redirect
from ministry.web.urls import index_prefix

__all__ = [
    "DeleteHandler",
    "FormProblem",
    "PageHandler",
    "ProjectHandler",
    "PromoteHandler",
    "RolesHandler",
    "SearchHandler",
    "UserHandler",
    "YankHandler",
    "allowed",
]

_UNITS = ("bytes", "kB", "MB", "GB", "TB")
_RESULTS = 100
_REASON_CHARACTERS = 500
_FILENAME_CHARACTERS = 255
_FILENAME = re.compile(r"[A-Za-z0-9._+!-]+")
#: Longer queries are cut: no project name or summary word is this long.
_QUERY_CHARACTERS = 200
_ROLES: dict[str, RoleName] = {"owner": "owner", "maintainer": "maintainer"}
#: Refusals a project page's forms show in place; a 403 stays an error page (the
#: forms are offered only to those who may use them).
_SHOWN_IN_FORM = (InvalidRequest, NotFound, Conflict)
_Subject = TypeVar("_Subject")


def allowed(
    check: Callable[[Identity, _Subject], None], identity: Identity, subject: _Subject
) -> bool:
    """Whether a permission check passes: which links and forms to offer (the action
    checks again)."""
    try:
        check(identity, subject)
    except PermissionDenied:
        return False
    return True


@dataclass(frozen=True)
class FormProblem:
    """A project page form's refusal: which form, its message, and what was typed."""

    form: str
    message: str
    kept: dict[str, str]


class PageHandler(BaseHandler):
    """A page: the session cookie signs in, forms carry an XSRF token, errors are pages too."""

    #: Whether the signed-in user may administer something: the header links the
    #: administration pages then (which check every action again).
    administers = False

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
        if identity is not None:
            self.administers = administers(identity, await self.services.indexes.configs())

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


class ProjectPage(PageHandler):
    """What renders a project page: its own handler, and the forms posted from it when
    they show it again with a refusal."""

    async def show(
        self,
        access: ReadAccess,
        normalized: NormalizedName,
        version: str | None,
        prefix: str,
        problem: FormProblem | None = None,
    ) -> None:
        """Render the page; with ``problem``, the form it names shows its message and
        keeps what was typed."""
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
        view = await catalog.project_view(access, normalized)
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
            prerelease=is_prerelease(info["version"]),
            newer=newer_version(info["version"], latest["info"]["version"]),
            files=shown["urls"],
            groups=group_files(shown["urls"]),
            published=await catalog.publishers_of(
                access, normalized, [f["filename"] for f in shown["urls"]]
            ),
            versions=_history(latest["releases"]),
            description=description,
            proxied_from=[c.index for c in view.contributions if c.page is not None],
            snippets=install_snippets(simple_url, access.index.name, f"{normalized}{pin}"),
            links=list(safe_links(info)),
            project_url=f"{prefix}/project/{normalized}/",
            simple_url=f"{prefix}/simple/{normalized}/",
            index=access.index.name,
            index_description=access.index.description,
            done=done_message(self.get_argument("done", ""), self.get_argument("what", "")),
            size=size,
            problem=problem,
        )

    async def show_again(
        self, index: str, project: NormalizedName, problem: FormProblem, error: MinistryError
    ) -> None:
        """The project page with the refused form's message, and the error's status."""
        access = await self.read_access(index)
        self.set_status(status_of(error))
        await self.show(access, project, None, _prefix(index), problem)

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


class ProjectHandler(ProjectPage):
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
        prefix = f"/{index}" if "index" in self.path_kwargs else ""
        await self.show(access, normalized, version, prefix)

    head = get


class RolesHandler(ProjectPage):
    """``POST /-/roles``: the forms of a project page that add and remove owners and maintainers."""

    async def post(self) -> None:
        """Add or remove one owner or maintainer, then show the project again; a refusal
        (an unknown user, the last owner) is shown in the page's form."""
        identity = await self.require_identity()
        index = self.get_argument("index", DEFAULT_INDEX)
        project = canonicalize_name(self.get_argument("project"))
        principal = self.get_argument("principal").strip()
        ownership = self.services.ownership
        try:
            role = _ROLES.get(self.get_argument("role"))
            if role is None:
                raise InvalidRequest("Choose the role: owner or maintainer.")
            if self.get_argument("action") == "remove":
                await ownership.remove(identity, index, project, principal, role)
            else:
                await ownership.add(identity, index, project, principal, role)
        except _SHOWN_IN_FORM as exc:
            kept = {"principal": principal, "role": self.get_argument("role")}
            await self.show_again(index, project, FormProblem("roles", exc.message, kept), exc)
            return
        self.redirect(f"{_prefix(index)}/project/{project}/", status=303)


class PublishersHandler(ProjectPage):
    """``POST /-/publishers``: the project page's forms that add and remove trusted publishers."""

    async def post(self) -> None:
        """Add or remove one publisher, then show the project again; a refusal (a bad
        repository or workflow) is shown in the page's form."""
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
            self.redirect(f"{_prefix(index)}/project/{project}/", status=303)
            return
        kept = {
            name: self.get_argument(name, "").strip()
            for name in ("provider", "repository", "workflow", "environment")
        }
        try:
            if kept["provider"] not in PROVIDERS:
                raise InvalidRequest("Choose GitHub or GitLab.")
            await publishers.add(
                identity,
                index,
                project,
                "github" if kept["provider"] == "github" else "gitlab",
                kept["repository"],
                kept["workflow"],
                environment=kept["environment"] or None,
            )
        except _SHOWN_IN_FORM as exc:
            problem = FormProblem("publishers", exc.message, kept)
            await self.show_again(index, project, problem, exc)
            return
        self.redirect(f"{_prefix(index)}/project/{project}/", status=303)


def _prefix(index: str) -> str:
    """The path prefix of an index's pages: none for the default index."""
    return "" if index == DEFAULT_INDEX else f"/{index}"


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
            done = "unyanked"
        else:
            if self.get_argument("confirm", "") != "yes":
                raise InvalidRequest(
                    "Tick the box to confirm: installers skip a yanked release unless it is "
                    "pinned exactly."
                )
            reason = self.get_argument("reason", "").strip()[:_REASON_CHARACTERS]
            await maintenance.yank(identity, index, project, version=version, reason=reason)
            done = "yanked"
        prefix = "" if index == DEFAULT_INDEX else f"/{index}"
        self.redirect(
            f"{prefix}/project/{project}/{quote(version, safe='')}/?done={done}", status=303
        )


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
    """``POST /-/delete``: a release's delete button, and each file's, where the index
    allows deleting."""

    async def post(self) -> None:
        """Delete one release, or one file of it, for good (the filenames are retired),
        then show the project (or the release, after a file)."""
        identity = await self.require_identity()
        if self.get_argument("confirm", "") != "yes":
            raise InvalidRequest("Tick the box to confirm: deleting cannot be undone.")
        index = self.get_argument("index", DEFAULT_INDEX)
        project = canonicalize_name(self.get_argument("project"))
        version = self.get_argument("version")
        filename = self.get_argument("filename", "") or None
        await self.services.maintenance.delete(
            identity, index, project, version=version, filename=filename
        )
        access = await self.read_access(index)
        page = await self._landing(access, project, None if filename is None else version)
        what = quote(version if filename is None else filename, safe="")
        self.redirect(f"{page}?done=deleted&what={what}", status=303)

    async def _landing(
        self, access: ReadAccess, project: NormalizedName, version: str | None
    ) -> str:
        """The page to show next: the release after one of its files, else the project;
        the index's page when what it would be is gone (the last file, the last release)."""
        prefix = index_prefix(access.index.name)
        catalog = self.services.catalog
        for wanted in ([version] if version is not None else []) + [None]:
            try:
                await catalog.project_document(access, project, wanted, self.base_url)
            except NotFound:
                continue
            release = "" if wanted is None else f"{quote(wanted, safe='')}/"
            return f"{prefix}/project/{project}/{release}"
        return f"/-/indexes/{access.index.name}/"


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


@dataclass(frozen=True)
class _Version:
    """A line of the release history."""

    version: str
    yanked: bool
    yanked_reason: str
    prerelease: bool
    uploaded: str


def _history(releases: dict[str, list[dict[str, Any]]]) -> list[_Version]:
    """Every version, newest first: whether it is yanked (and why), whether a
    pre-release, and the day it was first uploaded."""
    history = []
    for version, files in releases.items():
        yanked = bool(files) and all(f["yanked"] for f in files)
        reasons = sorted({f["yanked_reason"] for f in files if f["yanked_reason"]})
        times = sorted(f["upload_time"] for f in files if f["upload_time"])
        history.append(
            _Version(
                version,
                yanked,
                "; ".join(reasons) if yanked else "",
                is_prerelease(version),
                times[0][:10] if times else "",
            )
        )
    return history[::-1]


def is_prerelease(version: str) -> bool:
    """Whether installers skip this version unless asked for pre-releases (a development
    release too); a version that is not PEP 440 is not one."""
    try:
        return Version(version).is_prerelease
    except InvalidVersion:
        return False


def newer_version(shown: str, latest: str) -> str | None:
    """The version a release page points to as newer: the project's latest, when it is
    newer than the one shown (a pre-release newer than the latest stable has none)."""
    try:
        return latest if Version(latest) > Version(shown) else None
    except InvalidVersion:
        return None


def done_message(done: str, what: str) -> str | None:
    """The message after a form, from the address it sent the browser to: fixed wording,
    with at most a version or a filename in it (anything else names nothing)."""
    if done == "yanked":
        return "This release is yanked: installers skip it unless it is pinned exactly."
    if done == "unyanked":
        return "This release is no longer yanked."
    if done != "deleted" or len(what) > _FILENAME_CHARACTERS:
        return None
    try:
        Version(what)
    except InvalidVersion:
        pass
    else:
        return (
            f"Deleted release {what}: its files are gone, and their filenames never take "
            "other contents in this index."
        )
    if _is_filename(what):
        return f"Deleted {what}: the filename never takes other contents in this index."
    return None


def _is_filename(what: str) -> bool:
    """Whether ``what`` is a distribution's filename, and nothing else."""
    if not _FILENAME.fullmatch(what):
        return False
    try:
        if what.endswith(".whl"):
            parse_wheel_filename(what)
        else:
            parse_sdist_filename(what)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return False
    return True


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
