"""Which indexes a project's files come from, when an index inherits from others.

An index is searched before its bases, and bases in the order listed, depth
first, but never a base before an index that inherits from it. The first index
that has the project *owns* it: every index searched after it is passed over for
that name, unless the owner lists the name as allowed to inherit. That is the
protection against dependency confusion: a private ``acme-lib`` in ``team/prod``
hides an ``acme-lib`` on an upstream index, whatever order the bases come in, from
everyone who may read ``team/prod``. The indexes a reader may not read are left
out of ``configs`` by the caller: for that reader they neither show nor hide a
name (docs/security.md, "Private indexes").
Routing rules narrow the search further: a name that matches a rule of an index
is looked for only in the rule's base (or, for ``-``, nowhere below that index).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from fnmatch import fnmatchcase

from ministry.core.models import IndexConfig, Route

__all__ = ["contributors", "matches", "resolution_order"]


def matches(patterns: Collection[str], name: str) -> bool:
    """Whether a normalized project name matches one of the (lower-case) patterns."""
    return any(fnmatchcase(name, pattern) for pattern in patterns)


def _route(config: IndexConfig, project: str) -> Route | None:
    return next((r for r in config.routes if fnmatchcase(project, r.pattern)), None)


def _linearize(
    name: str,
    configs: Mapping[str, IndexConfig],
    bases_of: Callable[[IndexConfig], Sequence[str]],
) -> list[str]:
    """Depth first, keeping each index's *last* place: every index then precedes its bases.

    With ``dev -> [upstream, prod]`` and ``prod -> [upstream]`` the walk is
    dev, upstream, prod, upstream, and the order dev, prod, upstream: ``prod`` is
    searched before the base it inherits from, whatever order ``dev`` lists them in.
    """
    walk: list[str] = []

    def visit(current: str, path: frozenset[str]) -> None:
        if current in path or current not in configs:
            return
        walk.append(current)
        for base in bases_of(configs[current]):
            visit(base, path | {current})

    visit(name, frozenset())
    order: list[str] = []
    for index in reversed(walk):
        if index not in order:
            order.append(index)
    return order[::-1]


def resolution_order(name: str, configs: Mapping[str, IndexConfig]) -> list[str]:
    """The index and all its bases, each once, every index before its own bases."""
    return _linearize(name, configs, lambda config: config.bases)


def _bases_for(project: str) -> Callable[[IndexConfig], Sequence[str]]:
    def bases(config: IndexConfig) -> Sequence[str]:
        route = _route(config, project)
        if route is None:
            return config.bases
        return () if route.base == "-" else (route.base,)

    return bases


def contributors(
    name: str,
    project: str,
    configs: Mapping[str, IndexConfig],
    has_project: Collection[str],
) -> list[str]:
    """The indexes whose files make up ``project`` when read through index ``name``.

    ``has_project`` names the indexes that hold the project themselves; ``configs``
    holds only the indexes the reader may read.
    """
    found: list[str] = []
    for index in _linearize(name, configs, _bases_for(project)):
        if index not in has_project:
            continue
        found.append(index)
        if not matches(configs[index].allow_inherit, project):
            break
    return found
