"""Whether Redis keeps what it acknowledged: its persistence settings, read at start.

An upload is acknowledged once its record is in Redis. Unless Redis appends every
write to its append-only file and fsyncs it before answering (``appendonly yes``,
``appendfsync always``), a crash of Redis loses acknowledged uploads: everything
since the last snapshot without the file, up to a second of them with ``everysec``.
Replicas do not help by themselves: replication is asynchronous, so a failover loses
what the replica had not received, unless each change waits for it (``WAIT``,
``redis_wait_replicas``). docs/deploy.md, "Redis persistence".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

__all__ = ["Persistence", "RedisOptions", "parse_persistence", "read_persistence"]


@dataclass(frozen=True)
class RedisOptions:
    """What the operator chose for the Redis store (the ``redis_*`` settings)."""

    #: ``strict``: refuse to start on a Redis that may lose acknowledged uploads;
    #: ``warn``: start, and say so in the log, ``/-/ready`` and the metrics.
    durability: Literal["strict", "warn"] = "strict"
    #: Replicas each change must reach before it is acknowledged; 0: no WAIT.
    wait_replicas: int = 0
    #: Milliseconds WAIT gives the replicas.
    wait_timeout_ms: int = 1000
    #: Seconds a request waits for Redis before it fails with 503.
    timeout: float = 2.0


@dataclass(frozen=True)
class Persistence:
    """What Redis said of its persistence; ``None`` where CONFIG could not be read."""

    appendonly: str | None
    appendfsync: str | None
    replicas: int
    #: Why CONFIG could not be read (renamed, or not permitted to this user).
    config_error: str | None = None

    @property
    def risk(self) -> str | None:
        """What a crash of Redis would lose of acknowledged uploads; None: nothing."""
        if self.config_error is not None:
            return (
                f"its persistence cannot be checked, since CONFIG GET failed ({self.config_error}; "
                "managed Redis often renames or forbids it), so acknowledged uploads may be lost "
                "on a crash of Redis"
            )
        if self.appendonly != "yes":
            return (
                f"it runs with appendonly {self.appendonly}, so a crash of Redis loses every "
                "acknowledged upload since its last snapshot"
            )
        if self.appendfsync != "always":
            return (
                f"it runs with appendonly yes but appendfsync {self.appendfsync}, so a crash "
                "of Redis or its host loses acknowledged uploads "
                + ("of up to a second" if self.appendfsync == "everysec" else "not yet on disk")
            )
        return None

    def refusal(self, where: str) -> str:
        """The one line that stops a ``strict`` start (only when there is a ``risk``)."""
        fix = (
            "make sure it runs with appendonly yes and appendfsync always"
            if self.config_error is not None
            else "set appendonly yes and appendfsync always (redis.conf or CONFIG SET)"
        )
        return (
            f"Redis at {where} may lose acknowledged uploads: {self.risk}{self._replication()}. "
            f"To keep them, {fix}; to start anyway, accepting the risk, pass "
            "--redis-durability warn (MINISTRY_REDIS_DURABILITY=warn, or redis_durability = "
            '"warn" in [storage])'
        )

    def warning(self, where: str) -> str:
        """What ``warn`` reports instead of refusing."""
        return (
            f"Redis at {where} may lose acknowledged uploads: {self.risk}{self._replication()} "
            "(started with redis_durability warn)"
        )

    def _replication(self) -> str:
        if not self.replicas:
            return ""
        return (
            f"; its {self.replicas} replica(s) receive writes asynchronously, so a failover "
            "also loses what they had not received unless redis_wait_replicas is set"
        )


async def read_persistence(client: aioredis.Redis) -> Persistence:
    """Ask Redis how it persists: ``CONFIG GET appendonly``/``appendfsync`` and
    ``INFO replication``. Other failures (Redis down) propagate as ``RedisError``."""
    replicas = int((await client.info("replication")).get("connected_slaves", 0))
    try:
        appendonly = await client.config_get("appendonly")
        appendfsync = await client.config_get("appendfsync")
    except ResponseError as exc:  # unknown command, or NOPERM under an ACL
        return Persistence(None, None, replicas, config_error=str(exc).split("\n")[0][:120])
    return parse_persistence(appendonly, appendfsync, replicas)


def parse_persistence(
    appendonly: Mapping[Any, Any], appendfsync: Mapping[Any, Any], replicas: int
) -> Persistence:
    """The answers of ``CONFIG GET`` as a ``Persistence`` (an empty answer: unknown)."""
    return Persistence(
        str(appendonly.get("appendonly", "unknown")).lower(),
        str(appendfsync.get("appendfsync", "unknown")).lower(),
        replicas,
    )
