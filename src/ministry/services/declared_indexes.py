"""``[[index]]`` entries of the config file, made true in the store at every start.

The file is the record of how indexes are meant to be set up, so that a server
rebuilt from it, or a second node, ends up the same. An entry creates its index
when it is missing and sets the keys it gives when they differ; keys it leaves
out, and indexes it does not name, are left as they are (nothing is deleted
because a file forgot it). Every process and node applies the same entries, so
applying them must be idempotent: a second pass writes nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from ministry.core.index_rules import check_index_config
from ministry.core.index_settings import index_settings, new_index
from ministry.core.models import Actor
from ministry.errors import Conflict, InvalidRequest
from ministry.services.indexes import IndexService
from ministry.storage.protocols import IndexStore

__all__ = ["DeclaredIndex", "declare_indexes"]

#: The audit log's name for changes made from the config file.
_ACTOR = Actor("config", "local")


class DeclaredIndex(Protocol):
    """What is read of an ``[[index]]`` entry (``config_file.DeclaredIndex``, which the
    wiring passes): services know the entries, never the file's reader."""

    @property
    def name(self) -> str:
        """The index's name."""

    @property
    def values(self) -> Mapping[str, Any]:
        """Its settings as written (and checked), not yet applied."""

    @property
    def where(self) -> str:
        """``FILE, line N`` of the entry, for messages."""


async def declare_indexes(
    indexes: IndexService, metadata: IndexStore, declared: Sequence[DeclaredIndex]
) -> None:
    """Create or update each declared index, bases before the indexes that name them."""
    pending = {entry.name: (entry, index_settings(entry.values)) for entry in declared}
    while pending:
        ready = [
            (entry, settings)
            for entry, settings in pending.values()
            if not (_targets(settings) & (pending.keys() - {entry.name}))
        ]
        if not ready:
            cycle = ", ".join(repr(name) for name in pending)
            raise InvalidRequest(f"[[index]] entries {cycle} inherit from each other in a cycle.")
        for entry, settings in ready:
            try:
                await _declare(indexes, metadata, entry, settings)
            except InvalidRequest as exc:
                raise InvalidRequest(f"{entry.where}: {exc.message}") from exc
            del pending[entry.name]


def _targets(settings: Mapping[str, Any]) -> set[str]:
    """The indexes an entry reads from, which must exist before it."""
    routes = settings.get("routes", ())
    return {*settings.get("bases", ()), *(route.base for route in routes)}


async def _declare(
    indexes: IndexService,
    metadata: IndexStore,
    entry: DeclaredIndex,
    settings: Mapping[str, Any],
) -> None:
    configs = await indexes.configs()
    current = configs.get(entry.name)
    if current is None:
        created = new_index(entry.name, entry.values)
        check_index_config(created, configs)
        with contextlib.suppress(Conflict):  # another process of this start created it
            await metadata.create_index(created, _ACTOR)
            return
        current = (await indexes.configs())[entry.name]
    if current.kind == "hosted" and settings.get("upstreams"):
        raise InvalidRequest(
            f"Index {entry.name!r} is a hosted index; an upstream makes a proxy index. "
            "Give the proxy index another name."
        )
    if current.kind == "proxy" and "upstreams" in settings and not settings["upstreams"]:
        raise InvalidRequest(f"Index {entry.name!r} is a proxy index: it needs its upstream.")
    wanted = replace(current, **settings)
    if wanted != current:
        check_index_config(wanted, configs)
        await metadata.update_index(wanted, _ACTOR)
