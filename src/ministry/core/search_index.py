"""The search words of one index, kept compact enough for the public index's 700,000 projects.

A map from every word to the set of projects that use it costs about 500 bytes a
project in Python objects. Here the bulk is frozen: the projects, sorted by name, are
cut into segments of at most 65,536, and each segment keeps its names, summaries and
versions joined into one string with an offset per project, its distinct words sorted
and joined the same way, and for each word the positions of its projects in the
segment as two-byte numbers (``array('H')``). A project's whole name is not kept as a
word: names are sorted, so the names that start with a query word are one run found by
bisection. That is a few dozen bytes a project besides its summary.

Changes since the base was frozen (uploads, deletions, new summaries) go into a small
overlay of ordinary dictionaries, which answers for the names it holds; once it holds
many, base and overlay are frozen again together (``SearchWords.refrozen``).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from heapq import merge
from itertools import islice
from typing import overload

from ministry.core.search import ReleaseSummary, name_words, summary_words

__all__ = ["FrozenWords", "SearchWords", "SearchWordsBuilder"]

#: Projects per segment: a position in a segment fits in two bytes.
SEGMENT = 65_536


class _Joined(Sequence[str]):
    """Strings joined into one, with where each ends: a sorted one bisects like a list."""

    __slots__ = ("_ends", "_text")

    def __init__(self, parts: Iterable[str]) -> None:
        ends = array("I")
        pieces: list[str] = []
        length = 0
        for part in parts:
            pieces.append(part)
            length += len(part)
            ends.append(length)
        self._text = "".join(pieces)
        self._ends = ends

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[str]: ...

    def __getitem__(self, i: int | slice) -> str | Sequence[str]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        start = self._ends[i - 1] if i else 0
        return self._text[start : self._ends[i]]


class _Encoded:
    """Texts joined as UTF-8, with where each ends: one summary outside ASCII would make a
    joined ``str`` take two or four bytes for every character of the segment."""

    __slots__ = ("_data", "_ends")

    def __init__(self, parts: Iterable[str]) -> None:
        data = bytearray()
        ends = array("I")
        for part in parts:
            data += part.encode("utf-8", "surrogatepass")
            ends.append(len(data))
        self._data = bytes(data)
        self._ends = ends

    def __getitem__(self, i: int) -> str:
        start = self._ends[i - 1] if i else 0
        return self._data[start : self._ends[i]].decode("utf-8", "surrogatepass")


def _prefixed(words: Sequence[str], prefix: str) -> range:
    """The positions of the sorted ``words`` that start with ``prefix``: one run."""
    start = bisect_left(words, prefix)
    # Every word that starts with ``prefix`` sorts before ``prefix`` and the highest
    # code point after it.
    return range(start, bisect_right(words, prefix + "\U0010ffff", lo=start))


class _Segment:
    """Up to ``SEGMENT`` projects with their words, frozen."""

    __slots__ = ("_posting_ends", "_postings", "_summaries", "_versions", "_words", "names")

    def __init__(self, rows: Sequence[ReleaseSummary]) -> None:
        """``rows`` sorted by name, each name once."""
        holders: dict[str, array[int]] = {}
        for position, (name, _version, summary) in enumerate(rows):
            words = name_words(name) | summary_words(summary)
            words.discard(name)  # found through the sorted names instead
            for word in words:
                held = holders.get(word)
                if held is None:
                    holders[word] = array("H", (position,))
                else:
                    held.append(position)
        ordered = sorted(holders)
        postings = array("H")
        ends = array("I")
        for word in ordered:
            postings.extend(holders[word])
            ends.append(len(postings))
        self.names = _Joined(row[0] for row in rows)
        self._versions = _Encoded(row[1] for row in rows)
        self._summaries = _Encoded(row[2] for row in rows)
        self._words = _Joined(ordered)
        self._postings = postings
        self._posting_ends = ends

    def position(self, name: str) -> int | None:
        """Where ``name`` is in this segment, if it is."""
        at = bisect_left(self.names, name)
        return at if at < len(self.names) and self.names[at] == name else None

    def entry(self, position: int) -> tuple[str, str]:
        """The summary and version at ``position``."""
        return self._summaries[position], self._versions[position]

    def rows(self) -> Iterator[ReleaseSummary]:
        """Name, version and summary of every project, in name order."""
        for i in range(len(self.names)):
            yield self.names[i], self._versions[i], self._summaries[i]

    def matching(self, word: str) -> set[int]:
        """Positions of the projects with a word (or a name) that starts with ``word``."""
        found = set(_prefixed(self.names, word))
        ends = self._posting_ends
        for i in _prefixed(self._words, word):
            found.update(self._postings[ends[i - 1] if i else 0 : ends[i]])
        return found


class FrozenWords:
    """The words of many projects, frozen: built once, then only read."""

    __slots__ = ("_firsts", "_segments")

    def __init__(self, rows: Iterable[ReleaseSummary]) -> None:
        """(name, version, summary) of each project, sorted by name, each name once."""
        segments: list[_Segment] = []
        iterator = iter(rows)
        while chunk := list(islice(iterator, SEGMENT)):
            segments.append(_Segment(chunk))
        self._take(segments)

    @classmethod
    def _of(cls, segments: list[_Segment]) -> FrozenWords:
        frozen = cls.__new__(cls)
        frozen._take(segments)
        return frozen

    def _take(self, segments: list[_Segment]) -> None:
        self._segments = segments
        self._firsts = [segment.names[0] for segment in segments]

    def __len__(self) -> int:
        return sum(len(segment.names) for segment in self._segments)

    def _find(self, name: str) -> tuple[_Segment, int] | None:
        at = bisect_right(self._firsts, name) - 1
        if at < 0:
            return None
        segment = self._segments[at]
        position = segment.position(name)
        return None if position is None else (segment, position)

    def entry(self, name: str) -> tuple[str, str] | None:
        """The summary and version of the project ``name``; None if it has none here."""
        found = self._find(name)
        return None if found is None else found[0].entry(found[1])

    def names(self) -> Iterator[str]:
        """Every project's name, in order."""
        for segment in self._segments:
            yield from segment.names

    def rows(self) -> Iterator[ReleaseSummary]:
        """Name, version and summary of every project, in name order."""
        for segment in self._segments:
            yield from segment.rows()

    def matching(self, words: Sequence[str]) -> Iterator[str]:
        """The names of the projects that have, for every one of ``words``, a word (or
        their name) that starts with it, in name order, one segment's at a time."""
        for segment in self._segments:
            positions: set[int] | None = None
            for word in words:
                found = segment.matching(word)
                positions = found if positions is None else positions & found
                if not positions:
                    break
            for position in sorted(positions or ()):
                yield segment.names[position]


class _Recent:
    """Projects changed since the base was frozen, with a word map of their own; a name
    mapped to None was removed."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[str, str] | None] = {}
        self._projects: dict[str, str | set[str]] = {}

    def put(self, name: str, entry: tuple[str, str] | None) -> None:
        old = self.entries.get(name)
        if old is not None:
            for word in name_words(name) | summary_words(old[0]):
                self._discard(word, name)
        self.entries[name] = entry
        if entry is not None:
            for word in name_words(name) | summary_words(entry[0]):
                self._add(word, name)

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

    def matching(self, words: Sequence[str]) -> set[str]:
        """Names with, for every one of ``words``, a word that starts with it (the overlay
        is small: its words are looked through rather than sorted)."""
        names: set[str] | None = None
        for word in words:
            found: set[str] = set()
            for candidate, held in self._projects.items():
                if candidate.startswith(word):
                    if isinstance(held, str):
                        found.add(held)
                    else:
                        found |= held
            names = found if names is None else names & found
            if not names:
                break
        return names or set()


class SearchWords:
    """The words of one index's projects: a frozen base and the changes since."""

    def __init__(self, base: FrozenWords | None = None) -> None:
        self._base = base or FrozenWords(())
        self._recent = _Recent()

    @classmethod
    def of(cls, rows: Iterable[ReleaseSummary]) -> SearchWords:
        """Words for (name, version, summary) rows in any order, each name once."""
        return cls(FrozenWords(sorted(rows)))

    @property
    def changes(self) -> int:
        """How many projects the overlay holds: the measure for freezing again."""
        return len(self._recent.entries)

    def put(self, name: str, summary: str | None, version: str = "") -> None:
        """Give ``name`` this summary and version; None removes it."""
        self._recent.put(name, None if summary is None else (summary, version))

    def entry(self, name: str) -> tuple[str, str] | None:
        """The summary and version of ``name``; None if the words do not hold it."""
        if name in self._recent.entries:
            return self._recent.entries[name]
        return self._base.entry(name)

    def summary(self, name: str) -> str:
        """The summary of ``name`` ("" when none)."""
        entry = self.entry(name)
        return "" if entry is None else entry[0]

    def version(self, name: str) -> str:
        """The newest version of ``name`` ("" when none)."""
        entry = self.entry(name)
        return "" if entry is None else entry[1]

    def note(self, names: Iterable[str]) -> None:
        """Give each of ``names`` (sorted) that the words do not hold yet an empty summary,
        so that it is found by its name: one walk beside the base's sorted names."""
        held = self._base.names()
        current = next(held, None)
        recent = self._recent.entries
        for name in names:
            while current is not None and current < name:
                current = next(held, None)
            if name in recent:
                if recent[name] is None:
                    self.put(name, "")
            elif current != name:
                self.put(name, "")

    def matching(self, words: Sequence[str]) -> set[str]:
        """Names with, for every one of ``words``, a word (or their name) that starts with it."""
        return set(self.matching_in_order(words))

    def matching_in_order(self, words: Sequence[str]) -> Iterator[str]:
        """The names ``matching`` gives, in name order and made as they are read: a word
        that every project matches never has all their names held at once."""
        recent = self._recent.entries
        base = (name for name in self._base.matching(words) if name not in recent)
        return merge(base, sorted(self._recent.matching(words)))

    def rows(self) -> Iterator[ReleaseSummary]:
        """Name, version and summary of every project held, in name order."""
        recent = self._recent.entries
        base = (row for row in self._base.rows() if row[0] not in recent)
        changed = (
            (name, entry[1], entry[0])
            for name, entry in sorted(recent.items())
            if entry is not None
        )
        return merge(base, changed)

    def refrozen(self) -> SearchWords:
        """The same words with the overlay frozen into the base (made off the event loop:
        it reads every project once)."""
        return SearchWords(FrozenWords(self.rows()))


class SearchWordsBuilder:
    """Search words from rows that come a batch at a time in name order (a store's
    stream): each segment is frozen as soon as its rows are in, so no more than one
    segment's rows are ever held, however many projects the index has."""

    def __init__(self) -> None:
        self._segments: list[_Segment] = []
        self._pending: list[ReleaseSummary] = []
        self._last = ""

    def add(self, rows: Iterable[ReleaseSummary]) -> None:
        """More rows, each named after every row added before: a store that broke its
        order would otherwise leave projects the bisection cannot find."""
        for row in rows:
            if self._last and row[0] <= self._last:
                raise ValueError(f"{row[0]!r} comes after {self._last!r}: rows out of order")
            self._last = row[0]
            self._pending.append(row)
            if len(self._pending) == SEGMENT:
                self._freeze()

    def _freeze(self) -> None:
        self._segments.append(_Segment(self._pending))
        self._pending = []

    def build(self) -> SearchWords:
        """The words of every row added."""
        if self._pending:
            self._freeze()
        return SearchWords(FrozenWords._of(self._segments))
