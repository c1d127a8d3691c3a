"""Checking the blob store against the records that name its blobs (``ministry verify``).

Every blob a record names (a hosted file, its PEP 658 metadata file, its PEP 740
provenance document, a file in a proxy index's cache) is read back and hashed. A blob
whose bytes do not hash to its name is moved to quarantine, so that a flipped bit is
reported and never served again (docs/security.md, "Stores that fail"); a record whose
blob is missing is reported.
Blobs that no record names (orphans: the bytes of a refused or deleted upload,
or of a crash between a blob and its record) are moved to quarantine too, unless a
file's manifest (``services.manifests``) names them: those are files the metadata
store lost, which ``ministry rebuild --from-storage`` registers again, so they are
kept and reported. Quarantine deletes nothing: ``BlobStore.quarantine`` moves the
bytes aside. Blobs an eviction set aside (``BlobStore.set_aside``) are outside the
listing, so never orphans: the eviction puts them back or deletes them itself;
a record's blob set aside for a moment is read there, so it is not missing.

A record without its manifest (a change whose manifest could not be written, or
data from before manifests existed) is reported too; ``repair`` writes the manifest.

A hosted file with bad bytes stays recorded, so its filename stays taken; its
downloads fail with a 500 until it is restored from a backup, which only an
administrator can do. A cached proxied file is a copy of an upstream's: its
record is dropped so that the server fetches it again when it is next asked
for, and with ``repair`` it is fetched at once, through the same code path as a
client's download and checked against the upstream page's hash like one.

Safe while the server runs. An upload stores its blob before it commits the
record naming it, so a blob nothing names may be an upload a moment from its
commit. The records are read first, and a blob counts as an orphan only if it
was stored (or put again, see ``BlobStore.put_file``) more than the grace
period before that read began: any upload that stored it has had the whole
grace period to commit its record. A blob's age comes from the store's clock
(file times, S3's ``LastModified``): a skew between this machine's clock and an
S3 server's eats into the grace period.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from ministry.core.manifests import Recovered, manifests_of_records
from ministry.core.permissions import Identity, check_admin
from ministry.core.proxied_files import project_of
from ministry.errors import MinistryError, NotFound
from ministry.services.catalog import Catalog
from ministry.services.indexes import IndexService
from ministry.services.manifests import read_manifests, write_manifests
from ministry.services.proxy_files import ProxyStream
from ministry.storage.protocols import (
    BlobReader,
    BlobStore,
    PackageStore,
    ProxyCacheStore,
    TransferStore,
)

__all__ = [
    "DEFAULT_GRACE",
    "Finding",
    "Verifier",
    "VerifierStore",
    "VerifyListener",
    "VerifyOutcome",
]

#: How old a blob no record names must be before it counts as an orphan.
DEFAULT_GRACE = timedelta(hours=1)
_PROVENANCE_SUFFIX = ".provenance"
#: Blobs hashed at once: enough to keep an S3 connection pool busy, few enough for a disk.
_AT_ONCE = 4

Problem = Literal["missing", "mismatched", "orphan", "unregistered", "unjournalled"]


class VerifierStore(PackageStore, ProxyCacheStore, TransferStore, Protocol):
    """The roles the verifier uses: every stored file, every cached upstream file, and
    every record (to find those without a manifest)."""


@dataclass(frozen=True)
class Finding:
    """One thing found wrong, and what was done about it."""

    problem: Problem
    #: What the blob is to the index: "hosted file main/demo-1.0.tar.gz" and the like.
    subject: str
    #: The blob concerned; empty where the finding is about a record alone.
    sha256: str
    action: str


@dataclass
class VerifyOutcome:
    """What a run checked and found."""

    #: Blobs read back and hashed, and their bytes.
    blobs: int = 0
    bytes: int = 0
    findings: list[Finding] = field(default_factory=list)
    #: Blobs no record names that are younger than the grace period: not judged.
    young: int = 0
    #: False when the run was limited to one index (other indexes' records were not read).
    orphans_judged: bool = True

    @property
    def ok(self) -> bool:
        """Whether everything was consistent."""
        return not self.findings


class VerifyListener(Protocol):
    """Progress of a run, for a progress bar."""

    def planned(self, blobs: int, size: int) -> None:
        """More blobs (and bytes) to hash."""

    def hashed(self, size: int) -> None:
        """Bytes read back and hashed."""

    def checked(self) -> None:
        """A blob is done."""

    def listed(self, blobs: int) -> None:
        """Blobs looked at so far in the search for orphans."""


@dataclass(frozen=True)
class _Reference:
    """A record naming a blob."""

    kind: Literal["hosted", "metadata", "provenance", "cached"]
    index: str
    filename: str

    def describe(self) -> str:
        where = f"{self.index}/{self.filename}"
        return {
            "hosted": f"hosted file {where}",
            "metadata": f"metadata file {where}",
            "provenance": f"provenance of {where}",
            "cached": f"proxy cache {where}",
        }[self.kind]


@dataclass
class _Plan:
    """Every blob the records name, who names it, and its size where a record says."""

    references: dict[str, list[_Reference]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)

    def add(self, sha256: str, reference: _Reference, size: int | None) -> None:
        self.references.setdefault(sha256, []).append(reference)
        if size is not None:
            self.sizes[sha256] = size


class Verifier:
    """Re-hashes blobs, quarantines bad and orphaned ones, repairs proxy caches."""

    def __init__(
        self,
        metadata: VerifierStore,
        blobs: BlobStore,
        indexes: IndexService,
        catalog: Catalog,
    ) -> None:
        self._metadata = metadata
        self._blobs = blobs
        self._indexes = indexes
        self._catalog = catalog

    async def run(
        self,
        identity: Identity,
        listener: VerifyListener,
        *,
        index: str | None = None,
        repair: bool = False,
        grace: timedelta = DEFAULT_GRACE,
    ) -> VerifyOutcome:
        """Check the records of every index (or of ``index``) against the blob store."""
        check_admin(identity, "verify the stores")
        started = datetime.now(UTC)
        plan = await self._plan(index)
        outcome = VerifyOutcome(orphans_judged=index is None)
        broken = await self._hash_all(plan, listener, outcome)
        # Settled before the (long) search for orphans: a cache record naming a blob just
        # quarantined is dropped at once, so the server fetches the file again meanwhile.
        for sha256, (problem, location) in sorted(broken.items()):
            for reference in plan.references[sha256]:
                action = await self._settle(reference, location, repair, identity, plan)
                outcome.findings.append(Finding(problem, reference.describe(), sha256, action))
        if index is None:
            recovered = await read_manifests(self._blobs, lambda _kind: None)
            named = recovered.blobs_named()
            orphans = await self._orphans(plan, named, started - grace, listener, outcome)
            outcome.findings.extend(orphans)
            outcome.findings.extend(await self._unjournalled(recovered, repair))
        return outcome

    async def _unjournalled(self, recovered: Recovered, repair: bool) -> list[Finding]:
        """Records whose manifest is missing; with ``repair``, their manifests written."""
        records = [record async for record in self._metadata.export_records()]
        found = []
        for manifest in manifests_of_records(records):
            if manifest.key in recovered.keys.get(manifest.kind, set()):
                continue
            if repair:
                await write_manifests(self._blobs, [manifest])
                action = "manifest written"
            else:
                action = "`ministry verify --repair` writes its manifest"
            subject = f"{manifest.kind} {manifest.subject} has no manifest"
            found.append(Finding("unjournalled", subject, "", action))
        return found

    async def _plan(self, index: str | None) -> _Plan:
        """Read every record that names a blob (one project's files at a time)."""
        configs = await self._indexes.configs()
        if index is not None and index not in configs:
            raise NotFound(f"No index {index!r}.")
        plan = _Plan()
        for name in [index] if index is not None else sorted(configs):
            for project in await self._metadata.list_projects(name):
                for file in await self._metadata.list_files(name, project.name):
                    plan.add(file.sha256, _Reference("hosted", name, file.filename), file.size)
                    if file.metadata_sha256 is not None:
                        metadata = _Reference("metadata", name, file.filename + ".metadata")
                        plan.add(file.metadata_sha256, metadata, None)
                    if file.provenance_sha256 is not None:
                        proven = _Reference("provenance", name, file.filename)
                        plan.add(file.provenance_sha256, proven, None)
        for cached in await self._metadata.list_cached_files():
            if index is None or cached.index == index:
                reference = _Reference("cached", cached.index, cached.filename)
                plan.add(cached.sha256, reference, cached.size)
        return plan

    async def _hash_all(
        self, plan: _Plan, listener: VerifyListener, outcome: VerifyOutcome
    ) -> dict[str, tuple[Problem, str | None]]:
        """Hash every named blob; quarantine those with other bytes. Returns the broken ones
        with where their bytes went (None: missing)."""
        listener.planned(len(plan.references), sum(plan.sizes.values()))
        broken: dict[str, tuple[Problem, str | None]] = {}
        pending = iter(sorted(plan.references))

        async def work() -> None:
            for sha256 in pending:  # the workers share one iterator: each blob once
                matches = await self._matches(sha256, sha256 in plan.sizes, listener, outcome)
                if matches is None:
                    broken[sha256] = ("missing", None)
                elif not matches:
                    broken[sha256] = ("mismatched", await self._blobs.quarantine(sha256))
                listener.checked()

        await asyncio.gather(*(work() for _ in range(_AT_ONCE)))
        return broken

    async def _matches(
        self, sha256: str, planned: bool, listener: VerifyListener, outcome: VerifyOutcome
    ) -> bool | None:
        """Whether a blob's bytes hash to its name; None if there is no such blob."""
        try:
            reader: BlobReader = await self._blobs.open_blob(sha256)
        except NotFound:
            return None
        try:
            if not planned:
                listener.planned(0, reader.size)
            digest = hashlib.sha256()
            async for chunk in reader.chunks(0, reader.size - 1):
                await asyncio.to_thread(digest.update, chunk)
                outcome.bytes += len(chunk)
                listener.hashed(len(chunk))
        finally:
            await reader.close()
        outcome.blobs += 1
        return digest.hexdigest() == sha256

    async def _orphans(
        self,
        plan: _Plan,
        named: dict[str, str],
        cutoff: datetime,
        listener: VerifyListener,
        outcome: VerifyOutcome,
    ) -> list[Finding]:
        """Quarantine the blobs no record names that were stored before ``cutoff``;
        report (and keep) those a file's manifest names."""
        found: list[Finding] = []
        seen = 0
        async for blob in self._blobs.list_blobs():
            seen += 1
            listener.listed(seen)
            if blob.sha256 in plan.references:
                continue
            if blob.modified > cutoff:
                outcome.young += 1  # maybe an upload about to commit its record
                continue
            if blob.sha256 in named:
                subject = f"hosted file {named[blob.sha256]}, named by its manifest only"
                action = "kept: `ministry rebuild --from-storage` registers it again"
                found.append(Finding("unregistered", subject, blob.sha256, action))
                continue
            location = await self._blobs.quarantine(blob.sha256)
            if location is not None:
                action = f"quarantined to {location}"
                found.append(Finding("orphan", "a blob no record names", blob.sha256, action))
        return found

    async def _settle(
        self,
        reference: _Reference,
        location: str | None,
        repair: bool,
        identity: Identity,
        plan: _Plan,
    ) -> str:
        """Do what can be done about a record whose blob is missing or was quarantined."""
        moved = f"quarantined to {location}; " if location is not None else ""
        if reference.kind != "cached":
            return moved + "restore it from a backup (its downloads fail until then)"
        await self._metadata.forget_cached_file(reference.index, reference.filename)
        # A proxied file's provenance is fetched again with the file, or when asked for.
        if not repair or reference.filename.endswith(_PROVENANCE_SUFFIX):
            return moved + (
                "its cache record is dropped, so the server fetches it again from upstream "
                "when asked (--repair fetches it now)"
            )
        return moved + await self._fetch_again(reference, identity, plan)

    async def _fetch_again(self, reference: _Reference, identity: Identity, plan: _Plan) -> str:
        """Fetch a proxied file as a client's download would, checked against its page.

        Its blob joins the plan: the search for orphans that follows must not take it for
        one (the record naming it is newer than the plan).
        """
        project = project_of(reference.filename)
        if project is None:
            return "not fetched again: its name tells no project"
        try:
            access = await self._indexes.read_access(reference.index, identity)
            download = await self._catalog.locate_download(access, project, reference.filename)
            await _drain(await self._catalog.open_download(access, download))
        except MinistryError as exc:
            # The operator is told why; a client is told only that the upstream failed.
            reason = exc.__cause__ if isinstance(exc.__cause__, MinistryError) else exc
            return f"fetching it again failed: {reason.message}"
        plan.references.setdefault(download.sha256, [reference])
        return "fetched again from upstream"


async def _drain(source: BlobReader | ProxyStream) -> None:
    """Read a download to its end: a proxied file is cached once its last byte is checked."""
    if isinstance(source, ProxyStream):
        try:
            async for _chunk in source.chunks():
                pass
        finally:
            source.close()
    else:
        await source.close()  # cached already (another process fetched it meanwhile)
