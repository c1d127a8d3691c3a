"""Search over the projects of the hosted indexes, by name and summary.

The first search builds, per hosted index, the words of its projects (names and the
summary of each project's newest release), frozen compactly (``core.search_index``);
after that the change log says which projects changed, and only those are read again,
into a small overlay that is frozen into the base once it holds ``_REFREEZE_AFTER``
projects. A search looks words up by prefix in sorted word lists: its cost follows the
matches, not the number of projects.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from packaging.utils import NormalizedName

from ministry.core.models import Project
from ministry.core.project_list import ProjectList
from ministry.core.releases import release_key
from ministry.core.search import newest_summaries, query_words, rank, version_key
from ministry.core.search_index import SearchWords, SearchWordsBuilder
from ministry.services.catalog import Catalog
from ministry.services.indexes import ReadAccess
from ministry.storage.protocols import ChangeLog, PackageStore

__all__ = ["RecentRelease", "SearchHit", "SearchService", "SearchStore"]

#: More changes than this since the last look, and the words are rebuilt instead.
_REBUILD_AFTER = 5000
#: Projects changed since the words were frozen before the overlay is frozen into them.
_REFREEZE_AFTER = 2000
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


class SearchStore(ChangeLog, PackageStore, Protocol):
    """The roles the search uses: release summaries, and the change log that keeps them fresh."""


_Ranked = tuple[int, str, str, ProjectList, int]


class _Kept:
    """A ranked match in the heap of the best: ordered worst first, so that the top of
    ``heapq``'s heap is the one to push out."""

    __slots__ = ("hit", "key")

    def __init__(self, hit: _Ranked) -> None:
        self.hit = hit
        self.key = hit[:3]

    def __lt__(self, other: _Kept) -> bool:
        return self.key > other.key


def _best(
    shown_by_access: list[ProjectList],
    words_by_index: dict[str, SearchWords],
    words: list[str],
    query: str,
    limit: int,
) -> list[_Ranked]:
    """The best ``limit`` matches by (rank, name, index), each project once (the first
    list to show it names it), ranked on names alone and kept in a heap of ``limit`` as
    they come: a word that every project matches (hundreds of thousands at the size of
    the public index) never has them all ranked in memory at once.

    A project two lists show has one key in both: while in the heap it is skipped, and
    once pushed out, ``limit`` better keys are held, so it cannot come back.
    """
    if limit <= 0:
        return []
    heap: list[_Kept] = []
    held: set[tuple[str, str]] = set()
    for shown in shown_by_access:
        for index, words_of in words_by_index.items():
            names = words_of.matching_in_order(words)
            for position in shown.positions(index, names):
                name = shown.name(position)
                if (index, name) in held:
                    continue
                kept = _Kept((rank(name, words, query), name, index, shown, position))
                if len(heap) < limit:
                    heapq.heappush(heap, kept)
                elif kept.key < heap[0].key:
                    dropped = heapq.heapreplace(heap, kept)
                    held.discard((dropped.key[2], dropped.key[1]))
                else:
                    continue
                held.add((index, name))
    return sorted((kept.hit for kept in heap), key=lambda hit: hit[:3])


class SearchService:
    """Finds projects an index shows by the words of their names and summaries."""

    def __init__(self, metadata: SearchStore, catalog: Catalog) -> None:
        self._metadata = metadata
        self._catalog = catalog
        self._words: dict[str, SearchWords] = {}
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
        async with self._lock:
            await self._catch_up(accesses[0])
            shown_by_access = [await self._catalog.projects(access) for access in accesses]
            for access, shown in zip(accesses, shown_by_access, strict=True):
                self._note_names(access, shown)
            await self._refreeze()
            best = _best(shown_by_access, self._words, words, query, limit)
        return [
            SearchHit(
                shown[position],
                self._words[index].summary(name),
                self._words[index].version(name),
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
            return self._words[index].summary(name)
        return (await self._newest(index, name))[0]

    def _note_names(self, access: ReadAccess, shown: ProjectList) -> None:
        """Give every project the index shows a name to be found by, once per project list.

        Proxied projects have no releases here and join the list as they are
        fetched: their names are added to the words of their index on the way.
        """
        key = (access.index.name, access.visible)
        if self._noted.get(key) is shown:
            return
        for index in {shown.index_name(i) for i in range(len(shown))}:
            names = (shown.name(i) for i in range(len(shown)) if shown.index_name(i) == index)
            self._words.setdefault(index, SearchWords()).note(names)
        self._noted[key] = shown

    async def _refreeze(self) -> None:
        """Freeze the overlay of an index's words into its base once it has grown (under
        the lock: nothing changes the words meanwhile)."""
        for index, words_of in list(self._words.items()):
            if words_of.changes > _REFREEZE_AFTER:
                self._words[index] = await asyncio.to_thread(words_of.refrozen)

    async def _catch_up(self, access: ReadAccess) -> None:
        """Read what changed since the words were last brought up to date (under the lock)."""
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
        """Every hosted index's words, read a batch of projects at a time and frozen off the
        loop as the batches come: one index's summaries are never held whole."""
        serial = await self._metadata.last_serial()
        words: dict[str, SearchWords] = {}
        for index, config in access.configs.items():
            if config.kind == "hosted":
                builder = SearchWordsBuilder()
                async for batch in self._metadata.newest_summaries(index):
                    await asyncio.to_thread(builder.add, batch)
                words[index] = await asyncio.to_thread(builder.build)
        self._words, self._noted = words, {}
        self._serial = serial

    async def _refresh(self, index: str, name: NormalizedName) -> None:
        words_of = self._words.setdefault(index, SearchWords())
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
