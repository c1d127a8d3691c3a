"""The Redis plumbing every part of the store shares: keys, the serial, and transactions.

Every change runs as an optimistic transaction: it WATCHes the serial, reads what
it needs, and commits its writes together with the new serial in one MULTI/EXEC.
Any other change commits a new serial first, so a transaction that raced another
is retried from its reads: two nodes uploading different files of one project
both land, and of two uploading one filename exactly one wins. The serial thus
counts strictly upwards across every node.

Round trips are what a change costs, and what lets another change overtake it: the
longer a change stays between WATCH and EXEC, the likelier it is retried. So a change
that knows its reads up front has them made in one round trip with the serial
(``change(..., reads=...)``, ``Transaction.snapshot``), and the changes of one process
take turns (``_turns``): they would only overtake each other, each retry costing all
its round trips again, while the other nodes still race them under WATCH.

Every call has a deadline (``redis_timeout``): a Redis that hangs fails the request
with 503 within it rather than holding it for the sockets' timeouts and retries. With
``redis_wait_replicas``, a change is acknowledged only once that many replicas have
it (``WAIT``); durability.py says why, and what is checked at start.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
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
from ministry.core.records import dumps, loads
from ministry.errors import StorageError, StorageFull, StorageUnavailable
from ministry.storage.redis.durability import RedisOptions, read_persistence

__all__ = ["LAYOUT", "RedisDatabase", "Transaction", "now", "text"]

T = TypeVar("T")
log = logging.getLogger(__name__)
_DEFAULT_PREFIX = "ministry"
#: Seconds a call may take, right after another ran out of time (``_deadline``).
_AFTER_A_HANG = 0.25
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
    #: The client, for ``snapshot``.
    redis: aioredis.Redis
    #: The answers to the change's ``reads``, made with the serial (``RedisDatabase.change``).
    read: list[Any] = field(default_factory=list)
    writes: list[Callable[[Pipeline], Any]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    async def snapshot(self, reads: Callable[[Pipeline], Any]) -> list[Any]:
        """The answers of the reads ``reads`` queues, in one round trip.

        On a connection of the pool, not the watching one (which answers each command
        before the next is sent): still correct, because the serial was watched before
        they were sent, so a change committed before they ran makes this one's EXEC
        fail and the attempt start again from its reads. MULTI makes them one snapshot,
        which matters for the refusals, which commit nothing and so are never checked
        by EXEC.
        """
        async with self.redis.pipeline(transaction=True) as pipe:
            reads(pipe)
            return list(await pipe.execute())

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

    def __init__(self, url: str, options: RedisOptions | None = None) -> None:
        self._options = options or RedisOptions()
        self._risks: tuple[str, ...] = ()
        #: Until when calls have the short deadline (``_deadline``).
        self._hung_until = 0.0
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self._prefix = query.pop("prefix", [_DEFAULT_PREFIX])[0]
        # Other parameters (``ssl_cert_reqs``, ``socket_timeout``…) are redis-py's.
        self._url = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            self._url, decode_responses=True, **_client_defaults(self._change_seconds)
        )
        #: Held by this process's change between its WATCH and its EXEC (module docstring).
        self._turns = asyncio.Lock()

    def key(self, *parts: str) -> str:
        """A key in this store's namespace."""
        return ":".join((self._prefix, *parts))

    @property
    def redis(self) -> aioredis.Redis:
        """The client, for plain reads."""
        return self._redis

    @property
    def _change_seconds(self) -> float:
        """The deadline of a change: ``redis_timeout``, and the time WAIT may take."""
        waits = self._options.wait_timeout_ms / 1000 if self._options.wait_replicas else 0.0
        return self._options.timeout + waits

    def risks(self) -> tuple[str, ...]:
        """What this store was started despite (``redis_durability warn``)."""
        return self._risks

    async def open(self) -> None:
        """Check that Redis answers, keeps what it acknowledges (unless the operator said
        otherwise) and holds no keys of a newer layout than this release's.

        The layout is recorded on first open, so that a release that changes the keys
        can tell an older store (to convert) from a newer one (to refuse, since writing
        the old layout into it would corrupt it).
        """
        layout_key = self.key("layout")
        try:
            await self._redis.set(layout_key, LAYOUT, nx=True)
            await self._redis.set(self.key("generation"), _new_generation(), nx=True)
            stored = int(await self._redis.get(layout_key) or LAYOUT)
            persistence = await read_persistence(self._redis)
        except RedisError as exc:
            raise StorageError(f"Redis at {mask_url(self._url)} does not answer: {exc}") from exc
        if persistence.risk is not None:
            if self._options.durability == "strict":
                raise StorageError(persistence.refusal(mask_url(self._url)))
            self._risks = (persistence.warning(mask_url(self._url)),)
            log.warning("%s", self._risks[0])
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

    async def exists(self) -> bool:
        """The layout key, which the first ``open`` writes, is there under the prefix."""
        try:
            return bool(await self._redis.exists(self.key("layout")))
        except RedisError as exc:
            raise StorageError(f"Redis at {mask_url(self._url)} does not answer: {exc}") from exc

    async def convert_layout(self) -> None:
        """Bring the keys of an older layout up to ``LAYOUT`` (the store's mixins know how)."""

    async def check(self) -> None:
        """Redis answers PING."""
        await self.read(self._redis.ping())

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()

    async def change(
        self,
        work: Callable[[Transaction], Awaitable[T]],
        reads: Callable[[Pipeline], Any] | None = None,
    ) -> T:
        """Run ``work`` as one atomic change, retrying it if another change came first.

        ``reads``, if given, queues the reads ``work`` will need: they are made with the
        serial, in one round trip right after the WATCH (``Transaction.snapshot`` says
        why that is correct), and ``work`` finds their answers in ``Transaction.read``.

        The deadline is per attempt (``_take_turn`` says how long a turn is waited
        for): a Redis that hangs fails the first one, while changes that only keep
        overtaking each other (many uploads at once, each watching the serial) go on
        retrying, each attempt being answered in time.
        """
        seconds = self._deadline(self._change_seconds)
        try:
            result = await self._change(work, reads, seconds)
        except TimeoutError:
            self._hung_until = time.monotonic() + self._options.timeout
            raise _no_answer(
                seconds,
                self._change_seconds,
                "the change may or may not have been made: check before repeating it",
            ) from None
        except RedisError as exc:
            raise _storage_error(exc) from exc
        self._hung_until = 0.0
        return result

    def _deadline(self, full: float) -> float:
        """``full``, or a short one while a call ran out of time less than
        ``redis_timeout`` ago: a request that makes several calls to a Redis that hangs
        then fails after about one deadline, not one per call, while a Redis that came
        back answers well within the short one (and ends the short deadlines)."""
        if time.monotonic() < self._hung_until:
            return min(full, _AFTER_A_HANG + full - self._options.timeout)
        return full

    async def _change(
        self,
        work: Callable[[Transaction], Awaitable[T]],
        reads: Callable[[Pipeline], Any] | None,
        seconds: float,
    ) -> T:
        serial_key = self.key("serial")
        while True:
            await self._take_turn()
            try:
                async with asyncio.timeout(seconds):
                    result = await self._attempt(work, reads, serial_key)
            except WatchError:
                continue
            finally:
                self._turns.release()
            break
        async with asyncio.timeout(seconds):
            # Also when nothing was written: a repeated upload finds its file and is
            # answered as published only once the replicas have it too.
            await self.replicated()
        return result

    async def _take_turn(self) -> None:
        """This process's turn to change (module docstring).

        The wait has no deadline while Redis answers: a burst of uploads on one node
        queues instead of failing, each attempt still answered in time. Once a change
        ran out of time (Redis hangs: ``_hung_until``), a waiter gives up after
        ``redis_timeout``, as the change before it did.
        """
        while True:
            try:
                async with asyncio.timeout(self._options.timeout):
                    await self._turns.acquire()
            except TimeoutError:
                if time.monotonic() < self._hung_until:
                    raise
                continue
            return

    async def _attempt(
        self,
        work: Callable[[Transaction], Awaitable[T]],
        reads: Callable[[Pipeline], Any] | None,
        serial_key: str,
    ) -> T:
        async with self._redis.pipeline(transaction=True) as pipe:
            await pipe.watch(serial_key)
            transaction = Transaction(pipe, 0, self._redis)
            if reads is None:
                transaction.serial = int(await pipe.get(serial_key) or 0)
            else:
                serial, *transaction.read = await transaction.snapshot(
                    lambda p: (p.get(serial_key), reads(p))
                )
                transaction.serial = int(serial or 0)
            result = await work(transaction)
            if transaction.writes or transaction.changes:
                self._commit(pipe, transaction, serial_key)
                await pipe.execute()
        return result

    async def replicated(self) -> None:
        """Wait until ``redis_wait_replicas`` replicas have every write made so far.

        WAIT counts the writes of its own connection, and a transaction's connection
        goes back to the pool at EXEC; so a small write is made and waited for on one
        connection: a replica that has it has all written before it (replication keeps
        the primary's order). Raises ``StorageUnavailable`` when too few answer in time.
        """
        wanted = self._options.wait_replicas
        if not wanted:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incr(self.key("replicated"))
            pipe.wait(wanted, self._options.wait_timeout_ms)
            _, acknowledged = await pipe.execute()
        if int(acknowledged) < wanted:
            log.warning(
                "%d of %d Redis replicas acknowledged a change within %d ms",
                acknowledged, wanted, self._options.wait_timeout_ms,
            )  # fmt: skip
            raise StorageUnavailable(
                f"The change was written to the metadata store (Redis) but only {acknowledged} "
                f"of the {wanted} replica(s) it must reach acknowledged it within "
                f"{self._options.wait_timeout_ms} ms, so it is not known to be safe: a failover "
                "now could lose it. Check that it is there before repeating it."
            )

    def _commit(self, pipe: Pipeline, transaction: Transaction, serial_key: str) -> None:
        pipe.multi()  # type: ignore[no-untyped-call]
        for operation in transaction.writes:
            operation(pipe)
        if transaction.changes:
            changes = {dumps(c): c.serial for c in transaction.changes}
            pipe.zadd(self.key("changes"), changes)
            pipe.set(serial_key, transaction.serial)

    async def read(self, operation: Awaitable[T]) -> T:
        """Await a plain read within ``redis_timeout``, turning Redis failures into a
        storage error."""
        seconds = self._deadline(self._options.timeout)
        try:
            result = await asyncio.wait_for(operation, seconds)
        except TimeoutError:
            self._hung_until = time.monotonic() + self._options.timeout
            raise _no_answer(seconds, self._options.timeout, "try again shortly") from None
        except RedisError as exc:
            raise _storage_error(exc) from exc
        self._hung_until = 0.0
        return result

    async def last_serial(self) -> int:
        """The newest serial."""
        return int(await self.read(self._redis.get(self.key("serial"))) or 0)

    async def position(self) -> tuple[int, str]:
        """The serial and the generation in one round trip (MGET); the generation is made
        as ``generation`` says if Redis has none."""
        serial, generation = await self.read(
            self._redis.mget(self.key("serial"), self.key("generation"))
        )
        if generation is None:
            return int(serial or 0), await self.generation()
        return int(serial or 0), text(generation)

    async def changes_since(self, serial: int, limit: int = 1000) -> list[Change]:
        """The change log after ``serial``, oldest first."""
        members = await self.read(
            self._redis.zrangebyscore(self.key("changes"), f"({serial}", "+inf", start=0, num=limit)
        )
        return [loads(Change, text(member)) for member in members]  # type: ignore[arg-type]

    async def generation(self) -> str:
        """The id set (SET NX) when the store was first opened; a Redis that came back empty
        has none, and gets a new one here (or at the next open)."""
        key = self.key("generation")
        value = await self.read(self._redis.get(key))
        if value is None:
            made = _new_generation()
            # Another node may set it first: whichever was set is the generation.
            await self.read(self._redis.set(key, made, nx=True))
            value = await self.read(self._redis.get(key)) or made
        return text(value)

    async def raise_serial(self, floor: int) -> None:
        """Make the next serial greater than ``floor`` and start a new generation, in one
        transaction watching the serial as every change does; a no-op if it already is."""
        serial_key = self.key("serial")

        async def attempt() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                await pipe.watch(serial_key)
                if int(await pipe.get(serial_key) or 0) >= floor:
                    return
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.set(serial_key, floor)
                pipe.set(self.key("generation"), _new_generation())
                await pipe.execute()

        try:
            while True:
                try:
                    async with asyncio.timeout(self._change_seconds):
                        await attempt()
                    break
                except WatchError:
                    continue
        except TimeoutError:
            raise _no_answer(
                self._change_seconds, self._change_seconds, "check the serial before repeating"
            ) from None
        except RedisError as exc:
            raise _storage_error(exc) from exc
        await self.replicated()


def _new_generation() -> str:
    return secrets.token_hex(16)


def _client_defaults(seconds: float) -> dict[str, Any]:
    """Timeouts and retries, unless the URL sets them (its ``socket_timeout`` and the like win).

    The deadline of each call (``read``, ``change``) is what bounds a request; these
    only keep a connection from waiting on a hung Redis longer than that deadline.
    """
    return {
        "socket_connect_timeout": seconds,
        "socket_timeout": seconds,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=2),
    }


def _no_answer(seconds: float, full: float, advice: str) -> StorageUnavailable:
    """The error of a call that ran out of ``seconds`` (``full``: its usual deadline)."""
    log.warning("Redis did not answer within %g s (redis_timeout)", seconds)
    when = f"within {full:g} s" + ("" if seconds >= full else " a moment ago, nor now")
    return StorageUnavailable(f"The metadata store (Redis) did not answer {when}; {advice}.")


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
