"""Promotion: a release of one hosted index published in another, bytes untouched.

What devpi calls ``push``: a release tested in ``staging`` is published in ``main``
without being built or uploaded again. The target gets new records that name the
blobs the source's records name (the blob store is addressed by sha256), so the
files, their hashes, their PEP 658 metadata files and their PEP 740 provenance are
the very ones the source serves.

The caller must be able to read the source index and to upload the project to the
target, exactly as an upload would be judged there: the target's ``uploaders``, a
token's limits, and the project's owners and maintainers, which the store judges
again inside each file's transaction (docs/security.md, "Project ownership").
Each file is added through ``add_file``, so the change log names the promoter and
the file's manifest is written as for an upload.

A promotion never replaces anything: a filename the target holds with other bytes
is a conflict (409), even where the target allows overwriting, and is found before
anything is added. A file the target holds with the same bytes is promoted already,
so promoting again changes nothing. What the store alone can tell (a filename
retired by a deletion, a race with an upload) is found as each file commits; the
refusal then names the files promoted before it.

A yank is not carried: it is a statement about an index, and the target's owners
decide their own (a file joining a release yanked in the target is yanked there, as
an upload is). The upload time is the promotion's: the file was not in the target
before, and installers that resolve "as the index was at a time" must see that.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from packaging.utils import NormalizedName

from ministry.core.models import AddFileOutcome, DistFile, IndexConfig, Release
from ministry.core.permissions import Identity, check_upload_project, project_refusal, publisher
from ministry.core.releases import clashing_file, release_key
from ministry.errors import Conflict, InvalidRequest, NotFound, PermissionDenied, StorageError
from ministry.services.indexes import IndexService
from ministry.services.uploads import PublishResult, refuse_others_project
from ministry.storage.protocols import BlobStore, PackageStore

__all__ = ["PromoteService"]

log = logging.getLogger(__name__)


class PromoteService:
    """Publishes a release of one hosted index in another, on behalf of an identity."""

    def __init__(self, metadata: PackageStore, blobs: BlobStore, indexes: IndexService) -> None:
        self._metadata = metadata
        self._blobs = blobs
        self._indexes = indexes

    async def promote(
        self,
        identity: Identity,
        source: str,
        project: NormalizedName,
        version: str,
        target: str,
    ) -> list[PublishResult]:
        """Publish every file of ``project`` ``version`` of ``source`` in ``target``.

        Returns each file as the target now holds it, ``created`` False for one that
        was there already with the same bytes.
        """
        if source == target:
            raise InvalidRequest("Promote to another index: the source and target are the same.")
        files = await self._source_files(identity, source, project, version)
        config = await self._target(identity, target, project)
        await refuse_others_project(self._metadata, identity, config, project)
        await self._refuse_conflicts(files, target, project)
        await self._check_blobs(files)
        release = await self._release(source, project, version)
        when = datetime.now(UTC)
        results: list[PublishResult] = []
        for file in files:
            copy = replace(
                file, index=target, upload_time=when, uploader=identity.user, yanked=None, serial=0
            )
            results.append(await self._publish(identity, config, copy, release, results))
        created = sum(r.created for r in results)
        log.info("promoted %s %s from %s to %s (%d new files of %d)",
                 project, version, source, target, created, len(results))  # fmt: skip
        return results

    async def _source_files(
        self, identity: Identity, source: str, project: NormalizedName, version: str
    ) -> list[DistFile]:
        """The release's own files in a hosted source index the identity may read."""
        config = await self._indexes.readable(source, identity)
        if config.kind != "hosted":
            raise InvalidRequest(
                f"Index {source!r} is a proxy: promote from a hosted index. A proxy's files "
                "belong to its upstream; publish them with 'ministry import' or an upload."
            )
        wanted = release_key(version)
        files = [
            f for f in await self._metadata.list_files(source, project)
            if release_key(f.version) == wanted
        ]  # fmt: skip
        if not files:
            raise NotFound(
                f"Index {source!r} holds no files of {project} {version} itself (files "
                "inherited from a base are promoted from that base)."
            )
        return sorted(files, key=lambda f: f.filename)

    async def _target(
        self, identity: Identity, target: str, project: NormalizedName
    ) -> IndexConfig:
        """The target's settings, once the identity may upload the project there."""
        config = await self._indexes.readable(target, identity)
        if config.kind != "hosted":
            raise PermissionDenied(
                f"Index {target!r} is a proxy of an upstream index; promote to a hosted index."
            )
        check_upload_project(identity, config, project)
        return config

    async def _refuse_conflicts(
        self, files: list[DistFile], target: str, project: NormalizedName
    ) -> None:
        """Refuse, before anything is added, what the target holds in the files' way."""
        held = await self._metadata.list_files(target, project)
        by_name = {f.filename: f for f in held}
        for file in files:
            there = by_name.get(file.filename)
            if there is not None:
                if there.sha256 != file.sha256:
                    raise Conflict(f"{_other_bytes(target, file.filename)} {_NOTHING}")
                continue
            same_bytes = next((f for f in held if f.sha256 == file.sha256), None)
            if same_bytes is not None:
                raise Conflict(f"{_content_taken(target, same_bytes.filename)} {_NOTHING}")
            release = [f for f in held if release_key(f.version) == release_key(file.version)]
            clash = clashing_file(file, release)
            if clash is not None:
                raise Conflict(f"{_release_clash(target, file, clash.filename)} {_NOTHING}")

    async def _check_blobs(self, files: list[DistFile]) -> None:
        """Every blob the new records will name is in the store: a record naming a missing
        blob would be a broken file in the target too."""
        for file in files:
            for sha256 in (file.sha256, file.metadata_sha256, file.provenance_sha256):
                if sha256 is None:
                    continue
                try:
                    opened = await self._blobs.open_blob(sha256)
                except NotFound as exc:
                    raise StorageError(
                        f"The bytes of {file.filename!r} are missing from the blob store; "
                        "run 'ministry verify' before promoting it."
                    ) from exc
                await opened.close()

    async def _release(
        self, source: str, project: NormalizedName, version: str
    ) -> tuple[str, dict[str, Any]]:
        """The project's display name and the release's core metadata in the source."""
        found = await self._metadata.get_project(source, project)
        display_name = found.display_name if found is not None else project
        wanted = release_key(version)
        releases: list[Release] = await self._metadata.list_releases(source, project)
        metadata = next((r.metadata for r in releases if release_key(r.version) == wanted), {})
        return display_name, metadata

    async def _publish(
        self,
        identity: Identity,
        config: IndexConfig,
        copy: DistFile,
        release: tuple[str, dict[str, Any]],
        before: list[PublishResult],
    ) -> PublishResult:
        """Add one file to the target; the refusal of what the store found in its way."""
        display_name, metadata = release
        result = await self._metadata.add_file(
            copy,
            display_name,
            metadata,
            identity.actor,
            publisher=publisher(identity, config, copy.project),
        )
        outcome, stored = result.outcome, result.file
        if outcome is AddFileOutcome.ADDED:
            return PublishResult(stored, created=True)
        if outcome is AddFileOutcome.FILENAME_TAKEN and stored.sha256 == copy.sha256:
            return PublishResult(stored, created=False)
        if outcome is AddFileOutcome.NOT_PERMITTED:
            roles = await self._metadata.list_roles(config.name, copy.project)
            raise project_refusal(identity, config, copy.project, roles)
        target = config.name
        if outcome is AddFileOutcome.FILENAME_TAKEN:
            reason = _other_bytes(target, copy.filename)
        elif outcome is AddFileOutcome.CONTENT_TAKEN:
            reason = _content_taken(target, stored.filename)
        elif outcome is AddFileOutcome.FILENAME_RETIRED:
            reason = (
                f"Index {target!r} retired the filename {copy.filename!r} when a file with "
                "other bytes was deleted there; it cannot take these bytes."
            )
        else:
            reason = _release_clash(target, copy, stored.filename)
        added = [r.file.filename for r in before if r.created]
        done = f"Promoted before this: {', '.join(added)}." if added else _NOTHING
        raise Conflict(f"{reason} {done}")


_NOTHING = "Nothing was promoted."


def _other_bytes(target: str, filename: str) -> str:
    return (
        f"Index {target!r} already has {filename!r} with other bytes, "
        "and a promotion never replaces a file."
    )


def _content_taken(target: str, filename: str) -> str:
    return f"Index {target!r} already has these bytes as {filename!r}."


def _release_clash(target: str, file: DistFile, other: str) -> str:
    what = "sdist" if file.packagetype == "sdist" else "wheel for the tags of"
    return (
        f"Release {file.version} in index {target!r} already has another {what} "
        f"{file.filename!r}: {other!r}."
    )
