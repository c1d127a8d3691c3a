"""The projects an index shows, kept column-wise so that a large index costs little memory.

A list of 700,000 ``Project`` objects costs hundreds of bytes per project (an object,
its attribute dict, a datetime, two strings), and a server keeps one list per index
and visibility. Here the names of the whole list are one string with an offset per
project, a display name is kept only where it differs from the name, and serials and
creation times are machine integers: a few dozen bytes per project. A ``Project`` is
made when an item is asked for, and lookups by name bisect the sorted names.
"""

from __future__ import annotations

import hashlib
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain, islice
from typing import overload

from packaging.utils import NormalizedName

from ministry.core.models import Project

__all__ = ["ProjectList"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class ProjectList(Sequence[Project]):
    """Projects sorted by normalized name, each name once, stored compactly."""

    __slots__ = (
        "_created",
        "_display_ends",
        "_displays",
        "_index_of",
        "_indexes",
        "_name_ends",
        "_names",
        "_serials",
        "fingerprint",
    )

    def __init__(self, projects: Iterable[Project]) -> None:
        """``projects`` sorted by name, each name once (as the catalog gathers them)."""
        names: list[str] = []
        displays: list[str] = []
        name_ends = array("I")
        display_ends = array("I")
        serials = array("q")
        created = array("q")
        index_of = array("H")
        indexes: dict[str, int] = {}
        name_length = display_length = 0
        for project in projects:
            names.append(project.name)
            name_length += len(project.name)
            name_ends.append(name_length)
            # Most projects spell their name as it is normalized: keep the spelling only
            # where it differs.
            if project.display_name != project.name:
                displays.append(project.display_name)
                display_length += len(project.display_name)
            display_ends.append(display_length)
            serials.append(project.last_serial)
            created.append((project.created - _EPOCH) // _MICROSECOND)
            index_of.append(indexes.setdefault(project.index, len(indexes)))
        self._names = "".join(names)
        self._displays = "".join(displays)
        self._name_ends = name_ends
        self._display_ends = display_ends
        self._serials = serials
        self._created = created
        self._index_of = index_of
        self._indexes = tuple(indexes)
        #: Changes whenever anything a listing shows changes: pages name their ETag by it.
        self.fingerprint = self._digest()

    def _digest(self) -> str:
        digest = hashlib.sha256()
        for part in (self._names, self._displays, "\0".join(self._indexes)):
            digest.update(part.encode())
            digest.update(b"\0")
        for numbers in (self._name_ends, self._display_ends, self._serials, self._index_of):
            digest.update(numbers.tobytes())
        return digest.hexdigest()[:32]

    def __len__(self) -> int:
        return len(self._serials)

    @overload
    def __getitem__(self, position: int) -> Project: ...

    @overload
    def __getitem__(self, position: slice) -> Sequence[Project]: ...

    def __getitem__(self, position: int | slice) -> Project | Sequence[Project]:
        if isinstance(position, slice):
            return [self._project(i) for i in range(*position.indices(len(self)))]
        if position < 0:
            position += len(self)
        if not 0 <= position < len(self):
            raise IndexError("project list index out of range")
        return self._project(position)

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, Project):
            return False
        return self.find(value.index, value.name) == value

    def __iter__(self) -> Iterator[Project]:
        return (self._project(i) for i in range(len(self)))

    def _project(self, i: int) -> Project:
        name = self.name(i)
        return Project(
            index=self._indexes[self._index_of[i]],
            name=name,
            display_name=self.display_name(i, name),
            created=_EPOCH + self._created[i] * _MICROSECOND,
            last_serial=self._serials[i],
        )

    def name(self, i: int) -> NormalizedName:
        """The normalized name of the ``i``-th project."""
        start = self._name_ends[i - 1] if i else 0
        return NormalizedName(self._names[start : self._name_ends[i]])

    def display_name(self, i: int, name: str | None = None) -> str:
        """The ``i``-th project's name as its index spells it."""
        start = self._display_ends[i - 1] if i else 0
        end = self._display_ends[i]
        if start == end:
            return name if name is not None else self.name(i)
        return self._displays[start:end]

    def index_name(self, i: int) -> str:
        """The index the ``i``-th project is shown from."""
        return self._indexes[self._index_of[i]]

    def last_serial(self, i: int) -> int:
        """The serial of the ``i``-th project's last change."""
        return self._serials[i]

    def rows(self) -> Iterator[tuple[NormalizedName, str, int]]:
        """Name, display name and last serial of each project, in order, made as needed:
        what the listings show, without a ``Project`` each."""
        for i in range(len(self)):
            name = self.name(i)
            yield name, self.display_name(i, name), self._serials[i]

    def position(self, name: str) -> int | None:
        """Where the project named ``name`` is, by bisection; None if not listed."""
        at = bisect_left(_Names(self), name)
        if at < len(self) and self.name(at) == name:
            return at
        return None

    def positions(self, index: str, names: Iterable[str]) -> Iterator[int]:
        """Where the projects named in ``names`` (sorted) are, of those the list shows from
        ``index``: a bisection for each of a few names, else one walk beside the list (a
        search for a common word matches most projects). The names are read as they
        come, so that those of such a search are never all held at once."""
        few = len(self) // max(1, len(self).bit_length())
        coming = iter(names)
        first = list(islice(coming, few + 1))
        found: Iterable[int | None]
        if len(first) <= few:
            found = (self.position(name) for name in first)
        else:
            found = self._walk(chain(first, coming))
        for i in found:
            if i is not None and self.index_name(i) == index:
                yield i

    def _walk(self, names: Iterable[str]) -> Iterator[int]:
        """Positions of the sorted ``names`` that the list holds, in one pass beside it."""
        i, length = 0, len(self)
        for name in names:
            while i < length and self.name(i) < name:
                i += 1
            if i < length and self.name(i) == name:
                yield i

    def find(self, index: str, name: str) -> Project | None:
        """The project named ``name`` if the list shows it from ``index``."""
        i = self.position(name)
        if i is None or self._indexes[self._index_of[i]] != index:
            return None
        return self._project(i)


class _Names(Sequence[str]):
    """The names of a list as a sequence, for ``bisect`` to search."""

    __slots__ = ("_projects",)

    def __init__(self, projects: ProjectList) -> None:
        self._projects = projects

    def __len__(self) -> int:
        return len(self._projects)

    @overload
    def __getitem__(self, position: int) -> str: ...

    @overload
    def __getitem__(self, position: slice) -> Sequence[str]: ...

    def __getitem__(self, position: int | slice) -> str | Sequence[str]:
        if isinstance(position, slice):
            return [self._projects.name(i) for i in range(*position.indices(len(self)))]
        return self._projects.name(position)
