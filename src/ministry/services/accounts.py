"""Users, groups and API tokens: creating, changing, listing and revoking them.

Every method takes the identity that asks, and checks it: server administrators
manage everything; a user manages their own password and tokens, with their
password (a token cannot mint more tokens).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from argon2 import PasswordHasher

from ministry.core.models import Group, Token, User
from ministry.core.permissions import Identity, check_admin, may_see
from ministry.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from ministry.services.auth import SESSION_PREFIX, TOKEN_USERNAME, format_token, hash_token
from ministry.storage.protocols import AccountStore, IndexStore, PackageStore, PublisherStore

__all__ = ["AccountService", "AccountServiceStore", "check_username"]

log = logging.getLogger(__name__)

_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_MIN_PASSWORD = 8


def check_username(name: str) -> str:
    """Refuse user and group names that could be confused with tokens, paths or groups."""
    if not _USERNAME.match(name) or name == TOKEN_USERNAME:
        raise InvalidRequest(
            f"Invalid name {name[:70]!r}: use 1 to 64 ASCII letters, digits, '.', '_' "
            "or '-', starting with a letter or digit."
        )
    return name


def _check_password(password: str) -> None:
    if len(password) < _MIN_PASSWORD:
        raise InvalidRequest(f"Passwords must have at least {_MIN_PASSWORD} characters.")


def _administers(user: User) -> bool:
    """Whether the user can act as a server administrator now."""
    return user.is_admin and not user.disabled


def _check_self_or_admin(identity: Identity, user: str, what: str) -> None:
    if identity.token_id is not None:
        raise PermissionDenied(f"API tokens only read and upload; {what} needs your password.")
    if identity.user != user and not identity.is_admin:
        raise PermissionDenied(f"Only {user!r} or a server administrator may {what}.")


class AccountServiceStore(AccountStore, IndexStore, PackageStore, PublisherStore, Protocol):
    """The roles the account service uses: accounts, the indexes a token may be limited
    to, and the rights that name a user (which a removal must not leave behind)."""


class AccountService:
    """Manages users, groups and tokens on behalf of an identity."""

    def __init__(self, metadata: AccountServiceStore, hasher: PasswordHasher) -> None:
        self._metadata = metadata
        self._hasher = hasher

    async def _user(self, name: str) -> User:
        user = await self._metadata.get_user(name)
        if user is None:
            raise NotFound(f"No user {name!r}.")
        return user

    # -- users --------------------------------------------------------------------------

    async def create_user(
        self, identity: Identity, name: str, password: str, *, admin: bool = False
    ) -> User:
        """Create a user with an Argon2id password hash."""
        check_admin(identity, "create users")
        check_username(name)
        _check_password(password)
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        user = User(name, password_hash, datetime.now(UTC), is_admin=admin)
        await self._metadata.add_user(user, identity.actor)
        return user

    async def update_user(
        self,
        identity: Identity,
        name: str,
        *,
        password: str | None = None,
        admin: bool | None = None,
        disabled: bool | None = None,
    ) -> User:
        """Change a user's password (self or admin), admin role or disabled flag (admin).

        The server keeps an enabled administrator: taking the right from the last one,
        or disabling them, is refused, and so is an administrator doing either to
        themselves (another administrator can), as for removing a user.
        """
        if admin is not None or disabled is not None:
            check_admin(identity, "change roles or disable users")
        else:
            _check_self_or_admin(identity, name, "change this password")
        before = await self._user(name)
        user = before
        if password is not None:
            _check_password(password)
            user = replace(user, password_hash=await asyncio.to_thread(self._hasher.hash, password))
        if admin is not None:
            user = replace(user, is_admin=admin)
        if disabled is not None:
            user = replace(user, disabled=disabled)
        if _administers(before) and not _administers(user):
            await self._check_demotion(identity, user)
        await self._metadata.update_user(user, identity.actor)
        return user

    async def _check_demotion(self, identity: Identity, user: User) -> None:
        """Refuse leaving the server without an enabled administrator, or an administrator
        locking themselves out (nobody would be left to undo a slip)."""
        users = await self._metadata.list_users()
        if not any(_administers(other) and other.name != user.name for other in users):
            change = "disabled" if user.disabled else "no longer an administrator"
            raise Conflict(
                f"{user.name!r} is the last enabled server administrator and cannot be made "
                f"{change}: make another user an administrator first."
            )
        if identity.user == user.name:
            what = "disable yourself" if user.disabled else "take away your own administrator right"
            raise InvalidRequest(f"You cannot {what}; another administrator can.")

    async def remove_user(self, identity: Identity, name: str) -> None:
        """Delete a user with their tokens, sessions and group memberships (server
        administrators; not themselves).

        Refused while an index's permissions, a project's roles or a trusted publisher
        still name the user: whoever later got the same name would get those rights
        (docs/security.md, "Credentials").
        """
        check_admin(identity, "remove users")
        if identity.user == name:
            raise InvalidRequest("You cannot remove yourself; another administrator can.")
        await self._user(name)
        grants = await self._grants(name)
        if grants:
            more = f" and {len(grants) - 3} more" if len(grants) > 3 else ""
            raise Conflict(
                f"User {name!r} is still named in {'; '.join(grants[:3])}{more}: take those "
                "rights away first, or disable the user instead."
            )
        await self._metadata.remove_user(name, identity.actor)

    async def _grants(self, name: str) -> list[str]:
        """Where a right names the user: index permissions, project roles, publishers."""
        found: list[str] = []
        for config in await self._metadata.list_indexes():
            found += [
                f"the {setting} of index {config.name}"
                for setting in ("readers", "uploaders", "admins")
                if name in getattr(config, setting)
            ]
            for project in await self._metadata.list_projects(config.name):
                roles = await self._metadata.list_roles(config.name, project.name)
                found += [
                    f"the {role.role}s of {config.name}/{project.name}"
                    for role in roles
                    if role.principal == name
                ]
        found += [
            f"trusted publisher {publisher.publisher_id} (its future owner)"
            for publisher in await self._metadata.list_publishers()
            if publisher.owner == name
        ]
        return found

    async def get_user(self, identity: Identity, name: str) -> User:
        """One user (themselves or a server administrator)."""
        _check_self_or_admin(identity, name, "see this user")
        return await self._user(name)

    async def list_users(self, identity: Identity) -> list[User]:
        """Every user."""
        check_admin(identity, "list users")
        return await self._metadata.list_users()

    # -- groups -------------------------------------------------------------------------

    async def list_groups(self, identity: Identity) -> list[Group]:
        """Every group with its members."""
        check_admin(identity, "list groups")
        return await self._metadata.list_groups()

    async def create_group(self, identity: Identity, name: str) -> None:
        """Create an empty group (granted by writing ``@name``)."""
        check_admin(identity, "create groups")
        await self._metadata.create_group(check_username(name), identity.actor)

    async def delete_group(self, identity: Identity, name: str) -> None:
        """Delete a group."""
        check_admin(identity, "delete groups")
        await self._metadata.delete_group(name, identity.actor)

    async def change_members(
        self, identity: Identity, name: str, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> None:
        """Add and remove members of a group."""
        check_admin(identity, "change groups")
        await self._metadata.set_group_members(name, add, remove, identity.actor)

    # -- tokens -------------------------------------------------------------------------

    async def create_token(
        self,
        identity: Identity,
        user: str,
        *,
        description: str = "",
        expires: datetime | None = None,
        index: str | None = None,
        projects: Sequence[str] = (),
    ) -> tuple[Token, str]:
        """Create a token; the returned secret is shown once and never stored."""
        _check_self_or_admin(identity, user, "create tokens for this user")
        await self._user(user)
        if index is not None and not any(
            c.name == index and may_see(identity, c) for c in await self._metadata.list_indexes()
        ):
            raise NotFound(f"No index {index!r}.")  # a private index you cannot read is none
        if expires is not None and expires <= datetime.now(UTC):
            raise InvalidRequest("A token's expiry must lie in the future.")
        if projects and index is None:
            raise InvalidRequest("A token limited to projects must also name its index.")
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        token = Token(
            token_id=token_id,
            user=user,
            secret_hash=hash_token(secret),
            created=datetime.now(UTC),
            description=description,
            expires=expires,
            index=index,
            projects=tuple(projects),
        )
        await self._metadata.add_token(token, identity.actor)
        return token, format_token(token_id, secret)

    async def start_session(self, identity: Identity, lifetime: timedelta) -> str:
        """A browser session for a password login: a token whose id marks it as one."""
        _check_self_or_admin(identity, identity.user, "sign in to the web pages")
        token_id, secret = SESSION_PREFIX + secrets.token_hex(8), secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        token = Token(
            token_id=token_id,
            user=identity.user,
            secret_hash=hash_token(secret),
            created=now,
            description=f"Browser session from {identity.address}",
            expires=now + lifetime,
        )
        await self._metadata.add_token(token, identity.actor)
        # Not in the change log: signing in changes nothing anyone else sees.
        log.info("%s signed in from %s (session %s)", identity.user, identity.address, token_id)
        return format_token(token_id, secret)

    async def end_session(self, identity: Identity) -> None:
        """Log out: the session's token is revoked."""
        if identity.session_id is not None:
            await self._metadata.revoke_token(identity.session_id, identity.actor)
            log.info("%s signed out (session %s)", identity.user, identity.session_id)

    async def end_every_session(self, identity: Identity) -> int:
        """Sign the user out everywhere (a lost laptop): every live session of theirs is
        revoked, this one included. Returns how many were."""
        live = await self.list_sessions(identity, identity.user)
        for session in live:
            await self._metadata.revoke_token(session.token_id, identity.actor)
        log.info("%s signed out of %d session(s) everywhere", identity.user, len(live))
        return len(live)

    async def list_tokens(self, identity: Identity, user: str) -> list[Token]:
        """A user's API tokens (never their secrets); their sessions are no tokens to them."""
        _check_self_or_admin(identity, user, "list this user's tokens")
        await self._user(user)
        return [t for t in await self._metadata.list_tokens(user) if not t.is_session]

    async def list_sessions(self, identity: Identity, user: str) -> list[Token]:
        """A user's browser sessions that still let them in, oldest first."""
        _check_self_or_admin(identity, user, "list this user's sessions")
        await self._user(user)
        now = datetime.now(UTC)
        return [
            t
            for t in await self._metadata.list_tokens(user)
            if t.is_session and not t.revoked and (t.expires is None or t.expires > now)
        ]

    async def revoke_token(self, identity: Identity, user: str, token_id: str) -> None:
        """Revoke one of a user's tokens; another user's token is not found
        (docs/security.md, "Credentials")."""
        _check_self_or_admin(identity, user, "revoke this user's tokens")
        token = await self._metadata.get_token(token_id)
        if token is None or token.user != user:
            raise NotFound(f"User {user!r} has no token {token_id!r}.")
        await self._metadata.revoke_token(token_id, identity.actor)
