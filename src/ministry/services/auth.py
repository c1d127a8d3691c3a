"""Users, passwords and API tokens.

Passwords are stored as Argon2id hashes (memory-hard). Tokens are long random
secrets, so a fast hash (sha256) is enough and lets every request check one
cheaply; only the hash is stored, and comparisons are constant-time. A token
reads ``mop_<id>_<secret>``: the id finds the row, the secret proves possession.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ministry.core.models import Token, User
from ministry.errors import AuthenticationFailed, InvalidRequest
from ministry.storage.protocols import MetadataStore

__all__ = ["TOKEN_USERNAME", "AuthService", "Identity", "check_username"]

#: The username upload clients send with an API token (twine, uv, flit: ``__token__``).
TOKEN_USERNAME = "__token__"  # noqa: S105 (a user name, not a secret)
_TOKEN = re.compile(r"mop_([0-9a-f]{16})_([A-Za-z0-9_-]{43})\Z")
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_MIN_PASSWORD = 8
# A bulk upload authenticates once per file; re-running Argon2 each time would cost
# tens of milliseconds per file. A verified password is remembered briefly.
_VERIFIED_TTL = 300.0
_VERIFIED_MAX = 1024


@dataclass(frozen=True)
class Identity:
    """Who a request acts as, and through which token if any."""

    user: str
    token_id: str | None = None


def check_username(name: str) -> str:
    """Refuse user names that could be confused with tokens or paths."""
    if not _USERNAME.match(name) or name == TOKEN_USERNAME:
        raise InvalidRequest(
            f"Invalid user name {name[:70]!r}: use 1 to 64 ASCII letters, digits, '.', '_' "
            "or '-', starting with a letter or digit."
        )
    return name


def _check_password(password: str) -> None:
    if len(password) < _MIN_PASSWORD:
        raise InvalidRequest(f"Passwords must have at least {_MIN_PASSWORD} characters.")


def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class AuthService:
    """Creates users and tokens and turns credentials into an identity."""

    def __init__(self, metadata: MetadataStore) -> None:
        self._metadata = metadata
        self._hasher = PasswordHasher()
        # Verifying against this keeps unknown users as slow as known ones.
        self._decoy = self._hasher.hash(secrets.token_urlsafe(16))
        self._pepper = secrets.token_bytes(32)
        self._verified: OrderedDict[bytes, float] = OrderedDict()

    async def create_user(
        self, name: str, password: str, *, admin: bool = False, actor: str = "cli"
    ) -> User:
        """Create a user with an Argon2id password hash."""
        check_username(name)
        _check_password(password)
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        user = User(name, password_hash, datetime.now(UTC), is_admin=admin)
        await self._metadata.add_user(user, actor)
        return user

    async def create_token(
        self,
        user: str,
        *,
        description: str = "",
        expires: datetime | None = None,
        actor: str = "cli",
    ) -> tuple[Token, str]:
        """Create a token; the returned secret is shown once and never stored."""
        if await self._metadata.get_user(user) is None:
            raise InvalidRequest(f"No user {user!r}; create it first with 'ministry user add'.")
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        token = Token(
            token_id=token_id,
            user=user,
            secret_hash=_token_hash(secret),
            created=datetime.now(UTC),
            description=description,
            expires=expires,
        )
        await self._metadata.add_token(token, actor)
        return token, f"mop_{token_id}_{secret}"

    async def authenticate(self, username: str, password: str) -> Identity:
        """The identity these Basic credentials prove, or ``AuthenticationFailed``."""
        match = _TOKEN.match(password)
        if match and username in (TOKEN_USERNAME, await self._token_owner(match[1])):
            return await self._authenticate_token(match[1], match[2])
        if username == TOKEN_USERNAME:
            raise _failed()
        return await self._authenticate_password(username, password)

    async def _token_owner(self, token_id: str) -> str | None:
        token = await self._metadata.get_token(token_id)
        return token.user if token else None

    async def _authenticate_token(self, token_id: str, secret: str) -> Identity:
        token = await self._metadata.get_token(token_id)
        expected = token.secret_hash if token else _token_hash("")
        valid = hmac.compare_digest(expected, _token_hash(secret))
        now = datetime.now(UTC)
        if token is None or not valid or token.revoked or (token.expires and token.expires < now):
            raise _failed()
        await self._metadata.touch_token(token_id, now)
        return Identity(token.user, token_id)

    async def _authenticate_password(self, username: str, password: str) -> Identity:
        user = await self._metadata.get_user(username)
        # The stored hash is part of the key: a changed password forgets the old one at once.
        stored = user.password_hash if user else ""
        key = hmac.digest(self._pepper, f"{username}\0{password}\0{stored}".encode(), "sha256")
        if user is not None and self._recently_verified(key):
            return Identity(user.name)
        ok = await asyncio.to_thread(
            self._verify, user.password_hash if user else self._decoy, password
        )
        if user is None or not ok:
            raise _failed()
        self._remember(key)
        return Identity(user.name)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def _recently_verified(self, key: bytes) -> bool:
        when = self._verified.get(key)
        return when is not None and time.monotonic() - when < _VERIFIED_TTL

    def _remember(self, key: bytes) -> None:
        self._verified[key] = time.monotonic()
        self._verified.move_to_end(key)
        while len(self._verified) > _VERIFIED_MAX:
            self._verified.popitem(last=False)


def _failed() -> AuthenticationFailed:
    # One message for every cause, so that nobody learns which user names exist.
    return AuthenticationFailed("Invalid or non-existent authentication information.")
