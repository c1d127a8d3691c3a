"""The upload pipeline: from a spooled file and its form to a published, durable file.

Order matters for the promises in docs/security.md, "Hostile uploads": every check
runs before anything
is stored; the blob is durable before the metadata row is committed; and the
commit itself decides races, so two identical uploads both succeed and two
different ones under one filename have exactly one winner.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from packaging.utils import NormalizedName

from ministry.core.archives import ArchiveInfo, ArchiveLimits, inspect_sdist, inspect_wheel
from ministry.core.attestations import ProvenancePublisher, provenance_publisher
from ministry.core.hashing import Digests
from ministry.core.metadata import CoreMetadata, parse_core_metadata
from ministry.core.models import AddFileOutcome, AddFileResult, DistFile, IndexConfig
from ministry.core.permissions import (
    Identity,
    check_upload_index,
    check_upload_project,
    project_refusal,
    publisher,
)
from ministry.core.releases import release_key
from ministry.core.upload_form import (
    UploadForm,
    already_exists,
    check_digests,
    check_metadata_matches,
    form_for_file,
)
from ministry.errors import (
    AttestationRejected,
    FileExists,
    InvalidUpload,
    PermissionDenied,
    StorageUnavailable,
)
from ministry.services import attestations as pep740
from ministry.services.indexes import IndexService
from ministry.services.spool import Spool
from ministry.storage.protocols import BlobStore, PackageStore, PublisherStore, Scratch

if TYPE_CHECKING:
    from pypi_attestations import Attestation

__all__ = ["PublishResult", "UploadService", "UploadStore", "refuse_others_project"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishResult:
    """A published file, and whether this request created it (False: identical re-upload)."""

    file: DistFile
    created: bool


class UploadStore(PackageStore, PublisherStore, Protocol):
    """Files and projects, and the trusted publishers that attestations are checked against."""


@dataclass(frozen=True)
class _Inspected:
    archive: ArchiveInfo
    metadata: CoreMetadata
    #: The PEP 740 provenance document (JSON) of verified attestations, or None.
    provenance: bytes | None = None


class UploadService:
    """Validates and publishes uploaded distribution files."""

    def __init__(
        self,
        metadata: UploadStore,
        blobs: BlobStore,
        indexes: IndexService,
        scratch: Scratch,
        max_file_size: int,
        archive_limits: ArchiveLimits | None = None,
    ) -> None:
        self._metadata = metadata
        self._blobs = blobs
        self._indexes = indexes
        self._scratch = scratch
        self.max_file_size = max_file_size
        self._archive_limits = archive_limits or ArchiveLimits()

    def new_spool(self) -> Spool:
        """A fresh spool for the next upload's file part."""
        return Spool(self._scratch, self.max_file_size)

    async def authorize(self, index: str, identity: Identity) -> None:
        """Refuse an upload before its body is read when the index is closed to this identity."""
        config = await self._target(index, identity)
        if config.kind != "hosted":
            raise PermissionDenied(
                f"Index {index!r} is a proxy of an upstream index; upload to a hosted index."
            )
        check_upload_index(identity, config)

    async def _target(self, index: str, identity: Identity) -> IndexConfig:
        """The index uploaded to: one the identity may read, or the one a minted token's
        publisher names (such a token reads nothing, not even that index)."""
        if identity.trusted_for(index) is not None:
            return await self._indexes.get(index)
        return await self._indexes.readable(index, identity)

    async def import_file(self, index: str, identity: Identity, path: Path) -> PublishResult:
        """Publish a file from the local disk, with the same checks as an upload."""
        form = form_for_file(path.name)
        spool = self.new_spool()
        try:
            await asyncio.to_thread(_copy_into, path, spool)
        except BaseException:
            spool.discard()
            raise
        return await self.publish(index, identity, form, spool)

    async def publish(
        self, index: str, identity: Identity, form: UploadForm, spool: Spool
    ) -> PublishResult:
        """Check everything, then store the file; the spool is consumed either way."""
        try:
            config = await self._target(index, identity)
            check_upload_project(identity, config, form.name)
            await refuse_others_project(self._metadata, identity, config, form.distribution.project)
            digests = spool.finish()
            check_digests(form, digests)
            attestations = await self._read_attestations(form, digests.sha256)
            existing = await self._metadata.get_file(index, form.distribution.filename)
            if existing is not None and not config.allow_overwrite:
                again = self._same_or_refuse(existing, digests)
                if not await self._blobs.put_back(existing.sha256):
                    # Its first upload was refused after its commit (``_check_stored``): store it.
                    await self._blobs.put_file(spool.path, existing.sha256)
                await self._confirm(existing, identity)
                return again
            inspected = await asyncio.to_thread(self._inspect, form, spool.path)
            if attestations is not None:
                document = await self._prove(identity, config, form, digests, attestations)
                inspected = _Inspected(inspected.archive, inspected.metadata, document)
            file = await self._store(index, identity.user, form, digests, inspected, spool.path)
            result = await self._metadata.add_file(
                file,
                inspected.metadata.name,
                inspected.metadata.fields,
                identity.actor,
                replace_existing=config.allow_overwrite,
                publisher=publisher(identity, config, file.project),
            )
            if result.outcome is AddFileOutcome.NOT_PERMITTED:
                roles = await self._metadata.list_roles(index, file.project)
                raise project_refusal(identity, config, file.project, roles)
            outcome = self._outcome(result, digests)
            await self._check_stored(file)
            return outcome
        finally:
            spool.discard()

    @staticmethod
    async def _read_attestations(form: UploadForm, sha256: str) -> list[Attestation] | None:
        """The upload's attestations, each checked to be about this file; None without any.

        Cheap checks first, before the file is inspected; the signatures come later
        (``_prove``). In a worker thread: the Sigstore libraries load on first use.
        """
        if form.attestations is None:
            return None
        filename = form.distribution.filename

        def read(raw: str) -> list[Attestation]:
            parsed = pep740.parse_attestations(raw)
            pep740.check_subjects(parsed, filename, sha256)
            return parsed

        return await asyncio.to_thread(read, form.attestations)

    async def _prove(
        self,
        identity: Identity,
        config: IndexConfig,
        form: UploadForm,
        digests: Digests,
        attestations: list[Attestation],
    ) -> bytes:
        """The provenance document of attestations signed by the project's trusted publisher.

        The publisher is the one the upload's minted token came from; for an upload with
        another token, any publisher the project has configured whose workflow signed them.
        A project without a trusted publisher has no signer to check them against: they are
        refused, as the public index does (docs/security.md, "Attestations").
        """
        project = form.distribution.project
        trusted = identity.trusted_for(config.name, project)
        if trusted is not None:
            candidates = [provenance_publisher(trusted, environment_checked=True)]
        else:
            configured = await self._metadata.list_publishers(config.name, project)
            if not configured:
                raise AttestationRejected(
                    f"Attestations are accepted only for projects with a trusted publisher, "
                    f"and {project!r} has none in index {config.name!r}: upload without them, "
                    "or add the workflow that signs them as a trusted publisher.",
                    "publisher",
                )
            candidates = [provenance_publisher(p, environment_checked=False) for p in configured]
        filename, sha256 = form.distribution.filename, digests.sha256

        def prove() -> bytes:
            first: AttestationRejected | None = None
            for candidate in candidates:
                try:
                    pep740.verify(attestations, filename, sha256, candidate)
                except AttestationRejected as refusal:
                    first = first or refusal
                    continue
                return _document(attestations, candidate)
            assert first is not None
            raise first

        return await asyncio.to_thread(prove)

    async def _check_stored(self, file: DistFile) -> None:
        """After the commit, make sure the file's blobs are under their keys: an
        eviction of the same bytes may have set them aside between the put and the
        commit, and put them back only if it saw the record (docs/proxy.md, "Eviction
        and uploads"). Never true in practice, it is refused rather than acknowledged.
        The blobs are looked at together: on S3 each look is a request."""
        blobs = [b for b in (file.sha256, file.metadata_sha256, file.provenance_sha256) if b]
        if not all(await asyncio.gather(*map(self._blobs.put_back, blobs))):
            raise StorageUnavailable(
                "The file was stored but its bytes were lost to a cache eviction "
                "before it was published; upload it again."
            )

    @staticmethod
    def _same_or_refuse(existing: DistFile, digests: Digests) -> PublishResult:
        # The public index answers an identical re-upload with 200, so retries are safe.
        if existing.sha256 == digests.sha256:
            return PublishResult(existing, created=False)
        raise already_exists(existing.filename, existing.blake2b_256)

    async def _confirm(self, existing: DistFile, identity: Identity) -> None:
        """Pass a file sent again with the same bytes to the store once more, as the
        first upload did, before answering it as published: the store finds the file
        taken by these bytes (no change), waits for the replicas where it must, and the
        file's manifest is written (``services.manifests``) in case the first answer
        failed before it was. The release's metadata is what the store already holds."""
        releases = await self._metadata.list_releases(existing.index, existing.project)
        wanted = release_key(existing.version)
        metadata = next((r.metadata for r in releases if release_key(r.version) == wanted), {})
        project = await self._metadata.get_project(existing.index, existing.project)
        display_name = project.display_name if project is not None else existing.project
        await self._metadata.add_file(existing, display_name, metadata, identity.actor)

    def _inspect(self, form: UploadForm, path: Path) -> _Inspected:
        inspect = inspect_wheel if form.filetype == "bdist_wheel" else inspect_sdist
        archive = inspect(path, form.distribution.filename, self._archive_limits)
        metadata = parse_core_metadata(archive.metadata)
        check_metadata_matches(form, metadata.name, metadata.version)
        return _Inspected(archive, metadata)

    async def _store(
        self,
        index: str,
        uploader: str,
        form: UploadForm,
        digests: Digests,
        inspected: _Inspected,
        path: Path,
    ) -> DistFile:
        # The blobs are made durable at once: an upload waits for one round of disk
        # flushes, not several. PEP 658 metadata files are served for wheels only: an
        # sdist's PKG-INFO may have dynamic fields that differ in the wheels built from it.
        wheel = form.filetype == "bdist_wheel"
        document = inspected.provenance
        stored = await asyncio.gather(
            self._blobs.put_file(path, digests.sha256),
            self._blobs.put_bytes(inspected.archive.metadata) if wheel else _none(),
            self._blobs.put_bytes(document) if document is not None else _none(),
        )
        metadata_sha256, provenance_sha256 = stored[1], stored[2]
        return DistFile(
            index=index,
            project=form.distribution.project,
            filename=form.distribution.filename,
            version=str(inspected.metadata.version),
            packagetype="sdist" if form.filetype == "sdist" else "bdist_wheel",
            python_version=form.pyversion,
            requires_python=inspected.metadata.requires_python,
            size=digests.size,
            sha256=digests.sha256,
            md5=digests.md5,
            blake2b_256=digests.blake2b_256,
            upload_time=datetime.now(UTC),
            uploader=uploader,
            metadata_sha256=metadata_sha256,
            provenance_sha256=provenance_sha256,
        )

    @staticmethod
    def _outcome(result: AddFileResult, digests: Digests) -> PublishResult:
        stored = result.file
        if result.outcome in (AddFileOutcome.ADDED, AddFileOutcome.REPLACED):
            verb = "published" if result.outcome is AddFileOutcome.ADDED else "replaced"
            log.info("%s %s in %s (%d bytes)", verb, stored.filename, stored.index, stored.size)
            return PublishResult(stored, created=True)
        if result.outcome is AddFileOutcome.FILENAME_TAKEN:
            return UploadService._same_or_refuse(stored, digests)
        if result.outcome is AddFileOutcome.CONTENT_TAKEN:
            raise FileExists(
                f"File already exists: the same content is published as {stored.filename!r}. "
                "Each file must have its own bytes; build the distribution again."
            )
        if result.outcome is AddFileOutcome.FILENAME_RETIRED:
            raise InvalidUpload(
                f"This filename ({stored.filename!r}) was previously used by a file that has "
                "since been deleted. Use a different version.",
                field="content",
            )
        if result.outcome is AddFileOutcome.WHEEL_TAKEN:
            raise InvalidUpload(
                f"Release {stored.version} already has a wheel for these tags: "
                f"{stored.filename!r}. Another spelling of a version is the same release "
                "(PEP 440); upload the wheel under a new version.",
                field="content",
            )
        raise InvalidUpload(
            f"Only one sdist may be uploaded per release; {stored.filename!r} is "
            f"already published for version {stored.version}.",
            field="content",
        )


async def refuse_others_project(
    metadata: PackageStore, identity: Identity, config: IndexConfig, project: NormalizedName
) -> None:
    """Refuse someone else's project before a file is inspected and stored.

    Only a hint: the store judges again when the file commits, which decides
    races (docs/security.md, "Project ownership").
    """
    allowed = publisher(identity, config, project).principals
    if allowed is None:
        return
    # The project before its roles: a project read as existing has its first owner
    # already (both commit together), whoever is creating it at this moment.
    existing = await metadata.get_project(config.name, project)
    roles = await metadata.list_roles(config.name, project)
    if allowed & {r.principal for r in roles}:
        return
    if roles or existing is not None:
        raise project_refusal(identity, config, project, roles)


async def _none() -> None:
    """No blob to store (``asyncio.gather`` keeps the positions of the others)."""


def _document(attestations: list[Attestation], publisher: ProvenancePublisher) -> bytes:
    """The provenance document as the Integrity API serves it: compact JSON, one newline."""
    value = pep740.provenance(attestations, publisher)
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


def _copy_into(path: Path, spool: Spool) -> None:
    with path.open("rb") as source:
        while chunk := source.read(1024 * 1024):
            spool.write(chunk)
