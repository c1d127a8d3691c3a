"""Scheduled mirror jobs in Redis: the last run of each, and the lease that lets one node run it.

Runs live in one hash by job name; claims in another, as the lease's end in
microseconds since the epoch. Neither is a change: no serial, no audit entry.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ministry.core.models import MirrorRun
from ministry.core.records import dumps, from_record
from ministry.storage.redis.base import RedisDatabase

__all__ = ["MirrorsMixin", "mirror_run_from_record"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Read, compare and write in one script, so that the server runs nothing else in
# between. The times are the caller's, never the server's (TIME): every node asks
# with its own ``now``, as the SQLite store is asked. They are compared as numbers,
# because Lua compares strings by the server's locale.
_CLAIM = """
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held and tonumber(held) > tonumber(ARGV[2]) then
    return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


def _microseconds(when: datetime) -> int:
    # Exact integers; a Lua number (a double) holds them exactly until the year 2255.
    return (when - _EPOCH) // timedelta(microseconds=1)


def mirror_run_from_record(record: dict[str, Any]) -> MirrorRun:
    """A run from its JSON record (the record codec knows other models' time fields)."""
    run = from_record(MirrorRun, record)
    return replace(
        run,
        started=datetime.fromisoformat(record["started"]),
        finished=datetime.fromisoformat(record["finished"]),
    )


class MirrorsMixin(RedisDatabase):
    """The ``MirrorRunStore`` role of ``MetadataStore``."""

    async def put_mirror_run(self, run: MirrorRun) -> None:
        """Keep the last run of a job, replacing the one before."""
        await self.read(self.redis.hset(self.key("mirror-runs"), run.job, dumps(run)))

    async def list_mirror_runs(self) -> list[MirrorRun]:
        """The last run of every job, by job name."""
        values = await self.read(self.redis.hvals(self.key("mirror-runs")))
        runs = [mirror_run_from_record(json.loads(v)) for v in values]
        return sorted(runs, key=lambda r: r.job)

    async def claim_mirror_job(self, job: str, now: datetime, until: datetime) -> bool:
        """Take the lease on a job until ``until`` unless an unexpired one stands."""
        claim = self.redis.register_script(_CLAIM)
        keys = [self.key("mirror-claims")]
        won = await self.read(
            claim(keys=keys, args=[job, _microseconds(now), _microseconds(until)])
        )
        return bool(won)

    async def release_mirror_job(self, job: str) -> None:
        """Drop a job's claim."""
        await self.read(self.redis.hdel(self.key("mirror-claims"), job))
