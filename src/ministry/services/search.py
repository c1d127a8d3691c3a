"""Search over the projects of the hosted indexes, by name and summary.

The first search builds, per hosted index, a map from word to projects (names
and the summary of each project's newest release); after that the change log
says which projects changed, and only those are read again. A search then looks
words up by prefix in a sorted word list: its cost follows the matches, not the
number of projects.
"""

from __future__ import annotations

import asyncio
import heapq
from bisect import bisect_left
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from packaging.utils import NormalizedName

from ministry.core.models import Project
from ministry.core.project_list import ProjectList
from ministry.core.releases import release_key
from ministry.core.search import (
    ReleaseSummary,
    name_words,
    newest_summaries,
    query_words,
    rank,
    summary_words,
    version_key,
)
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
        valid, version = version_key(self.version)
        return valid and version.is_prerelease


@dataclass(frozen=True)
class RecentRelease:
    """A release that received a file lately."""

    project: Project
    version: str
    uploaded: datetime
    summary: str


class _Words:
    """The words of one hosted index.

    Sized for hundreds of thousands of projects: most words (a name, its numbers)
    belong to one project, so a word maps to that project's name alone and to a set
    only once a second project shares it; a project's own words are not kept but
    worked out again from its name and summary when they change.
    """

    def __init__(self) -> None:
        self.summaries: dict[str, str] = {}
        self.versions: dict[str, str] = {}
        self._projects: dict[str, str | set[str]] = {}
        self._sorted: list[str] | None = None

    def put(self, name: str, summary: str | None, version: str = "") -> None:
        old = self.summaries.get(name)
        if old is not None:
            for word in name_words(name) | summary_words(old):
                self._discard(word, name)
        if summary is None:
            self.summaries.pop(name, None)
            self.versions.pop(name, None)
        else:
            self.summaries[name] = summary
            self.versions[name] = version
            for word in name_words(name) | summary_words(summary):
                self._add(word, name)
        self._sorted = None

    def _add(self, word: str, name: str) -> None:
        held = self._projects.get(word)
        if held is None:
            self._projects[word] = name
        elif isinstance(held, str):
            if held != name:
                self._projects[word] = {held, name}
        else:
            held.add(name)

    def _discard(self, word: str, name: str) -> None:
        held = self._projects.get(word)
        if held == name:
            del self._projects[word]
        elif isinstance(held, set):
            held.discard(name)
            if len(held) == 1:
                self._projects[word] = held.pop()

    def matching(self, word: str) -> set[str]:
        """Projects with a word that starts with ``word``."""
        if self._sorted is None:
            self._sorted = sorted(self._projects)
        found: set[str] = set()
        start = bisect_left(self._sorted, word)
        for candidate in self._sorted[start:]:
            if not candidate.startswith(word):
                break
            held = self._projects[candidate]
            if isinstance(held, str):
                found.add(held)
            else:
                found |= held
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
        # Ranked first, on names alone: a hit is made only for the best ``limit``.
        found: dict[tuple[str, str], tuple[int, str, str, ProjectList, int]] = {}
        for access in accesses:
            shown = await self._catalog.projects(access)
            self._note_names(access, shown)
            for index, names in matches.items():
                for position in shown.positions(index, names):
                    name = shown.name(position)
                    if (index, name) not in found:
                        score = rank(name, words, query)
                        found[(index, name)] = (score, name, index, shown, position)
        best = heapq.nsmallest(limit, found.values(), key=lambda hit: hit[:3])
        return [
            SearchHit(
                shown[position],
                self._words[index].summaries.get(name, ""),
                self._words[index].versions.get(name, ""),
            )
            for _score, name, index, shown, position in best
        ]

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
        return (await self._newest(index, name))[0]

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

    def _matches(self, words: list[str]) -> dict[str, set[str]]:
        """The names that match every word, by index."""
        matched: dict[str, set[str]] = {}
        for index, words_of in self._words.items():
            names: set[str] | None = None
            for word in words:
                found = words_of.matching(word)
                names = found if names is None else names & found
                if not names:
                    break
            if names:
                matched[index] = names
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
                newest = await self._metadata.newest_summaries(index)
                words[index] = await asyncio.to_thread(_words_of, newest)
        self._words, self._noted = words, {}
        self._serial = serial

    async def _refresh(self, index: str, name: NormalizedName) -> None:
        words_of = self._words.setdefault(index, _Words())
        if await self._metadata.get_project(index, name) is None:
            words_of.put(name, None)
            return
        words_of.put(name, *await self._newest(index, name))

    async def _newest(self, index: str, name: NormalizedName) -> tuple[str, str]:
        """The summary and version of a project's newest release ("" and "" if none)."""
        releases = await self._metadata.list_releases(index, name)
        rows = ((r.project, r.version, str(r.metadata.get("summary") or "")) for r in releases)
        for _project, version, summary in newest_summaries(rows):
            return summary, version
        return "", ""


def _words_of(newest: list[ReleaseSummary]) -> _Words:
    words = _Words()
    for name, version, summary in newest:
        words.put(name, summary, version)
    return words
