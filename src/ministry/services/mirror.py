"""Filling a proxy index ahead of time: what a set of requirements needs, for chosen targets.

A mirror run reads project pages through the proxy's own page cache (so the
server afterwards serves exactly the pages the run saw), picks files with the
filters of ``core.mirror_targets``, follows dependencies through PEP 658
metadata files (or, where an upstream offers none, the files themselves), and
fetches what is not cached yet into the proxy's file cache, where the server
finds it as if a client had asked for it.

Downloads go to ``<spool>/mirror/<sha256>.part`` and are resumed with a range
request after an interruption, so a killed run never fetches a byte twice that
it already had; a part is only ever cached once its sha256 matches the page.
Pages are revalidated with the upstream's ETag, so a run after an unchanged
upstream costs one ``304`` per project and fetches nothing.

``--all`` takes the union of every upstream's project list, each name only from
the upstreams the index would ask for it. An upstream whose list cannot be read
does not stop the run: what the others list is mirrored, and the run fails
naming that upstream, so a scheduled job shows it and a rerun completes it.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from packaging.metadata import parse_email
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name, canonicalize_version
from packaging.version import InvalidVersion, Version

from ministry.core.archives import inspect_sdist, inspect_wheel
from ministry.core.masking import mask_url
from ministry.core.mirror_targets import (
    Targets,
    dependencies,
    file_wanted,
    marker_environments,
    select_versions,
)
from ministry.core.models import FileEntry, IndexConfig, Upstream
from ministry.core.proxied_files import offered_files
from ministry.core.upstream_entries import routed
from ministry.core.upstream_pages import UpstreamPageError, parse_project_list
from ministry.errors import InvalidRequest, MinistryError, UpstreamUnavailable
from ministry.services.indexes import IndexService
from ministry.services.proxy_files import ProxyFiles
from ministry.services.proxy_pages import ProxyPages
from ministry.services.upstream import UpstreamClient, base_for
from ministry.storage.protocols import BlobStore

__all__ = ["Mirror", "MirrorListener", "MirrorOutcome", "MirrorRequest", "QuietListener"]

log = logging.getLogger(__name__)

_CHUNK = 256 * 1024
_PART_SUFFIX = ".part"


@dataclass(frozen=True)
class MirrorRequest:
    """What a run takes from the upstream, and into which proxy index."""

    index: str
    requirements: tuple[Requirement, ...] = ()
    targets: Targets = field(default_factory=Targets)
    with_deps: bool = False
    #: Every project the upstreams list (``--all``), instead of ``requirements``.
    everything: bool = False
    #: Downloads at once (and page requests at once).
    connections: int = 4


@dataclass
class MirrorOutcome:
    """What a run found and did."""

    #: Files the filters selected, and how many of them were cached before the run.
    selected: int = 0
    present: int = 0
    #: Bytes of the selected files not cached yet (what a dry run would fetch).
    missing_bytes: int = 0
    unknown_sizes: int = 0
    fetched: int = 0
    fetched_bytes: int = 0
    #: (filename, reason) of files that could not be fetched or did not verify.
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: Requirements nothing matched (no such project upstream, or no matching file).
    unmatched: list[str] = field(default_factory=list)
    #: Projects whose page the upstream did not answer for: the kept page was used.
    stale: list[str] = field(default_factory=list)
    #: Releases whose dependencies could not be read.
    unknown_dependencies: list[str] = field(default_factory=list)
    #: Files the run would fetch (dry runs) or fetched, by filename.
    planned: dict[str, FileEntry] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether everything asked for was found and fetched."""
        return not self.failed and not self.unmatched and not self.stale


class MirrorListener(Protocol):
    """Progress of a run, for a progress bar (the CLI) or nothing (scheduled jobs)."""

    def resolving(self, done: int, known: int) -> None:
        """Requirements looked at so far, of those known so far."""

    def planned(self, files: int, size: int) -> None:
        """More files (and bytes) to fetch were found."""

    def received(self, size: int) -> None:
        """Bytes of a file arrived."""

    def finished(self, filename: str) -> None:
        """A file is cached (or failed)."""


class QuietListener:
    """Progress nobody watches."""

    def resolving(self, done: int, known: int) -> None:
        """Ignored."""

    def planned(self, files: int, size: int) -> None:
        """Ignored."""

    def received(self, size: int) -> None:
        """Ignored."""

    def finished(self, filename: str) -> None:
        """Ignored."""


@dataclass(frozen=True)
class _Wanted:
    """One requirement to look at: a project, the versions wanted, the extras asked of it."""

    name: NormalizedName
    specifier: str
    extras: frozenset[str]
    root: bool

    def describe(self) -> str:
        extras = f"[{','.join(sorted(self.extras))}]" if self.extras else ""
        return f"{self.name}{extras}{self.specifier}"


class Mirror:
    """Runs mirror requests against proxy indexes."""

    def __init__(
        self,
        indexes: IndexService,
        pages: ProxyPages,
        files: ProxyFiles,
        blobs: BlobStore,
        client: UpstreamClient,
        spool_directory: Path,
    ) -> None:
        self._indexes = indexes
        self.pages = pages
        self.files = files
        self.blobs = blobs
        self.client = client
        self._parts = spool_directory / "mirror"

    async def run(
        self, request: MirrorRequest, listener: MirrorListener, *, dry_run: bool = False
    ) -> MirrorOutcome:
        """Resolve the request, then fetch what is not cached (unless ``dry_run``)."""
        config = await self._indexes.get(request.index)
        if config.kind != "proxy" or config.upstream is None:
            raise InvalidRequest(
                f"Index {config.name!r} is not a proxy index: a mirror fills a proxy index "
                "from its upstream (--upstream URL creates one)."
            )
        if self.pages.offline:
            raise InvalidRequest("A mirror run needs the upstream; this server is --offline.")
        # Parts are kept per index: two runs filling different indexes never meet.
        parts = self._parts / config.name.replace("/", "+")
        await asyncio.to_thread(parts.mkdir, parents=True, exist_ok=True)
        run = _Run(self, config, request, listener, dry_run, parts)
        await run.resolve()
        await run.fetch_all()  # a dry run only counts what it would fetch
        if not dry_run and run.outcome.ok:
            await asyncio.to_thread(run.forget_other_parts)
        return run.outcome

    async def upstream_projects(
        self, config: IndexConfig
    ) -> tuple[list[NormalizedName], list[tuple[Upstream, UpstreamUnavailable]]]:
        """Every project the upstreams of a proxy index list and may be asked for, and
        the upstreams whose list could not be read (with why).

        A name is taken from an upstream's list only where the index would ask that
        upstream for it (``routed``, the rule the proxy's pages follow): a name routed
        to another upstream by its ``only`` patterns, or outside this upstream's own
        patterns, is not taken from this one's list, so a public upstream's list never
        brings in an internal name (docs/security.md, "Dependency confusion across
        upstreams"). Raises when no upstream's list could be read.
        """
        upstreams = config.upstreams
        listed = await asyncio.gather(
            *(self._listing(u) for u in upstreams), return_exceptions=True
        )
        names: set[NormalizedName] = set()
        unlisted: list[tuple[Upstream, UpstreamUnavailable]] = []
        for upstream, result in zip(upstreams, listed, strict=True):
            if isinstance(result, UpstreamUnavailable):
                unlisted.append((upstream, result))
            elif isinstance(result, BaseException):
                raise result
            else:
                names.update(n for n in result if upstream in routed(upstreams, n))
        if len(unlisted) == len(upstreams):
            raise unlisted[0][1]
        return sorted(names), unlisted

    async def _listing(self, upstream: Upstream) -> list[NormalizedName]:
        """Every project one upstream lists."""
        where = mask_url(upstream.url)
        fetched = await self.client.fetch_listing(upstream.url)
        if fetched.status != 200:
            raise UpstreamUnavailable(f"Upstream {where} has no project list ({fetched.status}).")
        try:
            return parse_project_list(fetched.body, fetched.content_type)
        except UpstreamPageError as exc:
            raise UpstreamUnavailable(f"Upstream {where} project list: {exc}") from exc


class _Run:
    """The state of one run: what is wanted, what was seen, what is fetched."""

    def __init__(
        self,
        mirror: Mirror,
        config: IndexConfig,
        request: MirrorRequest,
        listener: MirrorListener,
        dry_run: bool,
        parts: Path,
    ) -> None:
        self.mirror = mirror
        self.parts = parts
        self.config = config
        self.request = request
        self.listener = listener
        self.dry_run = dry_run
        self.outcome = MirrorOutcome()
        self.environments = marker_environments(request.targets)
        self.limit = asyncio.Semaphore(max(1, request.connections))
        self.seen: set[_Wanted] = set()
        self.done = 0
        self.entries: dict[NormalizedName, asyncio.Future[list[FileEntry] | None]] = {}
        self.followed: set[tuple[NormalizedName, str, frozenset[str]]] = set()
        self.selected: dict[str, FileEntry] = {}
        self.fetches: dict[str, asyncio.Future[None]] = {}

    # -- resolving ----------------------------------------------------------------------

    async def resolve(self) -> None:
        """Walk the requirements (and, if asked, their dependencies) to the files wanted."""
        if self.request.everything:
            names, unlisted = await self.mirror.upstream_projects(self.config)
            # The others' projects are still taken; the run fails, naming the upstream.
            for upstream, error in unlisted:
                self._failed(f"{mask_url(upstream.url)} (project list)", error)
            roots = [_Wanted(n, "", frozenset(), root=True) for n in names]
        else:
            roots = [
                _Wanted(
                    canonicalize_name(r.name),
                    str(r.specifier),
                    frozenset(canonicalize_name(e) for e in r.extras),
                    root=True,
                )
                for r in self.request.requirements
            ]
        async with asyncio.TaskGroup() as group:
            for wanted in roots:
                self._follow(group, wanted)

    def _follow(self, group: asyncio.TaskGroup, wanted: _Wanted) -> None:
        if wanted in self.seen:
            return
        self.seen.add(wanted)
        self.listener.resolving(self.done, len(self.seen))
        group.create_task(self._look_at(group, wanted))

    async def _look_at(self, group: asyncio.TaskGroup, wanted: _Wanted) -> None:
        try:
            try:
                entries = await self._entries(wanted.name)
            except MinistryError as exc:  # the upstream failed, and no page is kept
                self._failed(f"{wanted.name} (project page)", exc)
                return
            if entries is None:
                self._unmatched(wanted, "no such project upstream")
                return
            chosen = self._choose(wanted, entries)
            if not chosen:
                self._unmatched(wanted, "no file matches the requirement and the filters")
                return
            for version, files in chosen.items():
                for entry in files:
                    self._select(entry)
                if self.request.with_deps:
                    key = (wanted.name, canonicalize_version(version), wanted.extras)
                    if key not in self.followed:
                        self.followed.add(key)
                        group.create_task(self._dependencies(group, wanted, version, files))
        finally:
            self.done += 1
            self.listener.resolving(self.done, len(self.seen))

    async def _entries(self, name: NormalizedName) -> list[FileEntry] | None:
        """The files the proxy index offers for a project, the page revalidated once per run."""
        future = self.entries.get(name)
        if future is None:
            future = asyncio.ensure_future(self._page_entries(name))
            self.entries[name] = future
        return await future

    async def _page_entries(self, name: NormalizedName) -> list[FileEntry] | None:
        async with self.limit:
            page = await self.mirror.pages.get(self.config, name, revalidate=True)
        if page is None:
            return None
        if page.stale:
            # The upstream failed: the kept page stands in, but the run is not current.
            self.outcome.stale.append(name)
        offered, _held = offered_files(self.config, name, page.kept, datetime.now(UTC))
        return offered

    def _choose(self, wanted: _Wanted, entries: list[FileEntry]) -> dict[str, list[FileEntry]]:
        """The files of the versions a requirement takes, by version."""
        targets = self.request.targets
        specifier = SpecifierSet(wanted.specifier)
        pinned = _pins(specifier)
        by_version: dict[str, list[FileEntry]] = {}
        for entry in entries:
            # Installers skip yanked files unless pinned to them (PEP 592); so does a mirror.
            if entry.is_yanked and not pinned:
                continue
            if file_wanted(targets, entry.filename, entry.requires_python):
                by_version.setdefault(entry.version, []).append(entry)
        versions = select_versions(targets, by_version, specifier)
        return {version: by_version[version] for version in versions}

    def _unmatched(self, wanted: _Wanted, reason: str) -> None:
        if wanted.root:
            self.outcome.unmatched.append(f"{wanted.describe()}: {reason}")
        else:
            log.info("mirror: dependency %s: %s", wanted.describe(), reason)

    def _select(self, entry: FileEntry) -> None:
        if entry.filename in self.selected:
            return
        self.selected[entry.filename] = entry
        self.outcome.selected += 1

    async def _dependencies(
        self, group: asyncio.TaskGroup, wanted: _Wanted, version: str, files: list[FileEntry]
    ) -> None:
        try:
            requires = await self._requires_dist(files)
        except MinistryError as exc:  # a metadata file that failed or did not verify
            self._failed(f"{wanted.name} {version} (metadata)", exc)
            return
        if requires is None:
            self.outcome.unknown_dependencies.append(f"{wanted.name} {version}")
            return
        for dependency in dependencies(requires, wanted.extras, self.environments):
            self._follow(
                group,
                _Wanted(dependency.name, dependency.specifier, dependency.extras, root=False),
            )

    async def _requires_dist(self, files: list[FileEntry]) -> list[str] | None:
        """A release's Requires-Dist: from a PEP 658 file, else from a wheel or sdist itself."""
        for entry in files:
            if entry.metadata_sha256 is not None:
                async with self.limit:
                    sha256 = await self.mirror.files.metadata(self.config, entry)
                data = await _read_blob(self.mirror.blobs, sha256)
                return _requires_of(data)
        if self.dry_run:
            return None
        ordered = sorted(files, key=lambda e: e.packagetype != "bdist_wheel")
        for entry in ordered:
            await self._fetch(entry)
            kept = await self.mirror.files.cached(self.config.name, entry.filename)
            if kept is None:
                continue
            inside = await self._metadata_of_file(entry, kept.sha256)
            if inside is not None:
                return _requires_of(inside)
        return None

    async def _metadata_of_file(self, entry: FileEntry, sha256: str) -> bytes | None:
        """The core metadata inside a cached file; None where it cannot be trusted for deps."""
        path = self.parts / f"{sha256}.inspect-{os.getpid()}"
        try:
            reader = await self.mirror.blobs.open_blob(sha256)
            with path.open("wb") as out:
                async for chunk in reader.chunks(0, reader.size - 1):
                    await asyncio.to_thread(out.write, chunk)
            inspect = inspect_wheel if entry.packagetype == "bdist_wheel" else inspect_sdist
            info = await asyncio.to_thread(inspect, path, entry.filename)
        except (MinistryError, OSError) as exc:
            log.warning("mirror: cannot read the metadata of %s: %s", entry.filename, exc)
            return None
        finally:
            path.unlink(missing_ok=True)
        if entry.packagetype != "bdist_wheel" and not _static_requirements(info.metadata):
            return None
        return info.metadata

    # -- fetching -----------------------------------------------------------------------

    async def fetch_all(self) -> None:
        """Fetch every selected file that is not cached yet (and wheels' metadata files)."""
        await asyncio.gather(*(self._fetch(entry) for entry in list(self.selected.values())))

    def forget_other_parts(self) -> None:
        """Drop parts of files no longer wanted (a version the upstream replaced, say)."""
        wanted = {entry.sha256 for entry in self.selected.values()}
        for part in self.parts.glob(f"*{_PART_SUFFIX}"):
            if part.name.removesuffix(_PART_SUFFIX) not in wanted and not _in_use(part):
                part.unlink(missing_ok=True)

    def _fetch(self, entry: FileEntry) -> asyncio.Future[None]:
        """Each file once per run, whoever asks (the plan, or a dependency lookup)."""
        future = self.fetches.get(entry.filename)
        if future is None:
            future = asyncio.ensure_future(self._fetch_once(entry))
            self.fetches[entry.filename] = future
        return future

    async def _fetch_once(self, entry: FileEntry) -> None:
        kept = await self.mirror.files.cached(self.config.name, entry.filename)
        if kept is not None and kept.sha256 == entry.sha256:
            self.outcome.present += 1
            if not self.dry_run:
                await self.mirror.files.hold_for_mirror(kept)
            try:
                await self._fetch_metadata(entry)
            except MinistryError as exc:
                self._failed(entry.filename + ".metadata", exc)
            return
        if entry.size is None:
            self.outcome.unknown_sizes += 1
        else:
            self.outcome.missing_bytes += entry.size
        self.outcome.planned[entry.filename] = entry
        if self.dry_run:
            return
        self.listener.planned(1, entry.size or 0)
        try:
            async with self.limit:
                fetched = await self._download(entry)
            self.outcome.fetched += 1
            self.outcome.fetched_bytes += fetched
            await self._fetch_metadata(entry)
        except (MinistryError, OSError) as exc:
            self._failed(entry.filename, exc)
        finally:
            self.listener.finished(entry.filename)

    def _failed(self, what: str, exc: MinistryError | OSError) -> None:
        reason = exc.message if isinstance(exc, MinistryError) else str(exc)
        self.outcome.failed.append((what, reason))
        log.warning("mirror %s: %s: %s", self.config.name, what, reason)

    async def _fetch_metadata(self, entry: FileEntry) -> None:
        # An installer offered a metadata file asks for it: an offline server must have it.
        if entry.metadata_sha256 is not None and not self.dry_run:
            async with self.limit:
                await self.mirror.files.metadata(self.config, entry)

    async def _download(self, entry: FileEntry) -> int:
        """Fetch a file into its part (resuming it), verify it, cache it; returns bytes fetched."""
        assert entry.upstream_url is not None
        part = self.parts / f"{entry.sha256}{_PART_SUFFIX}"
        descriptor = await asyncio.to_thread(os.open, part, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UpstreamUnavailable(
                    f"{entry.filename!r} is being fetched by another mirror run."
                ) from None
            fetched = await self._receive(entry, descriptor)
            digest, size = await asyncio.to_thread(_hash_descriptor, descriptor)
            if digest != entry.sha256 or entry.size not in (None, size):
                await asyncio.to_thread(part.unlink, missing_ok=True)
                raise UpstreamUnavailable(
                    f"Upstream sent {entry.filename!r} with other bytes than its page "
                    "promises; it was not kept."
                )
            await asyncio.to_thread(os.fsync, descriptor)
            await self.mirror.files.keep(
                self.config, entry.filename, part, digest, size, mirrored=True
            )
            return fetched
        finally:
            os.close(descriptor)

    async def _receive(self, entry: FileEntry, descriptor: int) -> int:
        """Append the missing bytes of a part; returns how many arrived."""
        assert entry.upstream_url is not None
        have = os.fstat(descriptor).st_size
        if entry.size is not None and have >= entry.size:
            if have > entry.size:
                os.ftruncate(descriptor, 0)
                have = 0
            else:
                return 0  # complete already: a run was stopped between the last byte and the cache
        fetched = 0
        upstream = base_for(self.config, entry.upstream_url)
        async with self.mirror.client.stream_file(upstream, entry.upstream_url, have) as response:
            if response.status_code == 200 and have:
                os.ftruncate(descriptor, 0)  # the upstream ignored the range: start over
                have = 0
            os.lseek(descriptor, have, os.SEEK_SET)
            async for chunk in response.aiter_raw(_CHUNK):
                await asyncio.to_thread(_write_all, descriptor, chunk)
                fetched += len(chunk)
                self.listener.received(len(chunk))
        return fetched


def _pins(specifier: SpecifierSet) -> bool:
    """Whether a specifier names exact versions (``==1.0``, not ``==1.*``)."""
    return any(s.operator in ("==", "===") and not s.version.endswith("*") for s in specifier)


def _static_requirements(metadata: bytes) -> bool:
    """Whether an sdist's Requires-Dist can be believed (metadata 2.2+, not dynamic; PEP 643)."""
    raw, _ = parse_email(metadata)
    try:
        modern = Version(raw.get("metadata_version", "1.0")) >= Version("2.2")
    except InvalidVersion:
        return False
    dynamic = {field.lower() for field in raw.get("dynamic", [])}
    return modern and "requires-dist" not in dynamic


def _requires_of(metadata: bytes) -> list[str]:
    raw, _ = parse_email(metadata)
    return list(raw.get("requires_dist", []))


async def _read_blob(blobs: BlobStore, sha256: str) -> bytes:
    reader = await blobs.open_blob(sha256)
    return b"".join([chunk async for chunk in reader.chunks(0, reader.size - 1)])


def _in_use(part: Path) -> bool:
    """Whether another run holds the part (it locks what it writes)."""
    try:
        descriptor = os.open(part, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


def _hash_descriptor(descriptor: int) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := os.pread(descriptor, _CHUNK, size):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]
