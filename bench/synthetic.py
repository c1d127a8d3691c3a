"""A large synthetic store, built through the storage layer, for measuring how the server scales.

``python bench/synthetic.py --projects 100000 --files 1000000 --out DIR`` makes a data
directory that ``ministry serve --data DIR`` serves as it would a real one: the default
index ``main``, projects with releases and files, and a change log whose serials agree
with every file's serial and every project's ``last_serial``. Uploading a million files
would take hours, and even ``import_records`` (the path ``ministry migrate`` uses) turns
each row into a record and back: here the store is opened once, so that its own code
makes the schema, and the rows are then written straight into its tables with
``executemany``, in one transaction without a journal, the tables' indexes made after
the rows (10,000,000 files in minutes rather than the best part of an hour).

The number of files per project follows a power law, as on a real index: most projects
have a handful of files, a few have thousands. Files are metadata only, except for a few
real wheels and sdists in the blob store that every file points at (blobs are
content-addressed, so many files can share one), so that any file downloads.

``--redis redis://HOST:PORT/N`` puts the metadata in that Redis database instead, in the
Redis store's own key layout: the store is opened once (which records its layout) and
makes the default index itself, then every project, release, file and change is written
as the store would write it (its records, under its key names), in pipelines of a few
thousand commands, and the serial set last. The database must be empty or hold an earlier
build (its ``synthetic`` key says which); ``ministry serve --db URL --data DIR`` serves it.

A build is skipped when DIR already holds a complete one with the same parameters.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import io
import json
import math
import random
import shutil
import sqlite3
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_version
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ministry.core.hashing import StreamingHasher, sha256_hex
from ministry.core.models import (
    DEFAULT_INDEX,
    Actor,
    Change,
    DistFile,
    IndexConfig,
    PackageType,
    Project,
    Release,
)
from ministry.core.permissions import EVERYONE
from ministry.core.records import dumps
from ministry.storage.filesystem import FileBlobStore
from ministry.storage.sqlite import SqliteMetadataStore
from ministry.storage.sqlite.rows import FILE_COLUMNS, index_json

__all__ = ["BuildResult", "Plan", "build", "file_counts", "project_name"]

#: Bumped whenever the same parameters would build a different store.
FORMAT = 3
MARKER = "synthetic.json"
#: The key (under the store's prefix) a complete Redis build sets last.
_REDIS_MARKER = "synthetic"
DATABASE = "ministry.sqlite3"
UPLOADER = "cli:synthetic"
#: Uploads are spread over these years, oldest serial first.
_EPOCH = datetime(2015, 1, 1, tzinfo=UTC)
_SPAN = (datetime(2025, 6, 1, tzinfo=UTC) - _EPOCH).total_seconds()
_PYTHONS = ("cp38", "cp39", "cp310", "cp311", "cp312", "cp313")
_PLATFORMS = (
    "manylinux_2_17_x86_64.manylinux2014_x86_64",
    "manylinux_2_17_aarch64.manylinux2014_aarch64",
    "musllinux_1_2_x86_64",
    "macosx_10_9_x86_64",
    "macosx_11_0_arm64",
    "win_amd64",
    "win32",
)
#: Binary wheel tags, enough for the largest release (20 files, one of them the sdist).
_BINARY_TAGS = tuple(f"{py}-{py}-{platform}" for platform in _PLATFORMS for py in _PYTHONS)
_REQUIRES_PYTHON = (None, ">=3.8", ">=3.9", ">=3.10", ">=3.7,<4", ">=3.11")
#: Sizes of the real blobs: small pure wheels up to a mid-sized binary one.
_BLOB_SIZES = (2_000, 9_000, 31_000, 120_000, 480_000)
_PROGRESS_STEP = 5_000
#: Shifts the power law right, so that fewer projects than half have a single file.
_SHIFT = 2


@dataclass(frozen=True)
class Plan:
    """What to build; a directory built from an equal plan is not built again."""

    projects: int
    files: int
    seed: int = 1
    format: int = FORMAT
    #: The Redis database the metadata goes to (None: SQLite in the directory).
    redis: str | None = None


@dataclass(frozen=True)
class BuildResult:
    """What ``build`` did: the plan, whether it built or found the store, and how long it took."""

    plan: Plan
    built: bool
    seconds: float
    records: int


@dataclass(frozen=True)
class Blob:
    """A real distribution file in the blob store, and its metadata file if it is a wheel."""

    sha256: str
    md5: str
    blake2b_256: str
    size: int
    metadata_sha256: str | None


# -- how many files each project has -------------------------------------------------------


def _power_law_mean(exponent: float, cap: int) -> float:
    weights = [math.pow(k + _SHIFT, -exponent) for k in range(1, cap + 1)]
    return sum(k * w for k, w in enumerate(weights, 1)) / sum(weights)


def _exponent_for(mean: float, cap: int) -> float:
    """The power-law exponent whose mean, on 1..cap, is ``mean`` (bisection: mean falls with it)."""
    low, high = 0.0, 6.0
    for _ in range(60):
        middle = (low + high) / 2
        if _power_law_mean(middle, cap) > mean:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _quantiles(projects: int, exponent: float, cap: int) -> list[int]:
    """File counts at evenly spaced quantiles: the same distribution every time, no noise."""
    weights = [math.pow(k + _SHIFT, -exponent) for k in range(1, cap + 1)]
    total = sum(weights)
    counts, cumulative, k = [], 0.0, 0
    for i in range(projects):
        wanted = (i + 0.5) / projects * total
        while k < cap - 1 and cumulative + weights[k] < wanted:
            cumulative += weights[k]
            k += 1
        counts.append(k + 1)
    return counts


def file_counts(projects: int, files: int, seed: int) -> list[int]:
    """Files per project, summing to ``files``: a power law, most small, a few in thousands."""
    if not 1 <= projects <= files:
        raise ValueError("need at least one project and at least one file per project")
    mean = files / projects
    cap = max(files // 200, math.ceil(5 * mean), 1)
    counts = _quantiles(projects, _exponent_for(mean, cap), cap)
    # The quantiles miss the total a little: the largest projects make up the difference.
    difference = files - sum(counts)
    order = sorted(range(projects), key=counts.__getitem__, reverse=True)
    step = 1 if difference > 0 else -1
    position = 0
    while difference:
        i = order[position % projects]
        if counts[i] + step >= 1:
            counts[i] += step
            difference -= step
        position += 1
    random.Random(seed).shuffle(counts)
    return counts


def release_sizes(count: int) -> list[int]:
    """Files per release of a project with ``count`` files: more wheels per release when larger."""
    per_release = 1 if count == 1 else min(20, max(2, round(math.sqrt(count) / 3.5)))
    sizes = [per_release] * (count // per_release)
    if count % per_release:
        sizes.append(count % per_release)
    return sizes


# -- the timeline: every release's upload time and first serial ------------------------------


@dataclass(frozen=True)
class Timeline:
    """Releases of every project in upload order, with the first serial and time of each.

    Release ``g`` of project ``p`` is ``first_release[p] + r``; its files have the
    serials ``serial[g]`` onwards, one second apart from ``seconds[g]``.
    """

    first_release: list[int]
    sizes: list[int]
    seconds: list[float]
    serial: list[int]
    order: list[int]

    def releases_of(self, project: int) -> range:
        """The global ids of a project's releases, oldest first."""
        return range(self.first_release[project], self.first_release[project + 1])


def timeline(counts: list[int], seed: int, first_serial: int) -> Timeline:
    """Spread each project's releases over the years, then number their files in time order."""
    rng = random.Random(seed + 1)
    first_release, sizes, planned = [0], [], []
    for count in counts:
        releases = release_sizes(count)
        start = rng.uniform(0, 0.8) * _SPAN
        gap = (_SPAN - start) / len(releases) * rng.uniform(0.3, 1.0)
        planned += [start + r * gap for r in range(len(releases))]
        sizes += releases
        first_release.append(len(sizes))
    order = sorted(range(len(sizes)), key=planned.__getitem__)
    seconds, serial = [0.0] * len(sizes), [0] * len(sizes)
    clock, next_serial = -1.0, first_serial
    for g in order:
        # Strictly increasing: a later serial is never an earlier upload.
        clock = max(planned[g], clock + 1.0)
        seconds[g], serial[g] = clock, next_serial
        clock += sizes[g] - 1
        next_serial += sizes[g]
    return Timeline(first_release, sizes, seconds, serial, order)


# -- the real blobs ------------------------------------------------------------------------


def _wheel(number: int, padding: bytes) -> tuple[bytes, bytes]:
    """A real wheel (and its METADATA) with ``padding`` as the payload."""
    name, version = f"synthetic_blob_{number}", f"1.0.{number}"
    info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    members = {
        f"{name}/__init__.py": b"",
        f"{name}/payload.bin": padding,
        f"{info}/METADATA": metadata,
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: synthetic\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = "".join(f"{path},,\n" for path in members) + f"{info}/RECORD,,\n"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in {**members, f"{info}/RECORD": record.encode()}.items():
            archive.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), data)
    return out.getvalue(), metadata


def _sdist(number: int, padding: bytes) -> bytes:
    """A real sdist (.tar.gz) with ``padding`` as the payload."""
    root = f"synthetic_blob_{number}-1.0.{number}"
    pkg_info = f"Metadata-Version: 2.1\nName: synthetic_blob_{number}\nVersion: 1.0.{number}\n"
    out = io.BytesIO()
    # mtime=0: the same bytes, and so the same sha256, on every build.
    with (
        gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as packed,
        tarfile.open(fileobj=packed, mode="w") as archive,
    ):
        for path, data in ((f"{root}/PKG-INFO", pkg_info.encode()), (f"{root}/payload", padding)):
            member = tarfile.TarInfo(path)
            member.size, member.mtime = len(data), 1577836800
            archive.addfile(member, io.BytesIO(data))
    return out.getvalue()


def _blob(data: bytes, metadata_sha256: str | None) -> Blob:
    hasher = StreamingHasher()
    hasher.update(data)
    digests = hasher.digests()
    return Blob(digests.sha256, digests.md5, digests.blake2b_256, digests.size, metadata_sha256)


async def store_blobs(blobs: FileBlobStore, seed: int) -> tuple[list[Blob], list[Blob]]:
    """Put a few real wheels and sdists (and the wheels' metadata files) in the blob store."""
    rng = random.Random(seed + 2)
    wheels, sdists = [], []
    for number, size in enumerate(_BLOB_SIZES):
        wheel, metadata = _wheel(number, rng.randbytes(size))
        await blobs.put_bytes(metadata)
        await blobs.put_bytes(wheel)
        wheels.append(_blob(wheel, sha256_hex(metadata)))
        sdist = _sdist(number, rng.randbytes(size))
        await blobs.put_bytes(sdist)
        sdists.append(_blob(sdist, None))
    return wheels, sdists


# -- the rows ------------------------------------------------------------------------------

Row = tuple[Any, ...]
_INSERT_FILE = f"INSERT INTO files ({FILE_COLUMNS}) VALUES ({', '.join('?' * 17)})"  # noqa: S608
_INSERT_CHANGE = (
    "INSERT INTO changelog (serial, time, actor, address, action, index_name, project,"
    " version, filename, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: Rows per ``executemany``: a batch of files, releases or changes in one call.
_ROWS = 50_000


@dataclass(frozen=True)
class Catalogue:
    """Everything the rows are made from."""

    counts: list[int]
    timeline: Timeline
    wheels: list[Blob]
    sdists: list[Blob]
    created: datetime

    def row_count(self) -> int:
        """Rows in total: the index, its change, projects, releases, files and changes."""
        releases, files = len(self.timeline.sizes), sum(self.counts)
        return 2 + len(self.counts) + releases + 2 * files


def display_name(project: int) -> str:
    """``proj_00042``: the name as its metadata spells it."""
    return f"proj_{project:05d}"


def project_name(project: int) -> str:
    """``proj-00042``: the normalized name, as URLs and the store know it."""
    return display_name(project).replace("_", "-")


def _version(release: int) -> str:
    return f"{1 + release // 100}.{release // 10 % 10}.{release % 10}"


def _time(seconds: float) -> datetime:
    return _EPOCH + timedelta(seconds=seconds)


def _filenames(stem: str, size: int) -> list[tuple[str, PackageType, str]]:
    """(filename, packagetype, python_version) of a release's files: an sdist, then wheels."""
    if size == 1:
        return [(f"{stem}-py3-none-any.whl", "bdist_wheel", "py3")]
    tags = ("py3-none-any",) if size == 2 else _BINARY_TAGS[: size - 1]
    wheels: list[tuple[str, PackageType, str]] = [
        (f"{stem}-{tag}.whl", "bdist_wheel", tag.split("-")[0]) for tag in tags
    ]
    return [(f"{stem}.tar.gz", "sdist", "source"), *wheels]


def index_rows(created: datetime) -> tuple[Row, Row]:
    """The default index as ``IndexService.ensure_default`` makes it, and its change
    (serial 1)."""
    config = IndexConfig(DEFAULT_INDEX, uploaders=(EVERYONE,))
    detail = index_json(config)
    index = (DEFAULT_INDEX, created.isoformat(), detail)
    change = (1, created.isoformat(), "ministry", "local", "add-index", DEFAULT_INDEX,
              None, None, None, detail)  # fmt: skip
    return index, change


@cache
def _canonical(version: str) -> str:
    return canonicalize_version(version)


def project_rows(catalogue: Catalogue, project: int) -> tuple[Row, list[Row], list[Row]]:
    """A project's row, its releases' rows and its files' rows, as the store writes them."""
    line = catalogue.timeline
    display, name = display_name(project), project_name(project)
    releases = line.releases_of(project)
    last = releases[-1]
    created = _time(line.seconds[releases[0]]).isoformat()
    last_serial = line.serial[last] + line.sizes[last] - 1
    requires_python = _REQUIRES_PYTHON[project % len(_REQUIRES_PYTHON)]
    release_rows: list[Row] = []
    file_rows: list[Row] = []
    for r, g in enumerate(releases):
        version = _version(r)
        metadata = {"metadata_version": "2.1", "name": display, "version": version,
                    "summary": f"Synthetic project {project}"}  # fmt: skip
        if requires_python:
            metadata["requires_python"] = requires_python
        when = _time(line.seconds[g])
        release_rows.append((DEFAULT_INDEX, name, _canonical(version), version,
                             when.isoformat(), json.dumps(metadata)))  # fmt: skip
        first_serial = line.serial[g]
        for j, (filename, kind, python) in enumerate(
            _filenames(f"{display}-{version}", line.sizes[g])
        ):
            pool = catalogue.sdists if kind == "sdist" else catalogue.wheels
            blob = pool[(project + r + j) % len(pool)]
            file_rows.append((
                DEFAULT_INDEX, filename, name, version, kind, python, requires_python,
                blob.size, blob.sha256, blob.md5, blob.blake2b_256,
                (when + timedelta(seconds=j)).isoformat(), UPLOADER, blob.metadata_sha256,
                None, first_serial + j, None,
            ))  # fmt: skip
    return (DEFAULT_INDEX, name, display, created, last_serial), release_rows, file_rows


def change_rows(catalogue: Catalogue) -> Iterator[Row]:
    """One ``add-file`` change per file, in serial order."""
    line = catalogue.timeline
    project_of = _project_of_release(line)
    for g in line.order:
        project = project_of[g]
        display, name = display_name(project), project_name(project)
        version = _version(g - line.first_release[project])
        when = _time(line.seconds[g])
        first_serial = line.serial[g]
        for j, (filename, _, _) in enumerate(_filenames(f"{display}-{version}", line.sizes[g])):
            yield (first_serial + j, (when + timedelta(seconds=j)).isoformat(), UPLOADER,
                   "local", "add-file", DEFAULT_INDEX, name, version, filename, None)  # fmt: skip


def _project_of_release(line: Timeline) -> list[int]:
    """The project of every release, for walking releases in serial order."""
    owners = [0] * len(line.sizes)
    for project in range(len(line.first_release) - 1):
        for g in line.releases_of(project):
            owners[g] = project
    return owners


def _batches(rows: Iterator[Row]) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= _ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


# -- building ------------------------------------------------------------------------------


def _read_marker(out: Path) -> dict[str, Any] | None:
    try:
        marker: dict[str, Any] = json.loads((out / MARKER).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return marker


def _prepare(out: Path, plan: Plan) -> None:
    """Clear a directory left by an earlier (other or unfinished) build; never a foreign one."""
    if out.exists() and any(out.iterdir()) and _read_marker(out) is None:
        raise SystemExit(f"{out} holds something other than a synthetic store; not touching it")
    for path in (out / DATABASE, out / "blobs", out / "tmp"):
        if path.is_dir():
            shutil.rmtree(path)
    for path in out.glob(f"{DATABASE}*"):
        path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    _write_marker(out, plan, complete=False)


def _plan_fields(plan: Plan) -> dict[str, Any]:
    """The plan as its marker records it: a SQLite plan without ``redis``, as markers
    written before Redis builds existed have it (an equal store is not built again)."""
    fields = asdict(plan)
    if fields["redis"] is None:
        del fields["redis"]
    return fields


def _write_marker(out: Path, plan: Plan, *, complete: bool, **extra: Any) -> None:
    text = json.dumps({**_plan_fields(plan), "complete": complete, **extra}, indent=2)
    (out / MARKER).write_text(text + "\n")


def _secondary_indexes(connection: sqlite3.Connection) -> list[tuple[str, str]]:
    """The indexes the schema made on the tables filled here (name and SQL): dropped
    while the rows go in, made again at the end, which is several times faster."""
    found = connection.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        " AND tbl_name IN ('files', 'releases', 'projects', 'changelog')"
    ).fetchall()
    return [(str(name), str(sql)) for name, sql in found]


def _fill(path: Path, catalogue: Catalogue, progress: Progress, task: Any) -> int:
    """Write every row straight into the store's tables: one transaction, the store's own
    schema (made by opening it), no journal while building."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-262144",
                       "temp_store=MEMORY", "locking_mode=EXCLUSIVE"):  # fmt: skip
            connection.execute(f"PRAGMA {pragma}")
        indexes = _secondary_indexes(connection)
        connection.execute("BEGIN")
        for name, _sql in indexes:
            connection.execute(f"DROP INDEX {name}")
        index, change = index_rows(catalogue.created)
        connection.execute("INSERT INTO indexes VALUES (?, ?, ?)", index)
        connection.execute(_INSERT_CHANGE, change)
        written = 2
        progress.advance(task, written)
        projects: list[Row] = []
        releases: list[Row] = []
        files: list[Row] = []
        for project in range(len(catalogue.counts)):
            project_row, release_rows, file_rows = project_rows(catalogue, project)
            projects.append(project_row)
            releases += release_rows
            files += file_rows
            if len(files) >= _ROWS or project == len(catalogue.counts) - 1:
                connection.executemany("INSERT INTO projects VALUES (?, ?, ?, ?, ?)", projects)
                connection.executemany("INSERT INTO releases VALUES (?, ?, ?, ?, ?, ?)", releases)
                connection.executemany(_INSERT_FILE, files)
                done = len(projects) + len(releases) + len(files)
                written += done
                progress.advance(task, done)
                projects, releases, files = [], [], []
        for batch in _batches(change_rows(catalogue)):
            connection.executemany(_INSERT_CHANGE, batch)
            written += len(batch)
            progress.advance(task, len(batch))
        progress.update(task, description="indexing")
        for _name, sql in indexes:
            connection.execute(sql)
        connection.execute("COMMIT")
    finally:
        connection.close()
    return written


#: Commands per Redis pipeline while filling.
_REDIS_PIPELINE = 5_000
_FILE_FIELDS = FILE_COLUMNS.replace("index_name", "index").split(", ")


def _file_record(row: Row) -> DistFile:
    values = dict(zip(_FILE_FIELDS, row, strict=True))
    values["upload_time"] = datetime.fromisoformat(values["upload_time"])
    return DistFile(**values)


def _change_record(row: Row) -> Change:
    serial, when, actor, address, action, index, project, version, filename, detail = row
    return Change(serial, datetime.fromisoformat(when), actor, action, index, project, version,
                  filename, detail, address)  # fmt: skip


async def _fill_redis(url: str, plan: Plan, catalogue: Catalogue, progress: Progress,
                      task: Any, *, flush: bool) -> int:  # fmt: skip
    """Write every record into Redis as the Redis store keeps it: the store makes its
    layout and the default index (serial 1); projects, releases, files and changes follow
    in pipelines under the store's own key names, and the serial is set last. ``flush``:
    the database was filled by an earlier build into the same directory, and is emptied."""
    from ministry.storage.redis import RedisMetadataStore
    from ministry.storage.redis.durability import RedisOptions

    store = RedisMetadataStore(url, RedisOptions(durability="warn"))
    redis = store.redis
    if await redis.dbsize():
        if not flush:
            raise SystemExit(f"{url} holds keys that no earlier build made; not touching them")
        await redis.flushdb()
    await store.open()
    try:
        await store.create_index(IndexConfig(DEFAULT_INDEX, uploaders=(EVERYONE,)),
                                 Actor("ministry", "local"))  # fmt: skip
        written = 2
        progress.advance(task, written)
        pipe = redis.pipeline(transaction=False)
        queued = 0

        async def flush(force: bool = False) -> None:
            nonlocal pipe, queued
            if queued >= _REDIS_PIPELINE or (force and queued):
                await pipe.execute()
                pipe, queued = redis.pipeline(transaction=False), 0

        index = DEFAULT_INDEX
        for number in range(len(catalogue.counts)):
            project_row, release_rows, file_rows = project_rows(catalogue, number)
            _i, name, display, created, last_serial = project_row
            project = Project(index, name, display, datetime.fromisoformat(created), last_serial)
            pipe.hset(store._projects(index), name, dumps(project))
            releases = {
                canonical: dumps(Release(index, name, version, datetime.fromisoformat(when),
                                         json.loads(metadata)))
                for _i, _n, canonical, version, when, metadata in release_rows
            }  # fmt: skip
            pipe.hset(store._releases(index, name), mapping=releases)
            files = [_file_record(row) for row in file_rows]
            pipe.hset(store._files(index), mapping={f.filename: dumps(f) for f in files})
            pipe.sadd(store._project_files(index, name), *(f.filename for f in files))
            pipe.hset(store._hashes(index), mapping={f.sha256: f.filename for f in files})
            queued += 5 + len(files)
            done = 1 + len(release_rows) + len(file_rows)
            written += done
            progress.advance(task, done)
            await flush()
        await flush(force=True)
        last = 1
        for batch in _batches(change_rows(catalogue)):
            changes = [_change_record(row) for row in batch]
            await redis.zadd(store.key("changes"), {dumps(c): c.serial for c in changes})
            last = max(last, changes[-1].serial)
            written += len(batch)
            progress.advance(task, len(batch))
        await redis.set(store.key("serial"), last)
        await redis.set(store.key(_REDIS_MARKER), json.dumps(_plan_fields(plan)))
    finally:
        await store.close()
    return written


def _redis_holds(plan: Plan) -> bool:
    """Whether the Redis database holds the complete build of ``plan`` (a Redis restarted
    without persistence comes back empty)."""
    import redis

    assert plan.redis is not None
    client = redis.Redis.from_url(plan.redis, decode_responses=True)
    try:
        found = client.get(f"ministry:{_REDIS_MARKER}")
    finally:
        client.close()
    return found is not None and json.loads(str(found)) == _plan_fields(plan)


async def _prepare_blobs(out: Path, seed: int) -> tuple[list[Blob], list[Blob]]:
    """The blobs only (the metadata goes to Redis)."""
    blobs = FileBlobStore(out / "blobs")
    await blobs.open()
    return await store_blobs(blobs, seed)


async def _prepare_store(out: Path, seed: int) -> tuple[list[Blob], list[Blob]]:
    """The blobs, and an empty store with the schema the server's code makes."""
    blobs = FileBlobStore(out / "blobs")
    await blobs.open()
    found = await store_blobs(blobs, seed)
    store = SqliteMetadataStore(out / DATABASE)
    await store.open()
    await store.close()
    return found


def _load(out: Path, plan: Plan, console: Console, *, flush: bool) -> int:
    if plan.redis is None:
        wheels, sdists = asyncio.run(_prepare_store(out, plan.seed))
    else:
        wheels, sdists = asyncio.run(_prepare_blobs(out, plan.seed))
    counts = file_counts(plan.projects, plan.files, plan.seed)
    catalogue = Catalogue(counts, timeline(counts, plan.seed, 2), wheels, sdists, _EPOCH)
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("writing rows", total=catalogue.row_count())
        if plan.redis is not None:
            filling = _fill_redis(plan.redis, plan, catalogue, progress, task, flush=flush)
            return asyncio.run(filling)
        return _fill(out / DATABASE, catalogue, progress, task)


def build(out: Path, plan: Plan, console: Console | None = None) -> BuildResult:
    """Build the store in ``out`` unless an equal plan is built there already."""
    console = console or Console(stderr=True)
    marker = _read_marker(out)
    if (
        marker is not None
        and marker.get("complete")
        and {key: value for key, value in marker.items() if value is not None}
        == _complete_marker(marker, plan)
        and (plan.redis is None or _redis_holds(plan))
    ):
        console.print(f"{out}: already built ({plan.projects} projects, {plan.files} files)")
        return BuildResult(plan, False, float(marker["build_seconds"]), int(marker["records"]))
    started = time.perf_counter()
    # A Redis database is emptied only when this directory's earlier build filled it.
    flush = marker is not None and plan.redis is not None and marker.get("redis") == plan.redis
    _prepare(out, plan)
    loaded = _load(out, plan, console, flush=flush)
    seconds = round(time.perf_counter() - started, 2)
    _write_marker(out, plan, complete=True, build_seconds=seconds, records=loaded)
    console.print(f"{out}: {loaded} rows in {seconds:.1f} s")
    return BuildResult(plan, True, seconds, loaded)


def _complete_marker(marker: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """The marker a complete build of ``plan`` leaves (its timings taken from ``marker``)."""
    extra = {key: marker.get(key) for key in ("build_seconds", "records")}
    return {**_plan_fields(plan), "complete": True, **extra}


def main(argv: list[str] | None = None) -> int:
    """Command line: ``--projects N --files N --out DIR [--seed N]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--projects", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, required=True, help="the data directory to build")
    parser.add_argument("--seed", type=int, default=1, help="same seed, same store")
    parser.add_argument("--redis", metavar="URL", help="the metadata in this Redis database")
    arguments = parser.parse_args(argv)
    plan = Plan(arguments.projects, arguments.files, arguments.seed, redis=arguments.redis)
    build(arguments.out, plan)
    return 0


if __name__ == "__main__":
    sys.exit(main())
