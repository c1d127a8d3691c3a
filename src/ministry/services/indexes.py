"""Indexes: their settings, who may read them, and what they inherit.

Settings are read once per change of the serial and kept, so a request costs a
look at the serial, not a query of every index. While the metadata store cannot
be reached, the settings and serial last read stand in, so that pages already
rendered are still served; every write fails on its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ministry.core.index_rules import check_index_config
from ministry.core.inheritance import resolution_order
from ministry.core.models import DEFAULT_INDEX, SERVER, IndexConfig, Upstream
from ministry.core.permissions import (
    EVERYONE,
    Identity,
    check_admin,
    check_manage_index,
    check_read,
    check_upload_index,
    may_read,
    may_see,
    seen_by,
)
from ministry.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    StorageUnavailable,
)
from ministry.storage.protocols import AccountStore, ChangeLog, IndexStore, PackageStore

__all__ = ["UPSTREAM_INDEX", "IndexService", "IndexServiceStore", "ReadAccess"]

#: The proxy index that ``ministry serve --upstream`` creates as a base of ``main``.
UPSTREAM_INDEX = "upstream"

#: Settings an update may change (the name and kind never change).
_MUTABLE = frozenset(
    {
        "bases", "private", "readers", "uploaders", "admins", "allow_delete",
        "allow_overwrite", "allow_inherit", "routes", "description", "upstreams", "page_ttl",
        "min_age", "min_age_exempt", "max_cache_size",
    }
)  # fmt: skip


#: Readers whose access is remembered per serial (anonymous readers are one entry).
_ACCESS_CACHE_SIZE = 4096


class IndexServiceStore(ChangeLog, IndexStore, PackageStore, AccountStore, Protocol):
    """The roles the index service uses: indexes, the serial its cache follows, their
    projects, and the groups their permissions name."""


@dataclass(frozen=True)
class ReadAccess:
    """What one reader sees through one index: the index, its search order, what is visible."""

    index: IndexConfig
    order: tuple[str, ...]
    visible: frozenset[str]
    configs: Mapping[str, IndexConfig]
    #: The store's serial when access was decided: what the request's caches check
    #: against, so that one request looks at the serial once.
    serial: int = 0

    @property
    def shown(self) -> dict[str, IndexConfig]:
        """The indexes read through this one: all that inheritance may look at for this reader."""
        return {name: self.configs[name] for name in self.order}

    @property
    def private(self) -> bool:
        """Whether what this reader sees includes a private index (no shared caching then)."""
        return any(self.configs[name].private for name in self.visible)


class IndexService:
    """Reads and changes index settings, and decides read access."""

    def __init__(self, metadata: IndexServiceStore) -> None:
        self._metadata = metadata
        self._cache: tuple[int, dict[str, IndexConfig]] = (-1, {})
        # Read access decided for (index, reader) as of the cached serial.
        self._access: dict[tuple[str, Identity | None], ReadAccess] = {}
        self._watch: Callable[[int, str], Awaitable[int]] | None = None

    def watch(self, observe: Callable[[int, str], Awaitable[int]]) -> None:
        """Hand every serial read, with the store's generation, to ``observe``
        (``RollbackWatch.observe``), which returns the serial to go on with: the one place
        each request reads it."""
        self._watch = observe

    def clear(self) -> None:
        """Forget the settings and read access kept (after the store went back)."""
        self._cache, self._access = (-1, {}), {}

    async def configs(self) -> dict[str, IndexConfig]:
        """Every index's settings, current as of the newest serial."""
        return (await self._current())[1]

    async def _current(self) -> tuple[int, dict[str, IndexConfig]]:
        try:
            if self._watch is None:
                serial = await self._metadata.last_serial()
            else:
                serial = await self._watch(*await self._metadata.position())
        except StorageUnavailable:
            if self._cache[0] < 0:
                raise
            return self._cache  # what was last read: the caches built on it still stand
        if self._cache[0] != serial:
            configs = {c.name: c for c in await self._metadata.list_indexes()}
            self._cache, self._access = (serial, configs), {}
        return serial, self._cache[1]

    async def get(self, name: str) -> IndexConfig:
        """One index; ``NotFound`` if there is none of that name."""
        config = (await self.configs()).get(name)
        if config is None:
            raise NotFound(f"No index {name!r}.")
        return config

    async def ensure_default(self) -> None:
        """Create the default index on first start: public, and every user may upload."""
        if DEFAULT_INDEX not in await self.configs():
            config = IndexConfig(DEFAULT_INDEX, uploaders=(EVERYONE,))
            with contextlib.suppress(Conflict):  # another process created it first
                await self._metadata.create_index(config, SERVER)

    async def ensure_upstream(
        self, upstreams: tuple[Upstream, ...], *, page_ttl: int, min_age: int
    ) -> None:
        """Make ``upstream``, a proxy of ``upstreams``, exist and be a base of the default
        index."""
        actor = SERVER
        configs = await self.configs()
        current = configs.get(UPSTREAM_INDEX)
        wanted = IndexConfig(
            UPSTREAM_INDEX,
            kind="proxy",
            upstreams=upstreams,
            page_ttl=page_ttl,
            min_age=min_age,
            description="The upstream of 'ministry serve --upstream'.",
        )
        if current is None:
            check_index_config(wanted, configs)
            await self._metadata.create_index(wanted, actor)
        elif current.kind != "proxy":
            raise InvalidRequest(
                f"--upstream needs the index name {UPSTREAM_INDEX!r}, which a hosted index has."
            )
        elif (current.upstreams, current.page_ttl, current.min_age) != (
            upstreams,
            page_ttl,
            min_age,
        ):
            changed = replace(current, upstreams=upstreams, page_ttl=page_ttl, min_age=min_age)
            check_index_config(changed, configs)
            await self._metadata.update_index(changed, actor)
        main = (await self.configs())[DEFAULT_INDEX]
        if UPSTREAM_INDEX not in main.bases:
            bases = (*main.bases, UPSTREAM_INDEX)
            await self._metadata.update_index(replace(main, bases=bases), actor)

    async def read_access(self, name: str, identity: Identity | None) -> ReadAccess:
        """Read access to an index for this reader, or the one answer for a hidden index.

        The bases this reader may not read are left out as if they did not exist,
        with the bases reached only through them: what they hold neither shows
        nor hides anything (docs/security.md, "Private indexes").
        """
        serial, configs = await self._current()
        known = self._access.get((name, identity))
        if known is not None and known.serial == serial:
            return known
        index = check_read(identity, name, configs.get(name))
        readable = {n: c for n, c in configs.items() if may_see(identity, c)}
        order = tuple(resolution_order(name, readable))
        seen = seen_by(identity, index, configs)
        access = ReadAccess(seen, order, frozenset(order), configs, serial)
        if len(self._access) < _ACCESS_CACHE_SIZE and self._cache[0] == serial:
            self._access[(name, identity)] = access
        return access

    async def readable(self, name: str, identity: Identity | None) -> IndexConfig:
        """An index this identity may read; else what a missing index answers (401 or 404)."""
        return check_read(identity, name, (await self.configs()).get(name))

    async def shows(self, name: str, identity: Identity | None) -> bool:
        """Whether index ``name`` exists for this reader: a private index they may not read
        does not (docs/indexes.md, "An address that could name an index or a project")."""
        config = (await self.configs()).get(name)
        return config is not None and may_read(identity, config)

    async def readable_names(self, identity: Identity | None, *, hosted: bool = False) -> list[str]:
        """The indexes this reader may read (only hosted ones with ``hosted``), the default
        index first, then by name."""
        configs = await self.configs()
        return sorted(
            (
                name
                for name, config in configs.items()
                if may_read(identity, config) and (config.kind == "hosted" or not hosted)
            ),
            key=lambda name: (name != DEFAULT_INDEX, name),
        )

    async def upload_targets(self, identity: Identity) -> list[str]:
        """The hosted indexes this identity may upload to, the default index first: what a
        token limited to one index is best made for."""
        targets = []
        for name in await self.readable_names(identity, hosted=True):
            try:
                check_upload_index(identity, (await self.configs())[name])
            except PermissionDenied:
                continue
            targets.append(name)
        return targets

    async def create(self, identity: Identity, config: IndexConfig) -> IndexConfig:
        """Create an index (server administrators)."""
        check_admin(identity, "create indexes")
        configs = await self.configs()
        if config.name in configs:
            raise Conflict(f"Index {config.name!r} exists already.")
        check_index_config(config, configs)
        await self._check_groups(_principals(config))
        await self._metadata.create_index(config, identity.actor)
        return config

    async def _check_groups(self, principals: set[str]) -> None:
        """Permissions go to groups that exist: a misspelt group would grant nothing, and
        a group of that name created later would be granted what no one decided."""
        named = {p[1:] for p in principals if p.startswith("@") and p != EVERYONE}
        if not named:
            return
        missing = sorted(named - {g.name for g in await self._metadata.list_groups()})
        if missing:
            raise InvalidRequest(
                f"No group {missing[0][:70]!r}: create it first (ministry group create "
                f"{missing[0][:70]}), or name users instead."
            )

    async def update(
        self, identity: Identity, name: str, changes: Mapping[str, Any]
    ) -> IndexConfig:
        """Change some settings of an index (its admins and server administrators; its
        upstream only the latter)."""
        current = await self.readable(name, identity)
        check_manage_index(identity, current)
        if "upstreams" in changes and changes["upstreams"] != current.upstreams:
            # The upstream's host is what the proxy may connect to, internal or not
            # (docs/security.md, "Upstream requests (SSRF)"): the server's decision.
            check_admin(identity, "change the upstream of an index")
        unknown = set(changes) - _MUTABLE
        if unknown:
            raise InvalidRequest(f"Unknown or fixed index settings: {', '.join(sorted(unknown))}.")
        configs = await self.configs()
        seen = seen_by(identity, current, configs)
        config = replace(current, **_keeping_hidden(current, seen, changes))
        check_index_config(config, _readable_bases(identity, config, configs, _targets(current)))
        check_index_config(config, configs)
        # Only groups given now: a group deleted since does not block other changes.
        await self._check_groups(_principals(config) - _principals(current))
        await self._metadata.update_index(config, identity.actor)
        return config

    async def delete(self, identity: Identity, name: str, *, force: bool = False) -> None:
        """Delete an index no other index inherits from; with ``force`` even if not empty."""
        check_admin(identity, "delete indexes")
        config = await self.get(name)
        if config.name == DEFAULT_INDEX:
            raise InvalidRequest(f"The default index {DEFAULT_INDEX!r} cannot be deleted.")
        for other in (await self.configs()).values():
            if name in _targets(other):
                raise InvalidRequest(
                    f"Index {other.name!r} inherits from {name!r}; change it first."
                )
        projects = await self._metadata.list_projects(name)
        if projects and not force:
            raise InvalidRequest(
                f"Index {name!r} holds {len(projects)} projects; delete it with force to lose them."
            )
        await self._metadata.delete_index(name, identity.actor)


def _keeping_hidden(
    current: IndexConfig, seen: IndexConfig, changes: Mapping[str, Any]
) -> dict[str, Any]:
    """Changes to bases or routes keep those the changer may not see, where they were.

    Settings are shown without the private bases their reader may not read, and
    may be sent back as shown: that must not drop what the sender never saw.
    """
    kept = dict(changes)
    for name in ("bases", "routes"):
        if name in kept:
            items = list(kept[name])
            shown = getattr(seen, name)
            for position, item in enumerate(getattr(current, name)):
                if item not in shown and item not in items:
                    items.insert(min(position, len(items)), item)
            kept[name] = tuple(items)
    return kept


def _targets(config: IndexConfig) -> set[str]:
    """Every index ``config`` inherits from: its bases and its routing rules' bases."""
    return set(config.bases) | {route.base for route in config.routes}


def _readable_bases(
    identity: Identity,
    config: IndexConfig,
    configs: Mapping[str, IndexConfig],
    kept: set[str],
) -> dict[str, IndexConfig]:
    """The indexes ``config`` may name as bases: a new base must be one ``identity`` may read.

    A private index nobody told you about is not found, exactly as a missing one
    (docs/security.md, "Private indexes"); bases that were there before stay.
    """
    return {
        n: c for n, c in configs.items() if n in kept or n == config.name or may_see(identity, c)
    }


def _principals(config: IndexConfig) -> set[str]:
    """The users and groups an index's permissions name."""
    return {*config.readers, *config.uploaders, *config.admins}
