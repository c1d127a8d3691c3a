"""Users, groups and tokens."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime

from ministry.core.models import SESSION_PREFIX, Actor, Group, Token, User
from ministry.errors import Conflict, NotFound
from ministry.storage.sqlite.database import Database, now
from ministry.storage.sqlite.rows import token_of, user_of

__all__ = ["AccountsMixin"]


class AccountsMixin(Database):
    """The ``AccountStore`` role of ``MetadataStore``."""

    async def add_user(self, user: User, actor: Actor) -> None:
        """Create a user; ``Conflict`` if the name is taken."""

        def add(connection: sqlite3.Connection) -> None:
            with self._write(connection) as c:
                if c.execute("SELECT 1 FROM users WHERE name = ?", (user.name,)).fetchone():
                    raise Conflict(f"User {user.name!r} exists already.")
                self._log(c, actor, "add-user", "", detail=user.name)
                c.execute(
                    "INSERT INTO users (name, password_hash, created, is_admin, disabled)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (user.name, user.password_hash, user.created.isoformat(),
                     int(user.is_admin), int(user.disabled)),
                )  # fmt: skip

        await self._run(add)

    async def update_user(self, user: User, actor: Actor) -> None:
        """Store a user's new password hash, admin role or disabled flag."""

        def update(connection: sqlite3.Connection) -> None:
            with self._write(connection) as c:
                cursor = c.execute(
                    "UPDATE users SET password_hash = ?, is_admin = ?, disabled = ? WHERE name = ?",
                    (user.password_hash, int(user.is_admin), int(user.disabled), user.name),
                )
                if cursor.rowcount == 0:
                    raise NotFound(f"No user {user.name!r}.")
                self._log(c, actor, "update-user", "", detail=_user_detail(user))

        await self._run(update)

    async def remove_user(self, name: str, actor: Actor) -> None:
        """Delete a user with their tokens and group memberships."""

        def remove(connection: sqlite3.Connection) -> None:
            with self._write(connection) as c:
                if not c.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                    raise NotFound(f"No user {name!r}.")
                self._log(c, actor, "remove-user", "", detail=name)
                c.execute("DELETE FROM group_members WHERE user = ?", (name,))
                c.execute("DELETE FROM tokens WHERE user = ?", (name,))
                c.execute("DELETE FROM users WHERE name = ?", (name,))

        await self._run(remove)

    async def get_user(self, name: str) -> User | None:
        """One user."""
        row = await self._lookup(
            lambda c: c.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        )
        return user_of(row) if row else None

    async def list_users(self) -> list[User]:
        """Every user, by name."""
        rows = await self._run(lambda c: c.execute("SELECT * FROM users ORDER BY name").fetchall())
        return [user_of(row) for row in rows]

    # -- groups -------------------------------------------------------------------------

    async def list_groups(self) -> list[Group]:
        """Every group with its members."""

        def read(c: sqlite3.Connection) -> list[Group]:
            members: dict[str, list[str]] = {
                row["name"]: [] for row in c.execute("SELECT name FROM groups ORDER BY name")
            }
            for row in c.execute("SELECT group_name, user FROM group_members ORDER BY user"):
                members[row["group_name"]].append(row["user"])
            return [Group(name, tuple(users)) for name, users in members.items()]

        return await self._lookup(read)

    async def create_group(self, name: str, actor: Actor) -> None:
        """Create an empty group; ``Conflict`` if it exists."""

        def create(connection: sqlite3.Connection) -> None:
            with self._write(connection) as c:
                if c.execute("SELECT 1 FROM groups WHERE name = ?", (name,)).fetchone():
                    raise Conflict(f"Group {name!r} exists already.")
                self._log(c, actor, "add-group", "", detail=name)
                c.execute("INSERT INTO groups VALUES (?, ?)", (name, now().isoformat()))

        await self._run(create)

    async def delete_group(self, name: str, actor: Actor) -> None:
        """Delete a group and its memberships."""

        def delete(connection: sqlite3.Connection) -> None:
            with self._write(connection) as c:
                if c.execute("DELETE FROM groups WHERE name = ?", (name,)).rowcount == 0:
                    raise NotFound(f"No group {name!r}.")
                self._log(c, actor, "delete-group", "", detail=name)

        await self._run(delete)

    async def set_group_members(
        self, name: str, add: Sequence[str], remove: Sequence[str], actor: Actor
    ) -> None:
        """Add and remove members of a group."""

        def change(connection: sqlite3.Connection) -> None:
            with self._write(connection) as c:
                if not c.execute("SELECT 1 FROM groups WHERE name = ?", (name,)).fetchone():
                    raise NotFound(f"No group {name!r}.")
                for user in add:
                    if not c.execute("SELECT 1 FROM users WHERE name = ?", (user,)).fetchone():
                        raise NotFound(f"No user {user!r}.")
                    c.execute("INSERT OR IGNORE INTO group_members VALUES (?, ?)", (name, user))
                    self._log(c, actor, "add-member", "", detail=f"{name} {user}")
                for user in remove:
                    c.execute(
                        "DELETE FROM group_members WHERE group_name = ? AND user = ?", (name, user)
                    )
                    self._log(c, actor, "remove-member", "", detail=f"{name} {user}")

        await self._run(change)

    # -- tokens -------------------------------------------------------------------------

    async def add_token(self, token: Token, actor: Actor) -> None:
        """Store a token (its secret already hashed)."""

        def add(connection: sqlite3.Connection) -> None:
            with self._write(connection) as c:
                if not token.is_session:  # a login is no change (the server log has it)
                    self._log(
                        c,
                        actor,
                        "add-token",
                        token.index or "",
                        detail=f"{token.user} {token.token_id}",
                    )
                c.execute(
                    "INSERT INTO tokens (token_id, user, secret_hash, created, description,"
                    " expires, last_used, revoked, index_name, projects)"
                    " VALUES (?, ?, ?, ?, ?, ?, NULL, 0, ?, ?)",
                    (
                        token.token_id,
                        token.user,
                        token.secret_hash,
                        token.created.isoformat(),
                        token.description,
                        token.expires.isoformat() if token.expires else None,
                        token.index,
                        json.dumps(list(token.projects)),
                    ),
                )

        await self._run(add)

    async def get_token(self, token_id: str) -> Token | None:
        """One token."""
        row = await self._lookup(
            lambda c: c.execute("SELECT * FROM tokens WHERE token_id = ?", (token_id,)).fetchone()
        )
        return token_of(row) if row else None

    async def list_tokens(self, user: str) -> list[Token]:
        """A user's tokens, oldest first."""
        rows = await self._run(
            lambda c: c.execute(
                "SELECT * FROM tokens WHERE user = ? ORDER BY created", (user,)
            ).fetchall()
        )
        return [token_of(row) for row in rows]

    async def touch_token(self, token_id: str, when: datetime) -> None:
        """Record a token's last use."""
        await self._run(
            lambda c: c.execute(
                "UPDATE tokens SET last_used = ? WHERE token_id = ?", (when.isoformat(), token_id)
            )
        )

    async def revoke_token(self, token_id: str, actor: Actor) -> None:
        """Revoke a token for good."""

        def revoke(connection: sqlite3.Connection) -> None:
            with self._write(connection) as c:
                row = c.execute("SELECT user FROM tokens WHERE token_id = ?", (token_id,))
                found = row.fetchone()
                if found is None:
                    raise NotFound(f"No token {token_id!r}.")
                c.execute("UPDATE tokens SET revoked = 1 WHERE token_id = ?", (token_id,))
                if not token_id.startswith(SESSION_PREFIX):
                    self._log(c, actor, "revoke-token", "", detail=f"{found['user']} {token_id}")

        await self._run(revoke)


def _user_detail(user: User) -> str:
    flags = (
        [user.name] + (["admin"] if user.is_admin else []) + (["disabled"] if user.disabled else [])
    )
    return " ".join(flags)
