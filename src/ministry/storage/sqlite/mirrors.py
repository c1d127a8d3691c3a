"""Scheduled mirror jobs: the last run of each, and the lease that lets one process run it.

Every worker process schedules the same jobs; a run starts only after claiming
its job here, so one process at a time mirrors an index. Like the proxy caches,
none of this is a change anyone made: no serial, no audit entry.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from ministry.core.models import MirrorRun
from ministry.storage.sqlite.database import Database

__all__ = ["MirrorsMixin", "mirror_run_of", "mirror_run_values"]

# The claim succeeds on a new row, or on an existing one whose lease has expired;
# otherwise the upsert's WHERE leaves it alone and changes no row.
_CLAIM = (
    "INSERT INTO mirror_claims (job, until) VALUES (?, ?)"
    " ON CONFLICT (job) DO UPDATE SET until = excluded.until WHERE mirror_claims.until <= ?"
)


def mirror_run_of(row: sqlite3.Row) -> MirrorRun:
    """A ``mirror_runs`` row as a run."""
    return MirrorRun(
        job=row["job"],
        index=row["index_name"],
        started=datetime.fromisoformat(row["started"]),
        finished=datetime.fromisoformat(row["finished"]),
        ok=bool(row["ok"]),
        files=row["files"],
        bytes=row["bytes"],
        failed=row["failed"],
        message=row["message"],
    )


def mirror_run_values(run: MirrorRun) -> tuple[object, ...]:
    """A run as the values of a ``mirror_runs`` row, in column order."""
    return (run.job, run.index, run.started.isoformat(), run.finished.isoformat(), int(run.ok),
            run.files, run.bytes, run.failed, run.message)  # fmt: skip


def _instant(when: datetime) -> str:
    # UTC with every digit of the microseconds: SQLite compares these as text, and
    # only one offset and one width make text order the order of time.
    return when.astimezone(UTC).isoformat(timespec="microseconds")


class MirrorsMixin(Database):
    """The ``MirrorRunStore`` role of ``MetadataStore``."""

    async def put_mirror_run(self, run: MirrorRun) -> None:
        """Keep the last run of a job, replacing the one before."""
        await self._run(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO mirror_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                mirror_run_values(run),
            )
        )

    async def list_mirror_runs(self) -> list[MirrorRun]:
        """The last run of every job, by job name."""
        rows = await self._run(
            lambda c: c.execute("SELECT * FROM mirror_runs ORDER BY job").fetchall()
        )
        return [mirror_run_of(row) for row in rows]

    async def claim_mirror_job(self, job: str, now: datetime, until: datetime) -> bool:
        """Take the lease on a job until ``until`` unless an unexpired one stands."""

        def claim(connection: sqlite3.Connection) -> bool:
            with self._write(connection) as c:
                cursor = c.execute(_CLAIM, (job, _instant(until), _instant(now)))
                return cursor.rowcount == 1

        return await self._run(claim)

    async def release_mirror_job(self, job: str) -> None:
        """Drop a job's claim."""
        await self._run(lambda c: c.execute("DELETE FROM mirror_claims WHERE job = ?", (job,)))
