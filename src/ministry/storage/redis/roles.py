"""Owners and maintainers of projects in Redis, and the check an upload passes in its transaction.

Per index, one hash from project name to its roles (``{principal: role}`` as JSON).
Layout 1 had no roles; ``convert_layout`` gives each project the owner it would
have had (see the SQLite migration that does the same).
"""

from __future__ import annotations

import json
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from ministry.core.models import (
    Actor,
    AddFileOutcome,
    AddFileResult,
    Change,
    DistFile,
    ProjectRole,
    Publisher,
)
from ministry.core.records import loads
from ministry.errors import Conflict, NotFound
from ministry.storage.redis.base import LAYOUT, RedisDatabase, Transaction, text

__all__ = ["RolesMixin"]


def _decode(index: str, project: str, value: Any) -> list[ProjectRole]:
    held: dict[str, Any] = json.loads(value) if value else {}
    roles = [ProjectRole(index, canonicalize_name(project), p, r) for p, r in held.items()]
    return sorted(roles, key=lambda r: (r.role != "owner", r.principal))


def _encode(roles: list[ProjectRole]) -> str:
    return json.dumps({r.principal: r.role for r in roles}, sort_keys=True)


def _check_owners_left(roles: list[ProjectRole], principal: str) -> None:
    owners = {r.principal for r in roles if r.role == "owner"}
    if owners == {principal}:
        raise Conflict(
            f"{principal!r} is the last owner of project {roles[0].project!r}: "
            "add another owner first."
        )


class RolesMixin(RedisDatabase):
    """The project roles of ``PackageStore``: owners and maintainers."""

    def _roles_key(self, index: str) -> str:
        return self.key("roles", index)

    async def list_roles(self, index: str, project: NormalizedName) -> list[ProjectRole]:
        """The owners, then the maintainers, of a project."""
        value = await self.read(self.redis.hget(self._roles_key(index), project))
        return _decode(index, project, value)

    async def _roles_in(self, tx: Transaction, index: str, project: str) -> list[ProjectRole]:
        return _decode(index, project, await tx.pipe.hget(self._roles_key(index), project))

    def _store_roles(
        self, tx: Transaction, index: str, project: str, roles: list[ProjectRole]
    ) -> None:
        key = self._roles_key(index)
        if roles:
            value = _encode(roles)
            tx.write(lambda p: p.hset(key, project, value))
        else:
            tx.write(lambda p: p.hdel(key, project))

    def judge_publisher(
        self, file: DistFile, publisher: Publisher, *, exists: bool, roles: Any
    ) -> AddFileResult | ProjectRole | None:
        """A refusal for a publisher without a role in an existing project; for a new
        project, the owner to record once the file is in (``record_owner``).

        ``exists`` and ``roles`` (the stored value) are read by the caller in the
        transaction, the project before its roles: should the reads not be one snapshot,
        a refusal commits nothing, so nothing would notice a project created between
        them; read in this order, a project that exists shows the owner committed with it.
        """
        held = _decode(file.index, file.project, roles)
        if exists or held:
            allowed = publisher.principals
            if allowed is not None and not allowed & {r.principal for r in held}:
                return AddFileResult(AddFileOutcome.NOT_PERMITTED, file)
            return None
        if publisher.owner is None:
            return None
        return ProjectRole(file.index, file.project, publisher.owner, "owner")

    def record_owner(self, tx: Transaction, owner: ProjectRole, actor: Actor) -> None:
        """The first owner of a project, in the transaction that adds its first file."""
        tx.log(actor, "add-owner", owner.index, project=owner.project, detail=owner.principal)
        self._store_roles(tx, owner.index, owner.project, [owner])

    async def add_role(self, role: ProjectRole, actor: Actor) -> bool:
        """Give a principal a role, replacing the one it had; False if it had this one."""

        async def work(tx: Transaction) -> bool:
            roles = await self._roles_in(tx, role.index, role.project)
            held = {r.principal: r.role for r in roles}
            if held.get(role.principal) == role.role:
                return False
            if held.get(role.principal) == "owner":
                _check_owners_left(roles, role.principal)
            tx.log(
                actor, f"add-{role.role}", role.index, project=role.project,
                detail=role.principal,
            )  # fmt: skip
            kept = [r for r in roles if r.principal != role.principal]
            self._store_roles(tx, role.index, role.project, [*kept, role])
            return True

        return await self.change(work)

    async def remove_role(self, role: ProjectRole, actor: Actor) -> None:
        """Take a role away, unless it is the last owner's."""

        async def work(tx: Transaction) -> None:
            roles = await self._roles_in(tx, role.index, role.project)
            if role not in roles:
                raise NotFound(f"{role.principal!r} is no {role.role} of project {role.project!r}.")
            if role.role == "owner":
                _check_owners_left(roles, role.principal)
            tx.log(
                actor, f"remove-{role.role}", role.index, project=role.project,
                detail=role.principal,
            )  # fmt: skip
            self._store_roles(tx, role.index, role.project, [r for r in roles if r != role])

        await self.change(work)

    async def convert_layout(self) -> None:
        """Layout 1 to 2: each project is owned by the user who uploaded its first file.

        Under WATCH of the layout key and the serial, so that of several nodes starting
        at once one converts and the others find it done, and no change slips between.
        """
        layout, serial = self.key("layout"), self.key("serial")
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(layout, serial)
                    if int(await pipe.get(layout) or LAYOUT) >= LAYOUT:
                        return
                    owners = await self._first_uploaders(pipe)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    for (index, project), owner in owners.items():
                        roles = [ProjectRole(index, canonicalize_name(project), owner, "owner")]
                        pipe.hset(self._roles_key(index), project, _encode(roles))
                    pipe.set(layout, LAYOUT)
                    await pipe.execute()
                    return
                except WatchError:
                    continue

    async def _first_uploaders(self, pipe: Pipeline) -> dict[tuple[str, str], str]:
        """The owner of every project: its first uploader, when that is a user."""
        users = {text(u) for u in await pipe.hkeys(self.key("users"))}
        first: dict[tuple[str, str], str] = {}
        for member in await pipe.zrange(self.key("changes"), 0, -1):
            change = loads(Change, text(member))  # type: ignore[arg-type]
            if change.action == "add-file" and change.project:
                first.setdefault((change.index, change.project), change.actor)
        owners: dict[tuple[str, str], str] = {}
        for index in [text(i) for i in await pipe.hkeys(self.key("indexes"))]:
            for project in [text(p) for p in await pipe.hkeys(self.key("projects", index))]:
                uploader = first.get((index, project))
                if uploader is None:
                    uploader = await self._oldest_uploader(pipe, index, project)
                if uploader in users:
                    owners[index, project] = uploader
        return owners

    async def _oldest_uploader(self, pipe: Pipeline, index: str, project: str) -> str | None:
        names = await pipe.smembers(self.key("project-files", index, project))
        values = [await pipe.hget(self.key("files", index), n) for n in names]
        files = [loads(DistFile, v) for v in values if v]
        return min(files, key=lambda f: f.upload_time).uploader if files else None
