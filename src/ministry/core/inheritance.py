"""Which indexes a project's files come from, when an index inherits from others.

An index is searched before its bases, and bases in the order listed, depth
first. The first index that has the project *owns* it: every index searched
after it is passed over for that name, unless the owner lists the name as
allowed to inherit. That is the protection against dependency confusion: a
private ``acme-lib`` in ``team/prod`` hides an ``acme-lib`` on an upstream index,
whatever order the bases come in. Routing rules narrow the search further: a
name that matches a rule of an index is looked for only in the rule's base
(or, for ``-``, nowhere below that index).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from fnmatch import fnmatchcase

from ministry.core.models import IndexConfig, Route

__all__ = ["contributors", "matches", "resolution_order"]


def matches(patterns: Collection[str], name: str) -> bool:
    """Whether a normalized project name matches one of the (lower-case) patterns."""
    return any(fnmatchcase(name, pattern) for pattern in patterns)


def _route(config: IndexConfig, project: str) -> Route | None:
    return next((r for r in config.routes if fnmatchcase(project, r.pattern)), None)


def resolution_order(name: str, configs: Mapping[str, IndexConfig]) -> list[str]:
    """The index and all its bases, depth first, each once."""
    order: list[str] = []

    def visit(current: str) -> None:
        if current in order or current not in configs:
            return
        order.append(current)
        for base in configs[current].bases:
            visit(base)

    visit(name)
    return order


def contributors(
    name: str,
    project: str,
    configs: Mapping[str, IndexConfig],
    has_project: Collection[str],
    visible: Callable[[str], bool],
) -> list[str]:
    """The indexes whose files make up ``project`` when read through index ``name``.

    ``has_project`` names the indexes that hold the project themselves. An index
    the reader may not see contributes nothing, but still owns the name: a private
    project never lets a public one of the same name through.
    """
    found: list[str] = []
    searched: set[str] = set()

    def search(current: str) -> bool:
        """Search one index and its bases; True once an owner ends the search."""
        if current in searched or current not in configs:
            return False
        searched.add(current)
        config = configs[current]
        if current in has_project:
            if visible(current):
                found.append(current)
            if not matches(config.allow_inherit, project):
                return True
        route = _route(config, project)
        bases = config.bases if route is None else (() if route.base == "-" else (route.base,))
        return any(search(base) for base in bases)

    search(name)
    return found
