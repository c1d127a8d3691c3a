"""Search over the projects of the hosted indexes, by name and summary.

The first search builds, per hosted index, a map from word to projects (names
and the summary of each project's newest release); after that the change log
says which projects changed, and only those are read again. A search then looks
words up by prefix in a sorted word list: its cost follows the matches, not the
number of projects.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from packaging.utils import NormalizedName
from packaging.version import InvalidVersion, Version

from ministry.core.models import Project
from ministry.core.project_list import ProjectList
from ministry.core.releases import release_key
from ministry.core.search import name_words, query_words, rank, summary_words
from ministry.services.catalog import Catalog
from ministry.services.indexes import ReadAccess
from ministry.storage.protocols import ChangeLog, PackageStore

__all__ = ["RecentRelease", "SearchHit", "SearchService", "SearchStore"]

#: More changes than this since the last look, and the words are rebuilt instead.
_REBUILD_AFTER = 5000
_PAGE = 1000
#: How far back in the change log the home page looks for uploads.
_RECENT_WINDOW = 500


@dataclass(frozen=True)
class SearchHit:
    """A project that matches, with the summary and version of its newest release."""

    project: Project
    summary: str
    #: The newest version ("" for a proxied project, whose releases live upstream).
    version: str = ""

    @property
    def prerelease(self) -> bool:
        """Whether the newest version is a pre-release (or a development release)."""
        valid, version = _version_key(self.version)
        return valid and version.is_prerelease


@dataclass(frozen=True)
class RecentRelease:
    """A release that received a file lately."""

    project: Project
    version: str
    uploaded: datetime
    summary: str


_NO_VERSION = Version("0")


def _version_key(version: str) -> tuple[bool, Version]:
    """Valid versions order after invalid ones: only a PEP 440 version can be the newest."""
    try:
        return (True, Version(version))
    except InvalidVersion:
        return (False, _NO_VERSION)


def _newest_summaries(releases: Iterable[tuple[str, str, str]]) -> dict[str, tuple[str, str]]:
    """The summary and version of each project's newest release."""
    newest: dict[str, tuple[tuple[bool, Version], str, str]] = {}
    for project, version, summary in releases:
        key = _version_key(version)
        kept = newest.get(project)
        if kept is None or key > kept[0]:
            newest[project] = (key, summary, version)
    return {project: (summary, version) for project, (_, summary, version) in newest.items()}


class _Words:
    """The words of one hosted index."""

    def __init__(self) -> None:
        self.summaries: dict[str, str] = {}
        self.versions: dict[str, str] = {}
        self.projects: dict[str, set[str]] = defaultdict(set)
        self._of: dict[str, set[str]] = {}
        self._sorted: list[str] | None = None

    def put(self, name: str, summary: str | None, version: str = "") -> None:
        for word in self._of.pop(name, set()):
            self.projects[word].discard(name)
        if summary is None:
            self.summaries.pop(name, None)
            self.versions.pop(name, None)
        else:
            words = name_words(name) | summary_words(summary)
            self.summaries[name] = summary
            self.versions[name] = version
            self._of[name] = words
            for word in words:
                self.projects[word].add(name)
        self._sorted = None

    def matching(self, word: str) -> set[str]:
        """Projects with a word that starts with ``word``."""
        if self._sorted is None:
            self._sorted = sorted(w for w, names in self.projects.items() if names)
        found: set[str] = set()
        start = bisect_left(self._sorted, word)
        for candidate in self._sorted[start:]:
            if not candidate.startswith(word):
                break
            found |= self.projects[candidate]
        return found


class SearchStore(ChangeLog, PackageStore, Protocol):
    """The roles the search uses: release summaries, and the change log that keeps them fresh."""


class SearchService:
    """Finds projects an index shows by the words of their names and summaries."""

    def __init__(self, metadata: SearchStore, catalog: Catalog) -> None:
        self._metadata = metadata
        self._catalog = catalog
        self._words: dict[str, _Words] = {}
        #: The project list whose names were last given words, per index and visibility.
        self._noted: dict[Hashable, ProjectList] = {}
        self._serial = -1
        self._lock = asyncio.Lock()

    def clear(self) -> None:
        """Forget the words read (after the store went back): the next search rebuilds them."""
        self._words, self._noted, self._serial = {}, {}, -1

    async def search(
        self, accesses: Sequence[ReadAccess], query: str, limit: int = 100
    ) -> list[SearchHit]:
        """The best ``limit`` matches among the projects any of ``accesses`` shows, each
        project once (an index and those inheriting it show the same one)."""
        words = query_words(query)
        if not words or not accesses:
            return []
        await self._catch_up(accesses[0])
        matches = self._matches(words)
        found: dict[tuple[str, str], tuple[int, str, str, SearchHit]] = {}
        for access in accesses:
            shown = await self._catalog.projects(access)
            self._note_names(access, shown)
            for key in matches:
                project = shown.find(*key)
                if project is not None and key not in found:
                    words_of = self._words[key[0]]
                    hit = SearchHit(
                        project,
                        words_of.summaries.get(project.name, ""),
                        words_of.versions.get(project.name, ""),
                    )
                    score = rank(project.name, words, query)
                    found[key] = (score, project.name, project.index, hit)
        ranked = sorted(found.values(), key=lambda hit: hit[:3])
        return [hit for *_, hit in ranked[:limit]]

    async def recent(self, access: ReadAccess, count: int = 10) -> list[RecentRelease]:
        """The releases most lately uploaded to, among the projects ``access`` shows.

        Only the projects named by the last changes are looked at: the home page needs
        neither the words of every project nor the whole project list.
        """
        changes = await self._metadata.changes_since(
            max(0, access.serial - _RECENT_WINDOW), _RECENT_WINDOW
        )
        shown: dict[tuple[str, str], Project | None] = {}
        found: list[RecentRelease] = []
        seen: set[tuple[str, str | None]] = set()
        for change in reversed(changes):
            if change.action != "add-file" or not change.project or change.version is None:
                continue
            key = (change.index, change.project)
            if key not in shown:
                shown[key] = await self._catalog.shown_project(access, *key)
            project = shown[key]
            if project is None:
                continue
            release = (project.name, release_key(change.version))
            if release in seen:
                continue
            seen.add(release)
            summary = await self._summary(access, change.index, project.name)
            found.append(RecentRelease(project, change.version, change.time, summary))
            if len(found) == count:
                break
        return found

    async def _summary(self, access: ReadAccess, index: str, name: NormalizedName) -> str:
        """The summary of a project's newest release: from the words when they are current,
        else from its releases."""
        if self._serial == access.serial and index in self._words:
            return self._words[index].summaries.get(name, "")
        releases = await self._metadata.list_releases(index, name)
        summaries = _newest_summaries(
            (r.project, r.version, str(r.metadata.get("summary") or "")) for r in releases
        )
        return summaries.get(name, ("", ""))[0]

    def _note_names(self, access: ReadAccess, shown: ProjectList) -> None:
        """Give every project the index shows a name to be found by, once per project list.

        Proxied projects have no releases here and join the list as they are
        fetched: their names are added to the words of their index on the way.
        """
        key = (access.index.name, access.visible)
        if self._noted.get(key) is shown:
            return
        for i in range(len(shown)):
            name = shown.name(i)
            words_of = self._words.setdefault(shown.index_name(i), _Words())
            if name not in words_of.summaries:
                words_of.put(name, "")
        self._noted[key] = shown

    def _matches(self, words: list[str]) -> set[tuple[str, str]]:
        matched: set[tuple[str, str]] = set()
        for index, words_of in self._words.items():
            names: set[str] | None = None
            for word in words:
                found = words_of.matching(word)
                names = found if names is None else names & found
                if not names:
                    break
            matched |= {(index, name) for name in names or ()}
        return matched

    async def _catch_up(self, access: ReadAccess) -> None:
        async with self._lock:
            if self._serial == access.serial:
                return
            changed: set[tuple[str, str]] = set()
            serial = self._serial
            while self._serial >= 0:
                changes = await self._metadata.changes_since(serial, _PAGE)
                changed |= {(c.index, c.project) for c in changes if c.project}
                if not changes or len(changed) > _REBUILD_AFTER:
                    break
                serial = changes[-1].serial
            if self._serial < 0 or len(changed) > _REBUILD_AFTER:
                await self._rebuild(access)
                return
            for index, name in changed:
                await self._refresh(index, NormalizedName(name))
            self._serial = serial

    async def _rebuild(self, access: ReadAccess) -> None:
        """Every hosted index's words: one read of its releases, the rest off the loop."""
        serial = await self._metadata.last_serial()
        words: dict[str, _Words] = {}
        for index, config in access.configs.items():
            if config.kind == "hosted":
                releases = await self._metadata.release_summaries(index)
                words[index] = await asyncio.to_thread(_words_of, releases)
        self._words, self._noted = words, {}
        self._serial = serial

    async def _refresh(self, index: str, name: NormalizedName) -> None:
        words_of = self._words.setdefault(index, _Words())
        if await self._metadata.get_project(index, name) is None:
            words_of.put(name, None)
            return
        releases = await self._metadata.list_releases(index, name)
        summaries = _newest_summaries(
            (r.project, r.version, str(r.metadata.get("summary") or "")) for r in releases
        )
        words_of.put(name, *summaries.get(name, ("", "")))


def _words_of(releases: list[tuple[str, str, str]]) -> _Words:
    words = _Words()
    for name, (summary, version) in _newest_summaries(releases).items():
        words.put(name, summary, version)
    return words
