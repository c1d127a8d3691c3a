"""Users, groups and tokens in Redis.

A token's last use lives in a hash of its own: recording it is not a change, and
must never write back a stale copy of the token over a revocation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from redis.asyncio.client import Pipeline

from ministry.core.models import Actor, Group, Token, User
from ministry.core.records import dumps, loads
from ministry.errors import Conflict, NotFound
from ministry.storage.redis.base import RedisDatabase, Transaction, text

__all__ = ["AccountsMixin"]


class AccountsMixin(RedisDatabase):
    """The ``AccountStore`` role of ``MetadataStore``."""

    async def add_user(self, user: User, actor: Actor) -> None:
        """Create a user; ``Conflict`` if the name is taken."""

        async def work(tx: Transaction) -> None:
            if await tx.pipe.hexists(self.key("users"), user.name):
                raise Conflict(f"User {user.name!r} exists already.")
            tx.log(actor, "add-user", "", detail=user.name)
            tx.write(lambda p: p.hset(self.key("users"), user.name, dumps(user)))

        await self.change(work)

    async def update_user(self, user: User, actor: Actor) -> None:
        """Store a user's new password hash, admin role or disabled flag."""

        async def work(tx: Transaction) -> None:
            if not await tx.pipe.hexists(self.key("users"), user.name):
                raise NotFound(f"No user {user.name!r}.")
            flags = [user.name] + ["admin"] * user.is_admin + ["disabled"] * user.disabled
            tx.log(actor, "update-user", "", detail=" ".join(flags))
            tx.write(lambda p: p.hset(self.key("users"), user.name, dumps(user)))

        await self.change(work)

    async def remove_user(self, name: str, actor: Actor) -> None:
        """Delete a user with their tokens and group memberships."""

        async def work(tx: Transaction) -> None:
            if not await tx.pipe.hexists(self.key("users"), name):
                raise NotFound(f"No user {name!r}.")
            token_ids = list(await tx.pipe.smembers(self.key("user-tokens", name)))
            groups = [loads(Group, v) for v in await tx.pipe.hvals(self.key("groups"))]
            tx.log(actor, "remove-user", "", detail=name)
            left = [
                replace(group, members=tuple(m for m in group.members if m != name))
                for group in groups
                if name in group.members
            ]
            for group in left:
                tx.write(_set_field(self.key("groups"), group.name, dumps(group)))
            if token_ids:
                tx.write(lambda p: p.hdel(self.key("tokens"), *token_ids))
                tx.write(lambda p: p.hdel(self.key("token-used"), *token_ids))
            tx.write(lambda p: p.delete(self.key("user-tokens", name)))
            tx.write(lambda p: p.hdel(self.key("users"), name))

        await self.change(work)

    async def get_user(self, name: str) -> User | None:
        """One user."""
        value = await self.read(self.redis.hget(self.key("users"), name))
        return loads(User, value) if value else None

    async def list_users(self) -> list[User]:
        """Every user, by name."""
        values = await self.read(self.redis.hvals(self.key("users")))
        return sorted((loads(User, v) for v in values), key=lambda u: u.name)

    # -- groups -------------------------------------------------------------------------

    async def list_groups(self) -> list[Group]:
        """Every group with its members."""
        values = await self.read(self.redis.hvals(self.key("groups")))
        return sorted((loads(Group, v) for v in values), key=lambda g: g.name)

    async def create_group(self, name: str, actor: Actor) -> None:
        """Create an empty group; ``Conflict`` if it exists."""

        async def work(tx: Transaction) -> None:
            if await tx.pipe.hexists(self.key("groups"), name):
                raise Conflict(f"Group {name!r} exists already.")
            tx.log(actor, "add-group", "", detail=name)
            tx.write(lambda p: p.hset(self.key("groups"), name, dumps(Group(name))))

        await self.change(work)

    async def delete_group(self, name: str, actor: Actor) -> None:
        """Delete a group."""

        async def work(tx: Transaction) -> None:
            if not await tx.pipe.hexists(self.key("groups"), name):
                raise NotFound(f"No group {name!r}.")
            tx.log(actor, "delete-group", "", detail=name)
            tx.write(lambda p: p.hdel(self.key("groups"), name))

        await self.change(work)

    async def set_group_members(
        self, name: str, add: Sequence[str], remove: Sequence[str], actor: Actor
    ) -> None:
        """Add and remove members of a group."""

        async def work(tx: Transaction) -> None:
            value = await tx.pipe.hget(self.key("groups"), name)
            if value is None:
                raise NotFound(f"No group {name!r}.")
            members = set(loads(Group, value).members)
            for user in add:
                if not await tx.pipe.hexists(self.key("users"), user):
                    raise NotFound(f"No user {user!r}.")
                members.add(user)
                tx.log(actor, "add-member", "", detail=f"{name} {user}")
            for user in remove:
                members.discard(user)
                tx.log(actor, "remove-member", "", detail=f"{name} {user}")
            group = Group(name, tuple(sorted(members)))
            tx.write(lambda p: p.hset(self.key("groups"), name, dumps(group)))

        await self.change(work)

    # -- tokens -------------------------------------------------------------------------

    async def add_token(self, token: Token, actor: Actor) -> None:
        """Store a token (its secret already hashed)."""

        async def work(tx: Transaction) -> None:
            if not token.is_session:  # a login is no change (the server log has it)
                tx.log(
                    actor, "add-token", token.index or "", detail=f"{token.user} {token.token_id}"
                )
            stored = replace(token, last_used=None)
            tx.write(lambda p: p.hset(self.key("tokens"), token.token_id, dumps(stored)))
            tx.write(lambda p: p.sadd(self.key("user-tokens", token.user), token.token_id))

        await self.change(work)

    async def _with_last_use(self, tokens: list[Token]) -> list[Token]:
        if not tokens:
            return []
        ids = [t.token_id for t in tokens]
        used = await self.read(self.redis.hmget(self.key("token-used"), ids))
        return [
            replace(t, last_used=datetime.fromisoformat(text(u))) if u else t
            for t, u in zip(tokens, used, strict=True)
        ]

    async def get_token(self, token_id: str) -> Token | None:
        """One token, with its last use read in the same round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(self.key("tokens"), token_id)
            pipe.hget(self.key("token-used"), token_id)
            value, used = await self.read(pipe.execute())
        if not value:
            return None
        token = loads(Token, value)
        return replace(token, last_used=datetime.fromisoformat(text(used))) if used else token

    async def list_tokens(self, user: str) -> list[Token]:
        """A user's tokens, oldest first."""
        ids = sorted(await self.read(self.redis.smembers(self.key("user-tokens", user))))
        values = await self.read(self.redis.hmget(self.key("tokens"), ids)) if ids else []
        tokens = sorted((loads(Token, v) for v in values if v), key=lambda t: t.created)
        return await self._with_last_use(tokens)

    async def touch_token(self, token_id: str, when: datetime) -> None:
        """Record a token's last use."""
        await self.read(self.redis.hset(self.key("token-used"), token_id, when.isoformat()))

    async def revoke_token(self, token_id: str, actor: Actor) -> None:
        """Revoke a token for good."""

        async def work(tx: Transaction) -> None:
            value = await tx.pipe.hget(self.key("tokens"), token_id)
            if value is None:
                raise NotFound(f"No token {token_id!r}.")
            token = replace(loads(Token, value), revoked=True)
            if not token.is_session:
                tx.log(actor, "revoke-token", "", detail=f"{token.user} {token_id}")
            tx.write(lambda p: p.hset(self.key("tokens"), token_id, dumps(token)))

        await self.change(work)


def _set_field(key: str, name: str, value: str) -> Callable[[Pipeline], Any]:
    """A write of one hash field, its arguments bound now (not when the loop has ended)."""
    return lambda p: p.hset(key, name, value)
