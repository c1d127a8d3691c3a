"""``/-/api/users/…``, ``/-/api/groups/…``, ``/-/api/whoami`` and ``/-/api/log``."""

from __future__ import annotations

from typing import Any

from ministry.core.documents import (
    change_document,
    group_document,
    token_document,
    user_document,
)
from ministry.core.durations import parse_expiry
from ministry.errors import InvalidRequest
from ministry.web.api.base import ApiHandler

__all__ = [
    "GroupHandler",
    "GroupsHandler",
    "LogHandler",
    "TokenHandler",
    "TokensHandler",
    "UserHandler",
    "UsersHandler",
    "WhoamiHandler",
]


def _text(body: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"Give {key!r} as text.")
    return value


def _flag(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise InvalidRequest(f"Give {key!r} as true or false.")
    return value


def _names(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"Give {key!r} as a list of names.")
    return value


class WhoamiHandler(ApiHandler):
    """Who the credentials of this request belong to."""

    async def get(self) -> None:
        """The identity, or 401."""
        identity = await self.require_identity()
        self.send(
            {
                "user": identity.user,
                "admin": identity.is_admin,
                "groups": sorted(identity.groups),
                "token": identity.token_id,
            }
        )


class UsersHandler(ApiHandler):
    """List users and create them (server administrators)."""

    async def get(self) -> None:
        """Every user."""
        users = await self.services.accounts.list_users(await self.require_identity())
        self.send({"users": [user_document(u) for u in users]})

    async def post(self) -> None:
        """Create a user from ``{"name", "password", "admin"}``."""
        identity = await self.require_identity()
        body = self.body()
        user = await self.services.accounts.create_user(
            identity,
            _text(body, "name") or "",
            _text(body, "password") or "",
            admin=bool(_flag(body, "admin")),
        )
        self.send(user_document(user), status=201)


class UserHandler(ApiHandler):
    """One user: see them, change their password, role or disabled flag, remove them."""

    async def get(self, user: str) -> None:
        """The user (themselves or an administrator)."""
        identity = await self.require_identity()
        self.send(user_document(await self.services.accounts.get_user(identity, user)))

    async def patch(self, user: str) -> None:
        """Change ``password``, ``admin`` or ``disabled``."""
        identity = await self.require_identity()
        body = self.body()
        changed = await self.services.accounts.update_user(
            identity,
            user,
            password=_text(body, "password", required=False),
            admin=_flag(body, "admin"),
            disabled=_flag(body, "disabled"),
        )
        self.send(user_document(changed))

    async def delete(self, user: str) -> None:
        """Remove the user with their tokens and group memberships (server administrators;
        409 while a right still names them)."""
        await self.services.accounts.remove_user(await self.require_identity(), user)
        self.done()


class TokensHandler(ApiHandler):
    """A user's tokens: list them, create one (the secret is in the answer, once)."""

    async def get(self, user: str) -> None:
        """The tokens, without secrets."""
        identity = await self.require_identity()
        tokens = await self.services.accounts.list_tokens(identity, user)
        self.send({"tokens": [token_document(t) for t in tokens]})

    async def post(self, user: str) -> None:
        """Create a token from ``{"description", "index", "projects", "expires"}``."""
        identity = await self.require_identity()
        body = self.body()
        index_name = _text(body, "index", required=False)
        expires = _text(body, "expires", required=False)
        token, secret = await self.services.accounts.create_token(
            identity,
            user,
            description=_text(body, "description", required=False) or "",
            expires=parse_expiry(expires) if expires else None,
            index=index_name,
            projects=_names(body, "projects"),
        )
        self.send({**token_document(token), "token": secret}, status=201)


class TokenHandler(ApiHandler):
    """``DELETE`` revokes a token."""

    async def delete(self, user: str, token_id: str) -> None:
        """Revoke the token."""
        identity = await self.require_identity()
        await self.services.accounts.revoke_token(identity, user, token_id)
        self.done()


class GroupsHandler(ApiHandler):
    """List groups and create them (server administrators)."""

    async def get(self) -> None:
        """Every group with its members."""
        groups = await self.services.accounts.list_groups(await self.require_identity())
        self.send({"groups": [group_document(g) for g in groups]})

    async def post(self) -> None:
        """Create a group from ``{"name"}``."""
        identity = await self.require_identity()
        name = _text(self.body(), "name") or ""
        await self.services.accounts.create_group(identity, name)
        self.send({"name": name, "members": []}, status=201)


class GroupHandler(ApiHandler):
    """One group: change its members, delete it."""

    async def patch(self, group: str) -> None:
        """Apply ``{"add": [...], "remove": [...]}``."""
        identity = await self.require_identity()
        body = self.body()
        accounts = self.services.accounts
        await accounts.change_members(identity, group, _names(body, "add"), _names(body, "remove"))
        groups = {g.name: g for g in await accounts.list_groups(identity)}
        self.send({"name": group, "members": list(groups[group].members)})

    async def delete(self, group: str) -> None:
        """Delete the group."""
        await self.services.accounts.delete_group(await self.require_identity(), group)
        self.done()


class LogHandler(ApiHandler):
    """The audit log (``?since=SERIAL&limit=N&index=NAME&order=newest``), for administrators."""

    async def get(self) -> None:
        """Changes after ``since``, oldest first; with ``order=newest`` the newest
        ``limit`` of them, newest first (what ``ministry log`` shows)."""
        identity = await self.require_identity()
        try:
            since = int(self.get_query_argument("since", "0"))
            limit = int(self.get_query_argument("limit", "100"))
        except ValueError as exc:
            raise InvalidRequest("'since' and 'limit' must be whole numbers.") from exc
        order = self.get_query_argument("order", "oldest")
        if order not in ("oldest", "newest"):
            raise InvalidRequest("'order' is 'oldest' or 'newest'.")
        index = self.get_query_argument("index", None)
        read = self.services.audit.latest if order == "newest" else self.services.audit.changes
        changes = await read(identity, since=since, limit=limit, index=index)
        if not changes and index is not None:
            # A deleted index keeps its changes; a name that never was one is a mistake.
            await self.services.indexes.get(index)
        self.send({"changes": [change_document(c) for c in changes]})
