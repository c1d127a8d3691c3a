"""The Redis plumbing every part of the store shares: keys, the serial, and transactions.

Every change runs as an optimistic transaction: it WATCHes the serial, reads what
it needs, and commits its writes together with the new serial in one MULTI/EXEC.
Any other change commits a new serial first, so a transaction that raced another
is retried from its reads: two nodes uploading different files of one project
both land, and of two uploading one filename exactly one wins. The serial thus
counts strictly upwards across every node.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, RedisError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ministry.core.masking import mask_url
from ministry.core.models import Actor, Change
from ministry.errors import StorageError, StorageFull, StorageUnavailable
from ministry.storage.records import dumps, loads

__all__ = ["LAYOUT", "RedisDatabase", "Transaction", "now", "text"]

T = TypeVar("T")
_DEFAULT_PREFIX = "ministry"
#: The key layout this release reads and writes; raise it with a change of layout, and
#: convert older layouts in ``convert_layout``. 2: projects have owners (``roles``).
LAYOUT = 2


def now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def text(value: bytes | str) -> str:
    """A Redis answer as text (the client decodes; the types say it may not)."""
    return value if isinstance(value, str) else value.decode()


@dataclass
class Transaction:
    """Reads (done at once, under WATCH) and the writes to commit with the new serial."""

    pipe: Pipeline
    serial: int
    writes: list[Callable[[Pipeline], Any]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    def log(
        self,
        actor: Actor,
        action: str,
        index: str,
        *,
        project: str | None = None,
        version: str | None = None,
        filename: str | None = None,
        detail: str | None = None,
    ) -> tuple[int, datetime]:
        """Record a change; returns its serial and time."""
        self.serial += 1
        when = now()
        self.changes.append(
            Change(self.serial, when, actor.name, action, index, project, version, filename,
                   detail, actor.address)
        )  # fmt: skip
        return self.serial, when

    def write(self, operation: Callable[[Pipeline], Any]) -> None:
        """Queue a write for the commit."""
        self.writes.append(operation)


class RedisDatabase:
    """The connection and the transaction discipline of one Redis database (the
    ``StoreLifecycle`` and ``ChangeLog`` roles of ``MetadataStore``)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self._prefix = query.pop("prefix", [_DEFAULT_PREFIX])[0]
        # Other parameters (``ssl_cert_reqs``, ``socket_timeout``…) are redis-py's.
        self._url = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            self._url, decode_responses=True, **_client_defaults()
        )

    def key(self, *parts: str) -> str:
        """A key in this store's namespace."""
        return ":".join((self._prefix, *parts))

    @property
    def redis(self) -> aioredis.Redis:
        """The client, for plain reads."""
        return self._redis

    async def open(self) -> None:
        """Check that Redis answers and holds no keys of a newer layout than this release's.

        The layout is recorded on first open, so that a release that changes the keys
        can tell an older store (to convert) from a newer one (to refuse, since writing
        the old layout into it would corrupt it).
        """
        layout_key = self.key("layout")
        try:
            await self._redis.set(layout_key, LAYOUT, nx=True)
            stored = int(await self._redis.get(layout_key) or LAYOUT)
        except RedisError as exc:
            raise StorageError(f"Redis at {mask_url(self._url)} does not answer: {exc}") from exc
        if stored > LAYOUT:
            raise StorageError(
                f"The metadata in Redis was written by a newer release of Ministry (layout "
                f"{stored}; this release knows layout {LAYOUT}). Run that release again, or "
                "restore a backup taken before the upgrade."
            )
        if stored < LAYOUT:
            try:
                await self.convert_layout()
            except RedisError as exc:
                raise _storage_error(exc) from exc

    async def convert_layout(self) -> None:
        """Bring the keys of an older layout up to ``LAYOUT`` (the store's mixins know how)."""

    async def check(self) -> None:
        """Redis answers PING."""
        await self.read(self._redis.ping())

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()

    async def change(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        """Run ``work`` as one atomic change, retrying it if another change came first."""
        serial_key = self.key("serial")
        while True:
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    await pipe.watch(serial_key)
                    transaction = Transaction(pipe, int(await pipe.get(serial_key) or 0))
                    result = await work(transaction)
                    if transaction.writes or transaction.changes:
                        self._commit(pipe, transaction, serial_key)
                        await pipe.execute()
                    return result
            except WatchError:
                continue
            except RedisError as exc:
                raise _storage_error(exc) from exc

    def _commit(self, pipe: Pipeline, transaction: Transaction, serial_key: str) -> None:
        pipe.multi()  # type: ignore[no-untyped-call]
        for operation in transaction.writes:
            operation(pipe)
        if transaction.changes:
            changes = {dumps(c): c.serial for c in transaction.changes}
            pipe.zadd(self.key("changes"), changes)
            pipe.set(serial_key, transaction.serial)

    async def read(self, operation: Awaitable[T]) -> T:
        """Await a plain read, turning Redis failures into a storage error."""
        try:
            return await operation
        except RedisError as exc:
            raise _storage_error(exc) from exc

    async def last_serial(self) -> int:
        """The newest serial."""
        return int(await self.read(self._redis.get(self.key("serial"))) or 0)

    async def changes_since(self, serial: int, limit: int = 1000) -> list[Change]:
        """The change log after ``serial``, oldest first."""
        members = await self.read(
            self._redis.zrangebyscore(self.key("changes"), f"({serial}", "+inf", start=0, num=limit)
        )
        return [loads(Change, text(member)) for member in members]  # type: ignore[arg-type]


def _client_defaults() -> dict[str, Any]:
    """Timeouts and retries, unless the URL sets them (its ``socket_timeout`` and the like win).

    Without timeouts a Redis that hangs would hang every request; with redis-py's own
    retry budget a Redis that is down would hold each request for seconds before its 503.
    """
    return {
        "socket_connect_timeout": 5.0,
        "socket_timeout": 10.0,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=2),
    }


def _storage_error(exc: RedisError) -> StorageError:
    """The domain error for a failed command; the message names no host (the log does)."""
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return StorageUnavailable("The metadata store (Redis) is unavailable; try again shortly.")
    if isinstance(exc, ReadOnlyError):
        return StorageUnavailable(
            "The metadata store (Redis) is read-only (a replica); nothing was changed. "
            "Try again once it has failed over."
        )
    if isinstance(exc, OutOfMemoryError):
        return StorageFull(
            "The metadata store (Redis) has no memory left; nothing was changed. "
            "Ask the server's administrator to raise its maxmemory."
        )
    return StorageError(f"The metadata store (Redis) failed ({exc.__class__.__name__}).")
