"""Words for searching projects by name and summary, and the order of the matches.

A name is searched by its parts (``django-rest-framework``: ``django``, ``rest``,
``framework``) and whole; a summary by its words. Every query word must match
the start of some word of the project; matches in the name come first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from itertools import groupby
from operator import itemgetter

from packaging.version import InvalidVersion, Version

__all__ = [
    "ReleaseSummary",
    "name_words",
    "newest_summaries",
    "query_words",
    "rank",
    "summary_words",
    "version_key",
]

#: One release for the search: project, version, summary.
ReleaseSummary = tuple[str, str, str]
_NO_VERSION = Version("0")

_WORD = re.compile(r"[a-z0-9]+")
#: Summaries are one line on the public index; a long one adds nothing to a search.
_SUMMARY_CHARACTERS = 512


def name_words(name: str) -> set[str]:
    """The parts of a normalized name, and the name itself."""
    return {name, *_WORD.findall(name)}


def summary_words(summary: str) -> set[str]:
    """The words of a summary, lower case."""
    return set(_WORD.findall(summary[:_SUMMARY_CHARACTERS].lower()))


def query_words(query: str) -> list[str]:
    """The words of a query, lower case, each once, in order."""
    return list(dict.fromkeys(_WORD.findall(query.lower())))


def rank(name: str, words: list[str], query: str) -> int:
    """0 for the exact name, 1 for a name that starts so, 2 for every word in the name, else 3."""
    wanted = "-".join(words)
    if name == wanted or name == query.strip().lower():
        return 0
    if name.startswith(wanted):
        return 1
    parts = name_words(name)
    if all(any(part.startswith(word) for part in parts) for word in words):
        return 2
    return 3


def version_key(version: str) -> tuple[bool, Version]:
    """Valid versions order after invalid ones: only a PEP 440 version can be the newest."""
    try:
        return (True, Version(version))
    except InvalidVersion:
        return (False, _NO_VERSION)


def newest_summaries(releases: Iterable[ReleaseSummary]) -> Iterator[ReleaseSummary]:
    """The newest release of each project (the first of equal versions), from releases
    that come grouped by project; each group is read as it comes, so a store can feed
    every release of an index through without holding them."""
    for _project, group in groupby(releases, key=itemgetter(0)):
        yield max(group, key=lambda release: version_key(release[1]))
