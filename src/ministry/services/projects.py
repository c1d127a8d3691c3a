"""A project as one index shows it: its files gathered from the indexes that contribute.

Hosted indexes answer from the store; proxy indexes from their upstream page.
An upstream is asked about a name only when no index searched before it owns
that name, so a private project's name never leaks to an upstream.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Protocol

from packaging.utils import NormalizedName

from ministry.core.inheritance import contributors
from ministry.core.models import FileEntry, Project, Release
from ministry.core.proxied_files import HeldBack, offered_files
from ministry.core.releases import release_key
from ministry.services.indexes import ReadAccess
from ministry.services.proxy_pages import ProxyPage, ProxyPages
from ministry.storage.protocols import PackageStore, ProxyCacheStore

__all__ = ["Contribution", "ProjectResolver", "ProjectView", "ResolverStore"]


class ResolverStore(PackageStore, ProxyCacheStore, Protocol):
    """The roles the resolver uses: stored releases and files, and cached upstream files."""


@dataclass(frozen=True)
class Contribution:
    """One index's part of a project: a hosted project, or a proxied page."""

    index: str
    display_name: str
    signature: Hashable
    project: Project | None = None
    page: ProxyPage | None = None


@dataclass(frozen=True)
class ProjectView:
    """A project as an index shows it."""

    name: NormalizedName
    display_name: str
    contributions: tuple[Contribution, ...]
    files: tuple[FileEntry, ...]
    held_back: tuple[HeldBack, ...]

    @property
    def last_serial(self) -> int:
        """The newest change of any hosted contributor (0 for proxied projects)."""
        serials = [c.project.last_serial for c in self.contributions if c.project]
        return max(serials, default=0)

    @cached_property
    def by_filename(self) -> dict[str, FileEntry]:
        """The files by filename, for downloads (built once per view)."""
        return {f.filename: f for f in self.files}

    @property
    def stale(self) -> bool:
        """Whether a proxied part is past its freshness (its upstream failed, or offline)."""
        return any(c.page.stale for c in self.contributions if c.page)


class ProjectResolver:
    """Finds the contributions to a project and gathers its files."""

    def __init__(self, metadata: ResolverStore, pages: ProxyPages) -> None:
        self._metadata = metadata
        self._pages = pages

    async def contributions(self, access: ReadAccess, name: NormalizedName) -> list[Contribution]:
        """The visible contributions, nearest first; empty when the index shows no such project."""
        hosted = {p.index: p for p in await self._metadata.projects_named(name)}
        proxies = {n for n in access.order if access.configs[n].kind == "proxy"}
        pages: dict[str, ProxyPage] = {}
        absent: set[str] = set()
        while True:
            holders = set(hosted) | (proxies - absent)
            owners = contributors(access.index.name, name, access.shown, holders)
            pending = [n for n in owners if n in proxies and n not in pages]
            if not pending:
                break
            page = await self._pages.get(access.configs[pending[0]], name)
            if page is None:
                absent.add(pending[0])
            else:
                pages[pending[0]] = page
        return [self._contribution(n, hosted.get(n), pages.get(n)) for n in owners]

    @staticmethod
    def _contribution(index: str, project: Project | None, page: ProxyPage | None) -> Contribution:
        if project is not None:
            return Contribution(index, project.display_name, project.last_serial, project=project)
        assert page is not None
        return Contribution(index, page.project, page.token, page=page)

    @staticmethod
    def owners(access: ReadAccess, name: NormalizedName, holders: Collection[str]) -> list[str]:
        """The visible indexes that make up ``name``, among indexes known to hold it."""
        return contributors(access.index.name, name, access.shown, holders)

    async def gather(
        self, access: ReadAccess, name: NormalizedName, contributions: list[Contribution]
    ) -> ProjectView:
        """The files of the contributions, the nearest index winning for each filename."""
        files: dict[str, FileEntry] = {}
        held: list[HeldBack] = []
        now = datetime.now(UTC)
        for contribution in contributions:
            if contribution.page is not None:
                config = access.configs[contribution.index]
                offered, held_back = offered_files(config, name, contribution.page.kept, now)
                held += held_back
                if self._pages.offline:
                    offered = await self._cached_only(contribution.index, offered)
            else:
                stored = await self._metadata.list_files(contribution.index, name)
                offered = [FileEntry.of(f) for f in stored]
            for entry in offered:
                files.setdefault(entry.filename, entry)
        held = [h for h in held if h.entry.filename not in files]
        return ProjectView(
            name, contributions[0].display_name, tuple(contributions), tuple(files.values()),
            tuple(held),
        )  # fmt: skip

    async def _cached_only(self, index: str, offered: list[FileEntry]) -> list[FileEntry]:
        """The files whose bytes are kept: an offline proxy offers only those.

        An installer picks the best file a page lists; listing a file that cannot be
        fetched (a newer platform tag than a mirror took, say) would fail the install
        where a kept file would have done.
        """
        kept = []
        for entry in offered:
            cached = await self._metadata.get_cached_file(index, entry.filename)
            if cached is not None and cached.sha256 == entry.sha256:
                kept.append(entry)
        return kept

    async def releases(self, view: ProjectView) -> list[Release]:
        """The releases of a view: stored ones (with metadata), and bare ones for proxied files."""
        releases: dict[str, Release] = {}
        for contribution in view.contributions:
            if contribution.project is not None:
                for release in await self._metadata.list_releases(contribution.index, view.name):
                    releases.setdefault(release_key(release.version), release)
        created = datetime.fromtimestamp(0, UTC)
        for entry in view.files:
            if entry.upstream_url is not None:
                releases.setdefault(
                    release_key(entry.version),
                    Release(entry.index, view.name, entry.version, created, {}),
                )
        return list(releases.values())
