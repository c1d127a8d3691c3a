"""Mirror jobs: the ``[[mirror]]`` entries of the config file, run by the server on a schedule.

A job runs when its interval has passed since its last run finished. Every
worker process and every node of a cluster runs the same schedule, so a job is
claimed in the shared store before it runs: exactly one of them runs it, and
all of them show its last result in ``/-/metrics`` and on the index page.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from packaging.requirements import InvalidRequirement, Requirement

from ministry.core.durations import parse_duration
from ministry.core.mirror_targets import (
    Targets,
    marker_environments,
    requirement_applies,
    targets,
)
from ministry.core.models import MirrorRun
from ministry.core.requirements_files import parse_requirements_file
from ministry.errors import InvalidRequest, MinistryError
from ministry.services.indexes import UPSTREAM_INDEX
from ministry.services.mirror import (
    Mirror,
    MirrorListener,
    MirrorOutcome,
    MirrorRequest,
    QuietListener,
)
from ministry.storage.protocols import MirrorRunStore

__all__ = ["MirrorEntries", "MirrorJob", "MirrorScheduler", "gather_requirements", "mirror_jobs"]

log = logging.getLogger(__name__)

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}\Z")
_KEYS = frozenset(
    {
        "name", "index", "projects", "requirements", "with_deps", "python_versions",
        "platforms", "only_binary", "only_source", "pre", "newest", "all", "every",
        "connections",
    }
)  # fmt: skip
_DEFAULT_EVERY = timedelta(hours=1)
# A claim outlives a crashed worker by at most this (or the job's interval, if longer).
_MIN_LEASE = timedelta(minutes=10)
# Workers look at the schedule at least this often, to see runs made by others.
_POLL = 60.0


class MirrorEntries(Protocol):
    """What jobs are made of: the config file's ``[[mirror]]`` tables (``config_file.ConfigFile``
    is one); services know the entries, never the file's reader."""

    @property
    def path(self) -> Path:
        """The file, against whose directory requirements files are found."""

    @property
    def mirrors(self) -> Sequence[Mapping[str, Any]]:
        """The ``[[mirror]]`` tables as written."""

    def where(self, *place: str | int) -> str:
        """``FILE, line N`` for a table or key, for messages."""


@dataclass(frozen=True)
class MirrorJob:
    """One scheduled mirror run: what to take, into which index, how often."""

    name: str
    index: str = UPSTREAM_INDEX
    projects: tuple[str, ...] = ()
    requirement_files: tuple[Path, ...] = ()
    targets: Targets = field(default_factory=Targets)
    with_deps: bool = False
    everything: bool = False
    every: timedelta = _DEFAULT_EVERY
    connections: int = 4


@dataclass(frozen=True)
class GatheredRequirements:
    """The requirements of projects and files, and the lines of files that were left out."""

    requirements: tuple[Requirement, ...]
    warnings: tuple[str, ...]


def gather_requirements(
    projects: Iterable[str], files: Iterable[Path], chosen: Targets
) -> GatheredRequirements:
    """Requirements named directly and in pip requirements files (``-r`` nested ones too).

    Files are read at every run, so a job follows its requirements file as it changes.
    Requirements whose markers hold on none of the targets are dropped.
    """
    found: list[Requirement] = []
    warnings: list[str] = []
    for text in projects:
        try:
            found.append(Requirement(text))
        except InvalidRequirement as exc:
            raise InvalidRequest(f"{text!r} is not a requirement: {exc}") from exc
    pending = list(files)
    read: set[Path] = set()
    while pending:
        path = pending.pop(0)
        if path.resolve() in read:
            continue
        read.add(path.resolve())
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidRequest(f"Cannot read requirements file {path}: {exc.strerror}.") from exc
        parsed = parse_requirements_file(text, str(path))
        warnings += [
            f"{path}, line {s.line_number}: skipped {s.line!r}: {s.reason}" for s in parsed.skipped
        ]
        warnings += [
            f"{path}: constraints file {c} not applied; pin versions in a requirements file"
            for c in parsed.constraints
        ]
        found += parsed.requirements
        pending += [path.parent / include for include in parsed.includes]
    environments = marker_environments(chosen)
    applicable = tuple(r for r in found if requirement_applies(r, environments))
    return GatheredRequirements(applicable, tuple(warnings))


def mirror_jobs(config: MirrorEntries | None) -> tuple[MirrorJob, ...]:
    """The ``[[mirror]]`` entries of the config file as jobs; a mistake stops the start."""
    if config is None:
        return ()
    jobs = [_job(config, number, entry) for number, entry in enumerate(config.mirrors)]
    names = [job.name for job in jobs]
    for number, name in enumerate(names):
        if name in names[:number]:
            raise InvalidRequest(
                f"{config.where('mirror', number)}: a second [[mirror]] entry named {name!r}."
            )
    return tuple(jobs)


def _job(config: MirrorEntries, number: int, entry: Mapping[str, Any]) -> MirrorJob:
    def where(key: str | None = None) -> str:
        place = config.where("mirror", number, key) if key else config.where("mirror", number)
        return f"{place}: [[mirror]] {entry.get('name', number + 1)!r}"

    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise InvalidRequest(
            f"{where(unknown[0])}: unknown key {unknown[0]!r}; the keys of [[mirror]] are "
            f"{', '.join(sorted(_KEYS))}."
        )
    name = _get(entry, "name", str, where("name"), None)
    if name is None or not _NAME.match(name):
        raise InvalidRequest(f"{where('name')}: 'name' must be a short name like 'wheels-for-ci'.")
    try:
        chosen = targets(
            _strings(entry, "python_versions", where("python_versions")),
            _strings(entry, "platforms", where("platforms")),
            only_binary=_get(entry, "only_binary", bool, where("only_binary"), False),
            only_source=_get(entry, "only_source", bool, where("only_source"), False),
            pre=_get(entry, "pre", bool, where("pre"), False),
            newest=_get(entry, "newest", int, where("newest"), None),
        )
    except InvalidRequest as exc:
        raise InvalidRequest(f"{where()}: {exc.message}") from exc
    try:
        every = parse_duration(_get(entry, "every", str, where("every"), "1h"))
    except InvalidRequest as exc:
        raise InvalidRequest(f"{where('every')}: {exc.message}") from exc
    if every.total_seconds() < 1:
        raise InvalidRequest(f"{where('every')}: 'every' must be at least 1s.")
    job = MirrorJob(
        name=name,
        index=_get(entry, "index", str, where("index"), UPSTREAM_INDEX),
        projects=_strings(entry, "projects", where("projects")),
        requirement_files=tuple(
            config.path.parent / file
            for file in _strings(entry, "requirements", where("requirements"))
        ),
        targets=chosen,
        with_deps=_get(entry, "with_deps", bool, where("with_deps"), False),
        everything=_get(entry, "all", bool, where("all"), False),
        every=every,
        connections=_get(entry, "connections", int, where("connections"), 4),
    )
    if job.connections < 1:
        raise InvalidRequest(f"{where('connections')}: 'connections' must be 1 or more.")
    if job.everything == bool(job.projects or job.requirement_files):
        raise InvalidRequest(
            f"{where()}: give 'projects' or 'requirements', or 'all = true' (not both)."
        )
    try:
        gather_requirements(job.projects, (), job.targets)  # a bad requirement stops the start
    except InvalidRequest as exc:
        raise InvalidRequest(f"{where('projects')}: {exc.message}") from exc
    return job


def _get(entry: Mapping[str, Any], key: str, kind: type, where: str, default: Any) -> Any:
    value = entry.get(key, default)
    # bool is an int in Python; a count given as `true` is a mistake, not 1.
    if value is not default and (
        not isinstance(value, kind) or (kind is int and isinstance(value, bool))
    ):
        raise InvalidRequest(f"{where}: {key!r} must be a {kind.__name__}, not {value!r}.")
    return value


def _strings(entry: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidRequest(f"{where}: {key!r} must be a list of strings.")
    return tuple(value)


class MirrorScheduler:
    """Runs the jobs when they are due, one worker at a time, and records their results."""

    def __init__(
        self,
        jobs: Sequence[MirrorJob],
        mirror: Mirror,
        metadata: MirrorRunStore,
    ) -> None:
        self._jobs = tuple(jobs)
        self._mirror = mirror
        self._metadata = metadata
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start one loop per job (call with the event loop running)."""
        self._tasks = [asyncio.ensure_future(self._loop(job)) for job in self._jobs]

    async def stop(self) -> None:
        """Cancel the loops; a run in progress is abandoned (its downloads resume next time)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _loop(self, job: MirrorJob) -> None:
        while True:
            try:
                wait = await self._due_in(job)
                if wait <= 0:
                    wait = await self._run_if_claimed(job)
            except asyncio.CancelledError:
                raise
            except Exception:  # the schedule must survive a store that failed for a moment
                log.exception("mirror job %s: the schedule failed; trying again later", job.name)
                wait = _POLL
            await asyncio.sleep(min(max(wait, 0.5), _POLL))

    async def _due_in(self, job: MirrorJob) -> float:
        """Seconds until the job is due (0 or less: due now)."""
        runs = {run.job: run for run in await self._metadata.list_mirror_runs()}
        last = runs.get(job.name)
        if last is None:
            return 0.0
        return (last.finished + job.every - datetime.now(UTC)).total_seconds()

    async def _run_if_claimed(self, job: MirrorJob) -> float:
        now = datetime.now(UTC)
        lease = max(job.every, _MIN_LEASE)
        if not await self._metadata.claim_mirror_job(job.name, now, now + lease):
            return _POLL  # another worker runs it
        try:
            run = await self.run(job)
        finally:
            await self._metadata.release_mirror_job(job.name)
        log.info("mirror job %s: %s", job.name, run.message)
        return job.every.total_seconds()

    async def run(self, job: MirrorJob, listener: MirrorListener | None = None) -> MirrorRun:
        """Run a job now and record its result."""
        started = datetime.now(UTC)
        try:
            gathered = gather_requirements(job.projects, job.requirement_files, job.targets)
            for warning in gathered.warnings:
                log.warning("mirror job %s: %s", job.name, warning)
            request = MirrorRequest(
                index=job.index,
                requirements=gathered.requirements,
                targets=job.targets,
                with_deps=job.with_deps,
                everything=job.everything,
                connections=job.connections,
            )
            outcome = await self._mirror.run(request, listener or QuietListener())
            run = _result(job, started, outcome)
        except MinistryError as exc:
            run = MirrorRun(job.name, job.index, started, datetime.now(UTC), False,
                            message=exc.message)  # fmt: skip
        except Exception as exc:
            log.exception("mirror job %s failed", job.name)
            run = MirrorRun(job.name, job.index, started, datetime.now(UTC), False,
                            message=f"internal error: {type(exc).__name__}")  # fmt: skip
        await self._metadata.put_mirror_run(run)
        return run


def _result(job: MirrorJob, started: datetime, outcome: MirrorOutcome) -> MirrorRun:
    message = (
        f"fetched {outcome.fetched} files ({outcome.fetched_bytes:,} bytes); "
        f"{outcome.present} of {outcome.selected} selected were cached already"
    )
    if outcome.failed:
        message += f"; {len(outcome.failed)} failed, first {outcome.failed[0][0]}: "
        message += outcome.failed[0][1]
    if outcome.stale:
        message += (
            f"; the upstream did not answer for {len(outcome.stale)} projects "
            f"(first {outcome.stale[0]}): their kept pages were used"
        )
    if outcome.unmatched:
        message += f"; not found: {', '.join(outcome.unmatched[:5])}"
    return MirrorRun(
        job=job.name,
        index=job.index,
        started=started,
        finished=datetime.now(UTC),
        ok=outcome.ok,
        files=outcome.fetched,
        bytes=outcome.fetched_bytes,
        failed=len(outcome.failed),
        message=message,
    )
