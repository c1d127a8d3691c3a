"""Credentials to identities: passwords (Argon2id) and API tokens.

Tokens are long random secrets, so a fast hash (sha256) is enough to store them
and lets every request check one cheaply; only the hash is kept, and
comparisons are constant-time. A token reads ``mop_<id>_<secret>``: the id finds
the row, the secret proves possession. Every failure reads the same, so nobody
learns which user names exist.

Failed logins are counted per user (or token) and client address, in this
process's memory (``core.login_limits``): past the budget, attempts are refused
without being checked until the window has moved on.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cachetools import TTLCache

from ministry.core.login_limits import Lockout, LoginLimits
from ministry.core.models import SESSION_PREFIX, User
from ministry.core.permissions import Identity
from ministry.errors import AuthenticationFailed, StorageError, TooManyAttempts
from ministry.storage.protocols import AccountStore, PublisherStore

__all__ = [
    "PUBLISH_PREFIX",
    "SESSION_PREFIX",
    "TOKEN_USERNAME",
    "AuthService",
    "format_token",
    "hash_token",
    "parse_token",
]

log = logging.getLogger(__name__)

#: The username upload clients send with an API token (twine, uv, flit: ``__token__``).
TOKEN_USERNAME = "__token__"  # noqa: S105 (a user name, not a secret)
_TOKEN = re.compile(r"mop_([sp]?[0-9a-f]{16})_([A-Za-z0-9_-]{43})\Z")
#: The ids of upload tokens minted for trusted publishers start so (kept apart from users').
PUBLISH_PREFIX = "p"
# A bulk upload authenticates once per file; re-running Argon2 each time would cost
# tens of milliseconds per file. A verified password is remembered briefly.
_VERIFIED_TTL = 300.0
_VERIFIED_MAX = 1024
# Argon2 runs this many at a time (it takes a core each for tens of milliseconds).
_VERIFICATIONS_AT_ONCE = 4
_TOUCH_INTERVAL = timedelta(minutes=1)
_AUDITED = ("ref", "run_id", "pipeline_id")


def hash_token(secret: str) -> str:
    """The stored form of a token secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def format_token(token_id: str, secret: str) -> str:
    """The token as its owner types it."""
    return f"mop_{token_id}_{secret}"


def parse_token(text: str) -> tuple[str, str] | None:
    """A token's id and secret, or None if the text is not shaped like a token."""
    match = _TOKEN.match(text)
    return (match[1], match[2]) if match else None


class AuthService:
    """Turns Basic credentials into an identity."""

    def __init__(
        self,
        metadata: AccountStore,
        hasher: PasswordHasher,
        limits: LoginLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
        publishers: PublisherStore | None = None,
    ) -> None:
        self._metadata = metadata
        self._publishers = publishers
        self._hasher = hasher
        self._limits = limits
        self._clock = clock
        # Verifying against this keeps unknown users as slow as known ones.
        self._decoy = hasher.hash(secrets.token_urlsafe(16))
        self._pepper = secrets.token_bytes(32)
        # Read with ``in`` alone, which keeps the order: the least recently verified goes first.
        self._verified: TTLCache[bytes, bool] = TTLCache(_VERIFIED_MAX, _VERIFIED_TTL, clock)
        self._verifying: dict[bytes, asyncio.Future[bool]] = {}
        self._verifications = asyncio.Semaphore(_VERIFICATIONS_AT_ONCE)

    def clear(self) -> None:
        """Forget the credentials verified lately and the failed logins counted: called
        when the metadata store went back (``services.rollback``), since both were judged
        against what the store held before."""
        self._verified.clear()
        if self._limits is not None:
            self._limits.clear()

    async def authenticate(self, username: str, password: str, address: str) -> Identity:
        """The identity these credentials prove (Basic or the login form).

        ``AuthenticationFailed`` if they prove none; ``TooManyAttempts``, without
        looking at them, once too many have failed for this user from this address.
        """
        if self._limits is None:
            return await self._authenticate(username, password, address)
        # A token is its own target: guessing one token's secret locks out that token only.
        match = _TOKEN.match(password)
        subject = f"token:{match[1]}" if match and username == TOKEN_USERNAME else username
        self._refuse_if_locked(subject, address)
        try:
            identity = await self._authenticate(username, password, address)
        except _CountedFailure:
            raise  # counted where it was found, before the next guess was let through
        except AuthenticationFailed:
            self._limits.failed(subject, address, self._clock())
            raise
        self._limits.succeeded(subject, address)
        return identity

    def _refuse_if_locked(self, subject: str, address: str) -> None:
        if self._limits is not None:
            lockout = self._limits.locked(subject, address, self._clock())
            if lockout is not None:
                raise _locked(lockout)

    async def _authenticate(self, username: str, password: str, address: str) -> Identity:
        match = _TOKEN.match(password)
        # ``__token__`` needs no look at the token's owner (one store call fewer).
        if match and (username == TOKEN_USERNAME or username == await self._token_owner(match[1])):
            return await self._authenticate_token(match[1], match[2], address)
        if username == TOKEN_USERNAME:
            raise _failed()
        return await self._authenticate_password(username, password, address)

    async def authenticate_session(self, value: str, address: str) -> Identity:
        """The identity of a browser session cookie, which acts as the password that began it."""
        match = _TOKEN.match(value)
        if match is None or not match[1].startswith(SESSION_PREFIX):
            raise _failed()
        identity = await self._authenticate_token(match[1], match[2], address)
        return replace(identity, token_id=None, session_id=match[1])

    async def _token_owner(self, token_id: str) -> str | None:
        token = await self._metadata.get_token(token_id)
        return token.user if token else None

    async def _authenticate_token(self, token_id: str, secret: str, address: str) -> Identity:
        if token_id.startswith(PUBLISH_PREFIX):
            return await self._authenticate_minted(token_id, secret, address)
        token = await self._metadata.get_token(token_id)
        expected = token.secret_hash if token else hash_token("")
        valid = hmac.compare_digest(expected, hash_token(secret))
        now = datetime.now(UTC)
        if token is None or not valid or token.revoked or (token.expires and token.expires < now):
            raise _failed()
        user = await self._live_user(token.user)
        # Recording every use would make each request of an install a disk write.
        if token.last_used is None or now - token.last_used > _TOUCH_INTERVAL:
            try:
                await self._metadata.touch_token(token_id, now)
            except StorageError as exc:
                # Bookkeeping only: a full or read-only store must not lock readers out.
                log.warning("token %s: its use was not recorded: %s", token_id, exc.message)
        return await self._identity(
            user,
            address,
            token_id=token_id,
            token_index=token.index,
            token_projects=token.projects,
        )

    async def _authenticate_minted(self, token_id: str, secret: str, address: str) -> Identity:
        """A token minted for a trusted publisher's run: it uploads for the publishers that
        still exist (removing one ends its tokens at once)."""
        token = (
            None if self._publishers is None else await self._publishers.get_publish_token(token_id)
        )
        expected = token.secret_hash if token else hash_token("")
        valid = hmac.compare_digest(expected, hash_token(secret))
        if token is None or not valid or token.revoked or token.expires < datetime.now(UTC):
            raise _failed()
        assert self._publishers is not None
        found = [await self._publishers.get_publisher(p) for p in token.publishers]
        publishers = tuple(p for p in found if p is not None)
        if not publishers:
            raise _failed()
        # The audit log names the run each upload came from.
        run = " ".join(f"{name}={value}" for name, value in token.claims if name in _AUDITED)
        user = f"{token.name} {publishers[0].workflow}" + (f" {run}" if run else "")
        return Identity(user=user, address=address, token_id=token_id, publishers=publishers)

    async def _authenticate_password(self, username: str, password: str, address: str) -> Identity:
        user = await self._metadata.get_user(username)
        # The stored hash is part of the key: a changed password forgets the old one at once.
        stored = user.password_hash if user else ""
        key = hmac.digest(self._pepper, f"{username}\0{password}\0{stored}".encode(), "sha256")
        if user is None or key not in self._verified:
            ok = await self._verify_once(key, stored or self._decoy, password, username, address)
            if not ok:
                raise _CountedFailure(_failed().message)
            if user is None:
                raise _failed()
            self._verified[key] = True
        return await self._identity(await self._live_user(username), address)

    async def _verify_once(
        self, key: bytes, password_hash: str, password: str, username: str, address: str
    ) -> bool:
        """Argon2, once for requests sent at once with the same credentials.

        Verifications run a few at a time, each after a last look at the limits: a
        burst of guesses sent together is refused once the failures among the first
        ones have spent the budget, instead of all being checked.
        """
        flight = self._verifying.get(key)
        if flight is None:
            flight = asyncio.ensure_future(
                self._verify_now(password_hash, password, username, address)
            )
            self._verifying[key] = flight
            flight.add_done_callback(lambda _: self._verifying.pop(key, None))
        return await asyncio.shield(flight)

    async def _verify_now(
        self, password_hash: str, password: str, username: str, address: str
    ) -> bool:
        async with self._verifications:
            self._refuse_if_locked(username, address)
            ok = await asyncio.to_thread(self._verify, password_hash, password)
            if not ok and self._limits is not None:
                # Counted before the slot is given up, so the next guess already sees it.
                self._limits.failed(username, address, self._clock())
            return ok

    async def _live_user(self, name: str) -> User:
        user = await self._metadata.get_user(name)
        if user is None or user.disabled:
            raise _failed()
        return user

    async def _identity(
        self,
        user: User,
        address: str,
        *,
        token_id: str | None = None,
        token_index: str | None = None,
        token_projects: tuple[str, ...] = (),
    ) -> Identity:
        groups = frozenset(
            g.name for g in await self._metadata.list_groups() if user.name in g.members
        )
        return Identity(
            user=user.name,
            address=address,
            is_admin=user.is_admin,
            groups=groups,
            token_id=token_id,
            token_index=token_index,
            token_projects=token_projects,
        )

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def _locked(lockout: Lockout) -> TooManyAttempts:
    # Phrased by counts alone, never by whether the user exists.
    whom = "" if lockout.whole_address else " for this user"
    return TooManyAttempts(
        f"Too many failed logins{whom} from your address; "
        f"try again in {lockout.retry_after} seconds.",
        lockout.retry_after,
    )


class _CountedFailure(AuthenticationFailed):
    """A wrong password whose failure the limits have counted already."""


def _failed() -> AuthenticationFailed:
    # One message for every cause, so that nobody learns which user names exist.
    return AuthenticationFailed("Invalid or non-existent authentication information.")
